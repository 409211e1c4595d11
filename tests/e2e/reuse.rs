//! A reused instance carries nothing of one request into the next. The WASIp3 build is served
//! as Spin 4 serves it, one instance for request after request; these requests change the
//! token, the variables and the store between them, and each answer must follow only its own
//! request and the values of the moment (no cached configuration, secret or store handle).
//! On the WASIp2 build the same requests each get a fresh instance.

use bytes::Bytes;
use serde_json::{json, Value};
use std::time::Duration;

use crate::support::{bearer, Backend, Build, Reply, TestApp, SECRET};

/// Longer than the test: an idle instance is never dropped in between, whatever the load.
const KEEP: Duration = Duration::from_secs(3600);

async fn status(app: &TestApp, id: &str, secret: &str) -> Reply {
    app.http
        .send(
            "GET",
            &format!("/deposit/status?depositId={id}"),
            &[("authorization", &bearer(secret))],
            Bytes::new(),
        )
        .await
}

async fn create(app: &TestApp, secret: &str, body: Value) -> Reply {
    app.http
        .send(
            "POST",
            "/deposit/create",
            &[
                ("authorization", &bearer(secret)),
                ("content-type", "application/json"),
            ],
            body.to_string(),
        )
        .await
}

async fn health(app: &TestApp) -> Value {
    let reply = app.http.send("GET", "/health", &[], Bytes::new()).await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    reply.json()
}

/// `default`-label opens so far: each request that reads the store opens its own bucket.
fn opens(app: &TestApp) -> u64 {
    let stats = app.app.as_ref().expect("in-process").store_stats();
    stats["default"]["opens"].as_u64().expect("opens")
}

async fn one_instance_follows_each_request_and_the_current_variables(backend: Backend) {
    let mut app = TestApp::start_keeping_instances(backend, &[], KEEP).await;
    let (id, _) = app.new_deposit("u1", 5000).await;

    // Tokens: right, wrong, right again, none; each answer is its own.
    let mut status_requests = 0;
    for (secret, expected) in [(SECRET, 200), ("wrong", 401), (SECRET, 200), ("", 401)] {
        let before = opens(&app);
        let reply = status(&app, &id, secret).await;
        status_requests += 1;
        assert_eq!(reply.status, expected, "{secret:?}: {}", reply.json());
        if expected == 200 {
            assert_eq!(reply.json()["depositId"], id);
            assert!(
                opens(&app) > before,
                "the store was opened for this request"
            );
        }
    }

    // A rotated secret: the old one is refused at once, the new one accepted, by the same
    // instance (nothing read at its first request is kept).
    app.set_variables(&[("shared_secret", "rotated-secret-0123456789")]);
    for (secret, expected) in [
        (SECRET, 401),
        ("rotated-secret-0123456789", 200),
        (SECRET, 401),
    ] {
        let reply = status(&app, &id, secret).await;
        status_requests += 1;
        assert_eq!(reply.status, expected, "{secret:?}: {}", reply.json());
    }
    app.set_variables(&[("shared_secret", SECRET)]);
    assert_eq!(status(&app, &id, SECRET).await.status, 200);
    status_requests += 1;

    // Limits and flags follow the variables of the moment.
    let small = json!({"userId": "u2", "amount": 5000});
    assert_eq!(create(&app, SECRET, small.clone()).await.status, 200);
    app.set_variables(&[("min_amount", "10000")]);
    let refused = create(&app, SECRET, json!({"userId": "u3", "amount": 5000})).await;
    assert_eq!(refused.status, 400, "{}", refused.json());
    app.set_variables(&[("min_amount", "1000")]);
    let replayed = create(&app, SECRET, small).await;
    assert_eq!(replayed.status, 200, "{}", replayed.json());
    let creates = 1 + 3; // new_deposit and these three

    assert_eq!(
        health(&app).await["replayProtection"]["enforceTimestamp"],
        false
    );
    app.set_variables(&[("enforce_timestamp", "true")]);
    assert_eq!(
        health(&app).await["replayProtection"]["enforceTimestamp"],
        true
    );
    app.set_variables(&[("enforce_timestamp", "false")]);
    assert_eq!(
        health(&app).await["replayProtection"]["enforceTimestamp"],
        false
    );

    let served = app.app.as_ref().expect("in-process");
    for (component, requests) in [
        ("deposit-status", status_requests),
        ("deposit-create", creates),
        ("health", 3),
    ] {
        let (instances, p3) = served.instances_created(component).expect(component);
        match Build::current() {
            Build::P3 => {
                assert!(p3, "{component} is a WASIp3 component");
                // Sequential requests on a kept instance: one instance served them all.
                assert_eq!(instances, 1, "{component}: {requests} requests");
            }
            Build::P2 => {
                assert!(!p3, "{component} is a WASIp2 component");
                assert_eq!(instances, requests, "{component}: one instance per request");
            }
        }
    }
}

crate::on_both_backends!(one_instance_follows_each_request_and_the_current_variables);
