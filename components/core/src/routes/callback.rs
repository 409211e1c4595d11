//! `POST /internal/payment-callback`: the Central PG's signed PAID/FAILED notification.

use super::route::{header, serve, Peer, Route};
use crate::config::{Config, Section, Sections, SignatureScheme};
use crate::error::{ApiError, ErrorCode};
use crate::flow::payment::apply_callback;
use crate::gateway::central::authenticate;
use crate::gateway::notification::PaymentCallback;
use crate::http::{Request, Response};
use crate::ids::BotId;
use crate::platform::Platform;
use crate::replay::{check_timestamp, validate_nonce};

/// What this route accepts and reads.
pub const ROUTE: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: Some(Peer::CentralPg),
    json_body: true,
    raises_alerts: true,
    sections: Sections::of(&[
        Section::Auth,
        Section::CentralPg,
        Section::Replay,
        Section::Lifetime,
        Section::Delivery,
        Section::Bots,
    ]),
    errors: &[
        ErrorCode::InvalidSignature,
        ErrorCode::InvalidTimestamp,
        ErrorCode::InvalidNonce,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidCallback,
        ErrorCode::DepositNotFound,
        ErrorCode::NonceReused,
        ErrorCode::ReferenceMismatch,
        ErrorCode::GatewayMismatch,
        ErrorCode::CorruptRecord,
        ErrorCode::StoreUnavailable,
    ],
};

/// Serves `/internal/payment-callback`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, callback)
}

fn callback(
    request: &Request,
    platform: &Platform,
    config: &Config,
    _: Option<&BotId>,
) -> Result<Response, ApiError> {
    let auth = config.central_auth()?;
    authenticate(auth, request)?;
    check_timestamp(
        header(request, "x-timestamp")?,
        config.replay()?,
        platform.clock.now_ms(),
        auth.scheme == SignatureScheme::Timestamped,
    )?;
    let nonce = header(request, "x-nonce")?;
    if let Some(nonce) = nonce {
        validate_nonce(nonce)?;
    }
    let callback = PaymentCallback::parse(&request.body)?;
    let outcome = apply_callback(platform, config, &callback, nonce)?;
    eprintln!(
        "payment-callback order={} outcome={outcome:?}",
        callback.order_id.as_ref().map_or("-", |id| id.as_str())
    );
    Ok(Response::text(200, "OK"))
}
