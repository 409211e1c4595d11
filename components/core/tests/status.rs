//! Reading: `GET /deposit/status`, `GET /health`, CORS, methods, secrets.

mod common;

use common::*;

#[test]
fn status_queries() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    for (query, code, error) in [
        ("", 400, "MISSING_QUERY"),
        ("depositId=D1&reference=REF-D1", 400, "AMBIGUOUS_QUERY"),
        ("depositId=", 400, "INVALID_DEPOSIT_ID"),
        ("depositId=a%20b", 400, "INVALID_DEPOSIT_ID"),
        ("depositId=NOPE", 404, "DEPOSIT_NOT_FOUND"),
        ("reference=NOPE", 404, "DEPOSIT_NOT_FOUND"),
    ] {
        let response = status(&p, query);
        assert_eq!(
            (response.status, response.json_body()["error"].clone()),
            (code, json!(error)),
            "{query}"
        );
    }
    let writes = p.records.write_ops();
    for _ in 0..5 {
        status(&p, "depositId=D1");
        status(&p, "reference=REF-D1");
    }
    assert_eq!(p.records.write_ops(), writes, "reads must not write");
}

#[test]
fn expired_deposits_read_as_missing_and_the_sweep_removes_every_key() {
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("deposit_ttl_days", "1")
        .with("credit_retry_schedule", "60");
    new_deposit(&p, "D1", 5000);
    p.clock.advance(Duration::from_secs(86_400));
    let before = store_snapshot(&p);
    assert_eq!(status(&p, "depositId=D1").status, 404);
    assert_eq!(status(&p, "reference=REF-D1").status, 404);
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 404);
    assert_eq!(store_snapshot(&p), before, "reads never write");

    // The expiry task's bucket is swept once it is safely in the past.
    p.clock.advance(Duration::from_secs(30));
    assert_eq!(sweep(&p)["cleaned"], 1);
    let left: Vec<String> = p
        .records
        .keys()
        .into_iter()
        .chain(p.claims.keys())
        .filter(|k| k.contains("D1"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn cors_and_preflight() {
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("allowed_origins", r#"["https://shop.example"]"#);
    let preflight =
        Request::new("OPTIONS", "/deposit/create").with_header("origin", "https://shop.example");
    let response = routes::create::handle(&preflight, &p.platform());
    assert_eq!(response.status, 204);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("POST, OPTIONS")
    );
    assert_eq!(
        response.header("access-control-allow-headers"),
        Some("Authorization, Content-Type, X-Signature, X-Timestamp, X-Nonce")
    );
    assert_eq!(response.header("vary"), Some("Origin"));

    let refused =
        Request::new("OPTIONS", "/deposit/create").with_header("origin", "https://evil.example");
    let response = routes::create::handle(&refused, &p.platform());
    assert_eq!(response.header("access-control-allow-origin"), None);

    let get =
        authed("GET", "/deposit/status?depositId=X").with_header("origin", "https://shop.example");
    let response = routes::status::handle(&get, &p.platform());
    assert_eq!(response.status, 404);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
}

#[test]
fn health_reports_config_and_store() {
    let p = platform();
    let response = routes::health::handle(&Request::new("GET", "/health"), &p.platform());
    let body = response.json_body();
    assert_eq!(response.status, 200);
    assert_eq!(body["ok"], true);
    assert_eq!(body["service"], "bot-topup-backend");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        body["replayProtection"],
        json!({"enforceTimestamp": false, "nonceKvEnabled": true})
    );
    assert_eq!(body["timestamp"], 1_700_000_000_000u64);
    assert_eq!(
        body["store"],
        json!({"ok": true, "labels": {"default": {"ok": true}, "claims": {"ok": true}}})
    );
    assert_eq!(p.records.write_ops(), 0);
    assert_eq!(p.claims.write_ops(), 0);

    // Each label is probed and named: the one that is down, and only it, says so.
    p.claims.failure_switch().fail("claims store down");
    let response = routes::health::handle(&Request::new("GET", "/health"), &p.platform());
    let body = response.json_body();
    assert_eq!((response.status, body["ok"].clone()), (503, json!(false)));
    assert_eq!(
        body["store"],
        json!({"ok": false, "labels": {"default": {"ok": true}, "claims": {"ok": false}}})
    );
    p.claims.failure_switch().heal();
    p.records.failure_switch().fail("redis down");
    let response = routes::health::handle(&Request::new("GET", "/health"), &p.platform());
    let body = response.json_body();
    assert_eq!((response.status, body["ok"].clone()), (503, json!(false)));
    assert_eq!(
        body["store"]["labels"],
        json!({"default": {"ok": false}, "claims": {"ok": true}})
    );

    let mut p = platform();
    p.variables = p.variables.clone().with("timestamp_skew_sec", "lots");
    let response = routes::health::handle(&Request::new("GET", "/health"), &p.platform());
    assert_eq!(response.status, 500);
    assert_eq!(
        response.json_body()["detail"]["variable"],
        "timestamp_skew_sec"
    );

    // Health reads only its own sections: a bad amount limit is the create route's error.
    let mut p = platform();
    p.variables = p.variables.clone().with("max_amount", "lots");
    let response = routes::health::handle(&Request::new("GET", "/health"), &p.platform());
    assert_eq!(response.status, 200);
}

#[test]
fn health_probes_the_labels_kv_labels_names() {
    // One label: the claims are in `default`, probed once and named once.
    // (The glue hands the core `default` twice; here the second store fails, unread.)
    let mut p = platform();
    p.variables = p.variables.clone().with("kv_labels", "single");
    p.claims.failure_switch().fail("not this label");
    let response = routes::health::handle(&Request::new("GET", "/health"), &p.platform());
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json_body()["store"],
        json!({"ok": true, "labels": {"default": {"ok": true}}})
    );
    p.records.failure_switch().fail("sqlite locked");
    let response = routes::health::handle(&Request::new("GET", "/health"), &p.platform());
    assert_eq!(
        (response.status, response.json_body()["store"].clone()),
        (
            503,
            json!({"ok": false, "labels": {"default": {"ok": false}}})
        )
    );

    // A layout it does not know is a config error naming the variable, before any probe.
    let mut p = platform();
    p.variables = p.variables.clone().with("kv_labels", "2");
    p.records.failure_switch().fail("down");
    let response = routes::health::handle(&Request::new("GET", "/health"), &p.platform());
    let body = response.json_body();
    assert_eq!(
        (
            response.status,
            body["error"].clone(),
            body["detail"]["variable"].clone()
        ),
        (500, json!("CONFIG_ERROR"), json!("kv_labels"))
    );
}

#[test]
fn secrets_never_appear_in_responses() {
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("shared_secret_previous", "older-secret");
    set_bot(&p, 500);
    new_deposit(&p, "D1", 5000);
    callback(&p, &paid_body("D1", 5000));
    let responses = [
        view(&p, "D1").to_string(),
        sweep(&p).to_string(),
        create(&p, json!({"userId": "u", "amount": 1}))
            .json_body()
            .to_string(),
        routes::health::handle(&Request::new("GET", "/health"), &p.platform())
            .json_body()
            .to_string(),
    ];
    for text in responses {
        assert!(
            !text.contains(SECRET) && !text.contains("older-secret"),
            "{text}"
        );
    }
}

#[test]
fn methods_are_case_sensitive() {
    let p = platform();
    let response = routes::health::handle(&Request::new("get", "/health"), &p.platform());
    assert_eq!(
        (response.status, response.json_body()["error"].clone()),
        (405, json!("METHOD_NOT_ALLOWED"))
    );
}
