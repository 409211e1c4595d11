//! `GET /console`: the operator console's page (static HTML, CSS and JS; nothing fetched from
//! elsewhere). The operator types the token there; the page keeps it in memory and sends it
//! in a header, so no cookie can carry it and a cross-site form cannot act.

use super::route::{serve, Route};
use crate::config::{Config, Sections};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::ids::BotId;
use crate::platform::Platform;

/// What this route accepts.
pub const ROUTE: Route = Route {
    method: "GET",
    allow: "GET, HEAD, OPTIONS",
    auth: None,
    json_body: false,
    raises_alerts: false,
    sections: Sections::of(&[]),
    errors: &[],
};

/// The page.
pub const PAGE: &str = include_str!("../../assets/console.html");

/// What the page may load and do: its own inline script and style, calls to this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// Serves `/console`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, page)
}

fn page(
    _request: &Request,
    _platform: &Platform,
    _config: &Config,
    _caller: Option<&BotId>,
) -> Result<Response, ApiError> {
    let mut response = Response::text(200, PAGE);
    response.headers.clear();
    Ok(response
        .with_header("content-type", "text/html; charset=utf-8")
        .with_header("content-security-policy", CONTENT_SECURITY_POLICY)
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "no-referrer")
        .with_header("cache-control", "no-store"))
}
