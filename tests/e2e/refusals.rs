//! Bad requests end to end: every refusal has its status and error code, and changes nothing.

use bytes::Bytes;
use serde_json::json;

use crate::support::{failed_body, paid_body, Backend, TestApp, SECRET};

/// A request that must be refused without touching the stores.
struct Refusal {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn refusal(
    name: &'static str,
    method: &'static str,
    path: &str,
    status: u16,
    code: &'static str,
) -> Refusal {
    Refusal {
        name,
        method,
        path: path.to_string(),
        headers: vec![
            ("authorization".into(), TestApp::bearer()),
            ("content-type".into(), "application/json".into()),
        ],
        body: Vec::new(),
        status,
        code,
    }
}

impl Refusal {
    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self
    }

    fn signed(self, secret: &str) -> Self {
        let signature = crate::support::sign(secret, &self.body);
        self.header("x-signature", &signature)
    }
}

async fn bad_requests_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::start(backend, &[("enforce_timestamp", "true")]).await;
    let (id, reference) = app.new_deposit("u1", 5000).await;
    let paid = paid_body(&id, &reference, 5000);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let fresh = now.to_string();
    let stale = (now - 10 * 60_000).to_string();
    let future = (now + 10 * 60_000).to_string();
    let callback = "/internal/payment-callback";
    let good_create = json!({"userId": "u", "amount": 5000}).to_string();

    // Burn a nonce with an accepted callback, to replay it below.
    let used = app
        .callback_signed(
            &failed_body(&id, &reference),
            SECRET,
            &[("x-timestamp", &fresh), ("x-nonce", "nonce-1")],
        )
        .await;
    assert_eq!(used.status, 200);

    let cases = vec![
        refusal(
            "create without auth",
            "POST",
            "/deposit/create",
            401,
            "UNAUTHORIZED",
        )
        .body(good_create.clone())
        .without("authorization"),
        refusal(
            "create with wrong secret",
            "POST",
            "/deposit/create",
            401,
            "UNAUTHORIZED",
        )
        .body(good_create.clone())
        .header("authorization", "Bearer not-the-secret"),
        refusal(
            "create malformed JSON",
            "POST",
            "/deposit/create",
            400,
            "INVALID_JSON",
        )
        .body("{\"userId\":"),
        refusal(
            "create amount as string",
            "POST",
            "/deposit/create",
            400,
            "INVALID_AMOUNT",
        )
        .body(r#"{"userId":"u","amount":"5000"}"#),
        refusal(
            "create userId of wrong type",
            "POST",
            "/deposit/create",
            400,
            "INVALID_USER_ID",
        )
        .body(r#"{"userId":true,"amount":5000}"#),
        refusal(
            "create amount too small",
            "POST",
            "/deposit/create",
            400,
            "AMOUNT_OUT_OF_RANGE",
        )
        .body(r#"{"userId":"u","amount":999}"#),
        refusal(
            "create amount too large",
            "POST",
            "/deposit/create",
            400,
            "AMOUNT_OUT_OF_RANGE",
        )
        .body(r#"{"userId":"u","amount":100000001}"#),
        refusal(
            "create oversize body",
            "POST",
            "/deposit/create",
            413,
            "BODY_TOO_LARGE",
        )
        .body(format!(
            r#"{{"userId":"u","amount":5000,"pad":"{}"}}"#,
            "x".repeat(70 * 1024)
        )),
        refusal(
            "create wrong method",
            "GET",
            "/deposit/create",
            405,
            "METHOD_NOT_ALLOWED",
        ),
        refusal(
            "create wrong content type",
            "POST",
            "/deposit/create",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        )
        .body(good_create.clone())
        .header("content-type", "text/plain"),
        refusal(
            "callback without auth",
            "POST",
            callback,
            401,
            "UNAUTHORIZED",
        )
        .body(paid.clone())
        .signed(SECRET)
        .header("x-timestamp", &fresh)
        .without("authorization"),
        refusal(
            "callback bad signature",
            "POST",
            callback,
            401,
            "INVALID_SIGNATURE",
        )
        .body(paid.clone())
        .header("x-signature", &"ab".repeat(32))
        .header("x-timestamp", &fresh),
        refusal(
            "callback signed with another secret",
            "POST",
            callback,
            401,
            "INVALID_SIGNATURE",
        )
        .body(paid.clone())
        .signed("someone-else")
        .header("x-timestamp", &fresh),
        refusal(
            "callback signature over other bytes",
            "POST",
            callback,
            401,
            "INVALID_SIGNATURE",
        )
        .body(paid.clone())
        .header(
            "x-signature",
            &crate::support::sign(SECRET, paid_body(&id, &reference, 5001).as_bytes()),
        )
        .header("x-timestamp", &fresh),
        refusal(
            "callback missing signature",
            "POST",
            callback,
            401,
            "INVALID_SIGNATURE",
        )
        .body(paid.clone())
        .header("x-timestamp", &fresh),
        refusal(
            "callback stale timestamp",
            "POST",
            callback,
            401,
            "INVALID_TIMESTAMP",
        )
        .body(paid.clone())
        .signed(SECRET)
        .header("x-timestamp", &stale),
        refusal(
            "callback future timestamp",
            "POST",
            callback,
            401,
            "INVALID_TIMESTAMP",
        )
        .body(paid.clone())
        .signed(SECRET)
        .header("x-timestamp", &future),
        refusal(
            "callback missing timestamp",
            "POST",
            callback,
            401,
            "INVALID_TIMESTAMP",
        )
        .body(paid.clone())
        .signed(SECRET),
        refusal(
            "callback reused nonce",
            "POST",
            callback,
            409,
            "NONCE_REUSED",
        )
        .body(paid.clone())
        .signed(SECRET)
        .header("x-timestamp", &fresh)
        .header("x-nonce", "nonce-1"),
        refusal(
            "callback malformed JSON",
            "POST",
            callback,
            400,
            "INVALID_JSON",
        )
        .body("{oops")
        .signed(SECRET)
        .header("x-timestamp", &fresh),
        refusal(
            "callback wrong types",
            "POST",
            callback,
            400,
            "INVALID_CALLBACK",
        )
        .body(json!({"orderId": id, "status": "PAID", "duitkuData": {"amount": true}}).to_string())
        .signed(SECRET)
        .header("x-timestamp", &fresh),
        refusal(
            "callback unknown deposit",
            "POST",
            callback,
            404,
            "DEPOSIT_NOT_FOUND",
        )
        .body(paid_body("DEP0000000000000000", "NOPE", 5000))
        .signed(SECRET)
        .header("x-timestamp", &fresh),
        refusal("callback oversize", "POST", callback, 413, "BODY_TOO_LARGE")
            .body(vec![b' '; 65 * 1024 + 1])
            .signed(SECRET)
            .header("x-timestamp", &fresh),
        refusal(
            "callback wrong method",
            "PUT",
            callback,
            405,
            "METHOD_NOT_ALLOWED",
        ),
        refusal(
            "status unknown deposit",
            "GET",
            "/deposit/status?depositId=DEP0000000000000000",
            404,
            "DEPOSIT_NOT_FOUND",
        ),
        refusal(
            "status without auth",
            "GET",
            &format!("/deposit/status?depositId={id}"),
            401,
            "UNAUTHORIZED",
        )
        .without("authorization"),
        refusal(
            "status bad id",
            "GET",
            "/deposit/status?depositId=%3Cscript%3E",
            400,
            "INVALID_DEPOSIT_ID",
        ),
        refusal(
            "sweep without auth",
            "POST",
            "/internal/credit-retry",
            401,
            "UNAUTHORIZED",
        )
        .without("authorization"),
    ];

    let before = app.stores.snapshot();
    let pg_calls = app.pg.received().len();
    for case in cases {
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let reply = app
            .http
            .send(case.method, &case.path, &headers, case.body.clone())
            .await;
        assert_eq!(reply.status, case.status, "{}: {}", case.name, reply.json());
        assert_eq!(reply.json()["ok"], false, "{}", case.name);
        assert_eq!(
            reply.json()["error"],
            case.code,
            "{}: {}",
            case.name,
            reply.json()
        );
        assert!(
            reply.json()["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            case.name
        );
        assert_eq!(
            app.stores.snapshot(),
            before,
            "{} changed the store",
            case.name
        );
    }
    assert_eq!(
        app.pg.received().len(),
        pg_calls,
        "no refused create reached the PG"
    );
    assert!(app.bot.received().is_empty());

    let unrouted = app
        .http
        .send("GET", "/nothing-here", &[], Bytes::new())
        .await;
    assert_eq!(
        (unrouted.status, unrouted.body.len()),
        (404, 0),
        "Spin's own empty 404"
    );
}

crate::on_both_backends!(bad_requests_are_refused_and_change_nothing);
