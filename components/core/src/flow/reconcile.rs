//! Asking a deposit's gateway how its invoices stand, and what the answer means for the money.
//!
//! Two things ask. The sweep, for deposits whose callbacks may be lost: a deposit at a gateway
//! that can be asked is checked some time after its create, then on a backoff, and once more
//! when its invoices can no longer be paid, until every invoice it handed out is settled
//! (paid and recorded, or closed at the gateway), for at most a week or a lifetime past its
//! end. Each check is
//! a `Reconcile` task in its own schedule, so the work is the checks due, never the number of
//! deposits. And a gateway's callback route, for a notice whose proof does not cover the
//! fields that decide the money (Duitku's `resultCode`, Midtrans's `transaction_status`,
//! Xendit's token-only notices): the notice only prompts the same question, and only the
//! gateway's own answer is applied.
//!
//! Every answer goes through the callback's money path (`apply_callback`), about an invoice
//! the deposit's own era handed out; an answer about any other transaction (an earlier
//! deposit of the id, a foreign order) changes nothing.

use serde::Serialize;

use crate::alert::AlertKind;
use crate::config::{Config, Lifetime};
use crate::deposit::{Deposit, Invoice};
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::flow::alerts::raise;
use crate::flow::life::{is_alive, is_settled, unsettled_until};
use crate::flow::payment::{apply_callback, CallbackOutcome};
use crate::gateway::notification::{CallbackStatus, PaymentCallback};
use crate::gateway::{
    adapter, GatewayName, NoticeStatus, PaymentGateway, PaymentNotice, StatusQuery,
};
use crate::ids::{DepositId, Reference};
use crate::platform::{
    millis, OutboundRequest, OutboundResponse, Platform, StoreError, TransportError,
};
use crate::store::schedule::Due;
use crate::store::DepositStore;

/// How long after an invoice's time to be paid is over its gateway is asked how it ended
/// (the gateway's clock and its own processing may lag).
pub const CLOSE_MARGIN_MS: u64 = 60_000;

/// What reconciliation checked and found in one sweep.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Status queries sent.
    pub checked: u32,
    /// Invoices the gateway reported paid (credited as if their callback had come).
    pub paid: u32,
    /// Invoices it reported failed or expired (recorded).
    pub failed: u32,
    /// Invoices still pending (checked again later).
    pub pending: u32,
    /// Queries with no usable answer (checked again later).
    pub errors: u32,
    /// Due checks of a gateway whose credentials are not set (checked again later).
    pub skipped: u32,
}

impl ReconcileReport {
    /// True when the sweep had nothing to reconcile (the report then omits it).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// When the gateway of a deposit created at `created_at` has stopped taking payment for its
/// invoices, with a margin.
fn closes_at(lifetime: &Lifetime, created_at: u64) -> u64 {
    created_at
        .saturating_add(millis(lifetime.invoice_validity()))
        .saturating_add(CLOSE_MARGIN_MS)
}

/// The first check of a deposit just opened at a gateway that can be asked:
/// `reconcile_after_seconds` from now, or when its invoice can no longer be paid if sooner.
/// An open deposit always has its check: it is written with a generated id's record, or
/// before the record of a chosen id's create hands the invoice out.
pub fn first_check(
    store: &DepositStore,
    config: &Config,
    deposit: &Deposit,
) -> Result<Option<Due>, ApiError> {
    if deposit.gateway.is_central() {
        return Ok(None);
    }
    let at = store
        .now()
        .saturating_add(config.gateways()?.reconcile_after_ms)
        .min(closes_at(config.lifetime()?, deposit.created_at));
    let task = DepositStore::reconcile_task(&deposit.deposit_id, deposit.epoch, (0, false), at);
    Ok(Some(task))
}

/// A deposit to ask its gateway about.
#[derive(Debug, Clone)]
pub struct Check {
    id: DepositId,
    epoch: u64,
    round: u32,
    /// A check of its own: it schedules no next one.
    once: bool,
    gateway: GatewayName,
    /// Its invoices not settled yet.
    open: Vec<Invoice>,
    /// Every invoice its era handed out.
    ours: Vec<Reference>,
    /// From then on an unpaid answer is final (see [`closes_at`]).
    closes_at: u64,
    /// No check is scheduled at or after this (see [`unsettled_until`]).
    ends_at: u64,
}

impl Check {
    /// What is left to ask about `deposit` in check `round`; `None` when nothing is (every
    /// invoice settled, or the Central PG, which cannot be asked).
    fn of(
        store: &DepositStore,
        lifetime: &Lifetime,
        deposit: &Envelope<Deposit>,
        (round, once): (u32, bool),
    ) -> Result<Option<Self>, StoreError> {
        let d = &deposit.v;
        if d.gateway.is_central() {
            return Ok(None);
        }
        let credit = store.head(&d.deposit_id)?;
        let notes = store.notes(&d.deposit_id)?;
        let invoices = store.invoices(d)?;
        let ours = invoices.iter().map(|i| i.reference.clone()).collect();
        let open: Vec<Invoice> = invoices
            .into_iter()
            .filter(|i| !is_settled(&i.reference, d.epoch, credit.as_ref(), &notes))
            .collect();
        if open.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            id: d.deposit_id.clone(),
            epoch: d.epoch,
            round,
            once,
            gateway: d.gateway,
            open,
            ours,
            closes_at: closes_at(lifetime, d.created_at),
            ends_at: unsettled_until(deposit.exp, store.ttl_ms()),
        }))
    }

    /// The status queries that answer it: one per open invoice at a gateway asked by
    /// reference, else one per order id its open invoices were made under (the query of
    /// the order's last open invoice).
    fn queries(&self, gateway: &impl PaymentGateway, now: u64) -> Vec<(Asked, OutboundRequest)> {
        let by_reference = gateway.asks_by_reference();
        let queries: Vec<(usize, OutboundRequest)> = (0..self.open.len())
            .filter_map(|i| {
                let invoice = &self.open[i];
                let query = StatusQuery {
                    deposit_id: &self.id,
                    attempt: invoice.attempt,
                    reference: &invoice.reference,
                };
                gateway.status_request(&query, now).map(|q| (i, q))
            })
            .collect();
        let mut asked = Vec::new();
        for (k, (i, query)) in queries.iter().enumerate() {
            if by_reference {
                asked.push((Asked::Invoice(*i), query.clone()));
            } else if queries[k + 1..].iter().all(|(_, later)| later != query) {
                asked.push((Asked::Order(*i), query.clone()));
            }
        }
        asked
    }
}

