//! Outbound HTTP through `wasi:http/outgoing-handler` with per-request timeouts (Spin honours
//! `request-options`; the SDK's `send` passes none, which leaves Spin's 600 s default).
//! Requests of one batch are in flight together.

use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use topup_core::platform::{
    HttpClient, OutboundRequest, OutboundResponse, TransportError, MAX_UPSTREAM_BODY,
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

type Pending = Result<FutureIncomingResponse, TransportError>;

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
            for (slot, p) in results.iter_mut().zip(&pending) {
                if let (None, Ok(future)) = (&slot, p) {
                    if let Some(outcome) = future.get() {
                        *slot = Some(finish(outcome));
                    }
                }
            }
            let waiting: Vec<_> = results
                .iter()
                .zip(&pending)
                .filter(|(slot, _)| slot.is_none())
                .filter_map(|(_, p)| p.as_ref().ok().map(FutureIncomingResponse::subscribe))
                .collect();
            if waiting.is_empty() {
                break;
            }
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
    // empty (spec §4): always declare the exact length.
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
    outgoing.set_method(&Method::Post).map_err(invalid)?;
    outgoing.set_scheme(Some(&scheme)).map_err(invalid)?;
    outgoing.set_authority(Some(authority)).map_err(invalid)?;
    outgoing.set_path_with_query(Some(path)).map_err(invalid)?;

    let timeout = u64::try_from(request.timeout.as_nanos()).unwrap_or(u64::MAX);
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
    Ok(future)
}

fn finish(
    outcome: Result<Result<IncomingResponse, ErrorCode>, ()>,
) -> Result<OutboundResponse, TransportError> {
    let response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => return Err(transport_error(code)),
        Err(()) => return Err(TransportError::Other("response lost".into())),
    };
    let status = response.status();
    Ok(OutboundResponse {
        status,
        body: read_body(&response),
    })
}

/// Reads at most [`MAX_UPSTREAM_BODY`] bytes; a body cut short keeps what arrived.
fn read_body(response: &IncomingResponse) -> Vec<u8> {
    let mut bytes = Vec::new();
    let Ok(body) = response.consume() else {
        return bytes;
    };
    if let Ok(stream) = body.stream() {
        while bytes.len() < MAX_UPSTREAM_BODY {
            match stream.blocking_read((MAX_UPSTREAM_BODY - bytes.len()) as u64) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(_) => break,
            }
        }
    }
    bytes
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
        ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => TransportError::Other("TLS failure".into()),
        ErrorCode::ConnectionTerminated | ErrorCode::HttpResponseIncomplete => {
            TransportError::Other("connection closed before the response was complete".into())
        }
        // Naming every other code would link wasi-http's large `Debug` impl into each component.
        _ => TransportError::Other("HTTP protocol error".into()),
    }
}
