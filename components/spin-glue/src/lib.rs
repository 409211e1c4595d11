//! Spin glue shared by every component: turns a Spin request into a core [`Request`], lends
//! the core a [`Platform`] built on Spin's interfaces, and writes the core's [`Response`].
//! Each component is one line naming its route and what it may touch, e.g.
//! `topup_spin::serve::<ReadStore, ReadStore, NoHttp>(request, out, routes::health::handle)`;
//! the grants are types, so a component links (and imports) only what it is granted.

mod http_client;
mod store;

use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use spin_sdk::wit::wasi::http0_2_0::types::Method;
use topup_core::http::{Request, Response, MAX_BODY_BYTES};
use topup_core::platform::{Clock, HttpClient, Platform, Random, VariableError, Variables};

pub use http_client::{NoHttp, SpinHttp};
pub use store::{CounterStore, Grant, NoStore, ReadStore, Store, StoreGrant};

/// A core route: `topup_core::routes::<route>::handle`.
pub type Route = fn(&Request, &Platform) -> Response;

/// Serves one request with `route`, granting `Records` on label `default`, `Claims` on label
/// `claims` and outbound HTTP `Http`, and writes its response.
pub fn serve<Records, Claims, Http>(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    route: Route,
) where
    Records: StoreGrant,
    Claims: StoreGrant,
    Http: HttpClient + Default,
{
    let request = read_request(request);
    let records = Records::open("default");
    let claims = Claims::open("claims");
    let http = Http::default();
    let platform = Platform {
        records: &records,
        claims: &claims,
        http: &http,
        clock: &SpinClock,
        random: &SpinRandom,
        variables: &SpinVariables,
    };
    write_response(response_out, route(&request, &platform));
}

fn read_request(incoming: IncomingRequest) -> Request {
    let method = match incoming.method() {
        Method::Get => "GET".to_string(),
        Method::Head => "HEAD".to_string(),
        Method::Post => "POST".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Connect => "CONNECT".to_string(),
        Method::Options => "OPTIONS".to_string(),
        Method::Trace => "TRACE".to_string(),
        Method::Patch => "PATCH".to_string(),
        // Methods are case-sensitive: an unknown one is kept as sent (and refused with 405).
        Method::Other(other) => other,
    };
    let mut request = Request::new(&method, &incoming.path_with_query().unwrap_or_default());
    request.headers = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8(value).ok()))
        .collect();
    let declared = request
        .header("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        request.body_exceeded_limit = true;
        return request;
    }
    match read_body_capped(incoming) {
        Some(body) => request.body = body,
        None => request.body_exceeded_limit = true,
    }
    request
}

/// Reads the body, giving up (`None`) as soon as it passes the limit. A broken stream ends
/// the body where it broke; the core then sees truncated JSON and answers 400.
fn read_body_capped(incoming: IncomingRequest) -> Option<Vec<u8>> {
    let Ok(body) = incoming.consume() else {
        return Some(Vec::new());
    };
    let Ok(stream) = body.stream() else {
        return Some(Vec::new());
    };
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(16 * 1024) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_BODY_BYTES {
                    return None;
                }
            }
            Err(_) => return Some(bytes),
        }
    }
}

fn write_response(response_out: ResponseOutparam, response: Response) {
    let mut headers: Vec<(String, Vec<u8>)> = response
        .headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    if !matches!(response.status, 204 | 304) {
        headers.push((
            "content-length".into(),
            response.body.len().to_string().into_bytes(),
        ));
    }
    let Ok(fields) = Fields::from_list(&headers) else {
        return;
    };
    let outgoing = OutgoingResponse::new(fields);
    // Statuses come from the core and are always valid.
    let _ = outgoing.set_status_code(response.status);
    let Ok(body) = outgoing.body() else {
        return;
    };
    ResponseOutparam::set(response_out, outgoing);
    if let Ok(stream) = body.write() {
        let _ = write_all(&stream, &response.body);
    }
    let _ = OutgoingBody::finish(body, None);
}

/// Queues `bytes` on an outgoing body stream, waiting only when the host has no room.
///
/// Not `blocking_write_and_flush`: that also waits until the host has taken the data out of
/// its buffer, a hand-off to the host's sending task on every body.
pub(crate) fn write_all(
    stream: &wasi::io::streams::OutputStream,
    mut bytes: &[u8],
) -> Result<(), wasi::io::streams::StreamError> {
    while !bytes.is_empty() {
        let room = match stream.check_write()? {
            0 => {
                stream.subscribe().block();
                continue;
            }
            room => usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len()),
        };
        stream.write(&bytes[..room])?;
        bytes = &bytes[room..];
    }
    Ok(())
}

/// Wall clock and sleeping through `wasi:clocks`.
struct SpinClock;

impl Clock for SpinClock {
    fn now_ms(&self) -> u64 {
        let now = wasi::clocks::wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
    }

    fn sleep(&self, duration: std::time::Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        wasi::clocks::monotonic_clock::subscribe_duration(nanos).block();
    }
}

/// Randomness through `wasi:random`.
struct SpinRandom;

impl Random for SpinRandom {
    fn fill(&self, buf: &mut [u8]) {
        let bytes = wasi::random::random::get_random_bytes(buf.len() as u64);
        for (slot, byte) in buf.iter_mut().zip(bytes) {
            *slot = byte;
        }
    }
}

/// Application variables through `fermyon:spin/variables`.
struct SpinVariables;

impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Result<String, VariableError> {
        spin_sdk::variables::get(name).map_err(|error| match error {
            spin_sdk::variables::Error::Undefined(_) => VariableError::Undefined,
            other => VariableError::Other(other.to_string()),
        })
    }
}
