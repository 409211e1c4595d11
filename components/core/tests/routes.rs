//! Route-level behaviour of the core, natively, with in-memory stores and scripted upstreams.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use topup_core::config::Secret;
use topup_core::http::{Request, Response};
use topup_core::platform::{OutboundRequest, OutboundResponse, TransportError};
use topup_core::routes;
use topup_core::signature::{sign, verify_signature};
use topup_core::testing::TestPlatform;

const SECRET: &str = "test-secret";

fn ok_json(body: Value) -> Result<OutboundResponse, TransportError> {
    Ok(OutboundResponse {
        status: 200,
        body: body.to_string().into_bytes(),
    })
}

/// PG answers with a reference derived from the order id; the bot accepts.
fn happy_upstreams(request: &OutboundRequest) -> Result<OutboundResponse, TransportError> {
    if request.url.starts_with("http://pg.test") {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let order = body["orderId"].as_str().unwrap();
        ok_json(
            json!({"reference": format!("REF-{order}"), "paymentUrl": format!("https://pay.test/{order}")}),
        )
    } else {
        ok_json(json!({"ok": true}))
    }
}

fn platform() -> TestPlatform {
    let p = TestPlatform::new();
    p.http.set_handler(happy_upstreams);
    p
}

fn authed(method: &str, path: &str) -> Request {
    Request::new(method, path).with_header("authorization", &format!("Bearer {SECRET}"))
}

fn create_request(body: Value) -> Request {
    authed("POST", "/deposit/create")
        .with_header("content-type", "application/json")
        .with_body(body.to_string())
}

fn create(p: &TestPlatform, body: Value) -> Response {
    routes::create::handle(&create_request(body), &p.platform())
}

fn signed_callback(body: &str) -> Request {
    authed("POST", "/internal/payment-callback")
        .with_header("content-type", "application/json")
        .with_header("x-signature", &sign(&Secret::new(SECRET), body.as_bytes()))
        .with_body(body)
}

fn paid_body(id: &str, amount: u64) -> String {
    json!({"orderId": id, "reference": format!("REF-{id}"), "status": "PAID", "resultCode": "00",
           "duitkuData": {"merchantOrderId": id, "amount": amount.to_string(), "paymentMethod": "VC"}})
    .to_string()
}

fn failed_body(id: &str) -> String {
    json!({"orderId": id, "reference": format!("REF-{id}"), "status": "FAILED", "resultCode": "02"})
        .to_string()
}

fn callback(p: &TestPlatform, body: &str) -> Response {
    routes::callback::handle(&signed_callback(body), &p.platform())
}

fn status(p: &TestPlatform, query: &str) -> Response {
    routes::status::handle(
        &authed("GET", &format!("/deposit/status?{query}")),
        &p.platform(),
    )
}

fn view(p: &TestPlatform, id: &str) -> Value {
    view_by(p, &format!("depositId={id}"))
}

fn view_by(p: &TestPlatform, query: &str) -> Value {
    let response = status(p, query);
    assert_eq!(response.status, 200, "{}", response.json_body());
    response.json_body()
}

fn sweep(p: &TestPlatform) -> Value {
    let response =
        routes::credit_retry::handle(&authed("POST", "/internal/credit-retry"), &p.platform());
    assert_eq!(response.status, 200, "{}", response.json_body());
    response.json_body()
}

fn bot_requests(p: &TestPlatform) -> Vec<OutboundRequest> {
    p.http.requests_to("bot.test")
}

fn new_deposit(p: &TestPlatform, id: &str, amount: u64) {
    let response = create(
        p,
        json!({"userId": "u1", "amount": amount, "depositId": id}),
    );
    assert_eq!(response.status, 200, "{}", response.json_body());
}

fn set_bot(p: &TestPlatform, status: u16) {
    p.http.set_handler(move |request| {
        if request.url.starts_with("http://bot.test") {
            Ok(OutboundResponse {
                status,
                body: b"{}".to_vec(),
            })
        } else {
            happy_upstreams(request)
        }
    });
}

type Snapshot = std::collections::BTreeMap<String, Vec<u8>>;

