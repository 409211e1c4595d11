//! The operator console's actions, behind `admin_token`: `POST /admin/action/resend` (deliver
//! a paid deposit's credit now, through the same path as a manual retry) and
//! `POST /admin/action/refund-handled` (a payment beside the credited one was refunded by
//! hand). Each is recorded on the deposit's timeline with the operator's name, and answers
//! 409 `WRONG_STATE`, changing nothing, on a deposit it does not apply to.

use serde_json::json;

use super::admin::list_query;
use super::route::{operator, serve, Peer, Route};
use crate::config::{Config, Section, Sections};
use crate::console::{self, state_of, State};
use crate::deposit::note::{Note, NoteKind, OperatorAction, OperatorNote};
use crate::error::{ApiError, ErrorCode};
use crate::flow::retry::{retry_one, ManualRetry};
use crate::http::{Request, Response};
use crate::ids::{BotId, DepositId, Reference};
use crate::platform::Platform;
use crate::schema::{self, RefundHandledBody, RetryQuery};
use crate::store::DepositStore;
use crate::view::{read_shown, Shown};

const SECTIONS: Sections = Sections::of(&[
    Section::Auth,
    Section::Bots,
    Section::Lifetime,
    Section::Delivery,
    Section::Console,
]);

/// `POST /admin/action/resend?depositId=…`.
pub const RESEND: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: Some(Peer::Admin),
    json_body: false,
    raises_alerts: false,
    sections: SECTIONS,
    errors: &[
        ErrorCode::NotFound,
        ErrorCode::InvalidDepositId,
        ErrorCode::DepositNotFound,
        ErrorCode::WrongState,
        ErrorCode::NotPaid,
        ErrorCode::CreditInProgress,
        ErrorCode::CreditFailed,
        ErrorCode::CorruptRecord,
        ErrorCode::StoreUnavailable,
    ],
};

/// `POST /admin/action/refund-handled?depositId=…` with `{"reference","reason"}`.
pub const REFUND_HANDLED: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: Some(Peer::Admin),
    json_body: true,
    raises_alerts: false,
    sections: SECTIONS,
    errors: &[
        ErrorCode::NotFound,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidDepositId,
        ErrorCode::InvalidReference,
        ErrorCode::InvalidReason,
        ErrorCode::DepositNotFound,
        ErrorCode::WrongState,
        ErrorCode::CorruptRecord,
        ErrorCode::StoreUnavailable,
    ],
};

/// `POST /admin/action/bulk-resend?…` (the list's filters and cursor).
pub const BULK_RESEND: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: Some(Peer::Admin),
    json_body: false,
    raises_alerts: false,
    sections: SECTIONS,
    errors: &[
        ErrorCode::NotFound,
        ErrorCode::InvalidFilter,
        ErrorCode::CorruptRecord,
        ErrorCode::StoreUnavailable,
    ],
};

/// `POST /admin/action/review-closed?depositId=…` with `{"reference","reason"}`.
pub const REVIEW_CLOSED: Route = Route { ..REFUND_HANDLED };

/// `POST /admin/action/reconcile?depositId=…`.
pub const RECONCILE: Route = Route {
    method: "POST",
    allow: "POST, OPTIONS",
    auth: Some(Peer::Admin),
    json_body: false,
    raises_alerts: false,
    sections: SECTIONS,
    errors: &[
        ErrorCode::NotFound,
        ErrorCode::InvalidDepositId,
        ErrorCode::DepositNotFound,
        ErrorCode::WrongState,
        ErrorCode::CorruptRecord,
        ErrorCode::StoreUnavailable,
    ],
};

/// Serves `/admin/action/...`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    match request.path.as_str() {
        "/admin/action/resend" => serve(&RESEND, request, platform, resend),
        "/admin/action/bulk-resend" => serve(&BULK_RESEND, request, platform, bulk_resend),
        "/admin/action/refund-handled" => {
            serve(&REFUND_HANDLED, request, platform, |r, p, c, _| {
                settle(r, p, c, Settled::Refund)
            })
        }
        "/admin/action/review-closed" => serve(&REVIEW_CLOSED, request, platform, |r, p, c, _| {
            settle(r, p, c, Settled::Review)
        }),
        "/admin/action/reconcile" => serve(&RECONCILE, request, platform, reconcile),
        _ => serve(&RESEND, request, platform, |_, _, _, _| {
            Err(ApiError::field(
                ErrorCode::NotFound,
                "path",
                "no console action here: resend, bulk-resend, refund-handled, review-closed or reconcile",
            ))
        }),
    }
}

