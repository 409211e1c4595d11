//! `POST /internal/credit-retry`: one sweep over the three schedules (credits due, pending
//! deposits to check at their gateway, then deposits and nonces to expire). Its cost is the buckets passed since the last sweep plus
//! the tasks due in them, never the size of the store. A record it cannot read is
//! quarantined and reported, and the sweep goes on; a sweep that stops early (its budget)
//! leaves a cursor, and the next one resumes there.

use serde::Serialize;

use crate::alert::AlertKind;
use crate::config::{BotRoutes, Config, Delivery, Lifetime};
use crate::credit::{AttemptKind, Credit};
use crate::error::ApiError;
use crate::flow::alerts::raise;
use crate::flow::delivery::{deliver, take_over, Orphan};
use crate::flow::expiry::{expire, Expired};
use crate::flow::reconcile::{due_check, run_checks, Check, ReconcileReport};
use crate::flow::walk::{run_schedule, TaskRunner};
use crate::ids::DepositId;
use crate::platform::millis;
use crate::platform::{Platform, StoreError};
use crate::store::schedule::{Schedule, Task, CREDITS, EXPIRY, RECONCILE};
use crate::store::DepositStore;

/// Deliveries sent concurrently.
const BATCH_SIZE: usize = 16;
/// Most deliveries one sweep makes.
const MAX_DELIVERIES: u32 = 256;
/// Most tasks one sweep runs.
const MAX_TASKS: u32 = 5_000;
/// A sweep starts no new task after this long (ms).
const TIME_BUDGET_MS: u64 = 20_000;

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Always true.
    pub ok: bool,
    /// Deliveries attempted.
    pub attempted: u32,
    /// Deliveries the bot accepted.
    pub credited: u32,
    /// Deliveries that failed (rescheduled, or exhausted).
    pub failed: u32,
    /// Deliveries of this sweep that failed and stay owed (rescheduled, or exhausted).
    /// Credits not yet due are not counted: the sweep does not look at them.
    pub remaining: u32,
    /// True when the sweep stopped early with tasks due left; run it again.
    pub more: bool,
    /// Of the failed, how many gave up and wait for a manual retry.
    pub exhausted: u32,
    /// Credits not sent because their bot is not configured (or the manifest does not allow
    /// its origin): they stay owed, counted in `remaining`, and go to that bot once it is.
    pub not_sent: u32,
    /// Payments recorded from a gateway callback whose recorder died.
    pub recovered: u32,
    /// Deposits and nonces removed at the end of their life.
    pub cleaned: u32,
    /// Records it could not read, set aside for an operator.
    pub quarantined: u32,
    /// What asking the gateways about pending deposits found. Absent while nothing was due.
    #[serde(skip_serializing_if = "ReconcileReport::is_empty")]
    pub reconciliation: ReconcileReport,
    /// Every record set aside so far (by this or an earlier sweep; the last 100, newest
    /// first): what it is, why, and when. Absent while there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quarantine: Vec<serde_json::Value>,
}

struct Sweep<'a, 'p> {
    store: DepositStore<'a>,
    platform: &'a Platform<'p>,
    config: &'a Config,
    checks: Vec<Check>,
    /// Most status queries this sweep may send.
    max_checks: u32,
    routes: BotRoutes<'a>,
    delivery: &'a Delivery,
    lifetime: &'a Lifetime,
    report: SweepReport,
    batch: Vec<Credit>,
    started: u64,
    tasks: u32,
}

/// Runs one sweep.
pub fn run_sweep(platform: &Platform, config: &Config) -> Result<SweepReport, ApiError> {
    let lifetime = config.lifetime()?;
    let store = DepositStore::new(platform, lifetime);
    let started = store.now();
    let mut sweep = Sweep {
        store,
        platform,
        config,
        checks: Vec::new(),
        max_checks: config.reconcile()?.max_per_sweep,
        routes: config.bot_routes()?,
        delivery: config.delivery()?,
        lifetime,
        report: SweepReport {
            ok: true,
            ..SweepReport::default()
        },
        batch: Vec::new(),
        started,
        tasks: 0,
    };
    run_schedule(&mut sweep, &CREDITS)?;
    sweep.flush()?;
    run_schedule(&mut sweep, &RECONCILE)?;
    sweep.flush()?;
    run_schedule(&mut sweep, &EXPIRY)?;
    sweep.report.quarantine = sweep.store.quarantined()?;
    Ok(sweep.report)
}