/// Both stores' contents.
fn store_snapshot(p: &TestPlatform) -> (Snapshot, Snapshot) {
    (p.records.snapshot(), p.claims.snapshot())
}

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

#[test]
fn paid_flow_credits_once_with_at_most_four_writes() {
    let p = platform();
    new_deposit(&p, "D1", 50000);
    let response = callback(&p, &paid_body("D1", 50000));
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"OK"[..])
    );

    let v = view(&p, "D1");
    assert_eq!(v["status"], "PAID");
    assert_eq!(v["credited"], true);
    assert_eq!(v["callbackReceived"], true);
    assert_eq!(v["creditResult"], json!({"ok": true}));
    assert_eq!(v["paymentMethod"], "VC");
    assert!(v["creditedAt"].as_u64().is_some());

    let bot = bot_requests(&p);
    assert_eq!(bot.len(), 1);
    let credit = &bot[0];
    assert_eq!(credit.url, "http://bot.test/internal/deposit-callback");
    assert!(credit
        .headers
        .contains(&("idempotency-key".into(), "D1".into())));
    let sig = &credit
        .headers
        .iter()
        .find(|(k, _)| k == "x-signature")
        .unwrap()
        .1;
    assert!(verify_signature([&Secret::new(SECRET)], &credit.body, sig));
    let sent: Value = serde_json::from_slice(&credit.body).unwrap();
    assert_eq!(sent["depositId"], "D1");
    assert_eq!(sent["amount"], 50000);
    assert_eq!(sent["status"], "PAID");

    let writes = p.records.write_ops() + p.claims.write_ops();
    assert!(writes <= 4, "a paid flow took {writes} store writes");

    // Duplicates change nothing and credit nothing.
    let snapshot = store_snapshot(&p);
    for _ in 0..3 {
        assert_eq!(callback(&p, &paid_body("D1", 50000)).status, 200);
    }
    assert_eq!(bot_requests(&p).len(), 1);
    assert_eq!(store_snapshot(&p).0, snapshot.0);
}

#[test]
fn concurrent_duplicate_callbacks_credit_exactly_once() {
    let p = Arc::new(platform());
    new_deposit(&p, "D1", 50000);
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || callback(&p, &paid_body("D1", 50000)).status)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert_eq!(bot_requests(&p).len(), 1);
    assert_eq!(view(&p, "D1")["credited"], true);
}

#[test]
fn failed_then_paid_is_credited_and_failed_after_paid_is_ignored() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    assert_eq!(callback(&p, &failed_body("D1")).status, 200);
    let v = view(&p, "D1");
    assert_eq!(
        (v["status"].clone(), v["callbackReceived"].clone()),
        (json!("FAILED"), json!(true))
    );
    let writes = p.records.write_ops();
    assert_eq!(callback(&p, &failed_body("D1")).status, 200);
    assert_eq!(
        p.records.write_ops(),
        writes,
        "a repeated FAILED writes nothing"
    );

    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    assert_eq!(view(&p, "D1")["status"], "PAID");
    assert_eq!(bot_requests(&p).len(), 1);

    assert_eq!(callback(&p, &failed_body("D1")).status, 200);
    let v = view(&p, "D1");
    assert_eq!(v["status"], "PAID");
    assert_eq!(v["credited"], true);
    assert_eq!(v["ignoredEvents"][0]["status"], "FAILED");
    assert_eq!(bot_requests(&p).len(), 1);
}

#[test]
fn amount_mismatch_is_not_credited_and_says_why() {
    let p = platform();
    new_deposit(&p, "D1", 50000);
    assert_eq!(callback(&p, &paid_body("D1", 40000)).status, 200);
    let v = view(&p, "D1");
    assert_eq!(v["status"], "PENDING");
    assert_eq!(v["credited"], false);
    assert_eq!(v["review"]["reason"], "AMOUNT_MISMATCH");
    assert_eq!(v["creditResult"]["error"], "AMOUNT_MISMATCH");
    assert_eq!(v["creditResult"]["detail"]["receivedAmount"], "40000");
    assert!(bot_requests(&p).is_empty());
    assert!(
        p.claims.keys().is_empty(),
        "a mismatch must not take the payment claim"
    );

    assert_eq!(callback(&p, &paid_body("D1", 50000)).status, 200);
    let v = view(&p, "D1");
    assert_eq!(
        (v["status"].clone(), v["credited"].clone()),
        (json!("PAID"), json!(true))
    );
}

