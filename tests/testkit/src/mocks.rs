//! Stand-ins for the two parties outside our reach, speaking the real protocol over HTTP:
//! the Central PG (create invoice) and the bot (credit). Both check the bearer token and
//! `X-Signature` (hex HMAC-SHA256 of the raw body) themselves and record every request.
//! Like Python's `http.server` or PHP's built-in server, they need `Content-Length`: a
//! request without one (chunked) is answered 411 and never reaches the party. Each serves plain
//! HTTP/1.1, or HTTPS (`start_tls`: HTTP/2 or HTTP/1.1 as ALPN decides).

pub mod gateways;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::tls::TlsServer;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A request as a mock received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Bytes,
    /// Whether bearer and signature were valid.
    pub authentic: bool,
    /// The HTTP version it came over.
    pub version: http::Version,
}

impl Received {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Checks `Authorization: Bearer <secret>` and `X-Signature` over the raw body.
pub fn authentic(secret: &str, headers: &[(String, String)], body: &[u8]) -> bool {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    let signature_ok = header("x-signature")
        .and_then(|s| hex::decode(s).ok())
        .is_some_and(|given| mac.verify_slice(&given).is_ok());
    header("authorization") == Some(&format!("Bearer {secret}")) && signature_ok
}

/// A mock's response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Sent at once, with its `content-length`.
    Whole(String),
    /// Status and headers at once, then the body chunked, one byte every `every`.
    Trickle {
        /// The whole body.
        text: String,
        /// Pause before each byte.
        every: Duration,
    },
}

impl From<String> for Reply {
    fn from(text: String) -> Self {
        Self::Whole(text)
    }
}

impl From<&str> for Reply {
    fn from(text: &str) -> Self {
        Self::Whole(text.to_string())
    }
}

/// One side of the protocol a mock plays: its secret and how it answers.
pub trait Party: Send + Sync + 'static {
    /// The secret requests must be signed with.
    fn secret(&self) -> &Mutex<String>;
    /// Answers a request whose authenticity has been checked.
    fn answer(&self, received: Received) -> impl Future<Output = (u16, Reply)> + Send;
}

/// A mock party served over HTTP on loopback.
pub struct Mock<P> {
    addr: SocketAddr,
    state: Arc<P>,
    scheme: &'static str,
}

