//! Outbound HTTP through `wasi:http/outgoing-handler` with per-request timeouts (Spin honours
//! `request-options`; the SDK's `send` passes none, which leaves Spin's 600 s default).
//! Each request's `timeout` is also an overall deadline, from its start to the end of its
//! body: the host's timeouts alone let a server that trickles its answer hold us for ever.
//! Requests of one batch are in flight together.

// wasi:http@0.2.0's outgoing handler in both builds: the p3 build's export changes nothing here.
#[cfg(not(feature = "p3"))]
use spin_sdk::wit::wasi::http0_2_0 as wasi_http;
#[cfg(feature = "p3")]
use wasi::http as wasi_http;

use topup_core::platform::{
    HttpClient, HttpMethod, OutboundRequest, OutboundResponse, TransportError, MAX_UPSTREAM_BODY,
};
use wasi::clocks::monotonic_clock::{self, Instant};
use wasi::io::poll::Pollable;
use wasi_http::outgoing_handler;
use wasi_http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};

/// Outbound HTTP of a Spin component (imports `wasi:http/outgoing-handler`).
#[derive(Default)]
pub struct SpinHttp;

/// No outbound HTTP: the component has no `allowed_outbound_hosts`.
#[derive(Default)]
pub struct NoHttp;

impl HttpClient for NoHttp {
    fn send_all(
        &self,
        requests: Vec<OutboundRequest>,
    ) -> Vec<Result<OutboundResponse, TransportError>> {
        requests
            .iter()
            .map(|_| Err(TransportError::Denied))
            .collect()
    }
}

/// A request handed to the host, and the monotonic instant by which it must be done.
struct InFlight {
    future: FutureIncomingResponse,
    deadline: Instant,
}

type Pending = Result<InFlight, TransportError>;

impl HttpClient for SpinHttp {
    fn send_all(
        &self,
        requests: Vec<OutboundRequest>,
    ) -> Vec<Result<OutboundResponse, TransportError>> {
        let pending: Vec<Pending> = requests.iter().map(start).collect();
        let mut results: Vec<Option<Result<OutboundResponse, TransportError>>> =
            pending.iter().map(|_| None).collect();
        for (slot, p) in results.iter_mut().zip(&pending) {
            if let Err(error) = p {
                *slot = Some(Err(error.clone()));
            }
        }
        loop {
            // `get` hands a response over exactly once; take each as soon as it is ready.
            let now = monotonic_clock::now();
            for (slot, p) in results.iter_mut().zip(&pending) {
                if let (None, Ok(flight)) = (&slot, p) {
                    if let Some(outcome) = flight.future.get() {
                        *slot = Some(finish(outcome, flight.deadline));
                    } else if now >= flight.deadline {
                        *slot = Some(Err(TransportError::Timeout));
                    }
                }
            }
            let open: Vec<&InFlight> = results
                .iter()
                .zip(&pending)
                .filter(|(slot, _)| slot.is_none())
                .filter_map(|(_, p)| p.as_ref().ok())
                .collect();
            let Some(earliest) = open.iter().map(|flight| flight.deadline).min() else {
                break;
            };
            let mut waiting: Vec<Pollable> = open
                .iter()
                .map(|flight| flight.future.subscribe())
                .collect();
            waiting.push(monotonic_clock::subscribe_instant(earliest));
            let refs: Vec<_> = waiting.iter().collect();
            wasi::io::poll::poll(&refs);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(TransportError::Other("response lost".into()))))
            .collect()
    }
}

