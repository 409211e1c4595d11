//! Outbound `wasi:http` as Spin does it: only to the component's `allowed_outbound_hosts`
//! (scheme included), no `host` header from the guest, connections pooled per origin, HTTPS
//! with ALPN h2/http1.1 (see [`crate::tls`]), and the request-options timeouts (TCP connect
//! inside first-byte, the TLS handshake counted against first-byte, then between bytes;
//! 600 s when unset).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{bail, Result};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::tls::Stream;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// One `allowed_outbound_hosts` entry: `scheme://host[:port]`, each part may be `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    /// Parses one entry with Spin's rules (a path is an error, a scheme is required).
    pub fn parse(entry: &str) -> Result<Self> {
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("{entry:?} does not contain a scheme (e.g., 'http://' or '*://')");
        };
        if rest.contains('/') {
            bail!("{entry:?} has a path but is not allowed to");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        if host.is_empty() {
            bail!("{entry:?} has no host");
        }
        let port = match (port, scheme) {
            (Some("*"), _) => None,
            (Some(port), _) => Some(
                port.parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("{entry:?} has an invalid port"))?,
            ),
            (None, "http") => Some(80),
            (None, "https") => Some(443),
            (None, _) => bail!("{entry:?} needs a port for scheme {scheme:?}"),
        };
        Ok(Self {
            scheme: (scheme != "*").then(|| scheme.to_ascii_lowercase()),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn permits(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host_ok = self.host == "*"
            || self.host == host
            || self
                .host
                .strip_prefix("*.")
                .is_some_and(|domain| host.ends_with(&format!(".{domain}")));
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && host_ok
            && self.port.is_none_or(|p| p == port)
    }
}

/// A component's resolved outbound allow-list.
#[derive(Debug, Clone)]
pub enum AllowedHosts {
    /// Parsed entries (empty = no outbound access).
    List(Vec<AllowedHost>),
    /// A templated entry did not parse: Spin then denies every request of the component.
    Invalid(String),
}

impl AllowedHosts {
    /// Resolves already-expanded entries. An empty one (a variable set to "") is invalid, as
    /// in Spin 3.x and 4.0, which deny the component everything then (only later Spin skips it).
    pub fn from_entries(entries: &[String]) -> Self {
        let mut hosts = Vec::new();
        for entry in entries {
            match AllowedHost::parse(entry.trim()) {
                Ok(host) => hosts.push(host),
                Err(error) => return Self::Invalid(error.to_string()),
            }
        }
        Self::List(hosts)
    }

    fn permits(&self, uri: &http::Uri) -> bool {
        let Self::List(hosts) = self else {
            return false;
        };
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let Some(host) = uri.host().map(str::to_ascii_lowercase) else {
            return false;
        };
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        hosts.iter().any(|h| h.permits(&scheme, &host, port))
    }
}

/// The connection pool shared by all instances (Spin keeps one client per process).
pub type PooledClient = Client<Connector, WasiBody>;

/// Creates the shared client; `tls` is used for every `https://` origin. A connection whose
/// TLS handshake chose `h2` speaks HTTP/2 (one multiplexed connection per origin), any other
/// HTTP/1.1.
pub fn pooled_client(tls: Arc<rustls::ClientConfig>) -> PooledClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(Connector { tls })
}

/// The limits of the connection a request may open (a pooled one is reused as it is).
#[derive(Clone, Copy)]
struct ConnectLimits {
    /// The TCP connect.
    connect: Duration,
    /// The TLS handshake. The request's first-byte timeout already covers it, as in Spin;
    /// this bounds a handshake the pool goes on with after its request gave up.
    handshake: Duration,
}

tokio::task_local! {
    static CONNECT_LIMITS: ConnectLimits;
}

