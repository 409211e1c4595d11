//! Exactly-once crediting under duplicates, races, bot outages and a killed host.

use std::time::Duration;

use serde_json::json;
use topup_testkit::mocks::{BotMode, PgMode};

use crate::support::{bearer, failed_body, paid_body, report, total, Backend, TestApp, SECRET};

/// One row of the closing note's table: `expected` and `delivered` credits.
fn row(scenario: &str, backend: Backend, expected: u32, delivered: u32) {
    report(
        scenario,
        backend,
        &format!("expected {expected}"),
        &format!("delivered {delivered}"),
    );
}

async fn concurrent_identical_paid_callbacks_credit_once(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    let (id, reference) = app.new_deposit("u1", 50000).await;
    let body = paid_body(&id, &reference, 50000);
    let replies = futures_join(200, |_| app.callback(&body)).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "every duplicate is answered 200"
    );
    assert_eq!(app.bot.credits(&id), 1);
    assert_eq!(
        app.bot.deliveries(&id).len(),
        1,
        "no second delivery either"
    );
    assert_eq!(app.view(&id).await["credited"], true);
    row(
        "200 concurrent identical PAID",
        backend,
        1,
        app.bot.credits(&id),
    );
}

async fn concurrent_reuse_of_one_nonce_has_one_winner(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    let (id, reference) = app.new_deposit("u1", 5000).await;
    let body = failed_body(&id, &reference);
    let replies = futures_join(50, |_| {
        app.callback_signed(&body, SECRET, &[("x-nonce", "same-nonce")])
    })
    .await;
    let accepted = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies
        .iter()
        .filter(|r| r.status == 409 && r.json()["error"] == "NONCE_REUSED")
        .count();
    assert_eq!((accepted, refused), (1, 49));
    report(
        "50 concurrent same X-Nonce",
        backend,
        "accepted 1/refused 49",
        &format!("accepted {accepted}/refused {refused}"),
    );
}

async fn simultaneous_paid_and_failed_end_paid_credited_once(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    let mut deposits = Vec::new();
    for i in 0..20 {
        deposits.push(app.new_deposit(&format!("u{i}"), 5000).await);
    }
    let app = &app;
    let races = deposits.iter().map(|(id, reference)| async move {
        let paid = paid_body(id, reference, 5000);
        let failed = failed_body(id, reference);
        let (a, b) = tokio::join!(app.callback(&paid), app.callback(&failed));
        assert_eq!((a.status, b.status), (200, 200));
    });
    futures::future::join_all(races).await;
    let mut delivered = 0;
    for (id, _) in &deposits {
        let view = app.view(id).await;
        assert_eq!(view["status"], "PAID", "{id}: {view}");
        assert_eq!(view["credited"], true, "{id}");
        assert_eq!(app.bot.credits(id), 1, "{id}");
        delivered += app.bot.credits(id);
    }
    row("PAID+FAILED at once (x20)", backend, 20, delivered);
}

async fn bot_outage_then_sweeps_credit_each_once(backend: Backend) {
    let app = TestApp::start(backend, &[("credit_retry_schedule", "1")]).await;
    // 100 paid while the bot answers 503: every credit is owed.
    let (deposits, due) = app.owed_credits(&[&app.api], 100, 10000).await;
    assert!(app.bot.all_credits().is_empty());

    // Once every retry is due (and its bucket visited), one sweep delivers all 100.
    app.bot.set_mode(BotMode::Accept);
    app.clock.until_sweepable(due);
    let sent_before = app.bot.received().len();
    let swept = app.sweep().await;
    let swept_at = app.clock.now_ms();
    assert_eq!(
        (
            swept["attempted"].clone(),
            swept["credited"].clone(),
            swept["remaining"].clone(),
            swept["more"].clone()
        ),
        (json!(100), json!(100), json!(0), json!(false)),
        "{swept}"
    );
    let mut delivered = 0;
    for (id, _) in &deposits {
        assert_eq!(app.view(id).await["credited"], true, "{id}");
        assert_eq!(app.bot.credits(id), 1, "{id}");
        delivered += app.bot.credits(id);
    }
    // Each take-over also scheduled a check at the end of its lease (3 s): once those are
    // visited they find every credit delivered and send nothing, and the schedule is empty.
    app.clock.until_sweepable(swept_at + 3_000);
    let idle = app.sweep().await;
    assert_eq!(
        (
            idle["attempted"].clone(),
            idle["remaining"].clone(),
            idle["more"].clone()
        ),
        (json!(0), json!(0), json!(false)),
        "{idle}"
    );
    assert_eq!(
        app.bot.received().len() - sent_before,
        100,
        "no credit was sent twice after the outage"
    );
    let left: Vec<_> = app
        .stores
        .snapshot()
        .into_keys()
        .filter(|(_, k)| k.starts_with("slot:due:") || k.starts_with("count:due:"))
        .collect();
    assert!(left.is_empty(), "credit tasks left: {left:?}");
    row("bot 503 for 100 paid, then sweeps", backend, 100, delivered);
}

