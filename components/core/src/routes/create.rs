//! `POST /deposit/create`: validate, then create the deposit and its invoice.

use serde_json::json;

use super::route::{serve, Peer, Route};
use crate::config::{Config, Section, Sections};
use crate::deposit::request::CreateDeposit;
use crate::error::{ApiError, ErrorCode};
use crate::flow::create::create_deposit;
use crate::http::{Request, Response};
use crate::ids::BotId;
use crate::platform::Platform;

/// What this route accepts and reads.
pub const ROUTE: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: Some(Peer::Bot),
    json_body: true,
    raises_alerts: false,
    sections: Sections::of(&[
        Section::Auth,
        Section::Amounts,
        Section::Gateway,
        Section::Lifetime,
        Section::Delivery,
        Section::Bots,
        Section::CentralPg,
        Section::Gateways,
        Section::Duitku,
        Section::Midtrans,
        Section::Xendit,
        Section::Tripay,
    ]),
    errors: &[
        ErrorCode::InvalidJson,
        ErrorCode::InvalidUserId,
        ErrorCode::InvalidAmount,
        ErrorCode::AmountOutOfRange,
        ErrorCode::InvalidMsisdn,
        ErrorCode::InvalidEmail,
        ErrorCode::InvalidProductDetails,
        ErrorCode::InvalidDepositId,
        ErrorCode::InvalidGateway,
        ErrorCode::GatewayDisabled,
        ErrorCode::DepositConflict,
        ErrorCode::CreateInProgress,
        ErrorCode::DepositExpired,
        ErrorCode::PgError,
        ErrorCode::CorruptRecord,
        ErrorCode::StoreUnavailable,
    ],
};

/// Serves `/deposit/create`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, create)
}

fn create(
    request: &Request,
    platform: &Platform,
    config: &Config,
    caller: Option<&BotId>,
) -> Result<Response, ApiError> {
    let input = CreateDeposit::parse(&request.body, config.amounts()?)?;
    let bot = caller.cloned().unwrap_or_default();
    let created = create_deposit(platform, config, input, bot)?;
    let deposit = &created.deposit;
    let mut body = json!({
        "ok": true,
        "depositId": deposit.deposit_id,
        "reference": deposit.invoice().map(|i| i.reference),
        "paymentUrl": deposit.payment_url(),
    });
    if created.replayed {
        body["replayed"] = json!(true);
    }
    Ok(Response::json(200, &body))
}