/// Why a connection failed (found again in the client error's source chain).
#[derive(Debug, Clone, Copy)]
pub enum ConnectFailure {
    /// No listener, unreachable, reset.
    Refused,
    /// No connection within the connect timeout.
    Timeout,
    /// The host is not a valid TLS server name.
    InvalidName,
    /// The TLS handshake failed: an untrusted or misnamed certificate, no common protocol,
    /// an alert (the reason is logged; the guest gets `tls-protocol-error`, as from Spin).
    Tls,
    /// The TLS handshake did not finish within the first-byte timeout.
    HandshakeTimeout,
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Refused => "connection refused",
            Self::Timeout => "connect timed out",
            Self::InvalidName => "invalid TLS server name",
            Self::Tls => "TLS handshake failed",
            Self::HandshakeTimeout => "TLS handshake timed out",
        })
    }
}

impl std::error::Error for ConnectFailure {}

/// Connector honouring the per-request connect timeout: TCP, then TLS for `https://`.
#[derive(Clone)]
pub struct Connector {
    tls: Arc<rustls::ClientConfig>,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectFailure>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let limits = CONNECT_LIMITS.try_with(|l| *l).unwrap_or(ConnectLimits {
            connect: DEFAULT_TIMEOUT,
            handshake: DEFAULT_TIMEOUT,
        });
        let tls = self.tls.clone();
        Box::pin(async move {
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            // `[::1]` in a URI is `::1` to the resolver and to TLS.
            let host = uri
                .host()
                .ok_or(ConnectFailure::Refused)?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let connect = TcpStream::connect((host.as_str(), port));
            let stream = match tokio::time::timeout(limits.connect, connect).await {
                Err(_) => return Err(ConnectFailure::Timeout),
                Ok(Err(_)) => return Err(ConnectFailure::Refused),
                Ok(Ok(stream)) => stream,
            };
            let _ = stream.set_nodelay(true);
            if !https {
                return Ok(TokioIo::new(Stream::Plain(stream)));
            }
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| ConnectFailure::InvalidName)?;
            let handshake = tokio_rustls::TlsConnector::from(tls).connect(name, stream);
            match tokio::time::timeout(limits.handshake, handshake).await {
                Err(_) => Err(ConnectFailure::HandshakeTimeout),
                Ok(Err(error)) => {
                    // Spin logs it as a warning too; the guest only sees the error code.
                    eprintln!("WARN outbound: TLS handshake with {host}:{port} failed: {error}");
                    Err(ConnectFailure::Tls)
                }
                Ok(Ok(stream)) => Ok(TokioIo::new(Stream::Tls(Box::new(stream)))),
            }
        })
    }
}

/// `wasi:http` hooks of one instance.
pub struct OutboundHooks {
    /// The component's allow-list.
    pub allowed: Arc<AllowedHosts>,
    /// The shared pool.
    pub client: PooledClient,
    /// Where outbound calls are counted (per destination and outcome).
    pub metrics: Arc<crate::metrics::Metrics>,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let allowed = self.allowed.clone();
        let client = self.client.clone();
        let metrics = self.metrics.clone();
        let destination = origin(request.uri());
        let sent = self.send(allowed, client, request, options);
        Box::new(async move {
            let result = Box::into_pin(sent).await;
            metrics.outbound(&destination, &outcome(&result));
            result
        })
    }
}

/// How an outbound call ended, for the metrics: the answer's status class, or why none came.
fn outcome<B, F>(result: &Result<(http::Response<B>, F), Error>) -> String {
    match result {
        Ok((response, _)) => format!("{}xx", response.status().as_u16() / 100),
        Err(Error::HttpRequestDenied) => "denied".into(),
        Err(Error::ConnectionRefused) => "refused".into(),
        Err(Error::ConnectionTimeout | Error::ConnectionReadTimeout) => "timeout".into(),
        Err(
            Error::Tls(_)
            | Error::TlsProtocolError
            | Error::TlsCertificateError
            | Error::TlsAlertReceived { .. },
        ) => "tls_error".into(),
        Err(_) => "error".into(),
    }
}

