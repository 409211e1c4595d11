//! `GET /deposit/status?depositId=…` or `?reference=…`: the stored deposit (reads only).

use super::route::{serve, Peer, Route};
use crate::config::{Config, Section, Sections};
use crate::error::{ApiError, ErrorCode};
use crate::http::{Request, Response};
use crate::ids::{BotId, DepositId, Reference};
use crate::platform::Platform;
use crate::schema::{self, StatusQuery};
use crate::store::DepositStore;
use crate::view::read_shown;

/// What this route accepts and reads.
pub const ROUTE: Route = Route {
    method: "GET",
    allow: "GET, HEAD, OPTIONS",
    auth: Some(Peer::Bot),
    json_body: false,
    raises_alerts: false,
    sections: Sections::of(&[Section::Auth, Section::Bots, Section::Lifetime]),
    errors: &[
        ErrorCode::InvalidDepositId,
        ErrorCode::InvalidReference,
        ErrorCode::MissingQuery,
        ErrorCode::AmbiguousQuery,
        ErrorCode::DepositNotFound,
        ErrorCode::CorruptRecord,
        ErrorCode::StoreUnavailable,
    ],
};

/// Serves `/deposit/status`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, status)
}

fn status(
    request: &Request,
    platform: &Platform,
    config: &Config,
    caller: Option<&BotId>,
) -> Result<Response, ApiError> {
    let lifetime = config.lifetime()?;
    let store = DepositStore::new(platform, lifetime);
    let query: StatusQuery = schema::query(request);
    // By reference: the invoice's deposit, of the invoice's own era.
    let (id, era) = match (query.deposit_id, query.reference) {
        (Some(id), None) => (
            DepositId::parse(&id).ok_or_else(ApiError::invalid_deposit_id)?,
            None,
        ),
        (None, Some(reference)) => {
            let reference = Reference::parse(&reference).ok_or_else(|| {
                ApiError::field(
                    ErrorCode::InvalidReference,
                    "reference",
                    "reference must be 1 to 128 printable characters",
                )
            })?;
            let invoice = store
                .invoice(&reference)?
                .ok_or(ApiError::DepositNotFound)?;
            (invoice.deposit_id, Some(invoice.epoch))
        }
        (None, None) => {
            return Err(ApiError::field(
                ErrorCode::MissingQuery,
                "depositId",
                "give depositId or reference",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                ErrorCode::AmbiguousQuery,
                "depositId",
                "give depositId or reference, not both",
            ))
        }
    };
    let deposit = store
        .deposit(&id)?
        .filter(|d| era.is_none_or(|e| e == d.v.epoch))
        // Another bot's deposit is not found: its id tells nothing.
        .filter(|d| caller.is_some_and(|bot| *bot == d.v.bot))
        .ok_or(ApiError::DepositNotFound)?;
    let shown = read_shown(&store, deposit)?.ok_or(ApiError::DepositNotFound)?;
    Ok(Response::json(200, &shown.view))
}
