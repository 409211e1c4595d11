//! `POST /callback/{duitku,midtrans,xendit,tripay}`: a gateway's own notification. The
//! adapter verifies and reads it. A notice whose proof covers the fields that decide the money
//! (Tripay) goes through the money path as it is (`apply_callback`); any other only prompts
//! the gateway's status API, whose answer is applied instead (`confirm`). Each answers what
//! its gateway takes as "received" so it stops retrying. A gateway taken out of
//! `gateways_enabled` keeps serving its deposits while its credentials are set.

use super::route::{serve, Route};
use crate::config::{Config, Section, Sections};
use crate::error::{ApiError, ErrorCode};
use crate::flow::payment::apply_callback;
use crate::flow::reconcile::confirm;
use crate::gateway::{GatewayName, PaymentGateway};
use crate::http::{Request, Response};
use crate::platform::Platform;

/// What every gateway callback may answer besides its adapter's own codes: a repeated header,
/// a wrong proof, a malformed notice, and what applying it answers (`apply_callback`).
macro_rules! callback_errors {
    ($($code:ident),*) => {
        &[
            $(ErrorCode::$code,)*
            ErrorCode::InvalidHeader,
            ErrorCode::InvalidCallback,
            ErrorCode::InvalidSignature,
            ErrorCode::DepositNotFound,
            ErrorCode::ReferenceMismatch,
            ErrorCode::GatewayMismatch,
            ErrorCode::GatewayNotConfigured,
            ErrorCode::CorruptRecord,
            ErrorCode::StoreUnavailable,
        ]
    };
}

/// The sections every gateway callback reads besides its gateway's own, and the errors its
/// adapter answers besides those every gateway callback may answer.
macro_rules! callback_route {
    ($section:expr, $errors:expr) => {
        Route {
            method: "POST",
            allow: "POST, OPTIONS",
            // Authenticated by the gateway's own signature or token, not a bearer.
            auth: None,
            // Duitku posts a form; the adapters check their own content types.
            json_body: false,
            raises_alerts: true,
            sections: Sections::of(&[
                Section::Auth,
                Section::Gateways,
                $section,
                Section::Retired,
                Section::Lifetime,
                Section::Delivery,
                Section::Bots,
            ]),
            errors: $errors,
        }
    };
}

/// `/callback/duitku`: a form body (415 otherwise) whose `signature` field is checked, then
/// confirmed with Duitku's status API.
pub const DUITKU: Route = callback_route!(
    Section::Duitku,
    callback_errors!(UnsupportedMediaType, GatewayUnconfirmed)
);
/// `/callback/midtrans`: a JSON body (415 otherwise) whose `signature_key` field is checked,
/// then confirmed with Midtrans's status API.
pub const MIDTRANS: Route = callback_route!(
    Section::Midtrans,
    callback_errors!(UnsupportedMediaType, InvalidJson, GatewayUnconfirmed)
);
/// `/callback/xendit`: `x-callback-token` is checked, then the JSON body (415 otherwise),
/// then confirmed with Xendit's invoice API.
pub const XENDIT: Route = callback_route!(
    Section::Xendit,
    callback_errors!(UnsupportedMediaType, InvalidJson, GatewayUnconfirmed)
);
/// `/callback/tripay`: `X-Callback-Signature` over the raw body is checked; the body is read as JSON whatever its
/// content type.
pub const TRIPAY: Route = callback_route!(Section::Tripay, callback_errors!(InvalidJson));

/// The gateway's settings, or the clear 4xx of a gateway whose credentials are not set.
fn configured<T>(
    config: &Config,
    gateway: GatewayName,
    settings: impl FnOnce(&Config) -> Result<&T, crate::config::ConfigError>,
) -> Result<&T, ApiError> {
    if !config.has_credentials(gateway) {
        return Err(ApiError::GatewayNotConfigured(gateway));
    }
    Ok(settings(config)?)
}

/// Serves `/callback/duitku` (form-urlencoded callback, answered 200 `OK`).
pub fn duitku(request: &Request, platform: &Platform) -> Response {
    serve(&DUITKU, request, platform, |r, p, c, _| {
        notify(configured(c, GatewayName::Duitku, Config::duitku)?, r, p, c)
    })
}

/// Serves `/callback/midtrans` (HTTP notification, answered 200).
pub fn midtrans(request: &Request, platform: &Platform) -> Response {
    serve(&MIDTRANS, request, platform, |r, p, c, _| {
        notify(
            configured(c, GatewayName::Midtrans, Config::midtrans)?,
            r,
            p,
            c,
        )
    })
}

/// Serves `/callback/xendit` (invoice callback, answered 200).
pub fn xendit(request: &Request, platform: &Platform) -> Response {
    serve(&XENDIT, request, platform, |r, p, c, _| {
        notify(configured(c, GatewayName::Xendit, Config::xendit)?, r, p, c)
    })
}

/// Serves `/callback/tripay` (payment_status callback, answered `{"success":true}`).
pub fn tripay(request: &Request, platform: &Platform) -> Response {
    serve(&TRIPAY, request, platform, |r, p, c, _| {
        notify(configured(c, GatewayName::Tripay, Config::tripay)?, r, p, c)
    })
}

/// Verifies and applies one notification. The route hands in its own adapter, so each
/// component links only its gateway's code.
fn notify(
    adapter: &impl PaymentGateway,
    request: &Request,
    platform: &Platform,
    config: &Config,
) -> Result<Response, ApiError> {
    let gateway = adapter.name();
    let notice = adapter.read_notice(request)?;
    let order = notice
        .deposit_id
        .as_ref()
        .map_or("-".to_string(), ToString::to_string);
    let outcome = if adapter.signs_notices() {
        match notice.into_callback(gateway) {
            // Nothing final (pending, refund, challenge): received, nothing to record.
            None => "Ignored".to_string(),
            Some(callback) => format!("{:?}", apply_callback(platform, config, &callback, None)?),
        }
    } else {
        format!("{:?}", confirm(platform, config, adapter, &notice)?)
    };
    eprintln!("{gateway}-callback order={order} outcome={outcome}");
    Ok(acknowledgement(gateway))
}

/// What the gateway takes as "received": any 200 for Duitku, Midtrans and Xendit; Tripay's
/// samples answer `{"success":true}`.
fn acknowledgement(gateway: GatewayName) -> Response {
    match gateway {
        GatewayName::Tripay => Response::json(200, &serde_json::json!({ "success": true })),
        _ => Response::text(200, "OK"),
    }
}
