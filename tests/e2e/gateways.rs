//! Duitku, Midtrans, Xendit and Tripay end to end: the real components against a mock of each
//! gateway speaking its own protocol. Per gateway and backend: create → the gateway's own
//! callback → credited once; a forged or mis-signed callback refused; the callback lost →
//! reconciliation credits once; the callback after reconciliation → nothing more; a notice
//! edited where its gateway does not sign it pays nothing; a gateway taken out of
//! `gateways_enabled` still serves its deposits while its credentials are set.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use topup_testkit::mocks::gateways::{MockGateway, Notification, Protocol};

use crate::on_both_backends;
use crate::support::{Backend, Reply, TestApp};

/// The app with `protocol` enabled next to the Central PG, pointed at `gateway`; the first
/// status check comes 1 s after a create.
async fn app_with(backend: Backend, protocol: Protocol, gateway: &MockGateway) -> TestApp {
    let enabled = format!("central,{}", protocol.name());
    let mut vars: Vec<(&str, String)> = vec![
        ("gateways_enabled", enabled),
        ("public_base_url", "https://topup.example".into()),
        ("reconcile_after_seconds", "1".into()),
        ("reconcile_schedule", "1".into()),
    ];
    vars.extend(gateway.app_variables());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::start(backend, &vars).await
}

