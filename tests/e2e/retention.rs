//! How long a deposit's keys live: a credit still owed outlives the deposit's TTL, and once
//! nothing is owed every key of an ended deposit is removed by the sweep, read or not.
//!
//! Real time must pass in both: the TTL itself (kept short, 2.6 s) and the expiry schedule,
//! whose 10 s buckets are visited 2 s after their end; an expiry task always goes to a bucket
//! after the current one, so a deposit with a TTL this short is removed within ~22 s of its
//! creation.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use topup_core::store::schedule::{Schedule, CREDITS, EXPIRY, RECONCILE};
use topup_testkit::mocks::BotMode;

use crate::support::{
    failed_body, mentions, paid_body, report, total, Backend, Snapshot, TestApp, SECRET,
};

/// 0.00003 days = 2.592 s.
const TTL_DAYS: &str = "0.00003";
const TTL_MS: u64 = 2_592;

/// The expiry task slots (`slot:exp:…`) whose task names `id`.
fn expiry_slots(snapshot: &Snapshot, id: &str) -> Vec<String> {
    snapshot
        .iter()
        .filter(|((_, key), value)| {
            key.starts_with("slot:exp:") && String::from_utf8_lossy(value).contains(id)
        })
        .map(|((_, key), _)| key.clone())
        .collect()
}

async fn a_credit_owed_past_the_ttl_is_still_delivered(backend: Backend) {
    let app = TestApp::start(
        backend,
        &[
            ("deposit_ttl_days", TTL_DAYS),
            ("credit_retry_schedule", "1"),
        ],
    )
    .await;
    let (deposits, _) = app.owed_credits(&[&app.api], 1, 5000).await;
    let (id, reference) = deposits[0].clone();
    let created_at = app.view(&id).await["createdAt"].as_u64().unwrap();
    let first_check = expiry_slots(&app.stores.snapshot(), &id);
    assert_eq!(first_check.len(), 1, "one expiry task: {first_check:?}");

    // The bot stays down past the TTL and until the deposit's expiry task has run (its slot
    // is gone); sweeps keep failing the retries meanwhile.
    let answers = app
        .sweep_until(Duration::from_secs(30), |_| {
            !app.stores
                .snapshot()
                .contains_key(&("default".to_string(), first_check[0].clone()))
        })
        .await;
    assert!(
        app.clock.now_ms() > created_at + TTL_MS,
        "the TTL has run out"
    );
    assert_eq!(app.bot.credits(&id), 0);
    assert!(
        total(&answers, "failed") >= 1,
        "retries were attempted: {answers:?}"
    );
    assert_eq!(total(&answers, "cleaned"), 0, "{answers:?}");
    // Still there, still owed, all its keys in place.
    let view = app.view(&id).await;
    assert_eq!(
        (view["status"].clone(), view["credited"].clone()),
        (json!("PAID"), json!(false)),
        "{view}"
    );
    let keys = app.stores.keys("default");
    for key in [
        format!("deposit:{id}"),
        format!("ref:{reference}"),
        format!("credit:{id}"),
    ] {
        assert!(keys.contains(&key), "{key} is gone: {keys:?}");
    }

    // The bot comes back: the next due retry delivers it.
    app.bot.set_mode(BotMode::Accept);
    let after = app
        .sweep_until(Duration::from_secs(8), |_| app.bot.credits(&id) == 1)
        .await;
    assert_eq!(app.view(&id).await["credited"], true);
    assert_eq!(app.bot.credits(&id), 1);
    assert!(app.resends_identical(&id));
    report(
        "TTL runs out while the credit is owed (bot down past it)",
        backend,
        "still readable and owed after expiry ran, then delivered once",
        &format!(
            "PAID/owed {} s after creation with its keys, then credited {} ({} sweeps)",
            (app.clock.now_ms() - created_at) / 1000,
            app.bot.credits(&id),
            answers.len() + after.len()
        ),
    );
}

/// Keys a sweep's bookkeeping may keep once everything due is done: the cursors, and the
/// block and day markers around each cursor (a block's marker goes when the scan walks out
/// of it, and a task may still arrive in the current one).
fn bookkeeping(snapshot: &Snapshot) -> BTreeSet<(String, String)> {
    let mut allowed = BTreeSet::new();
    for schedule in [CREDITS, EXPIRY, RECONCILE] {
        let Schedule {
            name, block, day, ..
        } = schedule;
        let cursor_key = format!("cursor:{name}");
        allowed.insert(("default".to_string(), cursor_key.clone()));
        let Some(cursor) = snapshot.get(&("default".to_string(), cursor_key)) else {
            continue;
        };
        let cursor: serde_json::Value = serde_json::from_slice(cursor).expect("cursor JSON");
        let bucket = cursor["bucket"].as_u64().expect("cursor bucket");
        for b in [bucket.saturating_sub(1), bucket] {
            allowed.insert(("claims".to_string(), format!("block:{name}:{}", b / block)));
            allowed.insert((
                "claims".to_string(),
                format!("day:{name}:{}", b / (block * day)),
            ));
        }
    }
    allowed
}