async fn killed_host_mid_credit_is_finished_by_a_sweep(backend: Backend) {
    let mut app = TestApp::start(backend, &[("credit_lease_seconds", "3")]).await;
    app.restart_as_process().await;
    let (id, reference) = app.new_deposit("u1", 5000).await;

    app.bot.set_mode(BotMode::Hang);
    let http = app.http.clone();
    let body = paid_body(&id, &reference, 5000);
    // The owner recording this payment holds it for the lease (3 s) from about now.
    let lease_ends = app.clock.now_ms() + 3_000;
    let signature = crate::support::sign(SECRET, body.as_bytes());
    let in_flight = tokio::spawn(async move {
        http.try_send(
            "POST",
            "/internal/payment-callback",
            &[
                ("authorization", &bearer(SECRET)),
                ("content-type", "application/json"),
                ("x-signature", &signature),
            ],
            body,
        )
        .await
    });
    // Wait until the credit is at the bot, then kill the host (SIGKILL).
    for _ in 0..200 {
        if !app.bot.deliveries(&id).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        app.bot.deliveries(&id).len(),
        1,
        "the credit reached the bot before the kill"
    );
    app.kill();
    assert!(
        in_flight.await.unwrap().is_err(),
        "the gateway saw the connection die"
    );

    app.restart_as_process().await;
    app.bot.set_mode(BotMode::Accept);
    let view = app.view(&id).await;
    assert_eq!(
        (view["status"].clone(), view["credited"].clone()),
        (json!("PAID"), json!(false))
    );

    // The gateway resends the callback it got no answer to: a duplicate, which has a sweep
    // look at the credit when the dead owner's lease ends.
    let resend = app.callback(&paid_body(&id, &reference, 5000)).await;
    assert_eq!(resend.status, 200);
    assert_eq!(
        app.bot.credits(&id),
        0,
        "the held credit was never applied, the resend sent none"
    );

    // The lease (3 s) must pass, then that 1 s bucket's 2 s margin (sweep_until moves the clock).
    let answers = app
        .sweep_until(Duration::from_secs(10), |a| total(a, "attempted") > 0)
        .await;
    let last = answers.last().unwrap();
    assert_eq!(
        (last["attempted"].clone(), last["credited"].clone()),
        (json!(1), json!(1)),
        "{answers:?}"
    );
    assert!(
        app.clock.now_ms() >= lease_ends,
        "a sweep took the credit over before its owner's lease ended"
    );
    assert_eq!(app.view(&id).await["credited"], true);
    assert_eq!(app.bot.credits(&id), 1);

    // The held request from before the kill finally lands (the bot finishes it although the
    // caller is gone): same Idempotency-Key, no new credit.
    app.bot.release();
    for _ in 0..500 {
        if app.bot.decided(&id) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.bot.decided(&id), 2, "the held request was answered");
    assert_eq!(app.bot.credits(&id), 1);
    assert_eq!(
        app.bot.deliveries(&id).len(),
        2,
        "the held one and the sweep's"
    );
    assert!(
        app.resends_identical(&id),
        "every delivery carries the same bytes and Idempotency-Key"
    );
    row(
        "SIGKILL mid-credit, restart, sweep",
        backend,
        1,
        app.bot.credits(&id),
    );
}