impl<P: Party> Mock<P> {
    async fn launch(addr: &str, party: P, tls: Option<TlsServer>) -> Result<Self> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(party);
        let handler = state.clone();
        let addr = serve(
            addr,
            move |mut received: Received| {
                let party = handler.clone();
                async move {
                    received.authentic =
                        authentic(&lock(party.secret()), &received.headers, &received.body);
                    party.answer(received).await
                }
            },
            tls,
        )
        .await?;
        Ok(Self {
            addr,
            state,
            scheme,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (`https://` when served over TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The secret later requests must be signed with.
    pub fn set_secret(&self, secret: &str) {
        *lock(self.state.secret()) = secret.to_string();
    }
}

/// How the mock PG answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgMode {
    /// Duitku style: `{"statusCode":"00","data":{reference,paymentUrl}}`.
    Nested,
    /// `{reference, paymentUrl}` at the top level.
    TopLevel,
    /// This status with a short body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 JSON without a reference.
    MissingFields,
    /// Answer (nested) only after this long.
    Slow(Duration),
}

/// The mock Central PG's state.
pub struct PgState {
    secret: Mutex<String>,
    mode: Mutex<PgMode>,
    received: Mutex<Vec<Received>>,
    counter: AtomicU64,
}

/// The mock Central PG.
pub type MockPg = Mock<PgState>;

impl MockPg {
    /// Listens on `addr` (use port 0 for a free port).
    pub async fn start(addr: &str, secret: &str) -> Result<Self> {
        Self::start_with(addr, secret, None).await
    }

    /// The same, serving HTTPS.
    pub async fn start_tls(addr: &str, secret: &str, tls: TlsServer) -> Result<Self> {
        Self::start_with(addr, secret, Some(tls)).await
    }

    async fn start_with(addr: &str, secret: &str, tls: Option<TlsServer>) -> Result<Self> {
        Self::launch(
            addr,
            PgState {
                secret: Mutex::new(secret.to_string()),
                mode: Mutex::new(PgMode::Nested),
                received: Mutex::new(Vec::new()),
                counter: AtomicU64::new(0),
            },
            tls,
        )
        .await
    }

    /// Changes how later requests are answered.
    pub fn set_mode(&self, mode: PgMode) {
        *lock(&self.state.mode) = mode;
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }
}

impl Party for PgState {
    fn secret(&self) -> &Mutex<String> {
        &self.secret
    }

    async fn answer(&self, received: Received) -> (u16, Reply) {
        let (status, text) = self.invoice(received).await;
        (status, Reply::Whole(text))
    }
}

impl PgState {
    async fn invoice(&self, received: Received) -> (u16, String) {
        let authentic = received.authentic;
        let order = received.json()["orderId"]
            .as_str()
            .unwrap_or("")
            .to_string();
        lock(&self.received).push(received);
        if !authentic {
            return (401, r#"{"error":"bad signature"}"#.into());
        }
        let mode = lock(&self.mode).clone();
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let reference = format!("DS{n:06}{order}");
        let payment_url = format!("https://pay.mock/redirect_checkout?reference={reference}");
        match mode {
            PgMode::Nested => (200, nested(&reference, &payment_url)),
            PgMode::TopLevel => (
                200,
                json!({"reference": reference, "paymentUrl": payment_url}).to_string(),
            ),
            PgMode::Status(status) => (status, "upstream unhappy".into()),
            PgMode::Garbage => (200, "<html>gateway maintenance</html>".into()),
            PgMode::MissingFields => (200, json!({"statusCode": "00", "data": {}}).to_string()),
            PgMode::Slow(delay) => {
                tokio::time::sleep(delay).await;
                (200, nested(&reference, &payment_url))
            }
        }
    }
}

fn nested(reference: &str, payment_url: &str) -> String {
    json!({"statusCode": "00", "statusMessage": "SUCCESS",
           "data": {"reference": reference, "paymentUrl": payment_url}})
    .to_string()
}

/// How the mock bot answers credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotMode {
    /// 200 `{"ok":true}`.
    Accept,
    /// This status.
    Status(u16),
    /// Hold every request until [`MockBot::release`], then accept.
    Hang,
    /// Accept, but send the body one byte per interval (after [`TRICKLE_PADDING`] blanks),
    /// so the whole answer takes far longer than any timeout a test sets.
    Trickle(Duration),
    /// Apply the credit at once, answer only after this long: a caller that dies meanwhile
    /// leaves a credit the bot has applied and the caller never heard of.
    Slow(Duration),
}

/// Leading blanks of a trickled answer (valid JSON whitespace before `{"ok":true}`).
pub const TRICKLE_PADDING: usize = 20;

#[derive(Default)]
struct Ledger {
    received: Vec<Received>,
    /// Credits applied per deposit id (once per Idempotency-Key).
    applied: HashMap<String, u32>,
    /// Requests per deposit id the bot has finished deciding (applied, duplicate or refused).
    decided: HashMap<String, u32>,
    keys: HashMap<String, ()>,
}

/// The mock bot's state.
pub struct BotState {
    secret: Mutex<String>,
    mode: Mutex<BotMode>,
    ledger: Mutex<Ledger>,
    release: watch::Sender<u64>,
}

/// The mock bot backend: applies each credit once per `Idempotency-Key`, as a real bot must.
pub type MockBot = Mock<BotState>;

impl MockBot {
    /// Listens on `addr` (use port 0 for a free port).
    pub async fn start(addr: &str, secret: &str) -> Result<Self> {
        Self::start_with(addr, secret, None).await
    }

    /// The same, serving HTTPS.
    pub async fn start_tls(addr: &str, secret: &str, tls: TlsServer) -> Result<Self> {
        Self::start_with(addr, secret, Some(tls)).await
    }

    async fn start_with(addr: &str, secret: &str, tls: Option<TlsServer>) -> Result<Self> {
        Self::launch(
            addr,
            BotState {
                secret: Mutex::new(secret.to_string()),
                mode: Mutex::new(BotMode::Accept),
                ledger: Mutex::new(Ledger::default()),
                release: watch::channel(0).0,
            },
            tls,
        )
        .await
    }

    /// Changes how later requests are answered.
    pub fn set_mode(&self, mode: BotMode) {
        *lock(&self.state.mode) = mode;
    }

    /// Lets every held request go on.
    pub fn release(&self) {
        self.state.release.send_modify(|n| *n += 1);
    }

    /// Every credit request so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.ledger).received.clone()
    }

    /// Credit requests for one deposit.
    pub fn deliveries(&self, deposit_id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.json()["depositId"] == deposit_id)
            .collect()
    }

    /// Credits applied for one deposit.
    pub fn credits(&self, deposit_id: &str) -> u32 {
        lock(&self.state.ledger)
            .applied
            .get(deposit_id)
            .copied()
            .unwrap_or(0)
    }

    /// Requests for one deposit the bot has finished deciding (a held one counts once it is
    /// released and answered).
    pub fn decided(&self, deposit_id: &str) -> u32 {
        lock(&self.state.ledger)
            .decided
            .get(deposit_id)
            .copied()
            .unwrap_or(0)
    }

    /// Credits applied for every deposit.
    pub fn all_credits(&self) -> HashMap<String, u32> {
        lock(&self.state.ledger).applied.clone()
    }
}

impl Party for BotState {
    fn secret(&self) -> &Mutex<String> {
        &self.secret
    }