async fn every_key_of_ended_deposits_is_removed(backend: Backend) {
    let app = TestApp::start(
        backend,
        &[("deposit_ttl_days", TTL_DAYS), ("nonce_ttl_seconds", "1")],
    )
    .await;
    // 12 paid and credited (4 with a chosen id), each callback with an X-Nonce and sent
    // twice; 4 never paid and never read again; 4 FAILED (with a nonce).
    let mut ids = Vec::new();
    let mut references = Vec::new();
    for i in 0..20 {
        let reply = if i < 4 {
            app.create(&json!({"userId": format!("u{i}"), "amount": 5000, "depositId": format!("KEEP-{i}")}))
                .await
        } else {
            app.create(&json!({"userId": format!("u{i}"), "amount": 5000}))
                .await
        };
        assert_eq!(reply.status, 200, "{}", reply.json());
        let id = reply.json()["depositId"].as_str().unwrap().to_string();
        let reference = reply.json()["reference"].as_str().unwrap().to_string();
        let nonce = format!("nonce-{i}");
        match i {
            0..12 => {
                let body = paid_body(&id, &reference, 5000);
                let first = app
                    .callback_signed(&body, SECRET, &[("x-nonce", &nonce)])
                    .await;
                assert_eq!(first.status, 200, "{}", first.json());
                assert_eq!(app.callback(&body).await.status, 200);
                assert_eq!(app.bot.credits(&id), 1, "{id}");
            }
            12..16 => {}
            _ => {
                let failed = app
                    .callback_signed(
                        &failed_body(&id, &reference),
                        SECRET,
                        &[("x-nonce", &nonce)],
                    )
                    .await;
                assert_eq!(failed.status, 200, "{}", failed.json());
            }
        }
        ids.push(id);
        references.push(reference);
    }
    let before = app.stores.snapshot();
    for prefix in [
        "deposit:",
        "ref:",
        "credit:",
        "credited:",
        "notes:",
        "note:",
        "paid:",
        "create:",
        "nonce:",
        "slot:exp:",
        "count:exp:",
    ] {
        assert!(
            before.keys().any(|(_, key)| key.starts_with(prefix)),
            "the flows wrote no {prefix} key"
        );
    }

    // Sweep until nothing names any of them and no nonce is remembered.
    let gone = |snapshot: &Snapshot| {
        ids.iter()
            .chain(&references)
            .all(|needle| mentions(snapshot, needle).is_empty())
            && !snapshot.keys().any(|(_, key)| key.starts_with("nonce:"))
    };
    let answers = app
        .sweep_until(Duration::from_secs(30), |_| gone(&app.stores.snapshot()))
        .await;
    // 20 deposits (a task may run twice, so at least); the 16 nonces, named by the records
    // their callbacks wrote, went with their deposits.
    assert!(total(&answers, "cleaned") >= 20, "{answers:?}");

    // What is left is the schedules' bookkeeping only, precisely.
    let left = app.stores.snapshot();
    let allowed = bookkeeping(&left);
    let unexpected: Vec<_> = left.keys().filter(|k| !allowed.contains(*k)).collect();
    assert!(
        unexpected.is_empty(),
        "keys left that are not bookkeeping: {unexpected:?}"
    );
    for name in ["cursor:due", "cursor:exp"] {
        assert!(left.contains_key(&("default".to_string(), name.to_string())));
    }
    for id in ids.iter().take(4) {
        assert_eq!(
            app.status(&format!("depositId={id}")).await.status,
            404,
            "{id}"
        );
    }
    report(
        "bounded store: 20 ended deposits (12 paid), TTL 2.6 s, sweeps",
        backend,
        "no key of them left; only cursors and current block/day markers",
        &format!(
            "{} keys before, {} after ({}), cleaned {}",
            before.len(),
            left.len(),
            left.keys()
                .map(|(_, key)| key.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            total(&answers, "cleaned")
        ),
    );
}

crate::on_both_backends!(
    a_credit_owed_past_the_ttl_is_still_delivered,
    every_key_of_ended_deposits_is_removed,
);
