//! `GET /health`: liveness, version, replay settings and a store check (a read, never a write).

use serde_json::json;

use super::route::{serve, Route};
use crate::config::{Config, Section};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::platform::Platform;

/// What this route accepts and reads.
pub const ROUTE: Route = Route {
    method: "GET",
    allow: "GET, HEAD, OPTIONS",
    auth: false,
    json_body: false,
    sections: &[Section::Replay],
    errors: &[],
};

/// Key read by the store check; it is never written.
const PROBE_KEY: &str = "health:probe";

/// Serves `/health`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, health)
}

fn health(_: &Request, platform: &Platform, config: &Config) -> Result<Response, ApiError> {
    let store = platform.records.get(PROBE_KEY);
    if let Err(error) = &store {
        eprintln!("health: store check failed: {error}");
    }
    let ok = store.is_ok();
    let body = json!({
        "ok": ok,
        "service": crate::SERVICE_NAME,
        "version": crate::VERSION,
        "timestamp": platform.clock.now_ms(),
        "replayProtection": {
            "enforceTimestamp": config.replay()?.enforce_timestamp,
            "nonceKvEnabled": true,
        },
        "store": { "ok": ok },
    });
    Ok(Response::json(if ok { 200 } else { 503 }, &body))
}
