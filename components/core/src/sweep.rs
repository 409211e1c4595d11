//! Durable credit retries: the sweep behind `POST /internal/credit-retry` and the operator's
//! manual retry of one deposit.
//!
//! The sweep never scans deposits: it lists the `claims` store, whose `paid:{id}` keys are
//! exactly the payments not yet seen credited. Each delivery is owned through an attempt claim
//! (`attempt:{id}:{generation}` incremented to 1), so concurrent sweeps and manual retries never
//! send the same credit twice; an owner that dies leaves an expiring lease behind.

use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::credit::{credit_request, AttemptKind, Credit, DeliveryOutcome};
use crate::envelope::Opened;
use crate::error::ApiError;
use crate::platform::{Platform, StoreError};
use crate::replay::is_expired_nonce_key;
use crate::storage::{DepositStore, StoredDeposit};

/// Deliveries sent concurrently.
const BATCH_SIZE: usize = 16;
/// Most deliveries one sweep makes.
const MAX_DELIVERIES: usize = 256;
/// A sweep starts no new batch of deliveries after this long (ms).
const TIME_BUDGET_MS: u64 = 20_000;
/// A sweep stops checking claims after this long (ms) ...
const SCAN_BUDGET_MS: u64 = 5_000;
/// ... or after this many; the rest wait for the next sweep.
const MAX_SCANNED: usize = 20_000;

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Always true.
    pub ok: bool,
    /// Deliveries attempted.
    pub attempted: u32,
    /// Deliveries the bot accepted.
    pub credited: u32,
    /// Deliveries that failed (rescheduled or exhausted).
    pub failed: u32,
    /// Payment claims left after this sweep: deposits not yet credited, plus any this sweep
    /// had no time to check (then `more` is true).
    pub remaining: u32,
    /// True when claims were left unchecked; run the sweep again.
    pub more: bool,
    /// Of those, how many gave up and wait for a manual retry.
    pub exhausted: u32,
    /// Finished claims and expired nonces removed.
    pub cleaned: u32,
}

struct Delivery {
    stored: StoredDeposit,
    credit: Credit,
}