/// Creates `id` at the gateway (asserts 200) and returns the answer.
async fn create_at(app: &TestApp, protocol: Protocol, id: &str) -> Value {
    let reply = app
        .create(&json!({"userId": "u1", "amount": 50_000, "depositId": id,
            "email": "buyer@example.com", "gateway": protocol.name()}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    reply.json()
}

/// Delivers a notification to the app as the gateway would.
async fn deliver(app: &TestApp, notification: &Notification) -> Reply {
    let headers: Vec<(&str, &str)> = notification
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    app.http
        .send(
            "POST",
            &notification.path,
            &headers,
            Bytes::from(notification.body.clone()),
        )
        .await
}

/// The answer each gateway takes as "received" (so it stops retrying).
fn acknowledged(protocol: Protocol, reply: &Reply) {
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    if protocol == Protocol::Tripay {
        assert_eq!(reply.json(), json!({"success": true}));
    } else {
        assert_eq!(&reply.body[..], b"OK");
    }
}

/// `notification` with its amount raised and its signature (or token) kept; for Xendit,
/// whose proof is a token and not a signature, a wrong token.
fn forged(protocol: Protocol, notification: &Notification) -> Notification {
    let mut forged = notification.clone();
    if protocol == Protocol::Xendit {
        for (name, value) in &mut forged.headers {
            if name == "x-callback-token" {
                *value = "guessed-token".into();
            }
        }
    } else {
        let body = String::from_utf8_lossy(&notification.body).replacen("50000", "5000000", 1);
        forged.body = body.into_bytes();
    }
    forged
}

async fn callback_credits_once(backend: Backend) {
    for protocol in Protocol::ALL {
        let gateway = MockGateway::start(protocol).await.expect("mock gateway");
        let app = app_with(backend, protocol, &gateway).await;
        let id = format!("e2e-{}", protocol.name());
        let created = create_at(&app, protocol, &id).await;
        assert!(created["paymentUrl"]
            .as_str()
            .unwrap_or("")
            .starts_with("https://"));
        assert_eq!(gateway.orders(), 1, "{protocol:?}");
        let paid = gateway.pay(&id);

        // Forged first: refused, nothing stored, nothing credited.
        let before = app.stores.snapshot();
        let reply = deliver(&app, &forged(protocol, &paid)).await;
        assert_eq!(reply.status, 401, "{protocol:?}: {}", reply.json());
        assert_eq!(app.stores.snapshot(), before, "{protocol:?}");
        assert_eq!(app.bot.credits(&id), 0, "{protocol:?}");

        acknowledged(protocol, &deliver(&app, &paid).await);
        assert_eq!(app.bot.credits(&id), 1, "{protocol:?}");
        let view = app.view(&id).await;
        assert_eq!(view["status"], "PAID", "{protocol:?}");
        // The gateway's retry of the same notification: acknowledged, no second credit.
        acknowledged(protocol, &deliver(&app, &paid).await);
        assert_eq!(app.bot.credits(&id), 1, "{protocol:?}");
        assert_eq!(app.bot.deliveries(&id).len(), 1, "{protocol:?}");
    }
}

async fn lost_callback_is_reconciled_once(backend: Backend) {
    for protocol in Protocol::ALL {
        let gateway = MockGateway::start(protocol).await.expect("mock gateway");
        let app = app_with(backend, protocol, &gateway).await;
        let id = format!("e2e-lost-{}", protocol.name());
        create_at(&app, protocol, &id).await;
        // Not yet due: the gateway is not asked.
        let early = app.sweep().await;
        assert!(
            early.get("reconciliation").is_none(),
            "{protocol:?}: {early}"
        );
        assert_eq!(gateway.status_queries(), 0, "{protocol:?}");
        // The buyer pays; the gateway's callback never arrives.
        let paid = gateway.pay(&id);
        // Past reconcile_after_seconds, and past the bucket's margin.
        app.clock.advance(Duration::from_secs(5));
        let swept = app.sweep().await;
        assert_eq!(
            swept["reconciliation"],
            json!({"checked": 1, "paid": 1, "failed": 0, "pending": 0, "errors": 0, "skipped": 0}),
            "{protocol:?}: {swept}"
        );
        assert_eq!(gateway.status_queries(), 1, "{protocol:?}");
        assert_eq!(app.bot.credits(&id), 1, "{protocol:?}");
        assert_eq!(app.view(&id).await["status"], "PAID", "{protocol:?}");

        // The callback arrives after all: acknowledged, nothing more.
        acknowledged(protocol, &deliver(&app, &paid).await);
        assert_eq!(app.bot.credits(&id), 1, "{protocol:?}");
        assert_eq!(app.bot.deliveries(&id).len(), 1, "{protocol:?}");
        // And the gateway is not asked again.
        app.clock.advance(Duration::from_secs(60));
        app.sweep().await;
        assert_eq!(gateway.status_queries(), 1, "{protocol:?}");
    }
}

/// `notification`'s form or JSON field `field` set to `value`, its proof kept: what anyone who
/// saw it can send.
fn edited(notification: &Notification, field: &str, value: &str) -> Notification {
    let mut edited = notification.clone();
    edited.body = match serde_json::from_slice::<Value>(&notification.body) {
        Ok(mut body) => {
            body[field] = json!(value);
            body.to_string().into_bytes()
        }
        Err(_) => {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(&notification.body)
                .into_owned()
                .map(|(k, v)| {
                    if k == field {
                        (k, value.to_string())
                    } else {
                        (k, v)
                    }
                })
                .collect();
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
                .into_bytes()
        }
    };
    edited
}

async fn an_edited_notice_pays_nothing(backend: Backend) {
    // Duitku signs neither resultCode nor anything after it; Xendit's token signs nothing at
    // all. Each edit below keeps the proof valid; only the gateway's status API decides.
    for (protocol, field, value) in [
        (Protocol::Duitku, "resultCode", "00"),
        (Protocol::Xendit, "status", "PAID"),
    ] {
        let gateway = MockGateway::start(protocol).await.expect("mock gateway");
        let app = app_with(backend, protocol, &gateway).await;
        let id = format!("e2e-edit-{}", protocol.name());
        create_at(&app, protocol, &id).await;
        let expired = gateway.expire(&id);
        let forged = edited(&expired, field, value);
        let reply = deliver(&app, &forged).await;
        acknowledged(protocol, &reply);
        assert!(
            gateway.status_queries() >= 1,
            "{protocol:?}: asked the gateway"
        );
        assert_eq!(app.bot.credits(&id), 0, "{protocol:?}");
        assert_eq!(app.view(&id).await["status"], "FAILED", "{protocol:?}");
    }
}

async fn a_retired_gateway_still_serves_its_deposits(backend: Backend) {
    let protocol = Protocol::Duitku;
    let gateway = MockGateway::start(protocol).await.expect("mock gateway");
    let mut app = app_with(backend, protocol, &gateway).await;
    create_at(&app, protocol, "e2e-retired").await;
    // Duitku out of gateways_enabled: no new deposit there, its open one still served.
    app.restart_with(&[("gateways_enabled", "central")]).await;
    let refused = app
        .create(
            &json!({"userId": "u1", "amount": 50_000, "depositId": "e2e-new",
            "email": "buyer@example.com", "gateway": "duitku"}),
        )
        .await;
    assert_eq!(refused.json()["error"], "GATEWAY_DISABLED");
    let paid = gateway.pay("e2e-retired");
    acknowledged(protocol, &deliver(&app, &paid).await);
    assert_eq!(app.bot.credits("e2e-retired"), 1);
    // Its credentials gone too: a clear 404, never a 500 that makes the gateway retry.
    app.restart_with(&[("duitku_api_key", "")]).await;
    let reply = deliver(&app, &paid).await;
    assert_eq!(reply.status, 404, "{}", reply.json());
    assert_eq!(reply.json()["error"], "GATEWAY_NOT_CONFIGURED");
}

on_both_backends!(
    callback_credits_once,
    lost_callback_is_reconciled_once,
    an_edited_notice_pays_nothing,
    a_retired_gateway_still_serves_its_deposits
);
