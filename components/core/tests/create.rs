//! `POST /deposit/create`: validation, the invoice call, idempotent repeats, refusals.

mod common;

use common::*;

#[test]
fn create_calls_the_pg_and_stores_a_pending_deposit_in_one_write() {
    let p = platform();
    let response = create(
        &p,
        json!({"userId": 42, "amount": 50000, "email": "a@b.co"}),
    );
    assert_eq!(response.status, 200);
    let body = response.json_body();
    let id = body["depositId"].as_str().unwrap().to_string();
    assert!(id.starts_with("DEP") && id.len() == 19, "{id}");
    assert_eq!(body["reference"], format!("REF-{id}"));
    assert_eq!(body["paymentUrl"], format!("https://pay.test/{id}"));
    assert_eq!(p.records.write_ops(), 1);

    let pg = p.http.requests_to("pg.test");
    assert_eq!(pg.len(), 1);
    assert_eq!(pg[0].url, "http://pg.test/invoice/create");
    let sig = pg[0]
        .headers
        .iter()
        .find(|(k, _)| k == "x-signature")
        .unwrap();
    assert!(verify_signature(
        [&Secret::new(SECRET)],
        &pg[0].body,
        &sig.1
    ));

    let v = view(&p, &id);
    assert_eq!(v["status"], "PENDING");
    assert_eq!(v["userId"], "42");
    assert_eq!(v["credited"], false);
    assert_eq!(v["callbackReceived"], false);
    assert_eq!(
        view(&p, &id),
        status(&p, &format!("reference=REF-{id}")).json_body()
    );
}

#[test]
fn repeated_create_is_idempotent_and_conflicts_are_refused() {
    let p = platform();
    new_deposit(&p, "ORDER-1", 50000);
    let again = create(
        &p,
        json!({"userId": "u1", "amount": 50000, "depositId": "ORDER-1"}),
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.json_body()["reference"], "REF-ORDER-1");
    assert_eq!(again.json_body()["replayed"], true);
    assert_eq!(p.http.requests_to("pg.test").len(), 1, "no second invoice");

    let before = store_snapshot(&p);
    for body in [
        json!({"userId": "u2", "amount": 50000, "depositId": "ORDER-1"}),
        json!({"userId": "u1", "amount": 60000, "depositId": "ORDER-1"}),
    ] {
        let response = create(&p, body);
        assert_eq!(response.status, 409);
        assert_eq!(response.json_body()["error"], "DEPOSIT_CONFLICT");
    }
    assert_eq!(store_snapshot(&p), before);
}

#[test]
fn pg_failures_are_502_and_store_nothing() {
    let cases: Vec<Result<OutboundResponse, TransportError>> = vec![
        Err(TransportError::Timeout),
        Err(TransportError::ConnectionRefused),
        Ok(OutboundResponse {
            status: 500,
            body: b"internal".to_vec(),
        }),
        Ok(OutboundResponse {
            status: 200,
            body: b"<html>".to_vec(),
        }),
        Ok(OutboundResponse {
            status: 200,
            body: br#"{"reference":"R"}"#.to_vec(),
        }),
    ];
    for answer in cases {
        let p = TestPlatform::new();
        p.http.set_handler(move |_| answer.clone());
        let response = create(&p, json!({"userId": "u", "amount": 5000}));
        let body = response.json_body();
        assert_eq!(response.status, 502, "{body}");
        assert_eq!(body["message"], "Gagal membuat invoice");
        assert!(body["detail"].is_object());
        assert!(p.records.keys().is_empty(), "{body}");
        assert_eq!(p.records.write_ops(), 0);
    }
}

#[test]
fn auth_method_size_and_content_type_are_checked_before_anything_else() {
    let p = platform();
    let good = json!({"userId": "u", "amount": 5000}).to_string();
    let cases: Vec<(Request, u16, &str)> = vec![
        (
            Request::new("POST", "/deposit/create")
                .with_header("content-type", "application/json")
                .with_body(good.clone()),
            401,
            "UNAUTHORIZED",
        ),
        (
            Request::new("POST", "/deposit/create")
                .with_header("authorization", "Bearer nope")
                .with_header("content-type", "application/json")
                .with_body(good.clone()),
            401,
            "UNAUTHORIZED",
        ),
        (
            authed("POST", "/deposit/create")
                .with_header("authorization", "Bearer x")
                .with_header("content-type", "application/json")
                .with_body(good.clone()),
            400,
            "INVALID_HEADER",
        ),
        (
            authed("POST", "/deposit/create")
                .with_header("content-type", "text/plain")
                .with_body(good.clone()),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            authed("POST", "/deposit/create").with_body(good.clone()),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (authed("GET", "/deposit/create"), 405, "METHOD_NOT_ALLOWED"),
        (authed("PUT", "/deposit/create"), 405, "METHOD_NOT_ALLOWED"),
    ];
    for (request, code, error) in cases {
        let response = routes::create::handle(&request, &p.platform());
        assert_eq!(response.status, code, "{}", response.json_body());
        assert_eq!(response.json_body()["error"], error);
    }
    let mut oversize =
        authed("POST", "/deposit/create").with_header("content-type", "application/json");
    oversize.body_exceeded_limit = true;
    let response = routes::create::handle(&oversize, &p.platform());
    assert_eq!(
        (response.status, response.json_body()["error"].clone()),
        (413, json!("BODY_TOO_LARGE"))
    );
    let response = routes::create::handle(&authed("DELETE", "/deposit/create"), &p.platform());
    assert_eq!(response.header("allow"), Some("POST, OPTIONS"));
    assert!(p.records.keys().is_empty());
    assert!(p.http.requests().is_empty());
}

#[test]
fn previous_secret_is_accepted_only_while_configured() {
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("shared_secret", "new-secret")
        .with("shared_secret_previous", SECRET);
    assert_eq!(
        create(&p, json!({"userId": "u", "amount": 5000})).status,
        200
    );
    p.variables = p.variables.clone().with("shared_secret_previous", "");
    assert_eq!(
        create(&p, json!({"userId": "u", "amount": 5000})).status,
        401
    );
}
