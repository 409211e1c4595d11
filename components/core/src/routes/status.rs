//! `GET /deposit/status?depositId=…` or `?reference=…`: the stored deposit (reads only).

use super::route::{serve, Peer, Route};
use crate::config::{Config, Section};
use crate::deposit::Creation;
use crate::error::{ApiError, ErrorCode};
use crate::flow::life::{life, LifeFacts};
use crate::http::{Request, Response};
use crate::ids::{DepositId, Reference};
use crate::platform::Platform;
use crate::schema::{self, StatusQuery};
use crate::store::DepositStore;
use crate::view::DepositView;

/// What this route accepts and reads.
pub const ROUTE: Route = Route {
    method: "GET",
    allow: "GET, HEAD, OPTIONS",
    auth: Some(Peer::Bot),
    json_body: false,
    sections: &[Section::Auth, Section::Lifetime],
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

fn status(request: &Request, platform: &Platform, config: &Config) -> Result<Response, ApiError> {
    let lifetime = config.lifetime()?;
    let store = DepositStore::new(platform, lifetime);
    let query: StatusQuery = schema::query(request);
    let id = match (query.deposit_id, query.reference) {
        (Some(id), None) => DepositId::parse(&id).ok_or_else(ApiError::invalid_deposit_id)?,
        (None, Some(reference)) => {
            let reference = Reference::parse(&reference).ok_or_else(|| {
                ApiError::field(
                    ErrorCode::InvalidReference,
                    "reference",
                    "reference must be 1 to 128 printable characters",
                )
            })?;
            store
                .invoice(&reference)?
                .ok_or(ApiError::DepositNotFound)?
                .deposit_id
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
    let deposit = store.deposit(&id)?.ok_or(ApiError::DepositNotFound)?;
    let epoch = deposit.v.epoch;
    let credit = store.credit_view(&id)?.of_epoch(Some(epoch));
    let notes: Vec<_> = store
        .notes(&id)?
        .into_iter()
        .filter(|n| n.epoch == epoch)
        .collect();
    // A create still waiting for its invoice is not shown, unless an invoice of this deposit
    // handed out earlier (a stalled create overtaken in its last instant) was already used.
    let open = matches!(deposit.v.creation, Creation::Open { .. });
    if !open && credit.current().is_none() && notes.is_empty() {
        return Err(ApiError::DepositNotFound);
    }
    let now = store.now();
    if now >= deposit.exp {
        let facts = LifeFacts {
            record_expiry: deposit.exp,
            epoch,
            credit: &credit,
            notes: &notes,
            payment_claimed: store.payment_claimed(&id)?,
            ttl_ms: lifetime.deposit_ttl_ms,
        };
        if !life(&facts).is_alive(now) {
            return Err(ApiError::DepositNotFound);
        }
    }
    let current = credit.current().cloned();
    Ok(Response::json(
        200,
        &DepositView::new(deposit.v, current, &notes),
    ))
}