#[test]
fn callback_refusals_change_nothing() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let body = paid_body("D1", 5000);
    let other_secret = sign(&Secret::new("wrong"), body.as_bytes());
    let over_other_bytes = sign(&Secret::new(SECRET), paid_body("D1", 5001).as_bytes());
    let cases: Vec<(Request, u16, &str)> = vec![
        (
            signed_callback(&body).with_header("x-signature", "00"),
            400,
            "INVALID_HEADER",
        ),
        (
            {
                let mut r = signed_callback(&body);
                r.headers.retain(|(k, _)| k != "x-signature");
                r
            },
            401,
            "INVALID_SIGNATURE",
        ),
        (
            {
                let mut r = signed_callback(&body);
                r.headers.retain(|(k, _)| k != "x-signature");
                r.with_header("x-signature", &other_secret)
            },
            401,
            "INVALID_SIGNATURE",
        ),
        (
            {
                let mut r = signed_callback(&body);
                r.headers.retain(|(k, _)| k != "x-signature");
                r.with_header("x-signature", &over_other_bytes)
            },
            401,
            "INVALID_SIGNATURE",
        ),
        (signed_callback("{not json"), 400, "INVALID_JSON"),
        (
            signed_callback(r#"{"orderId":"D1","status":"PAID"}"#),
            400,
            "INVALID_CALLBACK",
        ),
        (
            signed_callback(&paid_body("NOPE", 5000)),
            404,
            "DEPOSIT_NOT_FOUND",
        ),
        (
            signed_callback(
                &json!({"orderId":"D1","reference":"REF-OTHER","status":"FAILED"}).to_string(),
            ),
            409,
            "REFERENCE_MISMATCH",
        ),
        (
            signed_callback(&body).with_header("x-nonce", "bad nonce"),
            400,
            "INVALID_NONCE",
        ),
    ];
    let before = store_snapshot(&p);
    for (request, code, error) in cases {
        let response = routes::callback::handle(&request, &p.platform());
        assert_eq!(response.status, code, "{error}: {}", response.json_body());
        assert_eq!(response.json_body()["error"], error);
        assert_eq!(store_snapshot(&p), before, "{error} changed the store");
    }
    assert!(bot_requests(&p).is_empty());
}

#[test]
fn nonce_is_single_use_and_not_burned_by_refused_requests() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let unknown = signed_callback(&failed_body("NOPE")).with_header("x-nonce", "n-1");
    assert_eq!(
        routes::callback::handle(&unknown, &p.platform()).status,
        404
    );
    let first = signed_callback(&failed_body("D1")).with_header("x-nonce", "n-1");
    assert_eq!(routes::callback::handle(&first, &p.platform()).status, 200);
    let replay = routes::callback::handle(&first, &p.platform());
    assert_eq!(
        (replay.status, replay.json_body()["error"].clone()),
        (409, json!("NONCE_REUSED"))
    );
}

#[test]
fn timestamps_are_checked_when_enforced() {
    let mut p = platform();
    p.variables = p.variables.clone().with("enforce_timestamp", "true");
    new_deposit(&p, "D1", 5000);
    let now = 1_700_000_000_000u64;
    for (ts, expected) in [
        (None, 401),
        (Some(now - 301_000), 401),
        (Some(now + 301_000), 401),
        (Some(now - 1_000), 200),
    ] {
        let mut request = signed_callback(&failed_body("D1"));
        if let Some(ts) = ts {
            request = request.with_header("x-timestamp", &ts.to_string());
        }
        let response = routes::callback::handle(&request, &p.platform());
        assert_eq!(
            response.status,
            expected,
            "{ts:?}: {}",
            response.json_body()
        );
    }
}

