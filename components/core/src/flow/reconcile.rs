//! Reconciliation: a deposit still pending some time after its create is checked at its
//! gateway, then again on a backoff until it is paid, failed, expired or at the end of its
//! life. Each check is a `Reconcile` task in its own schedule, so the work is the checks due,
//! never the number of deposits. A status the gateway reports goes through the callback's
//! money path (`apply_callback`), exactly as if its callback had come.

use serde::Serialize;

use crate::config::Config;
use crate::deposit::Deposit;
use crate::error::ApiError;
use crate::flow::payment::{apply_callback, CallbackOutcome};
use crate::gateway::{
    adapter, GatewayName, NoticeStatus, PaymentGateway, PaymentNotice, StatusQuery,
};
use crate::ids::{DepositId, Reference};
use crate::platform::{Platform, StoreError};
use crate::store::DepositStore;

/// What reconciliation checked and found in one sweep.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Status queries sent.
    pub checked: u32,
    /// Deposits the gateway reported paid (credited as if their callback had come).
    pub paid: u32,
    /// Deposits it reported failed or expired (recorded).
    pub failed: u32,
    /// Deposits still pending (checked again later).
    pub pending: u32,
    /// Queries with no usable answer (checked again later).
    pub errors: u32,
    /// Due checks of a gateway that is no longer enabled (dropped).
    pub skipped: u32,
}

impl ReconcileReport {
    /// True when the sweep had nothing to reconcile (the report then omits it).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Schedules the first check of a deposit just opened at a gateway that can be asked.
pub fn schedule_first_check(
    store: &DepositStore,
    config: &Config,
    deposit: &Deposit,
) -> Result<(), ApiError> {
    if deposit.gateway.is_central() {
        return Ok(());
    }
    let at = store
        .now()
        .saturating_add(config.gateways()?.reconcile_after_ms);
    store.schedule_reconcile(&deposit.deposit_id, deposit.epoch, 0, at)?;
    Ok(())
}

/// A check that is due: the deposit is open, unpaid and alive.
#[derive(Debug, Clone)]
pub struct Check {
    id: DepositId,
    epoch: u64,
    round: u32,
    gateway: GatewayName,
    reference: Reference,
    life_ends: u64,
}

/// The check a `Reconcile` task asks for, or `None` when there is nothing left to ask.
pub fn due_check(
    store: &DepositStore,
    id: &DepositId,
    epoch: u64,
    round: u32,
) -> Result<Option<Check>, StoreError> {
    let Some(deposit) = store.deposit(id)? else {
        return Ok(None);
    };
    let Some(invoice) = deposit.v.invoice() else {
        return Ok(None);
    };
    let paid = store.head(id)?.is_some_and(|credit| credit.epoch == epoch);
    if deposit.v.epoch != epoch
        || deposit.v.gateway.is_central()
        || paid
        || store.now() >= deposit.exp
    {
        return Ok(None);
    }
    Ok(Some(Check {
        id: id.clone(),
        epoch,
        round,
        gateway: deposit.v.gateway,
        reference: invoice.reference,
        life_ends: deposit.exp,
    }))
}

/// Sends the checks' status queries together and applies the answers.
pub fn run_checks(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    checks: Vec<Check>,
    report: &mut ReconcileReport,
) -> Result<(), StoreError> {
    let now = store.now();
    let mut asked = Vec::new();
    let mut requests = Vec::new();
    for check in checks {
        let request = adapter(config, check.gateway).ok().and_then(|gateway| {
            let query = StatusQuery {
                deposit_id: &check.id,
                reference: &check.reference,
            };
            gateway.status_request(&query, now)
        });
        match request {
            Some(request) => {
                requests.push(request);
                asked.push(check);
            }
            None => {
                eprintln!("reconcile {}: {} cannot be asked", check.id, check.gateway);
                report.skipped += 1;
            }
        }
    }
    let answers = platform.http.send_all(requests);
    for (check, answer) in asked.into_iter().zip(answers) {
        report.checked += 1;
        let notice = match (answer, adapter(config, check.gateway)) {
            (Ok(response), Ok(gateway)) => gateway.read_status(&response).ok(),
            _ => None,
        };
        let notice = notice.filter(|n| n.deposit_id.as_ref().is_none_or(|id| *id == check.id));
        match notice {
            None => {
                report.errors += 1;
                check_again(store, config, &check)?;
            }
            Some(notice) if notice.status == NoticeStatus::Pending => {
                report.pending += 1;
                check_again(store, config, &check)?;
            }
            Some(notice) => apply(store, platform, config, &check, notice, report)?,
        }
    }
    Ok(())
}

/// Applies a final status through the callback's money path.
fn apply(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    check: &Check,
    notice: PaymentNotice,
    report: &mut ReconcileReport,
) -> Result<(), StoreError> {
    let status = notice.status;
    let Some(mut callback) = notice.into_callback(check.gateway) else {
        return Ok(());
    };
    callback.order_id = Some(check.id.clone());
    match apply_callback(platform, config, &callback, None) {
        Ok(outcome) => {
            let paid = matches!(
                outcome,
                CallbackOutcome::Credited
                    | CallbackOutcome::CreditScheduled
                    | CallbackOutcome::Recorded
                    | CallbackOutcome::PaymentPending
                    | CallbackOutcome::Duplicate
            );
            if status == NoticeStatus::Paid && paid {
                report.paid += 1;
            } else {
                report.failed += 1;
            }
            eprintln!("reconcile {}: {outcome:?}", check.id);
            Ok(())
        }
        Err(ApiError::Store(error)) => Err(error),
        Err(error) => {
            eprintln!("reconcile {}: {}", check.id, error.code());
            report.errors += 1;
            check_again(store, config, check)
        }
    }
}

/// Schedules the next check on the backoff, unless the deposit's life ends first.
fn check_again(store: &DepositStore, config: &Config, check: &Check) -> Result<(), StoreError> {
    let Ok(reconcile) = config.reconcile() else {
        return Ok(());
    };
    let step = usize::try_from(check.round)
        .unwrap_or(usize::MAX)
        .min(reconcile.schedule.len().saturating_sub(1));
    let delay = reconcile
        .schedule
        .get(step)
        .map_or(u64::MAX, |d| crate::platform::millis(*d));
    let at = store.now().saturating_add(delay);
    if at >= check.life_ends {
        return Ok(());
    }
    store.schedule_reconcile(&check.id, check.epoch, check.round.saturating_add(1), at)
}