impl OutboundHooks {
    fn send(
        &self,
        allowed: Arc<AllowedHosts>,
        client: PooledClient,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> SendFuture {
        Box::new(async move {
            if let AllowedHosts::Invalid(reason) = &*allowed {
                eprintln!("ERROR outbound: Error parsing allowed outbound hosts err={reason}");
                return Err(Error::HttpRequestDenied);
            }
            if !allowed.permits(request.uri()) {
                eprintln!(
                    "ERROR outbound: Outbound network destination not allowed: {}",
                    origin(request.uri())
                );
                return Err(Error::HttpRequestDenied);
            }
            let options = options.unwrap_or_default();
            let connect = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
            let first_byte = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);
            let between = options.between_bytes_timeout.unwrap_or(DEFAULT_TIMEOUT);

            let (mut parts, body) = request.into_parts();
            parts.headers.remove(http::header::HOST);
            let limits = ConnectLimits {
                connect,
                handshake: first_byte,
            };
            let sent = CONNECT_LIMITS.scope(
                limits,
                client.request(http::Request::from_parts(parts, body)),
            );
            let response = match tokio::time::timeout(first_byte, sent).await {
                Err(_) => return Err(Error::ConnectionReadTimeout),
                Ok(Err(error)) => return Err(classify(&error)),
                Ok(Ok(response)) => response,
            };
            let response = response.map(|body| {
                BetweenBytes {
                    inner: body,
                    timeout: between,
                    sleep: None,
                }
                .boxed_unsync()
            });
            let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

fn classify(error: &hyper_util::client::legacy::Error) -> Error {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(failure) = cause.downcast_ref::<ConnectFailure>() {
            return match failure {
                ConnectFailure::Refused => Error::ConnectionRefused,
                ConnectFailure::Timeout => Error::ConnectionTimeout,
                // What Spin answers for a host that is no TLS server name.
                ConnectFailure::InvalidName => Error::DnsError {
                    rcode: Some("invalid dns name".into()),
                    info_code: Some(0),
                },
                ConnectFailure::Tls => Error::TlsProtocolError,
                ConnectFailure::HandshakeTimeout => Error::ConnectionReadTimeout,
            };
        }
        source = cause.source();
    }
    Error::HttpProtocolError
}

/// A response body that fails when no frame arrives within `timeout`.
struct BetweenBytes {
    inner: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Error::Hyper)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `scheme://authority` of a request, as the allow-list and the metrics name a destination.
fn origin(uri: &http::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map(|a| a.as_str()).unwrap_or("self")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::from_entries(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn permits(hosts: &AllowedHosts, url: &str) -> bool {
        hosts.permits(&url.parse().unwrap())
    }

    #[test]
    fn matching_follows_spin() {
        let hosts = list(&["http://127.0.0.1:3902", "https://api.example.com"]);
        assert!(permits(&hosts, "http://127.0.0.1:3902/x"));
        assert!(!permits(&hosts, "http://127.0.0.1:3903/x"), "other port");
        assert!(
            !permits(&hosts, "http://localhost:3902/x"),
            "localhost is not 127.0.0.1"
        );
        assert!(
            !permits(&hosts, "https://127.0.0.1:3902/x"),
            "https is not http"
        );
        assert!(permits(&hosts, "https://api.example.com/v1"));
        assert!(!permits(&hosts, "http://api.example.com/v1"));

        let any_port = list(&["http://127.0.0.1:*"]);
        assert!(permits(&any_port, "http://127.0.0.1:1/"));
        let wildcard = list(&["*://*.example.com:443"]);
        assert!(permits(&wildcard, "https://a.example.com/"));
        assert!(!permits(&wildcard, "https://example.org/"));
        assert!(!permits(&list(&[]), "http://127.0.0.1:80/"));
    }

    #[test]
    fn bad_entries_deny_everything() {
        for bad in [
            "http://127.0.0.1:3903/api",
            "127.0.0.1:3903",
            "http://:80",
            "",
            " ",
        ] {
            let hosts = list(&["http://127.0.0.1:3902", bad]);
            assert!(matches!(hosts, AllowedHosts::Invalid(_)), "{bad}");
            assert!(!permits(&hosts, "http://127.0.0.1:3902/"));
        }
    }
}
