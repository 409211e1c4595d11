//! `GET /health`: liveness, version, replay settings and a store check of each label in use (a
//! read, never a write), naming the label that is down.

use serde_json::json;

use super::route::{serve, Route};
use crate::config::{Config, Section, Sections, StoreLabels};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::ids::BotId;
use crate::platform::Platform;

/// What this route accepts and reads.
pub const ROUTE: Route = Route {
    method: "GET",
    allow: "GET, HEAD, OPTIONS",
    auth: None,
    json_body: false,
    raises_alerts: false,
    sections: Sections::of(&[Section::Replay]),
    errors: &[],
};

/// Key read by the store check; it is never written.
const PROBE_KEY: &str = "health:probe";

/// Serves `/health`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, health)
}

fn health(
    _: &Request,
    platform: &Platform,
    config: &Config,
    _: Option<&BotId>,
) -> Result<Response, ApiError> {
    let mut labels = serde_json::Map::new();
    let mut ok = true;
    let stores = [platform.records, platform.claims];
    let in_use = StoreLabels::load(platform.variables)?.in_use();
    // With one label the claims are in `default`: one probe.
    for (label, store) in in_use.iter().zip(stores) {
        let probe = store.get(PROBE_KEY);
        if let Err(error) = &probe {
            eprintln!("health: store check of label {label:?} failed: {error}");
        }
        ok &= probe.is_ok();
        labels.insert((*label).into(), json!({ "ok": probe.is_ok() }));
    }
    let body = json!({
        "ok": ok,
        "service": crate::SERVICE_NAME,
        "version": crate::VERSION,
        "timestamp": platform.clock.now_ms(),
        "replayProtection": {
            "enforceTimestamp": config.replay()?.enforce_timestamp,
            "nonceKvEnabled": true,
        },
        "store": { "ok": ok, "labels": labels },
    });
    Ok(Response::json(if ok { 200 } else { 503 }, &body))
}