/// The deposit the query names, as shown, with the operator acting on it.
fn target(
    request: &Request,
    config: &Config,
    store: &DepositStore,
) -> Result<(Shown, String), ApiError> {
    let by = operator(config, request)?.ok_or(ApiError::Unauthorized)?;
    let query: RetryQuery = schema::query(request);
    let id = query
        .deposit_id
        .and_then(|id| DepositId::parse(&id))
        .ok_or_else(ApiError::invalid_deposit_id)?;
    let deposit = store.deposit(&id)?.ok_or(ApiError::DepositNotFound)?;
    let shown = read_shown(store, deposit)?.ok_or(ApiError::DepositNotFound)?;
    Ok((shown, by))
}

fn wrong_state(message: &str, state: State) -> ApiError {
    ApiError::Conflict {
        code: ErrorCode::WrongState,
        message: message.into(),
        detail: Some(json!({ "state": state })),
    }
}

fn action_note(
    shown: &Shown,
    reference: Reference,
    action: OperatorAction,
    by: &str,
    reason: Option<String>,
    at: u64,
) -> Note {
    Note {
        epoch: shown.deposit.epoch,
        reference,
        at,
        kind: NoteKind::Operator(OperatorNote {
            action,
            by: by.to_string(),
            reason,
        }),
        nonce: None,
    }
}

/// Delivers `shown`'s owed credit now for operator `by`, recording the action once a
/// delivery was made (whatever the bot answered; one refused before any, a delivery already
/// in flight, leaves no trace).
fn resend_one(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    shown: &Shown,
    by: &str,
) -> Result<ManualRetry, ApiError> {
    let state = state_of(shown);
    let credit = match &shown.credit {
        Some(credit) if matches!(state, State::Owed | State::Exhausted) => credit,
        _ => {
            return Err(wrong_state(
                "only an owed or exhausted credit is resent",
                state,
            ))
        }
    };
    let id = &shown.deposit.deposit_id;
    let result = retry_one(platform, config, id, &shown.deposit.bot);
    if matches!(result, Ok(_) | Err(ApiError::CreditFailed(_))) {
        let note = action_note(
            shown,
            credit.reference.clone(),
            OperatorAction::Resend,
            by,
            None,
            store.now(),
        );
        store.add_note(id, &note, &shown.notes, None)?;
    }
    result
}

fn resend(
    request: &Request,
    platform: &Platform,
    config: &Config,
    _caller: Option<&BotId>,
) -> Result<Response, ApiError> {
    let store = DepositStore::new(platform, config.lifetime()?);
    let (shown, by) = target(request, config, &store)?;
    let result = resend_one(&store, platform, config, &shown, &by)?;
    Ok(Response::json(200, &result))
}

/// Deposits one bulk resend goes through: each may wait `bot_timeout_ms` for its bot.
pub const BULK_PAGE: usize = 5;

/// Resends every owed or exhausted credit of one page of a filter (the list's query, at most
/// [`BULK_PAGE`] deposits); `next` resumes it. Credited deposits are passed over, so running
/// it again sends nothing twice.
fn bulk_resend(
    request: &Request,
    platform: &Platform,
    config: &Config,
    _caller: Option<&BotId>,
) -> Result<Response, ApiError> {
    let by = operator(config, request)?.ok_or(ApiError::Unauthorized)?;
    let mut query = list_query(schema::query(request))?;
    query.limit = query.limit.min(BULK_PAGE);
    let store = DepositStore::new(platform, config.lifetime()?);
    let page = console::list(&store, &query)?;
    let mut resent = Vec::new();
    let mut passed = 0;
    for row in &page.deposits {
        if !matches!(row.state, State::Owed | State::Exhausted) {
            passed += 1;
            continue;
        }
        let shown = match store.deposit(&row.deposit_id)? {
            Some(deposit) => read_shown(&store, deposit)?,
            None => None,
        };
        let Some(shown) = shown else {
            passed += 1;
            continue;
        };
        let outcome = match resend_one(&store, platform, config, &shown, &by) {
            Ok(result) => json!({ "depositId": row.deposit_id, "credited": result.credited }),
            // A store that fails stops the batch; the rest is the operator's next call.
            Err(error @ ApiError::Store(_)) => return Err(error),
            Err(error) => {
                json!({ "depositId": row.deposit_id, "credited": false, "error": error.code().as_str() })
            }
        };
        resent.push(outcome);
    }
    Ok(Response::json(
        200,
        &json!({ "ok": true, "resent": resent, "passed": passed, "next": page.next }),
    ))
}

