//! `POST /deposit/retry-credit?depositId=…`: an operator's manual retry of one credit.

use super::route::{serve, Peer, Route};
use crate::config::{Config, Section, Sections};
use crate::error::{ApiError, ErrorCode};
use crate::flow::retry::retry_one;
use crate::http::{Request, Response};
use crate::ids::{BotId, DepositId};
use crate::platform::Platform;
use crate::schema::{self, RetryQuery};

/// What this route accepts and reads.
pub const ROUTE: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: Some(Peer::Bot),
    json_body: false,
    raises_alerts: false,
    sections: Sections::of(&[
        Section::Auth,
        Section::Bots,
        Section::Lifetime,
        Section::Delivery,
    ]),
    errors: &[
        ErrorCode::InvalidDepositId,
        ErrorCode::DepositNotFound,
        ErrorCode::NotPaid,
        ErrorCode::CreditInProgress,
        ErrorCode::CreditFailed,
        ErrorCode::CorruptRecord,
        ErrorCode::StoreUnavailable,
    ],
};

/// Serves `/deposit/retry-credit`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, manual_retry)
}

fn manual_retry(
    request: &Request,
    platform: &Platform,
    config: &Config,
    caller: Option<&BotId>,
) -> Result<Response, ApiError> {
    let query: RetryQuery = schema::query(request);
    let id = query
        .deposit_id
        .and_then(|id| DepositId::parse(&id))
        .ok_or_else(ApiError::invalid_deposit_id)?;
    let bot = caller.cloned().unwrap_or_default();
    let result = retry_one(platform, config, &id, &bot)?;
    Ok(Response::json(200, &result))
}
