//! HTTPS outbound: the PG and the bot served over TLS by a CA made in the test and trusted
//! with `--extra-ca` (its in-process equivalent), over HTTP/2 or HTTP/1.1 as ALPN decides; a
//! certificate the host cannot verify refused with a 502 that says so; a TLS handshake that
//! does not finish counted against the request's timeout, as in Spin.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::json;
use topup_host::outbound::{pooled_client, AllowedHosts, OutboundHooks};
use topup_host::tls::{client_config, TlsOptions};
use topup_testkit::mocks::{MockBot, MockPg, Received};
use topup_testkit::tls::{Alpn, StalledTls, TestCa, TlsServer};
use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpHooks};

use crate::support::{mentions, paid_body, Backend, TempDir, TestApp, SECRET};

/// The names a loopback mock's certificate is for.
const LOOPBACK: [&str; 2] = ["127.0.0.1", "localhost"];

/// A test CA written to a PEM file (for `--extra-ca`); the directory lives as long as this.
struct TrustedCa {
    ca: TestCa,
    file: PathBuf,
    _dir: TempDir,
}

impl TrustedCa {
    fn new() -> Self {
        let dir = TempDir::new();
        let ca = TestCa::new("topup e2e test CA").expect("test CA");
        let file = dir.path().join("test-ca.pem");
        ca.write_pem(&file).expect("write CA");
        Self {
            ca,
            file,
            _dir: dir,
        }
    }

    fn server(&self, names: &[&str], alpn: Alpn) -> TlsServer {
        TlsServer::new(self.ca.leaf(names).expect("leaf"), alpn).expect("TLS server")
    }
}

async fn https_pg(tls: TlsServer) -> MockPg {
    MockPg::start_tls("127.0.0.1:0", SECRET, tls)
        .await
        .expect("HTTPS mock PG")
}

async fn https_bot(tls: TlsServer) -> MockBot {
    MockBot::start_tls("127.0.0.1:0", SECRET, tls)
        .await
        .expect("HTTPS mock bot")
}

/// Asserts a request came whole, signed and sized, over `version`.
fn assert_received(request: &Received, version: http::Version) {
    assert_eq!(request.version, version, "{:?}", request.headers);
    assert!(request.authentic, "signed body arrived whole");
    assert_eq!(
        request.header("content-length"),
        Some(request.body.len().to_string().as_str())
    );
}

