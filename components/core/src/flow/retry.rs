//! `POST /deposit/retry-credit`: an operator delivers one paid deposit now, whatever its
//! schedule (also a payment whose recorder died, from the gateway's callback note).

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::Config;
use crate::credit::AttemptKind;
use crate::deposit::Creation;
use crate::error::{ApiError, ErrorCode};
use crate::flow::delivery::{deliver, take_over, Orphan};
use crate::ids::{BotId, DepositId};
use crate::platform::millis;
use crate::platform::Platform;
use crate::store::DepositStore;

/// Result of an operator's manual retry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManualRetry {
    /// Always true.
    pub ok: bool,
    /// The deposit.
    pub deposit_id: DepositId,
    /// Whether the deposit is now credited.
    pub credited: bool,
    /// True when it was credited before this call and nothing was sent.
    pub already_credited: bool,
    /// Outcome of the delivery.
    pub credit_result: Option<Value>,
}

fn in_progress(retry_after_s: u64) -> ApiError {
    ApiError::InProgress {
        code: ErrorCode::CreditInProgress,
        message: "a delivery of this credit is in progress",
        retry_after_s: retry_after_s.max(1),
    }
}

/// Delivers one paid deposit now.
pub fn retry_one(
    platform: &Platform,
    config: &Config,
    id: &DepositId,
    caller: &BotId,
) -> Result<ManualRetry, ApiError> {
    let store = DepositStore::new(platform, config.lifetime()?);
    let delivery = config.delivery()?;
    let now = store.now();
    let deposit = store
        .deposit(id)?
        // Another bot's deposit is not found: its id tells nothing.
        .filter(|d| d.v.bot == *caller)
        .ok_or(ApiError::DepositNotFound)?
        .v;
    // A create still waiting for its invoice has nothing to deliver (but one that took over
    // and failed may follow one that handed out its invoice).
    if !matches!(deposit.creation, Creation::Open { .. }) && store.invoices(&deposit)?.is_empty() {
        return Err(ApiError::DepositNotFound);
    }
    let log = store.credit_log(id)?.of_epoch(Some(deposit.epoch));
    let answer = |credited, already, result| ManualRetry {
        ok: true,
        deposit_id: id.clone(),
        credited,
        already_credited: already,
        credit_result: result,
    };
    if let Some(generation) = log.unwritten_generation() {
        if !log.current().is_some_and(|c| c.is_credited()) {
            // An owner took the next generation and has not written it yet; a sweep takes
            // over one lease from now if it never does.
            let lease_ms = millis(delivery.credit_lease);
            store.schedule_credit_wait(id, now.saturating_add(lease_ms), generation)?;
            return Err(in_progress(lease_ms.div_ceil(1000)));
        }
    }
    let owned = match log.current() {
        None => {
            let notes = store.notes(id)?;
            let Some(orphan) = Orphan::find(&store, &notes, Some(deposit.epoch))? else {
                return Err(ApiError::Conflict {
                    code: ErrorCode::NotPaid,
                    message: "the deposit is not paid".into(),
                    detail: Some(
                        json!({ "status": if notes.is_empty() { "PENDING" } else { "FAILED_OR_REVIEW" } }),
                    ),
                });
            };
            take_over(
                &store,
                delivery,
                id,
                Some(deposit.epoch),
                &log,
                Some(&orphan),
            )?
        }
        Some(credit) if credit.is_credited() => {
            return Ok(answer(true, true, credit.last_result.clone()))
        }
        Some(credit) if credit.is_in_flight(now) => {
            let left = credit.next_attempt_at().unwrap_or(now).saturating_sub(now);
            return Err(in_progress(left.div_ceil(1000)));
        }
        Some(_) => take_over(&store, delivery, id, Some(deposit.epoch), &log, None)?,
    };
    let owned = owned.ok_or_else(|| in_progress(millis(delivery.credit_lease) / 1000))?;
    let delivered = deliver(
        &store,
        platform,
        config.bot_routes()?,
        vec![owned],
        AttemptKind::Manual,
    )?;
    let credit = delivered.into_iter().next().map(|(credit, _)| credit);
    let result = credit.as_ref().and_then(|c| c.last_result.clone());
    if credit.as_ref().is_some_and(|c| c.is_credited()) {
        Ok(answer(true, false, result))
    } else {
        Err(ApiError::CreditFailed(
            json!({ "depositId": id, "creditResult": result }),
        ))
    }
}
