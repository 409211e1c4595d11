//! `POST /deposit/retry-credit?depositId=…`: an operator's manual retry of one credit.

use super::{serve, Route};
use crate::config::Config;
use crate::deposit::is_valid_deposit_id;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::platform::Platform;
use crate::sweep::retry_one;

const ROUTE: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: true,
    json_body: false,
};

/// Serves `/deposit/retry-credit`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, retry_credit)
}

fn retry_credit(
    request: &Request,
    platform: &Platform,
    config: &Config,
) -> Result<Response, ApiError> {
    let id = request
        .query_param("depositId")
        .filter(|id| is_valid_deposit_id(id))
        .ok_or_else(|| {
            ApiError::field(
                "INVALID_DEPOSIT_ID",
                "depositId",
                "depositId must match [A-Za-z0-9_-]{1,64}",
            )
        })?;
    let result = retry_one(platform, config, &id)?;
    Ok(Response::json(200, &result))
}