    async fn answer(&self, received: Received) -> (u16, Reply) {
        let mode = lock(&self.mode).clone();
        let deposit = received.json()["depositId"].as_str().map(str::to_string);
        let (status, text) = self.credit(received, &mode).await;
        if let Some(deposit) = deposit {
            *lock(&self.ledger).decided.entry(deposit).or_default() += 1;
        }
        match mode {
            BotMode::Trickle(every) if status == 200 => (
                status,
                Reply::Trickle {
                    text: format!("{:width$}{text}", "", width = TRICKLE_PADDING),
                    every,
                },
            ),
            _ => (status, Reply::Whole(text)),
        }
    }
}

impl BotState {
    async fn credit(&self, received: Received, mode: &BotMode) -> (u16, String) {
        let authentic = received.authentic;
        let key = received.header("idempotency-key").map(str::to_string);
        let deposit = received.json()["depositId"].as_str().map(str::to_string);
        lock(&self.ledger).received.push(received);
        if !authentic {
            return (401, r#"{"ok":false,"error":"bad signature"}"#.into());
        }
        if *mode == BotMode::Hang {
            let mut released = self.release.subscribe();
            let _ = released.changed().await;
        }
        match mode {
            BotMode::Status(status) => {
                (*status, r#"{"ok":false,"error":"bot unavailable"}"#.into())
            }
            BotMode::Accept | BotMode::Hang | BotMode::Trickle(_) | BotMode::Slow(_) => {
                let (Some(key), Some(deposit)) = (key, deposit) else {
                    return (
                        400,
                        r#"{"ok":false,"error":"missing Idempotency-Key or depositId"}"#.into(),
                    );
                };
                {
                    let mut ledger = lock(&self.ledger);
                    if ledger.keys.insert(key, ()).is_some() {
                        return (200, r#"{"ok":true,"duplicate":true}"#.into());
                    }
                    *ledger.applied.entry(deposit).or_default() += 1;
                }
                if let BotMode::Slow(delay) = mode {
                    tokio::time::sleep(*delay).await;
                }
                (200, r#"{"ok":true}"#.into())
            }
        }
    }
}

type MockBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A body that yields one byte of `rest` every `every` (each byte its own chunk).
struct TrickleBody {
    rest: Bytes,
    every: Duration,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Body for TrickleBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        if self.pause.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let every = self.every;
        self.pause
            .as_mut()
            .reset(tokio::time::Instant::now() + every);
        let byte = self.rest.split_to(1);
        Poll::Ready(Some(Ok(Frame::data(byte))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }
}

fn body(reply: Reply) -> MockBody {
    match reply {
        Reply::Whole(text) => Full::new(Bytes::from(text)).boxed(),
        Reply::Trickle { text, every } => TrickleBody {
            rest: Bytes::from(text),
            every,
            pause: Box::pin(tokio::time::sleep(every)),
        }
        .boxed(),
    }
}

/// What a server that reads only `Content-Length` bodies answers to a request without one.
fn length_required() -> hyper::Response<MockBody> {
    let text = r#"{"ok":false,"error":"LENGTH_REQUIRED","message":"Content-Length required"}"#;
    let mut response = hyper::Response::new(body(text.into()));
    *response.status_mut() = http::StatusCode::LENGTH_REQUIRED;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn serve<F, Fut>(addr: &str, answer: F, tls: Option<TlsServer>) -> Result<SocketAddr>
where
    F: Fn(Received) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = (u16, Reply)> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                        let answer = answer.clone();
                        async move {
                            let (parts, body_in) = request.into_parts();
                            let body_in = body_in
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            // Drained first, so the 411 reaches the client instead of a reset.
                            if !parts.headers.contains_key(http::header::CONTENT_LENGTH) {
                                return Ok::<_, Infallible>(length_required());
                            }
                            let headers: Vec<(String, String)> = parts
                                .headers
                                .iter()
                                .map(|(n, v)| {
                                    (n.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                                })
                                .collect();
                            let received = Received {
                                version: parts.version,
                                method: parts.method.to_string(),
                                path: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default(),
                                authentic: false,
                                headers,
                                body: body_in,
                            };
                            // Like a real server's handler, the answer runs to its end even
                            // if the caller hangs up meanwhile.
                            let (status, reply) = tokio::spawn(answer(received))
                                .await
                                .unwrap_or((500, Reply::Whole("mock failed".into())));
                            let mut response = hyper::Response::new(body(reply));
                            *response.status_mut() =
                                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                            response.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static("application/json"),
                            );
                            Ok::<_, Infallible>(response)
                        }
                    });
                let Some(tls) = tls else {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    return;
                };
                // A client that fails the handshake (it does not trust us) just goes away.
                let Ok(stream) = tls.acceptor.accept(stream).await else {
                    return;
                };
                if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                    let _ = http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                } else {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            });
        }
    });
    Ok(local)
}