/// What a status query asked about, by the index of an open invoice of its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// That invoice.
    Invoice(usize),
    /// That invoice's order: the answer says which of the order's transactions it is about
    /// (that invoice when it names none).
    Order(usize),
}

/// A status query's answer (none when the batch came back short), with what it asked about.
type Reply = (Asked, Option<Result<OutboundResponse, TransportError>>);

/// What the answers to one check said.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    /// Queries sent.
    pub asked: u32,
    /// Usable answers.
    pub answered: u32,
    /// Invoices reported paid and applied as payments.
    pub paid: u32,
    /// Invoices reported failed, expired or closed unpaid.
    pub failed: u32,
    /// Invoices still pending.
    pub pending: u32,
    /// Queries with no usable answer.
    pub errors: u32,
    /// Whether an open invoice is still not settled.
    pub open_left: bool,
}

/// The due check a `Reconcile` task asks for, or `None` when there is nothing left to ask.
pub fn due_check(
    store: &DepositStore,
    lifetime: &Lifetime,
    id: &DepositId,
    epoch: u64,
    round: (u32, bool),
) -> Result<Option<Check>, StoreError> {
    let Some(deposit) = store.deposit(id)? else {
        return Ok(None);
    };
    if deposit.v.epoch != epoch || store.now() >= unsettled_until(deposit.exp, store.ttl_ms()) {
        return Ok(None);
    }
    // Overlapping sweeps may both run one task of a deposit's chain; a copy whose round is
    // done goes no further, or the chain would double each time.
    let (number, once) = round;
    if !once && store.checks_done(id)?.is_some_and(|done| done >= number) {
        return Ok(None);
    }
    Check::of(store, lifetime, &deposit, round)
}