async fn a_caller_hanging_up_does_not_stop_a_credit(backend: Backend) {
    use tokio::io::AsyncWriteExt;

    let app = TestApp::start(backend, &[]).await;
    let (id, reference) = app.new_deposit("u1", 5000).await;
    app.bot.set_mode(BotMode::Hang);
    let body = paid_body(&id, &reference, 5000);
    let request = format!(
        "POST /internal/payment-callback HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {SECRET}\r\n\
         content-type: application/json\r\nx-signature: {}\r\ncontent-length: {}\r\n\r\n{body}",
        app.addr,
        crate::support::sign(SECRET, body.as_bytes()),
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    for _ in 0..200 {
        if !app.bot.deliveries(&id).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.bot.deliveries(&id).len(), 1, "the credit is at the bot");
    drop(stream); // the gateway gives up on the connection
                  // Not synchronisation of what is asserted: the host cannot tell us when it saw the hang-up,
                  // so this only gives it time to, so that the release below comes after it. Were the
                  // release first, the assertions below would still hold (the test would be weaker).
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.bot.release();
    for _ in 0..100 {
        if app.view(&id).await["credited"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.view(&id).await["credited"],
        true,
        "finished without a sweep"
    );
    assert_eq!(app.bot.credits(&id), 1);
}

async fn mismatch_failed_after_paid_and_secret_rotation(backend: Backend) {
    let mut app = TestApp::start(backend, &[]).await;

    // Amount mismatch: not credited, the record says why.
    let (id, reference) = app.new_deposit("u1", 50000).await;
    assert_eq!(
        app.callback(&paid_body(&id, &reference, 5000)).await.status,
        200
    );
    let view = app.view(&id).await;
    assert_eq!(view["credited"], false);
    assert_eq!(view["review"]["reason"], "AMOUNT_MISMATCH");
    assert_eq!(view["creditResult"]["error"], "AMOUNT_MISMATCH");
    assert_eq!(app.bot.credits(&id), 0);
    row("amount mismatch", backend, 0, app.bot.credits(&id));

    // FAILED after PAID: ignored and recorded.
    let (id2, reference2) = app.new_deposit("u2", 5000).await;
    app.callback(&paid_body(&id2, &reference2, 5000)).await;
    assert_eq!(
        app.callback(&failed_body(&id2, &reference2)).await.status,
        200
    );
    let view = app.view(&id2).await;
    assert_eq!(
        (view["status"].clone(), view["credited"].clone()),
        (json!("PAID"), json!(true))
    );
    assert_eq!(view["ignoredEvents"][0]["status"], "FAILED");
    row("FAILED after PAID", backend, 1, app.bot.credits(&id2));

    // Rotation: the new secret is current, the old one still accepted inbound.
    app.restart_with(&[
        ("shared_secret", "rotated-secret-9876543210"),
        ("shared_secret_previous", SECRET),
    ])
    .await;
    app.pg.set_secret("rotated-secret-9876543210");
    app.bot.set_secret("rotated-secret-9876543210");
    let (id3, reference3) = {
        let reply = app
            .http
            .send(
                "POST",
                "/deposit/create",
                &[
                    ("authorization", &bearer(SECRET)),
                    ("content-type", "application/json"),
                ],
                json!({"userId": "u3", "amount": 5000}).to_string(),
            )
            .await;
        assert_eq!(reply.status, 200, "old bearer accepted during rotation");
        (
            reply.json()["depositId"].as_str().unwrap().to_string(),
            reply.json()["reference"].as_str().unwrap().to_string(),
        )
    };
    let old = app
        .callback_signed(&failed_body(&id3, &reference3), SECRET, &[])
        .await;
    assert_eq!(old.status, 200, "old signature accepted during rotation");

    // Rotation over: the old secret is refused.
    app.restart_with(&[("shared_secret_previous", "")]).await;
    let refused = app
        .callback_signed(&failed_body(&id3, &reference3), SECRET, &[])
        .await;
    assert_eq!(
        (refused.status, refused.json()["error"].clone()),
        (401, json!("UNAUTHORIZED"))
    );
    let new = app
        .callback_signed(
            &failed_body(&id3, &reference3),
            "rotated-secret-9876543210",
            &[],
        )
        .await;
    assert_eq!(new.status, 200);
    row("rotated secret accepted / old refused after", backend, 0, 0);
}

async fn a_retried_slow_create_is_told_to_wait_then_gets_the_same_invoice(backend: Backend) {
    // The bot gives up on a slow create and sends it again while the first is still waiting
    // for the PG: the id is claimed before the PG call, so the retry is told to come back
    // (409 CREATE_IN_PROGRESS, Retry-After) and never makes a second invoice.
    let app = TestApp::start(backend, &[]).await;
    app.pg.set_mode(PgMode::Slow(Duration::from_millis(1_000)));
    let id = "DEP-RETRIED";
    let body = json!({"userId": "u1", "amount": 5000, "depositId": id});
    let (first, second) = tokio::join!(app.create(&body), async {
        // The retry goes out while the first create is at the PG.
        for _ in 0..100 {
            if !app.pg.received().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(app.pg.received().len(), 1, "the first create is at the PG");
        app.create(&body).await
    });
    assert_eq!(first.status, 200, "{}", first.json());
    assert_eq!(
        (second.status, second.json()["error"].clone()),
        (409, json!("CREATE_IN_PROGRESS")),
        "{}",
        second.json()
    );
    let retry_after: u64 = second
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=15).contains(&retry_after), "Retry-After {retry_after}");

    // The bot retries once the first create has answered: the stored invoice, replayed.
    let third = app.create(&body).await;
    assert_eq!(third.status, 200, "{}", third.json());
    assert_eq!(third.json()["replayed"], true);
    for field in ["reference", "paymentUrl"] {
        assert_eq!(third.json()[field], first.json()[field], "{field}");
    }
    assert_eq!(app.pg.received().len(), 1, "one invoice for one deposit");

    // The user pays it; the gateway's callback arrives twice.
    let invoice = first.json()["reference"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let reply = app.callback(&paid_body(id, &invoice, 5000)).await;
        assert_eq!(reply.status, 200, "{}", reply.json());
    }
    assert_eq!(app.bot.credits(id), 1);
    assert_eq!(app.bot.deliveries(id).len(), 1);
    assert_eq!(
        app.bot.deliveries(id)[0].json()["reference"],
        invoice.as_str()
    );
    let view = app.view(id).await;
    assert_eq!(
        (view["credited"].clone(), view["reference"].clone()),
        (json!(true), json!(invoice))
    );
    assert!(view["refundsDue"]
        .as_array()
        .is_none_or(|refunds| refunds.is_empty()));
    report(
        "create retried while the first waits for the PG",
        backend,
        "409 CREATE_IN_PROGRESS, then the same invoice; 1 invoice, 1 credit",
        &format!(
            "{} {}, then {} same={}; {} invoice(s), {} credit(s)",
            second.status,
            second.json()["error"].as_str().unwrap_or("?"),
            third.status,
            third.json()["reference"] == first.json()["reference"],
            app.pg.received().len(),
            app.bot.credits(id)
        ),
    );
}

/// Runs `n` requests concurrently.
async fn futures_join<'a, F, Fut>(n: usize, make: F) -> Vec<crate::support::Reply>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = crate::support::Reply> + 'a,
{
    futures::future::join_all((0..n).map(make)).await
}

crate::on_both_backends!(
    concurrent_identical_paid_callbacks_credit_once,
    concurrent_reuse_of_one_nonce_has_one_winner,
    simultaneous_paid_and_failed_end_paid_credited_once,
    bot_outage_then_sweeps_credit_each_once,
    killed_host_mid_credit_is_finished_by_a_sweep,
    a_caller_hanging_up_does_not_stop_a_credit,
    mismatch_failed_after_paid_and_secret_rotation,
    a_retried_slow_create_is_told_to_wait_then_gets_the_same_invoice,
);