#[test]
fn bot_down_keeps_paid_and_the_sweep_credits_later() {
    let p = platform();
    set_bot(&p, 503);
    new_deposit(&p, "D1", 5000);
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    let v = view(&p, "D1");
    assert_eq!(
        (v["status"].clone(), v["credited"].clone()),
        (json!("PAID"), json!(false))
    );
    assert_eq!(v["creditResult"]["error"], "BOT_HTTP_ERROR");
    assert_eq!(v["creditResult"]["detail"]["status"], 503);
    let inline = bot_requests(&p).len();
    assert!((1..=3).contains(&inline), "{inline} inline attempts");

    // Not due yet: nothing is sent.
    let report = sweep(&p);
    assert_eq!(
        (report["attempted"].clone(), report["remaining"].clone()),
        (json!(0), json!(1))
    );

    set_bot(&p, 200);
    p.clock.advance(Duration::from_secs(61));
    let report = sweep(&p);
    assert_eq!(report["attempted"], 1);
    assert_eq!(report["credited"], 1);
    assert_eq!(report["remaining"], 0);
    assert_eq!(view(&p, "D1")["credited"], true);
    let bot = bot_requests(&p);
    assert_eq!(bot.len(), inline + 1);
    assert!(
        bot.iter().all(|r| r.body == bot[0].body),
        "every resend carries the same body"
    );

    // The next sweep cleans the finished claim; a late duplicate then credits nothing.
    let report = sweep(&p);
    assert!(report["cleaned"].as_u64().unwrap() >= 1);
    assert!(p.claims.keys().is_empty(), "{:?}", p.claims.keys());
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    assert_eq!(bot_requests(&p).len(), inline + 1);
}

#[test]
fn retries_back_off_and_exhaust() {
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("credit_retry_schedule", "10,20")
        .with("credit_max_retries", "3");
    set_bot(&p, 500);
    new_deposit(&p, "D1", 5000);
    callback(&p, &paid_body("D1", 5000));
    let mut attempts = 0;
    for step in [10, 20, 20] {
        p.clock.advance(Duration::from_secs(step));
        attempts += sweep(&p)["attempted"].as_u64().unwrap();
    }
    assert_eq!(attempts, 3);
    let v = view(&p, "D1");
    assert_eq!(v["creditExhausted"], true);
    p.clock.advance(Duration::from_secs(3600));
    let report = sweep(&p);
    assert_eq!(
        (report["attempted"].clone(), report["exhausted"].clone()),
        (json!(0), json!(1))
    );

    // An operator retries by hand once the bot is back.
    set_bot(&p, 200);
    let manual = routes::retry_credit::handle(
        &authed("POST", "/deposit/retry-credit?depositId=D1"),
        &p.platform(),
    );
    assert_eq!(manual.status, 200, "{}", manual.json_body());
    assert_eq!(manual.json_body()["credited"], true);
    assert_eq!(view(&p, "D1")["credited"], true);
}

#[test]
fn manual_retry_answers() {
    let p = platform();
    let retry = |id: &str| {
        routes::retry_credit::handle(
            &authed("POST", &format!("/deposit/retry-credit?depositId={id}")),
            &p.platform(),
        )
    };
    assert_eq!(retry("NOPE").status, 404);
    assert_eq!(retry("bad id").status, 400);
    new_deposit(&p, "D1", 5000);
    let response = retry("D1");
    assert_eq!(
        (response.status, response.json_body()["error"].clone()),
        (409, json!("NOT_PAID"))
    );

    set_bot(&p, 502);
    callback(&p, &paid_body("D1", 5000));
    let response = retry("D1");
    assert_eq!(
        (response.status, response.json_body()["error"].clone()),
        (502, json!("CREDIT_FAILED"))
    );
    set_bot(&p, 200);
    assert_eq!(retry("D1").json_body()["credited"], true);
    let again = retry("D1").json_body();
    assert_eq!(again["alreadyCredited"], true);
}

