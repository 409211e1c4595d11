//! Stand-ins for the two parties outside our reach, speaking the real protocol over HTTP:
//! the Central PG (create invoice) and the bot (credit). Both check the bearer token and
//! `X-Signature` (hex HMAC-SHA256 of the raw body) themselves and record every request.
//! Like Python's `http.server` or PHP's built-in server, they need `Content-Length`: a
//! request without one (chunked) is answered 411 and never reaches the party. Each serves plain
//! HTTP/1.1, or HTTPS (`start_tls`: HTTP/2 or HTTP/1.1 as ALPN decides). The operator's
//! alert channels (a signed webhook receiver and Telegram's `sendMessage`) are in `alerts`.

mod alerts;
mod bot;
pub mod gateways;
mod pg;

pub use alerts::{
    timestamped_authentic, MockAlertReceiver, MockTelegram, ALERT_HOOK_PATH, TELEGRAM_MAX_TEXT,
};
pub use bot::{BotMode, BotState, MockBot, TRICKLE_PADDING};
pub use pg::{MockPg, PgMode, PgState};

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
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
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;

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
            None,
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

/// Serves `answer` on `addr`. A request without `Content-Length` is answered 411, except
/// under `bodiless` (a path prefix: local mode's buyer endpoint, which curl calls bodiless).
async fn serve<F, Fut>(
    addr: &str,
    answer: F,
    tls: Option<TlsServer>,
    bodiless: Option<&'static str>,
) -> Result<SocketAddr>
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
                            let exempt =
                                bodiless.is_some_and(|prefix| parts.uri.path().starts_with(prefix));
                            if !exempt && !parts.headers.contains_key(http::header::CONTENT_LENGTH)
                            {
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
