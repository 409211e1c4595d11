//! `kv_labels`: the glue opens the claims in `claims` (two labels) or in `default` (one, with
//! spin.single-label.toml; the whole suite runs that way with `E2E_LABELS=single`). A value it
//! does not know is refused on every route that touches a store, before any store is opened.

use bytes::Bytes;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{paid_body, single_label, Backend, TestApp};

on_both_backends!(a_kv_labels_it_does_not_know_is_a_config_error_that_changes_nothing);

async fn a_kv_labels_it_does_not_know_is_a_config_error_that_changes_nothing(backend: Backend) {
    let mut app = TestApp::start(backend, &[]).await;
    let (id, reference) = app.new_deposit("u1", 5000).await;
    let before = app.stores.snapshot();

    app.restart_with(&[("kv_labels", "three")]).await;
    let create = app.create(&json!({"userId": "u2", "amount": 6000})).await;
    let paid = app.callback(&paid_body(&id, &reference, 5000)).await;
    let status = app.status(&format!("depositId={id}")).await;
    let health = app.api.http.send("GET", "/health", &[], Bytes::new()).await;
    for (what, reply) in [
        ("create", &create),
        ("PAID callback", &paid),
        ("status", &status),
        ("health", &health),
    ] {
        let body = reply.json();
        assert_eq!(
            (
                reply.status,
                body["error"].clone(),
                body["detail"]["variable"].clone()
            ),
            (500, json!("CONFIG_ERROR"), json!("kv_labels")),
            "{what}: {body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("three"),
            "{what} names the value it refused: {body}"
        );
    }
    // The document reads no variable and opens no store: still served.
    let document = app
        .api
        .http
        .send("GET", "/openapi.json", &[], Bytes::new())
        .await;
    assert_eq!(document.status, 200);
    assert!(
        app.pg.received().len() == 1,
        "only the first create reached the PG"
    );
    assert_eq!(app.bot.credits(&id), 0);
    assert_eq!(
        app.stores.snapshot(),
        before,
        "a refused request wrote something"
    );

    // Put right, the resent PAID is credited once, in the labels this run uses.
    let layout = if single_label() { "single" } else { "two" };
    app.restart_with(&[("kv_labels", layout)]).await;
    let paid = app.callback(&paid_body(&id, &reference, 5000)).await;
    assert_eq!(paid.status, 200, "{}", paid.json());
    assert_eq!(app.bot.credits(&id), 1);
    assert!(app.stores.keys("claims").contains(&format!("paid:{id}")));
}