#[test]
fn a_credit_whose_result_was_never_stored_is_resent_after_its_lease() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    // The bot accepts, then the store dies before the result is written (a crash stand-in).
    let switch = p.records.failure_switch();
    p.http.set_handler(move |request| {
        if request.url.starts_with("http://bot.test") {
            switch.fail("disk gone");
        }
        happy_upstreams(request)
    });
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 503);
    p.records.failure_switch().heal();
    p.http.set_handler(happy_upstreams);
    assert_eq!(view(&p, "D1")["credited"], false);

    assert_eq!(sweep(&p)["attempted"], 0, "lease still held");
    p.clock.advance(Duration::from_secs(31));
    assert_eq!(sweep(&p)["credited"], 1);
    let bot = bot_requests(&p);
    assert_eq!(bot.len(), 2);
    assert_eq!(bot[0].body, bot[1].body);
    assert!(bot[1]
        .headers
        .contains(&("idempotency-key".into(), "D1".into())));
}

#[test]
fn an_orphaned_payment_claim_is_recovered_by_the_sweep() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    // A callback handler that died right after winning the claim.
    use topup_core::platform::KeyValue;
    p.claims.increment("paid:D1", 1).unwrap();
    assert_eq!(sweep(&p)["attempted"], 0);
    p.clock.advance(Duration::from_secs(10));
    assert_eq!(sweep(&p)["attempted"], 0, "not before a full lease");
    p.clock.advance(Duration::from_secs(25));
    let report = sweep(&p);
    assert_eq!(report["credited"], 1, "{report}");
    let v = view(&p, "D1");
    assert_eq!(
        (v["status"].clone(), v["credited"].clone()),
        (json!("PAID"), json!(true))
    );
    // The gateway's resend of the lost callback is now a duplicate.
    callback(&p, &paid_body("D1", 5000));
    assert_eq!(bot_requests(&p).len(), 1);
}

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
fn expired_deposits_read_as_missing() {
    let mut p = platform();
    p.variables = p.variables.clone().with("deposit_ttl_days", "1");
    new_deposit(&p, "D1", 5000);
    p.clock.advance(Duration::from_secs(86_400));
    assert_eq!(status(&p, "depositId=D1").status, 404);
    assert!(p.records.keys().is_empty());
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 404);
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
    assert_eq!(p.records.write_ops(), 0);

    p.records.failure_switch().fail("redis down");
    let response = routes::health::handle(&Request::new("GET", "/health"), &p.platform());
    assert_eq!(
        (response.status, response.json_body()["ok"].clone()),
        (503, json!(false))
    );

    let mut p = platform();
    p.variables = p.variables.clone().with("max_amount", "lots");
    let response = routes::health::handle(&Request::new("GET", "/health"), &p.platform());
    assert_eq!(response.status, 500);
    assert_eq!(response.json_body()["detail"]["variable"], "max_amount");
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

/// A store that runs `hook` once, just before the first operation matching `trigger`:
/// a deterministic stand-in for another instance acting at that exact moment.
struct Interleaved<'a> {
    inner: &'a dyn topup_core::platform::KeyValue,
    trigger: (&'static str, &'static str),
    hook: std::cell::RefCell<Option<Box<dyn FnOnce() + 'a>>>,
}

impl Interleaved<'_> {
    fn fire(&self, op: &str, key: &str) {
        if (op, key) == self.trigger {
            if let Some(hook) = self.hook.borrow_mut().take() {
                hook();
            }
        }
    }
}

impl topup_core::platform::KeyValue for Interleaved<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, topup_core::platform::StoreError> {
        self.fire("get", key);
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), topup_core::platform::StoreError> {
        self.fire("set", key);
        self.inner.set(key, value)
    }
    fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
    ) -> Result<(), topup_core::platform::StoreError> {
        if let Some((key, _)) = entries.first() {
            self.fire("set_many", key);
        }
        self.inner.set_many(entries)
    }
    fn delete(&self, key: &str) -> Result<(), topup_core::platform::StoreError> {
        self.inner.delete(key)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), topup_core::platform::StoreError> {
        self.inner.delete_many(keys)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, topup_core::platform::StoreError> {
        self.fire("increment", key);
        self.inner.increment(key, delta)
    }
    fn list_keys(&self) -> Result<Vec<String>, topup_core::platform::StoreError> {
        self.inner.list_keys()
    }
}

