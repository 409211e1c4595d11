//! Spin component serving `GET /openapi.json`: the repository's `openapi.json`, embedded at
//! build time without its indentation. It is granted no store, no outbound HTTP and no variable.
#![allow(
    unsafe_code,
    reason = "http_component! expands to the unsafe export glue"
)]

use topup_core::http::{Request, Response};
use topup_core::platform::Platform;
use topup_spin::{NoHttp, NoStore};

/// The OpenAPI 3.1 document of the app, without its indentation (see component-build.rs).
const DOCUMENT: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

fn serve_document(request: &Request, _: &Platform) -> Response {
    topup_core::routes::openapi::handle(request, DOCUMENT)
}

topup_spin::http_component!(NoStore, NoStore, NoHttp, serve_document);
