//! A store that does not answer is a 503, not a hang: every key-value call of the host has a
//! limit (`--store-timeout`, 2 s by default), past which the request fails with
//! `STORE_UNAVAILABLE`; `/health` names each label that is down. Spin, by contrast, waits for
//! ever on a Redis that is down (measured: over 150 s), so these tests would hang on it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::support::{
    health_labels, mentions, paid_body, single_label, Api, Backend, Reply, TestApp,
};

/// Only against a hang: a request makes a few store calls of at most 2 s each.
const HANG: Duration = Duration::from_secs(10);

/// Sends a request, asserting it ended well before a hang; returns its reply.
async fn timed(what: &str, request: impl std::future::Future<Output = Reply>) -> Reply {
    let started = Instant::now();
    let reply = tokio::time::timeout(HANG * 3, request)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer after {:?}", HANG * 3));
    let elapsed = started.elapsed();
    println!("{what}: {} after {elapsed:?}", reply.status);
    assert!(elapsed < HANG, "{what} took {elapsed:?}");
    reply
}

fn assert_store_unavailable(what: &str, reply: &Reply) {
    let body = reply.json();
    assert_eq!(
        (reply.status, body["error"].clone()),
        (503, json!("STORE_UNAVAILABLE")),
        "{what}: {body}"
    );
}

async fn health(api: &Api) -> Reply {
    api.http.send("GET", "/health", &[], Bytes::new()).await
}

/// Asserts /health is 503 and names every label in use as down (on Redis they share one
/// server).
fn assert_both_labels_down(reply: &Reply) {
    let body = reply.json();
    assert_eq!(reply.status, 503, "{body}");
    assert_eq!(
        body["store"],
        json!({"ok": false, "labels": health_labels(false)}),
        "{body}"
    );
}

/// Order ids the PG was asked for, in order.
fn orders(app: &TestApp) -> Vec<String> {
    app.pg
        .received()
        .iter()
        .map(|r| r.json()["orderId"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_redis_is_503_and_health_names_the_labels() {
    let app = TestApp::start(Backend::Redis, &[]).await;
    let (id, reference) = app.new_deposit("u1", 5000).await;
    assert_eq!(health(&app.api).await.status, 200);

    let redis = app.stores.redis().expect("redis");
    redis.signal("KILL").expect("SIGKILL redis-server");
    // The process is gone once nothing answers on its port (bounded poll of a process event).
    let deadline = Instant::now() + HANG;
    while redis.command(0, &["PING"]).is_ok() {
        assert!(Instant::now() < deadline, "redis-server still answers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let create = timed(
        "create, Redis killed",
        app.create(&json!({"userId": "u2", "amount": 5000})),
    )
    .await;
    assert_store_unavailable("create", &create);
    let callback = timed(
        "PAID callback, Redis killed",
        app.callback(&paid_body(&id, &reference, 5000)),
    )
    .await;
    assert_store_unavailable("callback", &callback);
    assert_eq!(app.bot.credits(&id), 0, "nothing credited without a store");
    let status = timed(
        "status, Redis killed",
        app.status(&format!("depositId={id}")),
    )
    .await;
    assert_store_unavailable("status", &status);
    assert_both_labels_down(&timed("health, Redis killed", health(&app.api)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_redis_is_503_and_the_service_recovers_when_it_resumes() {
    let app = TestApp::start(Backend::Redis, &[]).await;
    let (id, reference) = app.new_deposit("u1", 5000).await;
    let redis = app.stores.redis().expect("redis");
    redis.signal("STOP").expect("SIGSTOP redis-server");

    let create = timed(
        "create, Redis paused",
        app.create(&json!({"userId": "u2", "amount": 6000})),
    )
    .await;
    assert_store_unavailable("create", &create);
    let callback = timed(
        "PAID callback, Redis paused",
        app.callback(&paid_body(&id, &reference, 5000)),
    )
    .await;
    assert_store_unavailable("callback", &callback);
    // Several requests at once leave several commands waiting on the one connection.
    let query = format!("depositId={id}");
    let statuses = futures::future::join_all(
        (0..4).map(|_| timed("status, Redis paused", app.status(&query))),
    )
    .await;
    for status in &statuses {
        assert_store_unavailable("status", status);
    }
    assert_both_labels_down(&timed("health, Redis paused", health(&app.api)).await);
    assert_eq!(app.bot.credits(&id), 0);

    // Resumed, the same process serves again: the commands abandoned on its connection do not
    // poison it.
    redis.signal("CONT").expect("SIGCONT redis-server");
    let reply = timed("health, Redis resumed", health(&app.api)).await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    assert_eq!(
        reply.json()["store"],
        json!({"ok": true, "labels": health_labels(true)})
    );
    // The gateway resends the callback that got 503: credited once.
    let callback = app.callback(&paid_body(&id, &reference, 5000)).await;
    assert_eq!(callback.status, 200, "{}", callback.json());
    assert_eq!(app.bot.credits(&id), 1);
    let view: Value = app.view(&id).await;
    assert_eq!(
        (view["status"].clone(), view["credited"].clone()),
        (json!("PAID"), json!(true)),
        "{view}"
    );
    // The create that failed left nothing under its id; a new create works.
    let failed_order = orders(&app)
        .into_iter()
        .nth(1)
        .expect("the failed create called the PG");
    assert!(
        mentions(&app.stores.snapshot(), &failed_order).is_empty(),
        "the failed create stored something"
    );
    let (second, _) = app.new_deposit("u2", 6000).await;
    assert_eq!(app.view(&second).await["status"], "PENDING");
}

/// On SQLite each label is its own file: one held by another connection is named alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_names_the_one_sqlite_label_that_is_down() {
    if single_label() {
        println!("one label in use (E2E_LABELS=single): there is no second file to lock");
        return;
    }
    let app = TestApp::start(Backend::Sqlite, &[]).await;
    let _ = app.new_deposit("u1", 5000).await;
    let claims = rusqlite::Connection::open(
        app.stores
            .runtime_config()
            .parent()
            .expect("dir")
            .join("claims.db"),
    )
    .expect("open claims.db");
    // An exclusive lock keeps every other connection from reading the file.
    claims
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("lock claims.db");
    let reply = timed("health, claims.db locked", health(&app.api)).await;
    let body = reply.json();
    assert_eq!(reply.status, 503, "{body}");
    assert_eq!(
        body["store"],
        json!({"ok": false, "labels": {"default": {"ok": true}, "claims": {"ok": false}}}),
        "{body}"
    );
    claims.execute_batch("ROLLBACK").expect("unlock");
    assert_eq!(health(&app.api).await.status, 200);
}