#[test]
fn the_payment_claim_alone_stops_a_second_credit() {
    // Callback B arrives after A re-read the deposit but before A recorded the payment:
    // both pass every read; only the claim can stop B.
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let records = Interleaved {
        inner: &p.records,
        trigger: ("set", "credit:D1"),
        hook: std::cell::RefCell::new(Some(Box::new(|| {
            assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
        }))),
    };
    let platform_a = topup_core::platform::Platform {
        records: &records,
        ..p.platform()
    };
    let response = routes::callback::handle(&signed_callback(&paid_body("D1", 5000)), &platform_a);
    assert_eq!(response.status, 200);
    assert_eq!(bot_requests(&p).len(), 1);
}

#[test]
fn a_fresh_claim_after_cleanup_is_checked_against_the_record() {
    // Callback B read the deposit before A paid it; A is credited and a sweep removes the
    // claim; only then does B claim, and wins a fresh claim. B must re-read and stand down.
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let claims = Interleaved {
        inner: &p.claims,
        trigger: ("increment", "paid:D1"),
        hook: std::cell::RefCell::new(Some(Box::new(|| {
            assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
            assert!(sweep(&p)["cleaned"].as_u64().unwrap() >= 1);
        }))),
    };
    let platform_b = topup_core::platform::Platform {
        claims: &claims,
        ..p.platform()
    };
    let response = routes::callback::handle(&signed_callback(&paid_body("D1", 5000)), &platform_b);
    assert_eq!(response.status, 200);
    assert_eq!(bot_requests(&p).len(), 1);
}

#[test]
fn racing_creates_leave_two_invoices_and_the_paid_one_is_credited_once() {
    // Create B runs entirely between create A's read and A's write, so both call the PG, which
    // issues a new invoice each time. Whichever invoice the user pays is credited, once.
    let p = TestPlatform::new();
    let minted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    p.http.set_handler(move |request| {
        if request.url.starts_with("http://pg.test") {
            let n = minted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            ok_json(json!({"reference": format!("INV{n}"), "paymentUrl": format!("https://pay.test/{n}")}))
        } else {
            happy_upstreams(request)
        }
    });
    let body = json!({"userId": "u1", "amount": 5000, "depositId": "D1"});
    let records = Interleaved {
        inner: &p.records,
        trigger: ("set_many", "deposit:D1"),
        hook: std::cell::RefCell::new(Some(Box::new(|| {
            let b = create(&p, body.clone()).json_body();
            assert_eq!(b["reference"], "INV2");
        }))),
    };
    let platform_a = topup_core::platform::Platform {
        records: &records,
        ..p.platform()
    };
    let a = routes::create::handle(&create_request(body.clone()), &platform_a).json_body();
    assert_eq!(a["reference"], "INV1", "A's record is the one stored last");
    for invoice in ["INV1", "INV2"] {
        assert_eq!(
            view_by(&p, &format!("reference={invoice}"))["depositId"],
            "D1"
        );
    }

    // The user pays the invoice B showed, the one the record no longer names.
    let paid = |reference: &str| {
        json!({"orderId": "D1", "reference": reference, "status": "PAID", "resultCode": "00",
               "duitkuData": {"merchantOrderId": "D1", "amount": "5000"}})
        .to_string()
    };
    assert_eq!(callback(&p, &paid("INV2")).status, 200);
    let sent = bot_requests(&p);
    assert_eq!(sent.len(), 1);
    let credit: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(
        credit["reference"], "INV2",
        "the bot is told the invoice that was paid"
    );
    let after = view(&p, "D1");
    assert_eq!(
        (after["credited"].as_bool(), after["reference"].as_str()),
        (Some(true), Some("INV2"))
    );

    // Then the other invoice is paid too: not credited again, recorded for a refund.
    for _ in 0..2 {
        assert_eq!(callback(&p, &paid("INV1")).status, 200);
    }
    assert_eq!(bot_requests(&p).len(), 1);
    let refunds = view(&p, "D1")["refundsDue"].clone();
    assert_eq!(
        refunds,
        json!([{"reference": "INV1", "creditedReference": "INV2", "at": refunds[0]["at"]}]),
        "one refund due however often its callback is repeated"
    );
    assert!(refunds[0]["at"].as_u64().is_some(), "{refunds}");

    // However many ignored callbacks follow, the refund due stays on the record.
    let failed =
        json!({"orderId": "D1", "reference": "INV2", "status": "FAILED", "resultCode": "01"})
            .to_string();
    for _ in 0..(topup_core::deposit::MAX_IGNORED_EVENTS + 5) {
        assert_eq!(callback(&p, &failed).status, 200);
    }
    let after = view(&p, "D1");
    assert_eq!(after["refundsDue"], refunds);
    assert_eq!(
        after["ignoredEvents"].as_array().map(Vec::len),
        Some(topup_core::deposit::MAX_IGNORED_EVENTS)
    );

    // An invoice that is not this deposit's is still refused.
    let response = callback(&p, &paid("INV-OTHER"));
    assert_eq!(response.json_body()["error"], "REFERENCE_MISMATCH");
}

