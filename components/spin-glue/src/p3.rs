//! The WASIp3 entry (spin-sdk 7, `wasi:http/handler@0.3.0`): Spin 4.1+ and `topup-host`
//! reuse the instance for later requests, so this entry keeps nothing between them.

use spin_sdk_p3::wasip3::http::types::{
    ErrorCode, Fields, Method, Request as WasiRequest, Response as WasiResponse, Trailers,
};
use spin_sdk_p3::wasip3::wit_bindgen::StreamResult;
use spin_sdk_p3::wasip3::{wit_bindgen, wit_future, wit_stream};
use topup_core::http::{Request, MAX_BODY_BYTES};
use topup_core::platform::HttpClient;

use crate::{Route, StoreGrant};

/// `fermyon:spin/variables@2.0.0`, the synchronous interface the p2 build imports too (spin-sdk
/// 7's own is async); Spin 4 still provides it.
pub(crate) mod variables {
    spin_sdk_p3::wit_bindgen::generate!({
        inline: "
            package fermyon:spin@2.0.0;
            interface variables {
                get: func(name: string) -> result<string, error>;
                variant error {
                    invalid-name(string),
                    undefined(string),
                    provider(string),
                    other(string),
                }
            }
            world topup-variables { import variables; }
        ",
        runtime_path: "spin_sdk_p3::wit_bindgen::rt",
    });
    pub(crate) use fermyon::spin::variables::{get, Error};
}

/// Serves one request with `route`, granting `Records` on label `default`, `Claims` on label
/// `claims` and outbound HTTP `Http`, and hands back its response, body of exact length.
pub async fn serve<Records, Claims, Http>(
    incoming: WasiRequest,
    route: Route,
) -> Result<WasiResponse, ErrorCode>
where
    Records: StoreGrant,
    Claims: StoreGrant,
    Http: HttpClient + Default,
{
    let request = read_request(incoming).await;
    let response = crate::run::<Records, Claims, Http>(&request, route);
    let headers = Fields::from_list(&response_headers(
        response.headers,
        response.status,
        response.body.len(),
    ))
    .map_err(|_| ErrorCode::InternalError(Some("invalid response header".into())))?;
    // No trailers: dropping the writer sends its default, `Ok(None)` (after the body, when
    // there is one).
    let (trailers_tx, trailers_rx) =
        wit_future::new::<Result<Option<Trailers>, ErrorCode>>(|| Ok(None));
    let body = (!response.body.is_empty()).then(|| {
        let (mut writer, reader) = wit_stream::new::<u8>();
        let bytes = response.body;
        // The host reads the body only after `handle` returns, so it is written by a task of
        // its own; the instance is idle again once it is done.
        wit_bindgen::spawn(async move {
            let _ = writer.write_all(bytes).await;
            drop(writer);
            drop(trailers_tx);
        });
        reader
    });
    let (outgoing, _sent) = WasiResponse::new(headers, body, trailers_rx);
    // Statuses come from the core and are always valid.
    let _ = outgoing.set_status_code(response.status);
    Ok(outgoing)
}

async fn read_request(incoming: WasiRequest) -> Request {
    let method = match incoming.get_method() {
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
    let path = incoming.get_path_with_query().unwrap_or_default();
    let mut request = request_head(&method, &path, incoming.get_headers().copy_all());
    if request.body_exceeded_limit {
        return request;
    }
    match read_body_capped(incoming).await {
        Some(body) => request.body = body,
        None => request.body_exceeded_limit = true,
    }
    request
}

/// Reads the body, giving up (`None`) as soon as it passes the limit. A broken stream ends
/// the body where it broke; the core then sees truncated JSON and answers 400.
async fn read_body_capped(incoming: WasiRequest) -> Option<Vec<u8>> {
    let (_handled, handled_rx) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
    let (mut stream, _trailers) = WasiRequest::consume_body(incoming, handled_rx);
    let mut bytes = Vec::new();
    loop {
        let (result, chunk) = stream.read(Vec::with_capacity(16 * 1024)).await;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_BODY_BYTES {
            return None;
        }
        match result {
            StreamResult::Complete(_) => {}
            StreamResult::Dropped | StreamResult::Cancelled => return Some(bytes),
        }
    }
}

/// The core request for a method, path and headers; `body_exceeded_limit` is already set
/// when the declared `Content-Length` is over the limit (then the body is not read at all).
fn request_head(method: &str, path: &str, headers: Vec<(String, Vec<u8>)>) -> Request {
    let mut request = Request::new(method, path);
    request.headers = headers
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8(value).ok()))
        .collect();
    let declared = request
        .header("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    request.body_exceeded_limit = declared.is_some_and(|len| len > MAX_BODY_BYTES as u64);
    request
}

/// A response's headers plus its exact `Content-Length`: a body of known length is never
/// sent chunked (a chunked keep-alive response costs Spin's p3 path ~44 ms). 204 and 304
/// have no body and, by HTTP's rules, no length either. The core never sets one itself.
fn response_headers(
    headers: Vec<(String, String)>,
    status: u16,
    body_len: usize,
) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    if !matches!(status, 204 | 304) {
        headers.push(("content-length".into(), body_len.to_string().into_bytes()));
    }
    headers
}