/// Runs one sweep.
pub fn run_sweep(platform: &Platform, config: &Config) -> Result<SweepReport, ApiError> {
    let store = DepositStore::new(platform, config);
    let started = platform.clock.now_ms();
    let index = store.claim_index()?;
    let mut report = SweepReport {
        ok: true,
        ..SweepReport::default()
    };
    let mut finished: Vec<String> = index
        .nonces
        .iter()
        .filter(|key| is_expired_nonce_key(key, started, config.nonce_ttl_ms))
        .cloned()
        .collect();
    let mut due = Vec::new();

    for (scanned, id) in index.paid.iter().enumerate() {
        if scanned >= MAX_SCANNED
            || platform.clock.now_ms().saturating_sub(started) > SCAN_BUDGET_MS
        {
            let unchecked = index.paid.len() - scanned;
            report.remaining += u32::try_from(unchecked).unwrap_or(u32::MAX);
            report.more = true;
            break;
        }
        // A finished claim takes its attempt claims and any orphan mark with it.
        let retire = |finished: &mut Vec<String>| -> Result<(), StoreError> {
            finished.push(store.payment_claim(id));
            finished.extend(index.attempts.get(id).cloned().unwrap_or_default());
            if index.orphans.contains(id) {
                finished.push(store.clear_orphan(id)?);
            }
            Ok(())
        };
        // Most claims belong to credits already delivered: one read settles those.
        let credit = store.read_credit(id, started)?;
        let delivered = match &credit {
            Some(Opened::Live(e) | Opened::Expired(e)) => e.v.is_credited(),
            None => false,
        };
        if delivered {
            retire(&mut finished)?;
            continue;
        }
        let stored = store.load_with_credit(id, started, credit)?;
        match stored.as_ref().map(|s| s.credit.as_ref()) {
            // Deposit gone, or credited meanwhile: the claim has done its job.
            None => retire(&mut finished)?,
            Some(Some(credit)) if credit.is_credited() => retire(&mut finished)?,
            Some(Some(credit)) => {
                report.remaining += 1;
                if credit.is_exhausted() {
                    report.exhausted += 1;
                } else if credit.is_due(started) {
                    if let Some(stored) = stored {
                        due.push(stored);
                    }
                }
            }
            // Claimed but never recorded: the winner died between claim and record, or is
            // between them right now. Take over only after a full lease since first seen.
            Some(None) => {
                report.remaining += 1;
                match store.orphan_mark(id, started)? {
                    None => store.mark_orphan(id, started)?,
                    Some(mark) if started >= mark.first_seen.saturating_add(lease_ms(config)) => {
                        if let Some(stored) = stored {
                            due.push(stored);
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }

    report.cleaned = u32::try_from(finished.len()).unwrap_or(u32::MAX);
    store.delete_claims(&finished)?;

    let mut pending = due.into_iter().take(MAX_DELIVERIES);
    loop {
        if platform.clock.now_ms().saturating_sub(started) > TIME_BUDGET_MS {
            break;
        }
        let mut batch = Vec::new();
        for stored in pending.by_ref() {
            if let Some(delivery) = take_over(&store, platform, config, stored)? {
                batch.push(delivery);
                if batch.len() == BATCH_SIZE {
                    break;
                }
            }
        }
        if batch.is_empty() {
            break;
        }
        let credited = deliver(&store, platform, config, batch, AttemptKind::Scheduled)?;
        report.attempted += credited.len() as u32;
        for ok in credited {
            if ok {
                report.credited += 1;
                report.remaining = report.remaining.saturating_sub(1);
            } else {
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

fn lease_ms(config: &Config) -> u64 {
    u64::try_from(config.credit_lease.as_millis()).unwrap_or(u64::MAX)
}

/// Claims the next delivery generation and records the lease; `None` if another owner won.
fn take_over(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    stored: StoredDeposit,
) -> Result<Option<Delivery>, StoreError> {
    let now = platform.clock.now_ms();
    let id = stored.deposit.deposit_id.clone();
    let mut credit = match &stored.credit {
        Some(credit) => credit.clone(),
        None => {
            // Recovered orphan: the payment is proven by the claim, its details were lost.
            let first_seen = store
                .orphan_mark(&id, now)?
                .map_or(now, |mark| mark.first_seen);
            let mut credit = Credit::new_payment(first_seen, None, None, config.credit_lease);
            credit.recovered = true;
            credit
        }
    };
    let generation = credit.generation.saturating_add(1);
    if !store.claim_attempt(&id, generation)? {
        return Ok(None);
    }
    credit.take_over(generation, now, config.credit_lease);
    store.save_credit(&stored, &credit, now)?;
    Ok(Some(Delivery { stored, credit }))
}

/// Sends a batch concurrently and records each outcome; returns which were accepted.
fn deliver(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    batch: Vec<Delivery>,
    kind: AttemptKind,
) -> Result<Vec<bool>, StoreError> {
    let now = platform.clock.now_ms();
    let requests = batch
        .iter()
        .map(|d| {
            credit_request(
                config,
                &d.stored.deposit,
                &d.credit,
                now,
                config.bot_timeout,
            )
        })
        .collect();
    let results = platform.http.send_all(requests);
    let done = platform.clock.now_ms();
    let mut accepted = Vec::with_capacity(batch.len());
    for (mut delivery, result) in batch.into_iter().zip(results) {
        let outcome = DeliveryOutcome::classify(result);
        delivery.credit.record(&outcome, 1, kind, done, config);
        store.save_credit(&delivery.stored, &delivery.credit, done)?;
        accepted.push(outcome.is_success());
    }
    Ok(accepted)
}

/// Result of an operator's manual retry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManualRetry {
    /// Always true.
    pub ok: bool,
    /// The deposit.
    pub deposit_id: String,
    /// Whether the deposit is now credited.
    pub credited: bool,
    /// True when it was credited before this call and nothing was sent.
    pub already_credited: bool,
    /// Outcome of the delivery.
    pub credit_result: Option<serde_json::Value>,
}

/// Delivers one paid deposit now, whatever its schedule.
pub fn retry_one(platform: &Platform, config: &Config, id: &str) -> Result<ManualRetry, ApiError> {
    let store = DepositStore::new(platform, config);
    let now = platform.clock.now_ms();
    let stored = store.load(id, now)?.ok_or(ApiError::DepositNotFound)?;
    let Some(credit) = &stored.credit else {
        return Err(ApiError::Conflict {
            code: "NOT_PAID",
            message: "the deposit is not paid".into(),
            detail: Some(json!({ "status": stored.deposit.status })),
        });
    };
    if credit.is_credited() {
        return Ok(ManualRetry {
            ok: true,
            deposit_id: id.to_string(),
            credited: true,
            already_credited: true,
            credit_result: credit.last_result.clone(),
        });
    }
    let in_progress = || ApiError::Conflict {
        code: "CREDIT_IN_PROGRESS",
        message: "a delivery of this credit is in progress".into(),
        detail: Some(json!({ "retryAfter": credit.next_attempt_at() })),
    };
    if credit.is_in_flight(now) {
        return Err(in_progress());
    }
    let Some(delivery) = take_over(&store, platform, config, stored.clone())? else {
        return Err(in_progress());
    };
    let accepted = deliver(
        &store,
        platform,
        config,
        vec![delivery],
        AttemptKind::Manual,
    )?;
    let after = store.load(id, platform.clock.now_ms())?;
    let result = after.and_then(|s| s.credit).and_then(|c| c.last_result);
    if accepted.first() == Some(&true) {
        Ok(ManualRetry {
            ok: true,
            deposit_id: id.to_string(),
            credited: true,
            already_credited: false,
            credit_result: result,
        })
    } else {
        Err(ApiError::CreditFailed(
            json!({ "depositId": id, "creditResult": result }),
        ))
    }
}