#[test]
fn a_backlog_of_finished_claims_is_cleaned_over_bounded_sweeps() {
    use topup_core::credit::{AttemptKind, Credit, DeliveryOutcome};
    use topup_core::envelope::Envelope;
    use topup_core::platform::KeyValue;

    let p = platform();
    let config = topup_core::testing::test_config();
    let mut credited = Credit::new_payment(1, None, None, Duration::from_secs(30));
    credited.record(
        &DeliveryOutcome::Accepted,
        1,
        AttemptKind::Inline,
        2,
        &config,
    );
    let value = Envelope::new(&credited, u64::MAX).encode();
    let entries: Vec<(String, Vec<u8>)> = (0..25_000)
        .map(|i| (format!("credit:D{i}"), value.clone()))
        .collect();
    p.records.set_many(&entries).unwrap();
    for i in 0..25_000 {
        p.claims.increment(&format!("paid:D{i}"), 1).unwrap();
    }

    let first = sweep(&p);
    assert_eq!(first["cleaned"], 20_000, "{first}");
    assert_eq!(
        (first["more"].clone(), first["remaining"].clone()),
        (json!(true), json!(5_000))
    );
    assert_eq!(p.claims.keys().len(), 5_000);

    let second = sweep(&p);
    assert_eq!(second["cleaned"], 5_000);
    assert_eq!(
        (second["more"].clone(), second["remaining"].clone()),
        (json!(false), json!(0))
    );
    assert!(p.claims.keys().is_empty());
    assert!(
        bot_requests(&p).is_empty(),
        "finished credits are never resent"
    );
}

#[test]
fn an_orphan_mark_goes_with_its_finished_claim() {
    // A sweep runs between the winner's claim and its payment record: the claim looks
    // orphaned and gets a mark. The winner then finishes normally.
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let claims = Interleaved {
        inner: &p.claims,
        trigger: ("increment", "paid:D1"),
        hook: std::cell::RefCell::new(None),
    };
    let records = Interleaved {
        inner: &p.records,
        trigger: ("set", "credit:D1"),
        hook: std::cell::RefCell::new(Some(Box::new(|| {
            assert_eq!(sweep(&p)["attempted"], 0);
        }))),
    };
    let winner = topup_core::platform::Platform {
        claims: &claims,
        records: &records,
        ..p.platform()
    };
    assert_eq!(
        routes::callback::handle(&signed_callback(&paid_body("D1", 5000)), &winner).status,
        200
    );
    assert!(p.records.keys().contains(&"orphan:D1".to_string()));

    let report = sweep(&p);
    assert_eq!(report["remaining"], 0, "{report}");
    assert!(p.claims.keys().is_empty(), "{:?}", p.claims.keys());
    assert!(
        !p.records.keys().iter().any(|k| k.starts_with("orphan:")),
        "{:?}",
        p.records.keys()
    );
    assert_eq!(bot_requests(&p).len(), 1);
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