impl Sweep<'_, '_> {
    fn check_credit(&mut self, id: &DepositId, waited: Option<u32>) -> Result<(), StoreError> {
        let store = &self.store;
        let now = store.now();
        // The deposit's record (if it is there) says which records are its own.
        let epoch = store.deposit(id)?.map(|d| d.v.epoch);
        let log = store.credit_log(id)?.of_epoch(epoch);
        let unwritten = log.unwritten_generation();
        let owner_died = unwritten.is_some() && unwritten == waited;
        if let (Some(generation), false) = (unwritten, owner_died) {
            if !log.current().is_some_and(Credit::is_credited) {
                // Another owner took the next generation and has not written it yet: give it
                // a lease to do so before anyone else may take over.
                let at = now.saturating_add(millis(self.delivery.credit_lease));
                return store.schedule_credit_wait(id, at, generation);
            }
        }
        let orphan = match log.current() {
            Some(credit) if credit.is_credited() => return Ok(()),
            Some(_) if owner_died => None,
            Some(credit) if credit.is_exhausted() => return Ok(()),
            Some(credit) if !credit.is_due(now) => {
                // Moved later by an owner: look again then.
                let at = credit.next_attempt_at().unwrap_or(now);
                return store.schedule_credit(id, at, Vec::new());
            }
            Some(_) => None,
            None => {
                // Claimed and never recorded: recover it from the gateway's callback note,
                // one lease after that callback (its recorder may still be at work).
                let notes = store.notes(id)?;
                let Some(orphan) = Orphan::find(store, &notes, epoch)? else {
                    return Ok(());
                };
                let due = orphan
                    .facts
                    .paid_at
                    .saturating_add(millis(self.delivery.credit_lease));
                if now < due {
                    return store.schedule_credit(id, due, Vec::new());
                }
                Some(orphan)
            }
        };
        let recovering = orphan.is_some();
        if let Some(owned) = take_over(store, self.delivery, id, epoch, &log, orphan.as_ref())? {
            if recovering && owned.recovered {
                self.report.recovered += 1;
            }
            self.batch.push(owned);
            if self.batch.len() >= BATCH_SIZE {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Queues a status check of a pending deposit (sent with the bucket's others).
    fn check_at_gateway(
        &mut self,
        id: &DepositId,
        epoch: u64,
        round: (u32, bool),
    ) -> Result<(), StoreError> {
        if let Some(check) = due_check(&self.store, self.lifetime, id, epoch, round)? {
            self.checks.push(check);
            if self.checks.len() >= BATCH_SIZE {
                self.flush()?;
            }
        }
        Ok(())
    }
}

impl<'a> TaskRunner<'a> for Sweep<'a, '_> {
    fn store(&self) -> &DepositStore<'a> {
        &self.store
    }

    /// Whether to stop before the next task of `schedule` (the cursor stays on it for the
    /// next sweep).
    fn out_of_budget(&self, schedule: &Schedule) -> bool {
        let checks = self.report.reconciliation.checked + self.checks.len() as u32;
        (schedule.name == RECONCILE.name && checks >= self.max_checks)
            || self.tasks >= MAX_TASKS
            || self.report.attempted + self.batch.len() as u32 >= MAX_DELIVERIES
            || self.store.now().saturating_sub(self.started) > TIME_BUDGET_MS
    }

    fn run(&mut self, task: Task) -> Result<(), StoreError> {
        self.tasks += 1;
        let outcome = match &task {
            Task::Credit { id, waited } => self.check_credit(id, *waited),
            Task::Expire { id } => expire(&self.store, id).map(|expired| {
                if expired == Expired::Removed {
                    self.report.cleaned += 1;
                }
            }),
            Task::Nonce { nonce } => self.store.forget_nonce(nonce).map(|()| {
                self.report.cleaned += 1;
            }),
            // The alerts' schedule is walked by `POST /internal/alerts` alone.
            Task::Alert(_) => Ok(()),
            Task::Reconcile {
                id,
                epoch,
                round,
                once,
            } => self.check_at_gateway(id, *epoch, (*round, *once)),
        };
        match outcome {
            Err(StoreError::Corrupt(reason)) => {
                let what = match &task {
                    Task::Credit { id, .. } | Task::Expire { id } | Task::Reconcile { id, .. } => {
                        format!("deposit {id}")
                    }
                    Task::Nonce { nonce } => format!("nonce {nonce}"),
                    Task::Alert(_) => "an alert task".to_string(),
                };
                self.quarantine(&what, &reason)
            }
            other => other,
        }
    }

    fn quarantine(&mut self, what: &str, reason: &str) -> Result<(), StoreError> {
        self.report.quarantined += 1;
        // Alerted by the alerts' run, which reads the quarantine.
        self.store.quarantine(what, reason)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if !self.checks.is_empty() {
            let checks = std::mem::take(&mut self.checks);
            let corrupt = run_checks(
                &self.store,
                self.platform,
                self.config,
                checks,
                &mut self.report.reconciliation,
            )?;
            for (id, reason) in corrupt {
                self.quarantine(&format!("deposit {id}"), &reason)?;
            }
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let done = deliver(
            &self.store,
            self.platform,
            self.routes,
            batch,
            AttemptKind::Scheduled,
        )?;
        for (credit, held) in done {
            if let Some(why) = held {
                // Reported where the operator looks: the bot whose credits are held.
                eprintln!(
                    "sweep: credit of {} held: {}",
                    credit.deposit_id,
                    why.config_error()
                );
                self.report.not_sent += 1;
                self.report.remaining += 1;
                continue;
            }
            self.report.attempted += 1;
            if credit.is_credited() {
                self.report.credited += 1;
            } else {
                self.report.failed += 1;
                self.report.remaining += 1;
                if credit.is_exhausted() {
                    // Only a sweep's attempts count toward giving up, and it never sends an
                    // exhausted credit: this attempt was the last.
                    self.report.exhausted += 1;
                    let id = credit.deposit_id.as_str();
                    raise(
                        self.platform.variables,
                        &self.store,
                        AlertKind::Exhausted,
                        id,
                        "",
                    );
                }
            }
        }
        Ok(())
    }

    fn more(&mut self) {
        self.report.more = true;
    }
}
