//! `POST /callback/{duitku,midtrans,xendit,tripay}`: a gateway's own notification. The
//! adapter verifies and reads it; the money path is the Central PG's (`apply_callback`).
//! Each answers what its gateway takes as "received" so it stops retrying.

use super::route::{serve, Route};
use crate::config::{Config, Section};
use crate::error::{ApiError, ErrorCode};
use crate::flow::payment::apply_callback;
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
            sections: &[
                Section::Auth,
                Section::Gateways,
                $section,
                Section::Lifetime,
                Section::Delivery,
            ],
            errors: $errors,
        }
    };
}

/// `/callback/duitku`: a form body (415 otherwise) whose `signature` field is checked.
pub const DUITKU: Route = callback_route!(Section::Duitku, callback_errors!(UnsupportedMediaType));
/// `/callback/midtrans`: a JSON body (415 otherwise) whose `signature_key` field is checked.
pub const MIDTRANS: Route = callback_route!(
    Section::Midtrans,
    callback_errors!(UnsupportedMediaType, InvalidJson)
);
/// `/callback/xendit`: `x-callback-token` is checked, then the JSON body (415 otherwise).
pub const XENDIT: Route = callback_route!(
    Section::Xendit,
    callback_errors!(UnsupportedMediaType, InvalidJson)
);
/// `/callback/tripay`: `X-Callback-Signature` over the raw body is checked; the body is read as JSON whatever its
/// content type.
pub const TRIPAY: Route = callback_route!(Section::Tripay, callback_errors!(InvalidJson));

/// Serves `/callback/duitku` (form-urlencoded callback, answered 200 `OK`).
pub fn duitku(request: &Request, platform: &Platform) -> Response {
    serve(&DUITKU, request, platform, |r, p, c| {
        notify(GatewayName::Duitku, c.duitku()?, r, p, c)
    })
}

/// Serves `/callback/midtrans` (HTTP notification, answered 200).
pub fn midtrans(request: &Request, platform: &Platform) -> Response {
    serve(&MIDTRANS, request, platform, |r, p, c| {
        notify(GatewayName::Midtrans, c.midtrans()?, r, p, c)
    })
}

/// Serves `/callback/xendit` (invoice callback, answered 200).
pub fn xendit(request: &Request, platform: &Platform) -> Response {
    serve(&XENDIT, request, platform, |r, p, c| {
        notify(GatewayName::Xendit, c.xendit()?, r, p, c)
    })
}

/// Serves `/callback/tripay` (payment_status callback, answered `{"success":true}`).
pub fn tripay(request: &Request, platform: &Platform) -> Response {
    serve(&TRIPAY, request, platform, |r, p, c| {
        notify(GatewayName::Tripay, c.tripay()?, r, p, c)
    })
}

/// Verifies and applies one notification. The route hands in its own adapter, so each
/// component links only its gateway's code.
fn notify(
    gateway: GatewayName,
    adapter: &impl PaymentGateway,
    request: &Request,
    platform: &Platform,
    config: &Config,
) -> Result<Response, ApiError> {
    let notice = adapter.read_notice(request)?;
    let order = notice
        .deposit_id
        .as_ref()
        .map_or("-".to_string(), ToString::to_string);
    let outcome = match notice.into_callback(gateway) {
        // Nothing final (pending, refund, challenge): received, nothing to record.
        None => "Ignored".to_string(),
        Some(callback) => format!("{:?}", apply_callback(platform, config, &callback, None)?),
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