/// Sends the checks' status queries together and applies the answers; each check still open
/// is scheduled again on the backoff. Returns the deposits whose records turned out unreadable
/// (to quarantine; the other checks go on).
pub fn run_checks(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    checks: Vec<Check>,
    report: &mut ReconcileReport,
) -> Result<Vec<(DepositId, String)>, StoreError> {
    let mut corrupt = Vec::new();
    let now = store.now();
    let mut asked = Vec::new();
    let mut requests = Vec::new();
    for check in checks {
        match adapter(config, check.gateway) {
            Ok(gateway) => {
                let queries = check.queries(&gateway, now);
                let mut names = Vec::new();
                for (invoice, request) in queries {
                    names.push(invoice);
                    requests.push(request);
                }
                asked.push((check, names));
            }
            Err(_) => {
                // Its credentials are not set: nothing can be asked until they are again.
                report.skipped += 1;
                if !check.once {
                    check_again(store, config, &check)?;
                }
            }
        }
    }
    let mut answers = platform.http.send_all(requests).into_iter();
    for (check, names) in asked {
        let replies: Vec<_> = names
            .into_iter()
            .map(|invoice| (invoice, answers.next()))
            .collect();
        let heard = match adapter(config, check.gateway) {
            Ok(gateway) => hear(platform, config, &gateway, (&check, now), replies),
            Err(_) => Ok(Heard::default()),
        };
        let heard = match heard {
            Ok(heard) => heard,
            Err(ApiError::Store(StoreError::Corrupt(reason))) => {
                corrupt.push((check.id.clone(), reason));
                continue;
            }
            Err(ApiError::Store(error)) => return Err(error),
            Err(_) => Heard {
                errors: 1,
                open_left: true,
                ..Heard::default()
            },
        };
        report.checked += heard.asked;
        report.paid += heard.paid;
        report.failed += heard.failed;
        report.pending += heard.pending;
        report.errors += heard.errors;
        if heard.open_left && !check.once {
            check_again(store, config, &check)?;
        }
    }
    Ok(corrupt)
}

/// Applies the answers to a check's queries, sent at `asked_at`: each usable one about an open
/// invoice goes through the money path.
fn hear(
    platform: &Platform,
    config: &Config,
    gateway: &impl PaymentGateway,
    (check, asked_at): (&Check, u64),
    replies: Vec<Reply>,
) -> Result<Heard, ApiError> {
    let mut heard = Heard::default();
    let mut settled = vec![false; check.open.len()];
    for (named, reply) in replies {
        heard.asked += 1;
        let notice = match reply {
            Some(Ok(response)) => gateway.read_status(&response).ok(),
            _ => None,
        };
        let Some(notice) =
            notice.filter(|n| n.deposit_id.as_ref().is_none_or(|id| *id == check.id))
        else {
            heard.errors += 1;
            continue;
        };
        let about = match (named, &notice.reference) {
            (Asked::Invoice(i), Some(reference)) if *reference != check.open[i].reference => None,
            (Asked::Invoice(i), _) => Some(i),
            (Asked::Order(_), Some(reference)) => {
                match check.open.iter().position(|i| i.reference == *reference) {
                    Some(i) => Some(i),
                    // About an invoice already settled: nothing new.
                    None if check.ours.contains(reference) => {
                        heard.answered += 1;
                        continue;
                    }
                    // About a transaction this deposit never handed out (an earlier deposit of
                    // the id at the gateway): not ours to apply.
                    None => None,
                }
            }
            // The gateway names no invoice: the one its order id has (Midtrans takes an order
            // id once, so a deposit there has one).
            (Asked::Order(i), None) => Some(i),
        };
        let Some(i) = about else {
            heard.errors += 1;
            continue;
        };
        heard.answered += 1;
        let invoice = &check.open[i];
        settled[i] = apply(
            platform,
            config,
            (check, asked_at),
            invoice,
            notice,
            &mut heard,
        )?;
    }
    heard.open_left = settled.iter().any(|s| !s);
    Ok(heard)
}

/// Applies one answer about `invoice`, asked at `asked_at`; returns whether nothing more can
/// come of the invoice.
fn apply(
    platform: &Platform,
    config: &Config,
    (check, asked_at): (&Check, u64),
    invoice: &Invoice,
    notice: PaymentNotice,
    heard: &mut Heard,
) -> Result<bool, ApiError> {
    // The answer tells how the invoice stood when it was asked about, however late it is
    // read: it closes the invoice only if the invoice could no longer be paid by then.
    let over = asked_at >= check.closes_at;
    let (status, closed) = match notice.status {
        NoticeStatus::Paid => (CallbackStatus::Paid, false),
        NoticeStatus::Expired => (CallbackStatus::Failed, true),
        // After its time to be paid, an unpaid invoice is over whatever the gateway calls it.
        NoticeStatus::Failed => (CallbackStatus::Failed, over),
        NoticeStatus::Pending if over => (CallbackStatus::Failed, true),
        NoticeStatus::Pending => {
            heard.pending += 1;
            return Ok(false);
        }
    };
    let callback = PaymentCallback {
        gateway: check.gateway,
        order_id: Some(check.id.clone()),
        reference: Some(invoice.reference.clone()),
        status,
        result_code: notice.result_code.or_else(|| Some("unpaid".into())),
        amount: notice.amount,
        payment_method: notice.payment_method,
        closed,
    };
    let outcome = match apply_callback(platform, config, &callback, None) {
        Ok(outcome) => outcome,
        Err(ApiError::Store(error)) => return Err(ApiError::Store(error)),
        Err(error) => {
            eprintln!("status-check {}: {}", check.id, error.code());
            heard.errors += 1;
            return Ok(false);
        }
    };
    eprintln!(
        "status-check {} {}: {outcome:?}",
        check.id, invoice.reference
    );
    let recorded_here = matches!(
        outcome,
        CallbackOutcome::Credited | CallbackOutcome::CreditScheduled | CallbackOutcome::Recorded
    );
    if recorded_here && !check.once {
        // Found by the deposit's own checks, not prompted by a notice: its callback is lost.
        let store = DepositStore::new(platform, config.lifetime()?);
        let (id, gateway) = (check.id.as_str(), check.gateway.as_str());
        raise(
            platform.variables,
            &store,
            AlertKind::CallbacksMissing,
            id,
            gateway,
        );
    }
    Ok(match outcome {
        CallbackOutcome::MarkedFailed | CallbackOutcome::FailedIgnored => {
            heard.failed += 1;
            closed
        }
        _ => {
            heard.paid += 1;
            true
        }
    })
}