fn start(request: &OutboundRequest) -> Pending {
    let timeout = u64::try_from(request.timeout.as_nanos()).unwrap_or(u64::MAX);
    let deadline = monotonic_clock::now().saturating_add(timeout);
    let (scheme, rest) = if let Some(rest) = request.url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = request.url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(TransportError::Other("URL must be http(s)".into()));
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    // Without content-length Spin sends the body chunked, which many small servers read as
    // empty (spec §4): always declare the exact length (0 for a GET, which has no body).
    let headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
        .chain([(
            "content-length".to_string(),
            request.body.len().to_string().into_bytes(),
        )])
        .collect();
    let fields =
        Fields::from_list(&headers).map_err(|e| TransportError::Other(format!("{e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let invalid = |_| TransportError::Other("invalid request line".into());
    let method = match request.method {
        HttpMethod::Post => Method::Post,
        HttpMethod::Get => Method::Get,
    };
    outgoing.set_method(&method).map_err(invalid)?;
    outgoing.set_scheme(Some(&scheme)).map_err(invalid)?;
    outgoing.set_authority(Some(authority)).map_err(invalid)?;
    outgoing.set_path_with_query(Some(path)).map_err(invalid)?;

    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(timeout));
    let _ = options.set_first_byte_timeout(Some(timeout));
    let _ = options.set_between_bytes_timeout(Some(timeout));

    let body = outgoing
        .body()
        .map_err(|_| TransportError::Other("request body unavailable".into()))?;
    // The host reads the body only once the request is handed over, so hand it over first.
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(transport_error)?;
    if let Ok(stream) = body.write() {
        let _ = crate::write_all(&stream, &request.body);
    }
    OutgoingBody::finish(body, None).map_err(transport_error)?;
    Ok(InFlight { future, deadline })
}

fn finish(
    outcome: Result<Result<IncomingResponse, ErrorCode>, ()>,
    deadline: Instant,
) -> Result<OutboundResponse, TransportError> {
    let response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => return Err(transport_error(code)),
        Err(()) => return Err(TransportError::Other("response lost".into())),
    };
    let status = response.status();
    Ok(OutboundResponse {
        status,
        body: read_body(&response, deadline)?,
    })
}

/// Reads at most [`MAX_UPSTREAM_BODY`] bytes; a body cut short by the server keeps what
/// arrived, one still arriving at `deadline` is a timeout.
fn read_body(response: &IncomingResponse, deadline: Instant) -> Result<Vec<u8>, TransportError> {
    let mut bytes = Vec::new();
    let Ok(body) = response.consume() else {
        return Ok(bytes);
    };
    let Ok(stream) = body.stream() else {
        return Ok(bytes);
    };
    // Declared after `stream`, so dropped before it (a pollable must not outlive its stream).
    let readable = stream.subscribe();
    let timer = monotonic_clock::subscribe_instant(deadline);
    while bytes.len() < MAX_UPSTREAM_BODY {
        match stream.read((MAX_UPSTREAM_BODY - bytes.len()) as u64) {
            Ok(chunk) if chunk.is_empty() => {
                if timer.ready() {
                    return Err(TransportError::Timeout);
                }
                wasi::io::poll::poll(&[&readable, &timer]);
            }
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(_) => break,
        }
    }
    Ok(bytes)
}

fn transport_error(code: ErrorCode) -> TransportError {
    match code {
        ErrorCode::HttpRequestDenied => TransportError::Denied,
        ErrorCode::ConnectionRefused => TransportError::ConnectionRefused,
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => TransportError::Timeout,
        ErrorCode::DnsError(_) | ErrorCode::DnsTimeout => {
            TransportError::Other("DNS failure".into())
        }
        // Spin (and our host) report every failed TLS handshake as `tls-protocol-error`, an
        // untrusted or misnamed certificate included: the reason names both causes.
        ErrorCode::TlsProtocolError => TransportError::Other(
            "TLS handshake failed: certificate not trusted or not valid for this host, or no common TLS protocol".into(),
        ),
        ErrorCode::TlsCertificateError => {
            TransportError::Other("TLS certificate error: the server's certificate was refused".into())
        }
        ErrorCode::TlsAlertReceived(_) => {
            TransportError::Other("TLS failure: the server sent a TLS alert".into())
        }
        ErrorCode::ConnectionTerminated | ErrorCode::HttpResponseIncomplete => {
            TransportError::Other("connection closed before the response was complete".into())
        }
        // Naming every other code would link wasi-http's large `Debug` impl into each component.
        _ => TransportError::Other("HTTP protocol error".into()),
    }
}