/// `settle`: which payments an operator settles by hand, and how a deposit lists them.
#[derive(Clone, Copy)]
enum Settled {
    /// A second payment refunded.
    Refund,
    /// A payment of the wrong amount settled (refunded, or made good outside the app).
    Review,
}

/// Records that the operator settled payment `reference` by hand: it no longer keeps its
/// deposit. Settling it again answers `alreadyHandled` and writes nothing.
fn settle(
    request: &Request,
    platform: &Platform,
    config: &Config,
    what: Settled,
) -> Result<Response, ApiError> {
    let body: RefundHandledBody = schema::json_object(&request.body)?;
    let reference = Reference::parse(&body.reference).ok_or_else(|| {
        ApiError::field(
            ErrorCode::InvalidReference,
            "reference",
            "reference must be 1 to 128 printable characters",
        )
    })?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::field(
            ErrorCode::InvalidReason,
            "reason",
            "reason must be 1 to 500 characters",
        ));
    }
    let store = DepositStore::new(platform, config.lifetime()?);
    let (shown, by) = target(request, config, &store)?;
    let view = &shown.view;
    let (found, action, missing) = match what {
        Settled::Refund => (
            view.refunds_due
                .iter()
                .find(|r| r.reference == reference)
                .map(|r| r.handled.is_some()),
            OperatorAction::RefundHandled,
            "no refund is due for this reference",
        ),
        Settled::Review => (
            view.reviews
                .iter()
                .find(|r| r.reference == reference)
                .map(|r| r.closed.is_some()),
            OperatorAction::ReviewClosed,
            "no payment of this reference is under review",
        ),
    };
    let Some(already) = found else {
        return Err(wrong_state(missing, state_of(&shown)));
    };
    let id = &shown.deposit.deposit_id;
    if !already {
        let note = action_note(
            &shown,
            reference.clone(),
            action,
            &by,
            Some(reason.to_string()),
            store.now(),
        );
        store.add_note(id, &note, &shown.notes, None)?;
    }
    Ok(Response::json(
        200,
        &json!({ "ok": true, "depositId": id, "reference": reference, "alreadyHandled": already }),
    ))
}

/// Asks the deposit's gateway about it at the next sweep (a check of its own, beside its
/// scheduled ones): for a deposit not paid yet at a gateway that can be asked.
fn reconcile(
    request: &Request,
    platform: &Platform,
    config: &Config,
    _caller: Option<&BotId>,
) -> Result<Response, ApiError> {
    let store = DepositStore::new(platform, config.lifetime()?);
    let (shown, by) = target(request, config, &store)?;
    let state = state_of(&shown);
    let deposit = &shown.deposit;
    if deposit.gateway.is_central() {
        return Err(wrong_state(
            "the Central PG has no status API: its deposits cannot be asked about",
            state,
        ));
    }
    if !matches!(state, State::Pending | State::Failed | State::Expired) {
        return Err(wrong_state(
            "only a deposit not paid yet is asked about",
            state,
        ));
    }
    let Some(reference) = shown.view.reference.clone() else {
        return Err(wrong_state("the deposit has no invoice yet", state));
    };
    let now = store.now();
    let id = &deposit.deposit_id;
    store.schedule(DepositStore::reconcile_task(
        id,
        deposit.epoch,
        (0, true),
        now,
    ))?;
    let note = action_note(&shown, reference, OperatorAction::Reconcile, &by, None, now);
    store.add_note(id, &note, &shown.notes, None)?;
    Ok(Response::json(
        200,
        &json!({ "ok": true, "depositId": id, "scheduled": true }),
    ))
}
