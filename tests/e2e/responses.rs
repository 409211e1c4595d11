//! What our answers look like to a client: every response of every route, in both builds,
//! declares its exact `Content-Length` and is never chunked (Spin 4 holds a chunked WASIp3
//! answer on a keep-alive connection for ~44 ms). 204 carries neither, by HTTP's rules.

use bytes::Bytes;

use crate::support::{paid_body, Backend, Build, Reply, TestApp};

/// One request: method, path, headers, body.
type Call<'a> = (&'a str, String, &'a [(&'a str, &'a str)], Bytes);

/// Asserts `reply` is sized, not chunked.
fn assert_sized(what: &str, reply: &Reply) {
    assert_eq!(reply.header("transfer-encoding"), None, "{what}: chunked");
    if reply.status == 204 {
        assert_eq!(reply.header("content-length"), None, "{what}");
        assert!(reply.body.is_empty(), "{what}");
    } else {
        assert_eq!(
            reply.header("content-length"),
            Some(reply.body.len().to_string().as_str()),
            "{what} ({}): {:?}",
            reply.status,
            reply.headers
        );
    }
}

async fn every_answer_declares_its_length(backend: Backend) {
    let app = TestApp::start(
        backend,
        &[("allowed_origins", r#"["https://shop.example"]"#)],
    )
    .await;
    let bearer = TestApp::bearer();
    let auth = [("authorization", bearer.as_str())];
    let json = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let (id, reference) = app.new_deposit("u1", 5000).await;
    let too_large = Bytes::from(vec![b' '; 70 * 1024]);
    let requests: Vec<Call> = vec![
        ("GET", "/health".into(), &[], Bytes::new()),
        ("GET", "/openapi.json".into(), &[], Bytes::new()),
        ("GET", "/.well-known/spin/health".into(), &[], Bytes::new()),
        ("GET", "/no/such/route".into(), &[], Bytes::new()),
        (
            "POST",
            "/deposit/create".into(),
            &json,
            Bytes::from(r#"{"userId":"u2","amount":6000}"#),
        ),
        ("POST", "/deposit/create".into(), &json, Bytes::from("{")),
        ("POST", "/deposit/create".into(), &[], Bytes::new()),
        ("POST", "/deposit/create".into(), &json, too_large),
        ("GET", "/deposit/create".into(), &auth, Bytes::new()),
        (
            "OPTIONS",
            "/deposit/create".into(),
            &[
                ("origin", "https://shop.example"),
                ("access-control-request-method", "POST"),
            ],
            Bytes::new(),
        ),
        (
            "GET",
            format!("/deposit/status?depositId={id}"),
            &auth,
            Bytes::new(),
        ),
        (
            "GET",
            "/deposit/status?depositId=nope".into(),
            &auth,
            Bytes::new(),
        ),
        (
            "POST",
            format!("/deposit/retry-credit?depositId={id}"),
            &auth,
            Bytes::new(),
        ),
        ("POST", "/internal/credit-retry".into(), &auth, Bytes::new()),
        (
            "POST",
            "/internal/payment-callback".into(),
            &json,
            Bytes::from("{}"),
        ),
        ("POST", "/callback/duitku".into(), &[], Bytes::from("x=1")),
        ("POST", "/callback/midtrans".into(), &[], Bytes::from("{}")),
        ("POST", "/callback/xendit".into(), &[], Bytes::from("{}")),
        ("POST", "/callback/tripay".into(), &[], Bytes::from("{}")),
    ];
    let mut statuses = Vec::new();
    for (method, path, headers, body) in requests {
        let reply = app.http.send(method, &path, headers, body).await;
        assert_sized(&format!("{method} {path}"), &reply);
        statuses.push(reply.status);
    }
    // The signed PAID callback answers `200 OK` as text.
    let paid = app.callback(&paid_body(&id, &reference, 5000)).await;
    assert_eq!(paid.status, 200);
    assert_sized("PAID callback", &paid);
    // The set covers success, refusals, Spin's own answers and a preflight.
    for status in [200, 204, 400, 401, 404, 405, 413] {
        assert!(statuses.contains(&status), "no {status} in {statuses:?}");
    }
    println!(
        "{:?} build: {} answers sized",
        Build::current(),
        statuses.len() + 1
    );
}

crate::on_both_backends!(every_answer_declares_its_length);
