//! `GET /deposit/status?depositId=…` or `?reference=…`: the stored deposit (reads only).

use super::{serve, Route};
use crate::config::Config;
use crate::deposit::{is_valid_deposit_id, is_valid_reference, DepositView};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::platform::Platform;
use crate::storage::DepositStore;

const ROUTE: Route = Route {
    method: "GET",
    allow: "GET, HEAD, OPTIONS",
    auth: true,
    json_body: false,
};

/// Serves `/deposit/status`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, status)
}

fn status(request: &Request, platform: &Platform, config: &Config) -> Result<Response, ApiError> {
    let store = DepositStore::new(platform, config);
    let now = platform.clock.now_ms();
    let id = match (
        request.query_param("depositId"),
        request.query_param("reference"),
    ) {
        (Some(id), None) => {
            if !is_valid_deposit_id(&id) {
                return Err(ApiError::field(
                    "INVALID_DEPOSIT_ID",
                    "depositId",
                    "depositId must match [A-Za-z0-9_-]{1,64}",
                ));
            }
            id
        }
        (None, Some(reference)) => {
            if !is_valid_reference(&reference) {
                return Err(ApiError::field(
                    "INVALID_REFERENCE",
                    "reference",
                    "reference must be 1 to 128 printable characters",
                ));
            }
            store
                .resolve_reference(&reference, now)?
                .ok_or(ApiError::DepositNotFound)?
        }
        (None, None) => {
            return Err(ApiError::field(
                "MISSING_QUERY",
                "depositId",
                "give depositId or reference",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "AMBIGUOUS_QUERY",
                "depositId",
                "give depositId or reference, not both",
            ))
        }
    };
    let stored = store.load(&id, now)?.ok_or(ApiError::DepositNotFound)?;
    Ok(Response::json(
        200,
        &DepositView::new(stored.deposit, stored.credit),
    ))
}
