//! The WASIp2 entry (spin-sdk 5.2, `wasi:http/incoming-handler@0.2.0`): one instance per
//! request on every Spin and wasmtime host.

use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use spin_sdk::wit::wasi::http0_2_0::types::Method;
use topup_core::http::{Request, Response, MAX_BODY_BYTES};
use topup_core::platform::HttpClient;

use crate::{Route, StoreGrant};

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
    write_response(
        response_out,
        crate::run::<Records, Claims, Http>(&request, route),
    );
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
    // Always the exact length (see p3.rs): never chunked. 204 and 304 carry none by HTTP's rules.
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
        let _ = crate::write_all(&stream, &response.body);
    }
    let _ = OutgoingBody::finish(body, None);
}
