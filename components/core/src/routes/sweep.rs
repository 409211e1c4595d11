//! `POST /internal/credit-retry`: one sweep of the durable credit retries (run it on a schedule).

use super::route::{serve, Peer, Route};
use crate::config::{Config, Section, Sections};
use crate::error::{ApiError, ErrorCode};
use crate::flow::sweep::run_sweep;
use crate::http::{Request, Response};
use crate::ids::BotId;
use crate::platform::Platform;

/// What this route accepts and reads.
pub const ROUTE: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: Some(Peer::Operator),
    json_body: false,
    raises_alerts: true,
    sections: Sections::of(&[
        Section::Auth,
        Section::Lifetime,
        Section::Delivery,
        Section::Gateways,
        Section::Duitku,
        Section::Midtrans,
        Section::Xendit,
        Section::Tripay,
        Section::Retired,
        Section::Reconcile,
        Section::Bots,
    ]),
    errors: &[ErrorCode::CorruptRecord, ErrorCode::StoreUnavailable],
};

/// Serves `/internal/credit-retry`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, sweep)
}

fn sweep(
    _: &Request,
    platform: &Platform,
    config: &Config,
    _: Option<&BotId>,
) -> Result<Response, ApiError> {
    let report = run_sweep(platform, config)?;
    eprintln!(
        "sweep attempted={} credited={} failed={} remaining={} not_sent={} recovered={} cleaned={} quarantined={}",
        report.attempted,
        report.credited,
        report.failed,
        report.remaining,
        report.not_sent,
        report.recovered,
        report.cleaned,
        report.quarantined
    );
    Ok(Response::json(200, &report))
}
