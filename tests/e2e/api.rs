//! The HTTP API end to end: real components, real stores, real HTTP to the mocks.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use topup_testkit::mocks::{BotMode, PgMode};

use crate::support::{failed_body, mentions, paid_body, total, Backend, TestApp};

async fn paid_flow_credits_the_bot_once(backend: Backend) {
    let app = TestApp::start(backend, &[("public_base_url", "https://topup.example")]).await;
    let reply = app
        .create(&json!({"userId": 123, "amount": 50000, "email": "buyer@example.com", "msisdn": "08123456789"}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    let created = reply.json();
    let id = created["depositId"].as_str().unwrap().to_string();
    let reference = created["reference"].as_str().unwrap().to_string();
    assert!(id.starts_with("DEP") && id.len() == 19);
    assert!(created["paymentUrl"]
        .as_str()
        .unwrap()
        .starts_with("https://pay.mock/"));

    let invoice = &app.pg.received()[0];
    assert!(
        invoice.authentic,
        "the PG must see a valid bearer and signature"
    );
    assert_eq!(invoice.path, "/invoice/create");
    assert!(invoice.header("x-timestamp").is_some());
    assert_eq!(
        invoice.json(),
        json!({"orderId": id, "amount": 50000, "productDetails": "Top up saldo Rp 50000",
               "email": "buyer@example.com", "phoneNumber": "08123456789", "userId": "123",
               "callbackUrl": "https://topup.example/internal/payment-callback"})
    );
    assert_eq!(app.view(&id).await["status"], "PENDING");

    let reply = app.callback(&paid_body(&id, &reference, 50000)).await;
    assert_eq!((reply.status, reply.body.as_ref()), (200, &b"OK"[..]));
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));

    let view = app.view(&id).await;
    assert_eq!(view["status"], "PAID");
    assert_eq!(view["credited"], true);
    assert_eq!(view["callbackReceived"], true);
    assert_eq!(view["creditResult"], json!({"ok": true}));
    assert_eq!(view["userId"], "123");
    assert!(view["creditedAt"].as_u64().unwrap() >= view["createdAt"].as_u64().unwrap());

    let deliveries = app.bot.deliveries(&id);
    assert_eq!(deliveries.len(), 1);
    let credit = &deliveries[0];
    assert!(credit.authentic);
    assert_eq!(credit.path, "/internal/deposit-callback");
    assert_eq!(credit.header("idempotency-key"), Some(id.as_str()));
    let body = credit.json();
    assert_eq!(body["depositId"], id.as_str());
    assert_eq!(body["userId"], "123");
    assert_eq!(body["amount"], 50000);
    assert_eq!(body["reference"], reference.as_str());
    assert_eq!(body["status"], "PAID");
    assert_eq!(body["paymentMethod"], "BC");
    assert!(body["paidAt"].as_u64().is_some());
    assert_eq!(app.bot.credits(&id), 1);

    // The gateway resends: answered 200, nothing credited again.
    for _ in 0..3 {
        assert_eq!(
            app.callback(&paid_body(&id, &reference, 50000))
                .await
                .status,
            200
        );
    }
    assert_eq!(app.bot.deliveries(&id).len(), 1);
}

async fn failed_flow_and_lookup_by_reference(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    let (id, reference) = app.new_deposit("tg:77", 25000).await;
    assert_eq!(
        app.callback(&failed_body(&id, &reference)).await.status,
        200
    );
    let by_id = app.view(&id).await;
    assert_eq!(by_id["status"], "FAILED");
    assert_eq!(by_id["credited"], false);
    assert_eq!(by_id["callbackReceived"], true);
    let by_reference = app.status(&format!("reference={reference}")).await;
    assert_eq!(by_reference.status, 200);
    assert_eq!(by_reference.json(), by_id);
    assert!(app.bot.received().is_empty());
}

async fn repeated_create_is_idempotent_and_conflicts_are_409(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    let first = app
        .create(&json!({"userId": "u1", "amount": 10000, "depositId": "order-42"}))
        .await;
    assert_eq!(first.status, 200);
    let again = app
        .create(&json!({"userId": "u1", "amount": 10000, "depositId": "order-42"}))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["reference"], first.json()["reference"]);
    assert_eq!(again.json()["paymentUrl"], first.json()["paymentUrl"]);
    assert_eq!(app.pg.received().len(), 1, "the PG is asked once");

    let before = app.stores.snapshot();
    for body in [
        json!({"userId": "u2", "amount": 10000, "depositId": "order-42"}),
        json!({"userId": "u1", "amount": 20000, "depositId": "order-42"}),
    ] {
        let reply = app.create(&body).await;
        assert_eq!(reply.status, 409, "{}", reply.json());
        assert_eq!(reply.json()["error"], "DEPOSIT_CONFLICT");
    }
    assert_eq!(app.stores.snapshot(), before);
}