async fn paid_flow_over(backend: Backend, alpn: Alpn, expected: http::Version) {
    let ca = TrustedCa::new();
    let pg = https_pg(ca.server(&LOOPBACK, alpn)).await;
    let bot = https_bot(ca.server(&LOOPBACK, alpn)).await;
    assert!(pg.url().starts_with("https://127.0.0.1:"), "{}", pg.url());
    let app = TestApp::start_with_mocks(backend, &[], pg, bot, vec![ca.file.clone()]).await;

    let (id, reference) = app.new_deposit("u1", 50000).await;
    let invoices = app.pg.received();
    assert_eq!(invoices.len(), 1);
    assert_received(&invoices[0], expected);

    let reply = app.callback(&paid_body(&id, &reference, 50000)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(app.bot.credits(&id), 1);
    let deliveries = app.bot.deliveries(&id);
    assert_eq!(deliveries.len(), 1);
    assert_received(&deliveries[0], expected);
    let view = app.view(&id).await;
    assert_eq!(
        (view["credited"].clone(), view["creditResult"].clone()),
        (json!(true), json!({"ok": true})),
        "{view}"
    );

    // A second create reuses the pooled connection (HTTP/2: the same multiplexed one).
    let (second, _) = app.new_deposit("u2", 7000).await;
    let invoices = app.pg.received();
    assert_eq!(invoices.len(), 2);
    assert_received(&invoices[1], expected);
    assert_eq!(app.view(&second).await["status"], "PENDING");
}

async fn paid_flow_over_https_h2(backend: Backend) {
    paid_flow_over(backend, Alpn::H2AndHttp11, http::Version::HTTP_2).await;
}

async fn paid_flow_over_https_http1_only(backend: Backend) {
    paid_flow_over(backend, Alpn::Http11Only, http::Version::HTTP_11).await;
}

crate::on_both_backends!(paid_flow_over_https_h2, paid_flow_over_https_http1_only);

/// `topup-host serve --extra-ca FILE`: the same flow in a child process given the CA file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topup_host_serve_trusts_the_extra_ca_file() {
    let ca = TrustedCa::new();
    let pg = https_pg(ca.server(&LOOPBACK, Alpn::H2AndHttp11)).await;
    let bot = https_bot(ca.server(&LOOPBACK, Alpn::H2AndHttp11)).await;
    let mut app =
        TestApp::start_with_mocks(Backend::Sqlite, &[], pg, bot, vec![ca.file.clone()]).await;
    app.restart_as_process().await;
    let (id, reference) = app.new_deposit("u1", 5000).await;
    let reply = app.callback(&paid_body(&id, &reference, 5000)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(app.bot.credits(&id), 1);
    assert_received(&app.bot.deliveries(&id)[0], http::Version::HTTP_2);
    assert_eq!(app.view(&id).await["credited"], true);
}

/// Asserts a 502 create whose reason names a TLS certificate failure, with nothing stored.
async fn assert_refused_tls(app: &TestApp, case: &str) {
    let reply = app.create(&json!({"userId": "u", "amount": 5000})).await;
    let body = reply.json();
    assert_eq!(reply.status, 502, "{case}: {body}");
    assert_eq!(body["message"], "Gagal membuat invoice", "{case}");
    let reason = body["detail"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("TLS") && reason.contains("certificate"),
        "{case}: the reason names the TLS certificate failure: {body}"
    );
    assert!(app.pg.received().is_empty(), "{case}: no request was sent");
    assert!(app.stores.snapshot().is_empty(), "{case}: stored something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    let trusted = TrustedCa::new();
    let stranger = TestCa::new("not trusted by the host").expect("CA");
    let tls = TlsServer::new(stranger.leaf(&LOOPBACK).expect("leaf"), Alpn::H2AndHttp11)
        .expect("TLS server");
    let pg = https_pg(tls).await;
    let bot = https_bot(trusted.server(&LOOPBACK, Alpn::H2AndHttp11)).await;
    let app =
        TestApp::start_with_mocks(Backend::Sqlite, &[], pg, bot, vec![trusted.file.clone()]).await;
    assert_refused_tls(&app, "untrusted CA").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_for_another_name_is_refused() {
    let ca = TrustedCa::new();
    let pg = https_pg(ca.server(&["pg.example.test"], Alpn::H2AndHttp11)).await;
    let bot = https_bot(ca.server(&LOOPBACK, Alpn::H2AndHttp11)).await;
    let app = TestApp::start_with_mocks(Backend::Sqlite, &[], pg, bot, vec![ca.file.clone()]).await;
    assert_refused_tls(&app, "wrong name").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_extra_ca_the_private_ca_is_not_trusted() {
    let ca = TrustedCa::new();
    let pg = https_pg(ca.server(&LOOPBACK, Alpn::H2AndHttp11)).await;
    let bot = https_bot(ca.server(&LOOPBACK, Alpn::H2AndHttp11)).await;
    let app = TestApp::start_with_mocks(Backend::Sqlite, &[], pg, bot, Vec::new()).await;
    assert_refused_tls(&app, "no --extra-ca").await;
}

/// A bot whose certificate fails: the payment is kept, the credit owed, the reason recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bot_with_a_bad_certificate_keeps_the_credit_owed() {
    let ca = TrustedCa::new();
    let pg = https_pg(ca.server(&LOOPBACK, Alpn::H2AndHttp11)).await;
    let bot = https_bot(ca.server(&["bot.example.test"], Alpn::Http11Only)).await;
    let app = TestApp::start_with_mocks(Backend::Sqlite, &[], pg, bot, vec![ca.file.clone()]).await;
    let (id, reference) = app.new_deposit("u1", 5000).await;
    let reply = app.callback(&paid_body(&id, &reference, 5000)).await;
    assert_eq!(reply.status, 200);
    assert!(app.bot.received().is_empty(), "no credit reached the bot");
    let view = app.view(&id).await;
    assert_eq!(
        (view["status"].clone(), view["credited"].clone()),
        (json!("PAID"), json!(false)),
        "{view}"
    );
    assert_eq!(view["creditResult"]["error"], "BOT_UNREACHABLE", "{view}");
    let reason = view["creditResult"]["detail"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("TLS"), "{view}");
    assert!(view["nextCreditAttemptAt"].as_u64().is_some(), "{view}");
}

/// A PG that takes the TCP connection and never answers the ClientHello: the create ends at
/// `central_pg_timeout_ms` with a 502 "timed out", and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_tls_handshake_ends_at_the_request_timeout() {
    let ca = TrustedCa::new();
    let stalled = StalledTls::start().await.expect("stalled TLS server");
    let pg = https_pg(ca.server(&LOOPBACK, Alpn::H2AndHttp11)).await;
    let bot = https_bot(ca.server(&LOOPBACK, Alpn::H2AndHttp11)).await;
    let app = TestApp::start_with_mocks(
        Backend::Sqlite,
        &[
            ("central_pg_base_url", &stalled.url()),
            ("central_pg_timeout_ms", "1000"),
        ],
        pg,
        bot,
        vec![ca.file.clone()],
    )
    .await;
    let started = Instant::now();
    let reply = app.create(&json!({"userId": "u", "amount": 5000})).await;
    let elapsed = started.elapsed();
    println!("stalled TLS handshake: create answered in {elapsed:?}");
    assert_eq!(reply.status, 502, "{}", reply.json());
    assert_eq!(reply.json()["detail"]["reason"], "timed out");
    assert!(stalled.hellos() >= 1, "the handshake was started");
    // Only against a hang: the limit is 1 s.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(app.stores.snapshot().is_empty());
    assert!(mentions(&app.stores.snapshot(), "DEP").is_empty());
}

/// The host itself, below the component: what `wasi:http` gets back for a stalled handshake
/// (the first-byte timeout's `connection-read-timeout`, not the connect timeout's
/// `connection-timeout`: as in Spin the connect timeout bounds the TCP connect alone), for an
/// untrusted certificate (`tls-protocol-error`, Spin's code), and that an `http://` allowance
/// does not let an `https://` request out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_error_codes_for_tls_failures() {
    let ca = TrustedCa::new();
    let config = client_config(&TlsOptions {
        extra_ca: vec![ca.file.clone()],
    })
    .expect("client config");
    let stalled = StalledTls::start().await.expect("stalled TLS server");
    let stranger = TestCa::new("stranger").expect("CA");
    let untrusted = https_pg(
        TlsServer::new(stranger.leaf(&LOOPBACK).expect("leaf"), Alpn::H2AndHttp11)
            .expect("TLS server"),
    )
    .await;
    let good = https_pg(ca.server(&LOOPBACK, Alpn::H2AndHttp11)).await;
    let client = pooled_client(config);
    let hooks_for = |entries: &[String]| OutboundHooks {
        allowed: Arc::new(AllowedHosts::from_entries(entries)),
        client: client.clone(),
        metrics: Arc::default(),
    };
    let mut hooks = hooks_for(&[stalled.url(), untrusted.url(), good.url()]);

    let send = |hooks: &mut OutboundHooks, url: &str, connect: Duration, first_byte: Duration| {
        let request = http::Request::post(url)
            .header("content-length", "0")
            .body(
                http_body_util::Empty::<Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("request");
        let options = RequestOptions {
            connect_timeout: Some(connect),
            first_byte_timeout: Some(first_byte),
            between_bytes_timeout: Some(first_byte),
        };
        let io: Box<dyn std::future::Future<Output = Result<(), Error>> + Send> =
            Box::new(async { Ok(()) });
        Box::into_pin(hooks.send_request(request, Some(options), io))
    };

    let stalled_result = send(
        &mut hooks,
        &format!("{}/x", stalled.url()),
        Duration::from_millis(300),
        Duration::from_millis(1_200),
    )
    .await;
    assert!(
        matches!(stalled_result, Err(Error::ConnectionReadTimeout)),
        "{:?}",
        stalled_result.err()
    );
    assert!(stalled.hellos() >= 1);

    let untrusted_result = send(
        &mut hooks,
        &format!("{}/x", untrusted.url()),
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(untrusted_result, Err(Error::TlsProtocolError)),
        "{:?}",
        untrusted_result.err()
    );

    // The good server is reached over https (its answer: 401, the request is unsigned) ...
    let good_result = send(
        &mut hooks,
        &format!("{}/x", good.url()),
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .await;
    match good_result {
        // Unsigned, so the mock refuses it: what matters is that it answered over TLS.
        Ok((response, _)) => assert_eq!(response.status(), 401),
        Err(error) => panic!("{error:?}"),
    }
    // The scheme is part of an allowance, as in Spin: an `https://` one does not let an
    // `http://` request out, and an `http://` one does not let an `https://` request out.
    let plain = good.url().replace("https://", "http://");
    let timeouts = (Duration::from_secs(5), Duration::from_secs(5));
    let denied = send(&mut hooks, &format!("{plain}/x"), timeouts.0, timeouts.1).await;
    assert!(
        matches!(denied, Err(Error::HttpRequestDenied)),
        "{:?}",
        denied.err()
    );
    let mut http_only = hooks_for(std::slice::from_ref(&plain));
    let denied = send(
        &mut http_only,
        &format!("{}/x", good.url()),
        timeouts.0,
        timeouts.1,
    )
    .await;
    assert!(
        matches!(denied, Err(Error::HttpRequestDenied)),
        "{:?}",
        denied.err()
    );
    assert_eq!(good.received().len(), 1, "only the allowed request arrived");
}
