//! The retry sweep under store faults and a killed process: a write that fails, a record
//! that cannot be read, SIGKILL in the middle of a sweep. Nothing owed may be lost, and every
//! resend of a credit must carry the same bytes and the same `Idempotency-Key`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use topup_testkit::mocks::BotMode;

use crate::support::{bearer, report, total, Backend, Reply, TestApp, WriteBlock, SECRET};

/// Sends one sweep while writes are blocked (the guard is dropped once it has answered, so
/// the block outlasts any wait the store did); returns its answer and how long it took.
async fn sweep_while_blocked(app: &TestApp, block: WriteBlock) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = app.sweep_reply().await;
    let took = started.elapsed();
    // Reads still work meanwhile.
    assert_eq!(app.status("depositId=none").await.status, 404);
    drop(block);
    assert_eq!(
        (reply.status, reply.json()["error"].clone()),
        (503, json!("STORE_UNAVAILABLE")),
        "{}",
        reply.json()
    );
    (reply, took)
}

async fn a_sweep_whose_writes_fail_loses_nothing(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    let (deposits, due) = app.owed_credits(&[&app.api], 2, 5000).await;
    let (first, second) = (deposits[0].0.clone(), deposits[1].0.clone());
    let inline = app.bot.deliveries(&second).len();

    // 1. The sweep finds the store refusing writes before it delivers anything.
    // SQLite: another connection holds default.db's write lock (BEGIN IMMEDIATE); Redis: OOM.
    app.bot.set_mode(BotMode::Hang);
    app.clock.until_sweepable(due);
    let (_, took_before) = sweep_while_blocked(&app, app.stores.block_writes()).await;
    assert_eq!(app.bot.credits(&first), 0);
    for id in [&first, &second] {
        assert_eq!(app.view(id).await["credited"], false, "{id}");
    }

    // 2. Writes work again; the next sweep takes both over and sends them, and the bot holds
    // its answers. Writes fail again before the outcome is recorded: the bot has applied the
    // credits, the store does not know.
    let http = app.http.clone();
    let sweep = tokio::spawn(async move { crate::support::Api { http }.sweep_reply().await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.bot.deliveries(&second).len() == inline {
        assert!(Instant::now() < deadline, "the sweep never reached the bot");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let block = app.stores.block_writes();
    app.bot.set_mode(BotMode::Accept);
    app.bot.release();
    let started = Instant::now();
    let failed_after = sweep.await.unwrap();
    let took_after = started.elapsed();
    drop(block);
    assert_eq!(
        (failed_after.status, failed_after.json()["error"].clone()),
        (503, json!("STORE_UNAVAILABLE")),
        "{}",
        failed_after.json()
    );
    assert_eq!((app.bot.credits(&first), app.bot.credits(&second)), (1, 1));
    assert_eq!(app.view(&second).await["credited"], false);

    // 3. Writes work: once the failed owner's lease (3 s) has ended, later sweeps deliver
    // again with the same key and body, the bot answers "duplicate", and it is recorded.
    let answers = app
        .sweep_until(Duration::from_secs(10), |answers| {
            total(answers, "credited") >= 2
        })
        .await;
    for id in [&first, &second] {
        assert_eq!(app.view(id).await["credited"], true, "{id}");
        assert_eq!(app.bot.credits(id), 1, "{id}");
        assert!(app.resends_identical(id), "{id}");
    }
    report(
        "sweep's writes fail before delivering (SQLite locked / Redis OOM)",
        backend,
        "503, nothing lost, later credited once",
        &format!(
            "503 after {:.1}s, later credited once each",
            took_before.as_secs_f64()
        ),
    );
    report(
        "sweep's outcome write fails after the bot applied it",
        backend,
        "503, later recorded credited, bot applied once, resend identical",
        &format!(
            "503 after {:.1}s; recorded after {} more sweep(s); applied {}+{}; resends identical",
            took_after.as_secs_f64(),
            answers.len(),
            app.bot.credits(&first),
            app.bot.credits(&second)
        ),
    );
}

async fn a_corrupt_record_is_set_aside_and_the_others_are_credited(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    let (deposits, due) = app.owed_credits(&[&app.api], 3, 5000).await;
    // Garbage where one deposit's payment record is.
    let bad = deposits[1].0.clone();
    app.stores
        .put("default", &format!("credit:{bad}"), b"\x00not json{{");
    let good: Vec<String> = [&deposits[0], &deposits[2]]
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    app.bot.set_mode(BotMode::Accept);
    app.clock.until_sweepable(due);

    let answers = app
        .sweep_until(Duration::from_secs(10), |answers| {
            total(answers, "quarantined") >= 1 && good.iter().all(|id| app.bot.credits(id) == 1)
        })
        .await;
    for id in &good {
        assert_eq!(app.view(id).await["credited"], true, "{id}");
        assert_eq!(app.bot.credits(id), 1, "{id}");
    }
    assert_eq!(
        app.bot.credits(&bad),
        0,
        "an unreadable record is never guessed at"
    );
    // The unreadable deposit reads as an error, not as unpaid, and an operator finds it.
    let status = app.status(&format!("depositId={bad}")).await;
    assert_eq!(
        (status.status, status.json()["error"].clone()),
        (500, json!("CORRUPT_RECORD")),
        "{}",
        status.json()
    );
    let snapshot = app.stores.snapshot();
    assert!(
        snapshot
            .iter()
            .any(|((label, key), value)| label == "default"
                && key.starts_with("quarantine:")
                && String::from_utf8_lossy(value).contains(&bad)),
        "no quarantine entry names {bad}"
    );
    report(
        "corrupt credit record among 3 owed",
        backend,
        "200, quarantined >= 1, the other 2 credited once",
        &format!(
            "statuses 200 x{}, quarantined {}, others credited {}+{}",
            answers.len(),
            total(&answers, "quarantined"),
            app.bot.credits(&good[0]),
            app.bot.credits(&good[1])
        ),
    );
}

async fn sigkill_during_a_sweep_of_40_then_every_credit_arrives_once(backend: Backend) {
    let mut app = TestApp::start(backend, &[]).await;
    app.restart_as_process().await;
    let (deposits, due) = app.owed_credits(&[&app.api], 40, 10000).await;
    let ids: Vec<String> = deposits.iter().map(|(id, _)| id.clone()).collect();
    // Deliveries so far: the failed inline ones.
    let inline: Vec<usize> = ids.iter().map(|id| app.bot.deliveries(id).len()).collect();

    // The bot applies each credit at once and answers 300 ms later; the sweep sends 16 at a
    // time. Once the second batch has reached the bot, the first is recorded as credited, the
    // second is applied but unrecorded, the rest untouched: SIGKILL then.
    app.bot.set_mode(BotMode::Slow(Duration::from_millis(300)));
    app.clock.until_sweepable(due);
    let sent_before = app.bot.received().len();
    let http = app.http.clone();
    let sweep = tokio::spawn(async move {
        http.try_send(
            "POST",
            "/internal/credit-retry",
            &[("authorization", &bearer(SECRET))],
            bytes::Bytes::new(),
        )
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.bot.received().len() < sent_before + 17 {
        assert!(
            Instant::now() < deadline,
            "the sweep never sent a second batch"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.kill();
    let at_kill = app.bot.received().len() - sent_before;
    assert!(
        sweep.await.unwrap().is_err(),
        "the sweep died with the process"
    );
    assert!(at_kill < 40, "the sweep had finished before the kill");

    // Restarted, the sweeps finish the work: the untouched now, the taken-over once their
    // dead owner's lease (3 s) has ended and its 1 s bucket is visited (2 s later).
    app.restart_as_process().await;
    app.bot.set_mode(BotMode::Accept);
    let mut answers: Vec<Value> = Vec::new();
    for round in 0.. {
        answers.push(app.sweep().await);
        let views = futures::future::join_all(ids.iter().map(|id| app.view(id))).await;
        if views.iter().all(|view| view["credited"] == true) {
            break;
        }
        assert!(
            round < 15,
            "not all credited: {} of 40, sweeps {answers:?}",
            views.iter().filter(|v| v["credited"] == true).count()
        );
        app.clock.advance(Duration::from_secs(1));
    }
    let mut resent = 0;
    for (id, inline) in ids.iter().zip(&inline) {
        assert_eq!(app.bot.credits(id), 1, "{id}");
        assert!(app.resends_identical(id), "{id}: a resend differs");
        // More than one delivery after the inline ones: sent again after the kill.
        if app.bot.deliveries(id).len() > inline + 1 {
            resent += 1;
        }
    }
    let applied: u32 = ids.iter().map(|id| app.bot.credits(id)).sum();
    report(
        "SIGKILL during a sweep of 40 owed, restart, sweeps",
        backend,
        "40 credited once each, every resend identical",
        &format!(
            "killed after {at_kill} sent; {applied} applied, each once; {resent} resent, all identical; {} sweeps after restart",
            answers.len()
        ),
    );
}

crate::on_both_backends!(
    a_sweep_whose_writes_fail_loses_nothing,
    a_corrupt_record_is_set_aside_and_the_others_are_credited,
    sigkill_during_a_sweep_of_40_then_every_credit_arrives_once,
);
