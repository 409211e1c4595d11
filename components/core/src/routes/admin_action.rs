//! The operator console's actions, behind `admin_token`: `POST /admin/action/resend` (deliver
//! a paid deposit's credit now, through the same path as a manual retry) and
//! `POST /admin/action/refund-handled` (a payment beside the credited one was refunded by
//! hand). Each is recorded on the deposit's timeline with the operator's name, and answers
//! 409 `WRONG_STATE`, changing nothing, on a deposit it does not apply to.

use serde_json::json;

use super::route::{operator, serve, Peer, Route};
use crate::config::{Config, Section, Sections};
use crate::console::{state_of, State};
use crate::deposit::note::{Note, NoteKind, OperatorAction};
use crate::error::{ApiError, ErrorCode};
use crate::flow::retry::retry_one;
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

/// The actions' paths.
pub const PATHS: &[(&str, &Route)] = &[
    ("/admin/action/resend", &RESEND),
    ("/admin/action/refund-handled", &REFUND_HANDLED),
];

/// Serves `/admin/action/...`.
pub fn handle(request: &Request, platform: &Platform) -> Response {
    match request.path.as_str() {
        "/admin/action/resend" => serve(&RESEND, request, platform, resend),
        "/admin/action/refund-handled" => serve(&REFUND_HANDLED, request, platform, refund_handled),
        _ => serve(&RESEND, request, platform, |_, _, _, _| {
            Err(ApiError::field(
                ErrorCode::NotFound,
                "path",
                "no console action here: resend or refund-handled",
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
        kind: NoteKind::Operator {
            action,
            by: by.to_string(),
            reason,
        },
        nonce: None,
    }
}

fn resend(
    request: &Request,
    platform: &Platform,
    config: &Config,
    _caller: Option<&BotId>,
) -> Result<Response, ApiError> {
    let store = DepositStore::new(platform, config.lifetime()?);
    let (shown, by) = target(request, config, &store)?;
    let state = state_of(&shown);
    let credit = match &shown.credit {
        Some(credit) if matches!(state, State::Owed | State::Exhausted) => credit,
        _ => {
            return Err(wrong_state(
                "only an owed or exhausted credit is resent",
                state,
            ))
        }
    };
    let id = shown.deposit.deposit_id.clone();
    let reference = credit.reference.clone();
    let result = retry_one(platform, config, &id, &shown.deposit.bot);
    // Recorded once a delivery was made, whatever the bot answered; a resend refused before
    // any (a delivery already in flight) leaves no trace.
    if matches!(result, Ok(_) | Err(ApiError::CreditFailed(_))) {
        let note = action_note(
            &shown,
            reference,
            OperatorAction::Resend,
            &by,
            None,
            store.now(),
        );
        store.add_note(&id, &note, &shown.notes, None)?;
    }
    Ok(Response::json(200, &result?))
}

fn refund_handled(
    request: &Request,
    platform: &Platform,
    config: &Config,
    _caller: Option<&BotId>,
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
    let Some(refund) = shown
        .view
        .refunds_due
        .iter()
        .find(|r| r.reference == reference)
    else {
        return Err(wrong_state(
            "no refund is due for this reference",
            state_of(&shown),
        ));
    };
    let id = &shown.deposit.deposit_id;
    let already = refund.handled.is_some();
    if !already {
        let note = action_note(
            &shown,
            reference.clone(),
            OperatorAction::RefundHandled,
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