/// Schedules the next check on the backoff (and no later than when the invoices' time to be
/// paid is over), unless the deposit's last check is past.
fn check_again(store: &DepositStore, config: &Config, check: &Check) -> Result<(), StoreError> {
    let Ok(reconcile) = config.reconcile() else {
        return Ok(());
    };
    let now = store.now();
    let step = usize::try_from(check.round)
        .unwrap_or(usize::MAX)
        .min(reconcile.schedule.len().saturating_sub(1));
    let delay = reconcile
        .schedule
        .get(step)
        .map_or(u64::MAX, |d| millis(*d));
    let mut at = now.saturating_add(delay);
    if now < check.closes_at {
        at = at.min(check.closes_at);
    }
    if at >= check.ends_at {
        return Ok(());
    }
    store.schedule_reconcile(
        &check.id,
        check.epoch,
        (check.round.saturating_add(1), false),
        at,
    )
}

/// What confirming a notice found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// The gateway answered; its answers were applied.
    Heard(Heard),
    /// Every invoice of the deposit is settled already: nothing to ask.
    Settled,
}

/// A verified notice whose proof does not cover the fields that decide the money: asks the
/// gateway about the deposit it names and applies only the gateway's answer. When no usable
/// answer comes, the sweep is asked to check at once and the caller answers
/// `GATEWAY_UNCONFIRMED`, so the gateway sends its notice again.
pub fn confirm(
    platform: &Platform,
    config: &Config,
    gateway: &impl PaymentGateway,
    notice: &PaymentNotice,
) -> Result<Confirmed, ApiError> {
    let store = DepositStore::new(platform, config.lifetime()?);
    let id = match (&notice.deposit_id, &notice.reference) {
        (Some(id), _) => id.clone(),
        (None, Some(reference)) => {
            store
                .invoice(reference)?
                .ok_or(ApiError::DepositNotFound)?
                .deposit_id
        }
        (None, None) => return Err(ApiError::DepositNotFound),
    };
    let deposit = store.deposit(&id)?.ok_or(ApiError::DepositNotFound)?;
    if deposit.v.gateway != gateway.name() {
        return Err(ApiError::gateway_mismatch());
    }
    let now = store.now();
    if !is_alive(&store, &deposit, now)? {
        return Err(ApiError::DepositNotFound);
    }
    if let Some(reference) = &notice.reference {
        if !store
            .invoices(&deposit.v)?
            .iter()
            .any(|i| i.reference == *reference)
        {
            return Err(ApiError::reference_mismatch());
        }
    }
    let Some(mut check) = Check::of(&store, config.lifetime()?, &deposit, (0, true))? else {
        return Ok(Confirmed::Settled);
    };
    if let (Some(reference), true) = (&notice.reference, gateway.asks_by_reference()) {
        // Ask about the invoice the notice names.
        check.open.retain(|i| i.reference == *reference);
        if check.open.is_empty() {
            return Ok(Confirmed::Settled);
        }
    }
    let queries = check.queries(gateway, now);
    let (names, requests): (Vec<_>, Vec<_>) = queries.into_iter().unzip();
    let answers = platform.http.send_all(requests);
    let replies = names
        .into_iter()
        .zip(answers.into_iter().map(Some))
        .collect();
    let heard = hear(platform, config, gateway, (&check, now), replies)?;
    if heard.answered == 0 {
        // One check of its own, soon: the deposit's own chain goes on as it was.
        store.schedule_reconcile(&check.id, check.epoch, (0, true), now)?;
        return Err(ApiError::GatewayUnconfirmed(serde_json::json!({
            "gateway": gateway.name().as_str(),
            "depositId": check.id,
        })));
    }
    Ok(Confirmed::Heard(heard))
}
