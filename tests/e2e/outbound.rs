//! What our outbound requests look like to the PG and the bot: a `Content-Length` on every
//! body (the mocks refuse chunked requests with 411, as Python's `http.server` or PHP's
//! built-in server effectively do), and a slow answer never holding a credit past its timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use topup_testkit::mocks::{BotMode, Received, TRICKLE_PADDING};

use crate::support::{paid_body, Backend, Reply, TestApp};

/// Asserts `request` declares exactly its body's length and is not chunked.
fn assert_sized(request: &Received) {
    assert_eq!(
        request.header("content-length"),
        Some(request.body.len().to_string().as_str()),
        "{:?}",
        request.headers
    );
    assert_eq!(request.header("transfer-encoding"), None);
}

async fn manual_retry(app: &TestApp, id: &str) -> Reply {
    app.http
        .send(
            "POST",
            &format!("/deposit/retry-credit?depositId={id}"),
            &[("authorization", &TestApp::bearer())],
            Bytes::new(),
        )
        .await
}

async fn paid_flow_sends_content_length_and_credits_once(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    let (id, reference) = app.new_deposit("u1", 50000).await;
    let invoices = app.pg.received();
    assert_eq!(invoices.len(), 1);
    assert_sized(&invoices[0]);
    assert!(invoices[0].authentic, "the PG read the whole signed body");

    let reply = app.callback(&paid_body(&id, &reference, 50000)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(app.bot.credits(&id), 1);
    let deliveries = app.bot.deliveries(&id);
    assert_eq!(deliveries.len(), 1);
    assert_sized(&deliveries[0]);
    assert!(deliveries[0].authentic);
    let view = app.view(&id).await;
    assert_eq!(
        (view["credited"].clone(), view["creditResult"].clone()),
        (json!(true), json!({"ok": true})),
        "{view}"
    );
}

async fn a_trickling_bot_does_not_hold_a_credit_past_its_timeout(backend: Backend) {
    let every = Duration::from_millis(300);
    // The bot's whole answer: padding plus `{"ok":true}`, one byte per `every`.
    let trickle_time = every * (TRICKLE_PADDING as u32 + 11);
    let app = TestApp::start(
        backend,
        &[("bot_timeout_ms", "1000"), ("credit_lease_seconds", "30")],
    )
    .await;
    let (id, reference) = app.new_deposit("u1", 5000).await;
    app.bot.set_mode(BotMode::Trickle(every));

    // Inline attempts get min(bot_timeout_ms, what is left of the 2 s inline budget) each,
    // so delivery ends about 2 s after it starts; the rest is a few store operations. A body
    // read with no overall deadline would take the whole trickle (over 9 s) instead.
    let started = Instant::now();
    let reply = app.callback(&paid_body(&id, &reference, 5000)).await;
    let elapsed = started.elapsed();
    println!("trickling bot ({backend:?}): PAID callback answered in {elapsed:?}");
    assert_eq!(reply.status, 200);
    assert!(trickle_time > Duration::from_secs(9));
    assert!(
        elapsed < Duration::from_secs(6),
        "the PAID callback took {elapsed:?}"
    );
    assert!(!app.bot.deliveries(&id).is_empty(), "the credit was sent");
    let view = app.view(&id).await;
    assert_eq!(
        (view["status"].clone(), view["credited"].clone()),
        (json!("PAID"), json!(false)),
        "{view}"
    );
    assert_eq!(view["creditResult"]["error"], "BOT_UNREACHABLE", "{view}");
    assert_eq!(
        view["creditResult"]["detail"]["reason"], "timed out",
        "{view}"
    );
    assert!(view["creditAttempts"].as_u64() >= Some(1), "{view}");

    // An operator's retry makes one delivery, bounded by bot_timeout_ms alone.
    let started = Instant::now();
    let retry = manual_retry(&app, &id).await;
    let elapsed = started.elapsed();
    println!("trickling bot ({backend:?}): manual retry answered in {elapsed:?}");
    assert_eq!(retry.status, 502, "{}", retry.json());
    assert!(
        elapsed < Duration::from_secs(4),
        "the manual retry took {elapsed:?}"
    );

    // The bot applied the first trickled credit; the resends carry the same key, so it is
    // applied once, and every one of them declared its length.
    app.bot.set_mode(BotMode::Accept);
    let retry = manual_retry(&app, &id).await;
    assert_eq!(retry.status, 200, "{}", retry.json());
    assert_eq!(app.view(&id).await["credited"], true);
    assert_eq!(app.bot.credits(&id), 1);
    let deliveries = app.bot.deliveries(&id);
    assert!(deliveries.len() >= 3, "{}", deliveries.len());
    for delivery in &deliveries {
        assert_sized(delivery);
        assert_eq!(delivery.body, deliveries[0].body);
    }
}

crate::on_both_backends!(
    paid_flow_sends_content_length_and_credits_once,
    a_trickling_bot_does_not_hold_a_credit_past_its_timeout,
);
