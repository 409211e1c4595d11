//! The operator console's reads, behind `admin_token`: `GET /admin/deposits` (a page of
//! deposits, filtered, newest first), `GET /admin/deposits.csv` (the same page as CSV),
//! `GET /admin/deposits/{id}` (one deposit's story) and `GET /admin/quarantine` (the records
//! the sweep could not read).

use super::route::{serve, Peer, Route};
use crate::config::{Config, Section, Sections};
use crate::console::{self, PageCursor, Query, StatusFilter, MAX_PAGE};
use crate::error::{ApiError, ErrorCode};
use crate::http::{Request, Response};
use crate::ids::{BotId, DepositId, GatewayName};
use crate::platform::Platform;
use crate::schema::{self, ListQuery};
use crate::store::DepositStore;
use crate::view::read_shown;

/// What these routes accept and read.
pub const ROUTE: Route = Route {
    method: "GET",
    allow: "GET, HEAD, OPTIONS",
    auth: Some(Peer::Admin),
    json_body: false,
    raises_alerts: false,
    sections: Sections::of(&[
        Section::Auth,
        Section::Bots,
        Section::Lifetime,
        Section::Console,
    ]),
    errors: &[
        ErrorCode::NotFound,
        ErrorCode::InvalidFilter,
        ErrorCode::InvalidDepositId,
        ErrorCode::DepositNotFound,
        ErrorCode::CorruptRecord,
        ErrorCode::StoreUnavailable,
    ],
};

/// The list's path; a deposit's is under it.
pub const DEPOSITS: &str = "/admin/deposits";
/// The list as CSV.
pub const DEPOSITS_CSV: &str = "/admin/deposits.csv";
/// The quarantined records.
pub const QUARANTINE: &str = "/admin/quarantine";

/// Serves `/admin/...`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    serve(&ROUTE, request, platform, read)
}

fn read(
    request: &Request,
    platform: &Platform,
    config: &Config,
    _caller: Option<&BotId>,
) -> Result<Response, ApiError> {
    let store = DepositStore::new(platform, config.lifetime()?);
    let path = request.path.strip_suffix('/').unwrap_or(&request.path);
    if path == DEPOSITS {
        let query = list_query(schema::query(request))?;
        return Ok(Response::json(200, &console::list(&store, &query)?));
    }
    if path == DEPOSITS_CSV {
        // One page a call, like the list; the next page's cursor is in `X-Next-Cursor`.
        let query = list_query(schema::query(request))?;
        let page = console::list(&store, &query)?;
        let mut response = Response::text(200, &console::csv(&page));
        response.headers.clear();
        response = response
            .with_header("content-type", "text/csv; charset=utf-8")
            .with_header(
                "content-disposition",
                "attachment; filename=\"deposits.csv\"",
            );
        if let Some(next) = &page.next {
            response = response.with_header("x-next-cursor", next);
        }
        return Ok(response);
    }
    if path == QUARANTINE {
        let records = store.quarantined()?;
        return Ok(Response::json(
            200,
            &serde_json::json!({ "ok": true, "quarantined": records }),
        ));
    }
    let id = path
        .strip_prefix(DEPOSITS)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or(ApiError::field(
            ErrorCode::NotFound,
            "path",
            "no console route here: see /admin/deposits, /admin/deposits.csv, /admin/quarantine",
        ))?;
    let id = DepositId::parse(id).ok_or_else(ApiError::invalid_deposit_id)?;
    let deposit = store.deposit(&id)?.ok_or(ApiError::DepositNotFound)?;
    let shown = read_shown(&store, deposit)?.ok_or(ApiError::DepositNotFound)?;
    Ok(Response::json(200, &console::Detail::of(shown)))
}

fn invalid(field: &'static str, message: &str) -> ApiError {
    ApiError::field(ErrorCode::InvalidFilter, field, message)
}

fn time(field: &'static str, value: Option<String>) -> Result<Option<u64>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| invalid(field, "must be a time in Unix milliseconds"))
        })
        .transpose()
}

/// The list's query (also a bulk resend's), checked.
pub fn list_query(raw: ListQuery) -> Result<Query, ApiError> {
    let nonempty = |v: Option<String>| v.filter(|v| !v.is_empty());
    let status = nonempty(raw.status)
        .map(|s| {
            StatusFilter::parse(&s).ok_or_else(|| {
                invalid(
                    "status",
                    "must be one of pending, paid, credited, owed, exhausted, refund_due, review, failed, expired, attention",
                )
            })
        })
        .transpose()?;
    let gateway = nonempty(raw.gateway)
        .map(|g| {
            GatewayName::parse(&g).ok_or_else(|| {
                invalid(
                    "gateway",
                    "must be one of central, duitku, midtrans, xendit, tripay",
                )
            })
        })
        .transpose()?;
    let user_id = nonempty(raw.user_id);
    if user_id.as_ref().is_some_and(|u| u.chars().count() > 64) {
        return Err(invalid("userId", "must be 1 to 64 characters"));
    }
    let bot = nonempty(raw.bot)
        .map(|b| BotId::parse(&b).ok_or_else(|| invalid("bot", "is not a bot id")))
        .transpose()?;
    let (from, to) = (time("from", raw.from)?, time("to", raw.to)?);
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(invalid("from", "must not be after to"));
        }
    }
    let limit = match nonempty(raw.limit) {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| invalid("limit", "must be 1 to 100"))?,
    };
    let cursor = nonempty(raw.cursor)
        .map(|c| {
            PageCursor::parse(&c)
                .ok_or_else(|| invalid("cursor", "is not a cursor this list handed out"))
        })
        .transpose()?;
    Ok(Query {
        status,
        gateway,
        user_id,
        bot,
        from,
        to,
        limit,
        cursor,
    })
}
