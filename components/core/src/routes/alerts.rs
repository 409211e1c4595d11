//! `POST /internal/alerts`: one run of the operator's alerts (run it on the sweep's schedule).

use super::route::{serve, Peer, Route};
use crate::config::{Config, Section, Sections};
use crate::error::{ApiError, ErrorCode};
use crate::flow::alerts::run_alerts;
use crate::http::{Request, Response};
use crate::ids::BotId;
use crate::platform::Platform;

/// What this route accepts and reads.
pub const ROUTE: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: Some(Peer::Operator),
    json_body: false,
    raises_alerts: false,
    sections: Sections::of(&[
        Section::Auth,
        Section::Lifetime,
        Section::Delivery,
        Section::Alerts,
    ]),
    errors: &[ErrorCode::CorruptRecord, ErrorCode::StoreUnavailable],
};

/// Serves `/internal/alerts`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, alerts)
}

fn alerts(
    _: &Request,
    platform: &Platform,
    config: &Config,
    _: Option<&BotId>,
) -> Result<Response, ApiError> {
    let report = run_alerts(platform, config)?;
    eprintln!(
        "alerts sent={} failed={} gave_up={} forgotten={}",
        report.sent, report.failed, report.gave_up, report.forgotten
    );
    Ok(Response::json(200, &report))
}