async fn cors_allowed_refused_and_preflight(backend: Backend) {
    let app = TestApp::start(
        backend,
        &[("allowed_origins", r#"["https://shop.example"]"#)],
    )
    .await;
    let allowed = app
        .http
        .send(
            "GET",
            "/health",
            &[("origin", "https://shop.example")],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert_eq!(allowed.header("vary"), Some("Origin"));

    let refused = app
        .http
        .send(
            "GET",
            "/health",
            &[("origin", "https://evil.example")],
            Bytes::new(),
        )
        .await;
    assert_eq!(refused.status, 200);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    for (path, methods) in [
        ("/deposit/create", "POST, OPTIONS"),
        ("/deposit/status", "GET, HEAD, OPTIONS"),
        ("/internal/payment-callback", "POST, OPTIONS"),
    ] {
        let preflight = app
            .http
            .send(
                "OPTIONS",
                path,
                &[
                    ("origin", "https://shop.example"),
                    ("access-control-request-method", "POST"),
                ],
                Bytes::new(),
            )
            .await;
        assert_eq!(preflight.status, 204, "{path}");
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            Some("https://shop.example")
        );
        assert_eq!(
            preflight.header("access-control-allow-methods"),
            Some(methods)
        );
        assert_eq!(
            preflight.header("access-control-allow-headers"),
            Some("Authorization, Content-Type, X-Signature, X-Timestamp, X-Nonce")
        );
    }
}

async fn expired_deposit_reads_as_missing_then_a_sweep_removes_it(backend: Backend) {
    // 0.00012 days = 10.368 s: at least one 10 s expiry bucket, so the expiry task sits in
    // the bucket of the expiry itself (a task always goes to a bucket after the current one).
    let app = TestApp::start(backend, &[("deposit_ttl_days", "0.00012")]).await;
    let (id, reference) = app.new_deposit("u1", 5000).await;
    let created_at = app.view(&id).await["createdAt"].as_u64().unwrap();
    let expires_at = created_at + 10_368;
    assert!(app
        .stores
        .keys("default")
        .contains(&format!("deposit:{id}")));

    // Just before its TTL runs out it still reads; just after, it reads as missing.
    app.clock.advance_to(expires_at - 500);
    assert_eq!(app.status(&format!("depositId={id}")).await.status, 200);
    app.clock.advance_to(expires_at + 1);

    // Reads never write: an expired deposit reads as 404 and its keys stay as they were.
    let before = app.stores.snapshot();
    let by_id = app.status(&format!("depositId={id}")).await;
    assert_eq!(by_id.status, 404, "{}", by_id.json());
    let by_reference = app.status(&format!("reference={reference}")).await;
    assert_eq!(by_reference.status, 404, "{}", by_reference.json());
    assert_eq!(app.stores.snapshot(), before, "a read changed the store");
    let keys = app.stores.keys("default");
    assert!(keys.contains(&format!("deposit:{id}")), "{keys:?}");
    assert!(keys.contains(&format!("ref:{reference}")), "{keys:?}");

    // Its expiry task sits in a 10 s bucket visited 2 s after the bucket's end: within ~12 s
    // of expiry a sweep removes every key of it (and every value naming it).
    let answers = app
        .sweep_until(Duration::from_secs(15), |_| {
            mentions(&app.stores.snapshot(), &id).is_empty()
        })
        .await;
    assert!(total(&answers, "cleaned") >= 1, "{answers:?}");
    assert!(
        app.clock.now_ms() <= expires_at + 12_000 + 2_000,
        "removed later than one expiry bucket and its margin after the TTL"
    );
    assert_eq!(app.status(&format!("depositId={id}")).await.status, 404);
}

async fn pg_failures_are_502_and_store_nothing(backend: Backend) {
    let app = TestApp::start(backend, &[("central_pg_timeout_ms", "400")]).await;
    let modes = [
        PgMode::Status(500),
        PgMode::Status(409),
        PgMode::Garbage,
        PgMode::MissingFields,
        PgMode::Slow(Duration::from_millis(1_500)),
    ];
    for mode in modes {
        app.pg.set_mode(mode.clone());
        let reply = app.create(&json!({"userId": "u", "amount": 5000})).await;
        assert_eq!(reply.status, 502, "{mode:?}: {}", reply.json());
        assert_eq!(reply.json()["message"], "Gagal membuat invoice");
        assert!(reply.json()["detail"].is_object(), "{mode:?}");
        assert!(
            app.stores.snapshot().is_empty(),
            "{mode:?} stored something"
        );
    }
    app.pg.set_mode(PgMode::TopLevel);
    assert_eq!(
        app.create(&json!({"userId": "u", "amount": 5000}))
            .await
            .status,
        200
    );
}

async fn pg_unreachable_is_502(backend: Backend) {
    let closed = format!("http://127.0.0.1:{}", crate::support::free_port());
    let app = TestApp::start(backend, &[("central_pg_base_url", &closed)]).await;
    let reply = app.create(&json!({"userId": "u", "amount": 5000})).await;
    assert_eq!(reply.status, 502, "{}", reply.json());
    assert!(app.stores.snapshot().is_empty());
}

async fn bot_down_keeps_the_payment_and_records_why(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    app.bot.set_mode(BotMode::Status(503));
    let (id, reference) = app.new_deposit("u1", 5000).await;
    assert_eq!(
        app.callback(&paid_body(&id, &reference, 5000)).await.status,
        200
    );
    let view = app.view(&id).await;
    assert_eq!(view["status"], "PAID");
    assert_eq!(view["credited"], false);
    assert_eq!(view["creditResult"]["ok"], false);
    assert_eq!(view["creditResult"]["error"], "BOT_HTTP_ERROR");
    assert_eq!(view["creditResult"]["detail"]["status"], 503);
    assert!(view["nextCreditAttemptAt"].as_u64().is_some());
    assert_eq!(app.bot.credits(&id), 0);
}

async fn health_reports_service_and_store(backend: Backend) {
    let app = TestApp::start(backend, &[("enforce_timestamp", "true")]).await;
    let reply = app.http.send("GET", "/health", &[], Bytes::new()).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["ok"], true);
    assert_eq!(body["service"], "bot-topup-backend");
    assert_eq!(body["version"], "0.1.0");
    assert_eq!(
        body["replayProtection"],
        json!({"enforceTimestamp": true, "nonceKvEnabled": true})
    );
    assert_eq!(body["store"]["ok"], true);
    assert!(body["timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(app.stores.snapshot().is_empty(), "health must not write");
    let head = app.http.send("HEAD", "/health", &[], Bytes::new()).await;
    assert_eq!((head.status, head.body.len()), (200, 0));
}

crate::on_both_backends!(
    paid_flow_credits_the_bot_once,
    failed_flow_and_lookup_by_reference,
    repeated_create_is_idempotent_and_conflicts_are_409,
    cors_allowed_refused_and_preflight,
    expired_deposit_reads_as_missing_then_a_sweep_removes_it,
    pg_failures_are_502_and_store_nothing,
    pg_unreachable_is_502,
    bot_down_keeps_the_payment_and_records_why,
    health_reports_service_and_store,
);

/// `/openapi.json` comes from its own component, which is granted no store and no variable:
/// the repository's document (compact), and the app's JSON 405 for other methods.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_component_serves_the_document() {
    let app = TestApp::start(Backend::Sqlite, &[]).await;
    let before = app.stores.snapshot();
    let document = std::fs::read(crate::support::manifest().with_file_name("openapi.json"))
        .expect("openapi.json");
    let reply = app
        .http
        .send("GET", "/openapi.json", &[], Bytes::new())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    // The same document, shipped without its indentation.
    let file: serde_json::Value = serde_json::from_slice(&document).expect("openapi.json parses");
    assert_eq!(reply.json(), file);
    assert!(reply.body.len() < document.len() * 2 / 3, "served compact");
    assert_eq!(reply.json()["openapi"], "3.1.0");
    let refused = app
        .http
        .send(
            "POST",
            "/openapi.json",
            &[("content-type", "application/json")],
            "{}",
        )
        .await;
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(refused.json()["error"], "METHOD_NOT_ALLOWED");
    assert_eq!(app.stores.snapshot(), before, "nothing stored");
}
