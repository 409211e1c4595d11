//! Typed access to both labels: every read and write of the service goes through
//! [`DepositStore`], over the key layout in [`keys`].

pub mod counter;
pub mod keys;
pub mod schedule;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::alert::{Alert, AlertLog};
use crate::config::Lifetime;
use crate::credit::{Credit, CreditLog};
use crate::deposit::note::Note;
use crate::deposit::{Deposit, Invoice};
use crate::envelope::Envelope;
use crate::ids::{DepositId, Reference};
use crate::platform::{Clock, KeyValue, Platform, StoreError};
use schedule::{AlertTask, Due, Task, ALERTS, CREDITS, EXPIRY, RECONCILE};

/// Records whose life the sweep manages (credits, notes) carry no expiry of their own.
const NO_EXPIRY: u64 = u64::MAX;
/// How many generation records a read walks down before giving up on older ones.
const GENERATION_WALK: u32 = 16;
/// How many quarantined records are kept for an operator.
pub const QUARANTINE_KEPT: u64 = 100;

/// A create's claim seen taken but not written: its claimer is at work, or died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hold {
    /// The claim number.
    pub token: u64,
    /// When it was first seen so (Unix ms).
    pub since: u64,
}

/// Typed access to deposits, invoices, credits, notes, claims and schedules.
pub struct DepositStore<'a> {
    /// Label `default`.
    pub records: &'a dyn KeyValue,
    /// Label `claims`.
    pub claims: &'a dyn KeyValue,
    /// The clock (schedules need it around their writes).
    pub clock: &'a dyn Clock,
    ttl_ms: u64,
}

fn encode<T: Serialize>(value: &T, exp: u64) -> Vec<u8> {
    Envelope::new(value, exp).encode()
}

impl<'a> DepositStore<'a> {
    /// Store access for a request.
    pub fn new(platform: &Platform<'a>, lifetime: &Lifetime) -> Self {
        Self {
            records: platform.records,
            claims: platform.claims,
            clock: platform.clock,
            ttl_ms: lifetime.deposit_ttl_ms,
        }
    }

    /// Now (Unix ms).
    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The retention period (ms).
    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    /// When a record written now ends its life.
    pub fn expiry_from(&self, at: u64) -> u64 {
        at.saturating_add(self.ttl_ms)
    }

    fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Envelope<T>>, StoreError> {
        match self.records.get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{key}: {e}"))),
        }
    }

    fn counter(store: &dyn KeyValue, key: &str) -> Result<u64, StoreError> {
        match store.get(key)? {
            None => Ok(0),
            Some(bytes) => Ok(u64::try_from(counter::decode(key, &bytes)?).unwrap_or(0)),
        }
    }

    // ----- deposits and invoices

    /// The deposit record and its expiry (past or not).
    pub fn deposit(&self, id: &DepositId) -> Result<Option<Envelope<Deposit>>, StoreError> {
        self.read(&keys::deposit(id))
    }

    /// The invoice a gateway reference names.
    pub fn invoice(&self, reference: &Reference) -> Result<Option<Invoice>, StoreError> {
        Ok(self
            .read::<Invoice>(&keys::reference(reference))?
            .map(|e| e.v))
    }

    /// Stores a deposit whose invoice exists, its invoice index and its expiry task (and
    /// `first_check`, its first status check), in one write plus one slot number a task (a
    /// generated id: nobody else can hold it).
    pub fn insert_open(
        &self,
        deposit: &Deposit,
        invoice: &Invoice,
        first_check: Option<Due>,
    ) -> Result<(), StoreError> {
        let exp = self.expiry_from(deposit.created_at);
        let expiry = Due {
            schedule: EXPIRY,
            at_ms: exp,
            task: Task::Expire {
                id: deposit.deposit_id.clone(),
            },
        };
        let tasks = std::iter::once(expiry).chain(first_check).collect();
        let records = vec![
            (keys::deposit(&deposit.deposit_id), encode(deposit, exp)),
            (keys::reference(&invoice.reference), encode(invoice, exp)),
        ];
        schedule::add_all(self.claims, self.records, self.clock, tasks, records)
    }

    /// Stores a create's hold on a chosen id, with the expiry task that removes it if the
    /// create never finishes.
    pub fn insert_intent(&self, deposit: &Deposit) -> Result<(), StoreError> {
        let exp = self.expiry_from(deposit.created_at);
        let record = (keys::deposit(&deposit.deposit_id), encode(deposit, exp));
        self.schedule_expiry(&deposit.deposit_id, exp, vec![record])
    }

    /// Adds the task that removes deposit `id` at `at`, with `records` in the same write.
    pub fn schedule_expiry(
        &self,
        id: &DepositId,
        at: u64,
        records: Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let task = Task::Expire { id: id.clone() };
        EXPIRY.add(self.claims, self.records, self.clock, at, &task, records)
    }

    /// The task that asks the gateway about deposit `id` (epoch `epoch`) at `at`, as check
    /// `round` of its chain, or `once` as a check of its own.
    pub fn reconcile_task(id: &DepositId, epoch: u64, (round, once): (u32, bool), at: u64) -> Due {
        Due {
            schedule: RECONCILE,
            at_ms: at,
            task: Task::Reconcile {
                id: id.clone(),
                epoch,
                round,
                once,
            },
        }
    }

    /// Adds [`Self::reconcile_task`].
    pub fn schedule_reconcile(
        &self,
        id: &DepositId,
        epoch: u64,
        round: (u32, bool),
        at: u64,
    ) -> Result<(), StoreError> {
        self.schedule(Self::reconcile_task(id, epoch, round, at))
    }

    /// Adds a task on its own.
    pub fn schedule(&self, due: Due) -> Result<(), StoreError> {
        let Due {
            schedule,
            at_ms,
            task,
        } = due;
        schedule.add(
            self.claims,
            self.records,
            self.clock,
            at_ms,
            &task,
            Vec::new(),
        )
    }

    /// Notes that round `round` of deposit `id`'s status checks scheduled its next. Written
    /// only once the next is scheduled: a round that died before is run again.
    pub fn save_checks_done(&self, id: &DepositId, round: u32) -> Result<(), StoreError> {
        self.records.set(
            &keys::check_round(id),
            &serde_json::to_vec(&round).unwrap_or_default(),
        )
    }

    /// The last round of deposit `id`'s status checks that scheduled its next: a task of that
    /// round or an earlier one is a copy (overlapping sweeps ran it twice), and goes no further.
    pub fn checks_done(&self, id: &DepositId) -> Result<Option<u32>, StoreError> {
        match self.records.get(&keys::check_round(id))? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", keys::check_round(id)))),
        }
    }

    /// Rewrites a deposit record (its creation moved on), keeping its expiry. With `invoice`,
    /// also its index and the create's own record of handing it out (`inv:{id}:{token}`),
    /// which no later create overwrites.
    pub fn save_deposit(
        &self,
        deposit: &Deposit,
        invoice: Option<&Invoice>,
    ) -> Result<(), StoreError> {
        let exp = self.expiry_from(deposit.created_at);
        let id = &deposit.deposit_id;
        let mut entries = vec![(keys::deposit(id), encode(deposit, exp))];
        if let Some(invoice) = invoice {
            let record = encode(invoice, exp);
            entries.push((keys::reference(&invoice.reference), record.clone()));
            let token = deposit.creation.token();
            if token > 0 {
                entries.push((keys::handed_out(id, token), record));
            }
        }
        self.records.set_many(&entries)
    }

    /// Every invoice handed out for `deposit`'s era, oldest first: those its creates recorded
    /// (a create overtaken in its last instant may have handed out one the record no longer
    /// names), and the record's own.
    pub fn invoices(&self, deposit: &Deposit) -> Result<Vec<Invoice>, StoreError> {
        let mut invoices = self.handed_out(deposit)?;
        invoices.retain(|i| i.epoch == deposit.epoch);
        Ok(invoices)
    }

    /// Every invoice recorded for `deposit`'s id, of any era (what its removal deletes).
    pub fn handed_out(&self, deposit: &Deposit) -> Result<Vec<Invoice>, StoreError> {
        let id = &deposit.deposit_id;
        let mut invoices: Vec<Invoice> = Vec::new();
        for token in 1..=self.creates(id)? {
            if let Some(envelope) = self.read::<Invoice>(&keys::handed_out(id, token))? {
                invoices.push(envelope.v);
            }
        }
        if let Some(own) = deposit.invoice() {
            if !invoices.iter().any(|i| i.reference == own.reference) {
                invoices.push(own);
            }
        }
        Ok(invoices)
    }

    /// Creates of a chosen id so far (the create claim counter).
    pub fn creates(&self, id: &DepositId) -> Result<u64, StoreError> {
        Self::counter(self.claims, &keys::create_claim(id))
    }

    /// Whether a removal of `id` has begun and not finished (its last step forgets it).
    pub fn removal_unfinished(&self, id: &DepositId) -> Result<bool, StoreError> {
        Ok(Self::counter(self.claims, &keys::life(id))? > 0)
    }

    /// Since when claim `token` of `id` was seen unwritten, if it was.
    pub fn hold(&self, id: &DepositId) -> Result<Option<Hold>, StoreError> {
        Ok(self.read::<Hold>(&keys::hold(id))?.map(|e| e.v))
    }

    /// Notes that claim `token` of `id` was seen unwritten at `since` (with its expiry task,
    /// in case the id is never created).
    pub fn save_hold(&self, id: &DepositId, hold: Hold) -> Result<(), StoreError> {
        let exp = self.expiry_from(hold.since);
        self.schedule_expiry(id, exp, vec![(keys::hold(id), encode(&hold, exp))])
    }

    /// Counts one more create of `id`; returns its number.
    pub fn claim_create(&self, id: &DepositId) -> Result<u64, StoreError> {
        let n = self.claims.increment(&keys::create_claim(id), 1)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    // ----- credits

    /// `credit:{id}` (generation 0, or the last owner's copy).
    pub fn head(&self, id: &DepositId) -> Result<Option<Credit>, StoreError> {
        Ok(self.read::<Credit>(&keys::credit(id, 0))?.map(|e| e.v))
    }

    /// The last owner generation handed out.
    pub fn generation(&self, id: &DepositId) -> Result<u32, StoreError> {
        Ok(u32::try_from(Self::counter(self.records, &keys::generation(id))?).unwrap_or(u32::MAX))
    }

    /// A deposit's credit for a reader: like [`Self::credit_log`], but with no credit written
    /// at all it reads nothing more (every owner's write includes `credit:{id}`), and its
    /// `generation` is then 0 whatever the counter says: never take over from it.
    pub fn credit_view(&self, id: &DepositId) -> Result<CreditLog, StoreError> {
        match self.head(id)? {
            None => Ok(CreditLog::default()),
            Some(head) if head.is_credited() => Ok(CreditLog {
                latest: Some(head.clone()),
                head: Some(head),
                generation: 0,
            }),
            head => self.credit_log_after(id, head),
        }
    }

    /// Everything needed to know a deposit's credit for sure: the hint, and unless the hint
    /// already says credited, the highest generation's record.
    pub fn credit_log(&self, id: &DepositId) -> Result<CreditLog, StoreError> {
        let head = self.head(id)?;
        if head.as_ref().is_some_and(Credit::is_credited) {
            return Ok(CreditLog {
                latest: head.clone(),
                head,
                generation: 0,
            });
        }
        self.credit_log_after(id, head)
    }

    /// [`Self::credit_log`] with the hint already read.
    pub fn credit_log_after(
        &self,
        id: &DepositId,
        head: Option<Credit>,
    ) -> Result<CreditLog, StoreError> {
        // A success is final whoever wrote it; a later owner's failure may have overwritten
        // the hint, never this key.
        if let Some(credited) = self.read::<Credit>(&keys::credited(id))? {
            return Ok(CreditLog {
                latest: Some(credited.v),
                head,
                generation: self.generation(id)?,
            });
        }
        let generation = self.generation(id)?;
        let mut latest = None;
        // An owner that died after taking its generation wrote nothing: walk down.
        for g in (1..=generation).rev().take(GENERATION_WALK as usize) {
            if let Some(envelope) = self.read::<Credit>(&keys::credit(id, g))? {
                latest = Some(envelope.v);
                break;
            }
        }
        Ok(CreditLog {
            latest: latest.or_else(|| head.clone()),
            head,
            generation,
        })
    }

    /// Claims the payment of a deposit; only the first caller gets `true`.
    pub fn claim_payment(&self, id: &DepositId) -> Result<bool, StoreError> {
        Ok(self.claims.increment(&keys::payment_claim(id), 1)? == 1)
    }

    /// Whether any callback claimed the payment.
    pub fn payment_claimed(&self, id: &DepositId) -> Result<bool, StoreError> {
        Ok(Self::counter(self.claims, &keys::payment_claim(id))? > 0)
    }

    /// Takes the next owner generation; `Some(g)` only if it is exactly `after + 1`.
    pub fn claim_generation(&self, id: &DepositId, after: u32) -> Result<Option<u32>, StoreError> {
        let got = self.records.increment(&keys::generation(id), 1)?;
        Ok((got == i64::from(after) + 1).then_some(after + 1))
    }

    /// The records an owner writes: its generation's key, the hint, and on success the
    /// success.
    fn credit_entries(&self, credit: &Credit) -> Vec<(String, Vec<u8>)> {
        let value = encode(credit, NO_EXPIRY);
        let id = &credit.deposit_id;
        let mut entries = vec![(keys::credit(id, 0), value.clone())];
        if credit.generation > 0 {
            entries.push((keys::credit(id, credit.generation), value.clone()));
        }
        if credit.is_credited() {
            entries.push((keys::credited(id), value));
        }
        entries
    }

    /// Writes an owner's state.
    pub fn save_credit(&self, credit: &Credit) -> Result<(), StoreError> {
        self.records.set_many(&self.credit_entries(credit))
    }

    /// Writes an owner's state together with a task to check the credit at `at`.
    pub fn save_credit_due(&self, credit: &Credit, at: u64) -> Result<(), StoreError> {
        self.schedule_credit(&credit.deposit_id, at, self.credit_entries(credit))
    }

    /// Adds a task to check deposit `id`'s credit at `at`, with `records` in the same write.
    pub fn schedule_credit(
        &self,
        id: &DepositId,
        at: u64,
        records: Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        self.add_credit_task(id, at, None, records)
    }

    /// Adds a task to look at deposit `id`'s credit again at `at`, when generation `waited`
    /// (taken, nothing written yet) has had time to write.
    pub fn schedule_credit_wait(
        &self,
        id: &DepositId,
        at: u64,
        waited: u32,
    ) -> Result<(), StoreError> {
        self.add_credit_task(id, at, Some(waited), Vec::new())
    }

    fn add_credit_task(
        &self,
        id: &DepositId,
        at: u64,
        waited: Option<u32>,
        records: Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let task = Task::Credit {
            id: id.clone(),
            waited,
        };
        CREDITS.add(self.claims, self.records, self.clock, at, &task, records)
    }

    // ----- notes

    /// Every note of deposit `id` (of any epoch), oldest first.
    pub fn notes(&self, id: &DepositId) -> Result<Vec<Note>, StoreError> {
        let count = Self::counter(self.records, &keys::note_count(id))?;
        let mut notes = Vec::new();
        for n in 1..=count {
            if let Some(envelope) = self.read::<Note>(&keys::note(id, n))? {
                notes.push(envelope.v);
            }
        }
        Ok(notes)
    }

    /// Adds a note unless `existing` already holds the same one; with `check_at`, also a task
    /// to check the deposit's credit then (in the same write). `true` if the note was written.
    pub fn add_note(
        &self,
        id: &DepositId,
        note: &Note,
        existing: &[Note],
        check_at: Option<u64>,
    ) -> Result<bool, StoreError> {
        if existing.iter().any(|n| n.repeats(note)) {
            if let Some(at) = check_at {
                self.schedule_credit(id, at, Vec::new())?;
            }
            return Ok(false);
        }
        let n = self.records.increment(&keys::note_count(id), 1)?;
        let entry = (
            keys::note(id, u64::try_from(n).unwrap_or(0)),
            encode(note, NO_EXPIRY),
        );
        match check_at {
            Some(at) => self.schedule_credit(id, at, vec![entry])?,
            None => self.records.set_many(&[entry])?,
        }
        Ok(true)
    }

    // ----- nonces

    /// Whether `nonce` was used (and not yet forgotten).
    pub fn nonce_used(&self, nonce: &str) -> Result<bool, StoreError> {
        Ok(self.claims.get(&keys::nonce(nonce))?.is_some())
    }

    /// Uses `nonce`; `false` if another request used it first. Its expiry task is written
    /// first, so a nonce key never outlives its lifetime unseen.
    pub fn claim_nonce(&self, nonce: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        self.schedule_nonce_expiry(nonce, ttl_ms)?;
        Ok(self.claims.increment(&keys::nonce(nonce), 1)? == 1)
    }

    /// Adds the task that forgets `nonce` one `ttl_ms` from now.
    pub fn schedule_nonce_expiry(&self, nonce: &str, ttl_ms: u64) -> Result<(), StoreError> {
        let forget_at = self.now().saturating_add(ttl_ms);
        let task = Task::Nonce {
            nonce: nonce.to_string(),
        };
        EXPIRY.add(
            self.claims,
            self.records,
            self.clock,
            forget_at,
            &task,
            Vec::new(),
        )
    }

    /// Uses `nonce`, which a record of its deposit already names (a note or the credit this
    /// callback wrote): removed with the deposit, so it needs no expiry task. `false` if
    /// another request used it first.
    pub fn claim_recorded_nonce(&self, nonce: &str) -> Result<bool, StoreError> {
        Ok(self.claims.increment(&keys::nonce(nonce), 1)? == 1)
    }

    /// Forgets a nonce.
    pub fn forget_nonce(&self, nonce: &str) -> Result<(), StoreError> {
        self.claims.delete(&keys::nonce(nonce))
    }

    // ----- quarantine

    /// Keeps a record the sweep could not read where an operator can find it (the last
    /// [`QUARANTINE_KEPT`]).
    pub fn quarantine(&self, what: &str, reason: &str) -> Result<(), StoreError> {
        let n = u64::try_from(self.records.increment(keys::QUARANTINE_COUNT, 1)?).unwrap_or(0);
        let entry = json!({ "what": what, "reason": reason, "at": self.now() });
        self.records
            .set(&keys::quarantined(n), entry.to_string().as_bytes())?;
        if n > QUARANTINE_KEPT {
            self.records
                .delete(&keys::quarantined(n - QUARANTINE_KEPT))?;
        }
        Ok(())
    }

    /// The quarantined records, newest first.
    pub fn quarantined(&self) -> Result<Vec<Value>, StoreError> {
        let n = Self::counter(self.records, keys::QUARANTINE_COUNT)?;
        let mut entries = Vec::new();
        for i in (n.saturating_sub(QUARANTINE_KEPT) + 1..=n).rev() {
            if let Some(bytes) = self.records.get(&keys::quarantined(i))? {
                entries.push(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
            }
        }
        Ok(entries)
    }

    /// The records set aside after number `after` (of the last [`QUARANTINE_KEPT`]), oldest
    /// first, and the number of the last one.
    pub fn quarantined_after(&self, after: u64) -> Result<(u64, Vec<Value>), StoreError> {
        let n = Self::counter(self.records, keys::QUARANTINE_COUNT)?;
        let mut entries = Vec::new();
        for i in after.max(n.saturating_sub(QUARANTINE_KEPT)) + 1..=n {
            if let Some(bytes) = self.records.get(&keys::quarantined(i))? {
                entries.push(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
            }
        }
        Ok((n, entries))
    }

    // ----- alerts

    /// The number of the last quarantined record alerted.
    pub fn alerted_quarantine(&self) -> Result<u64, StoreError> {
        Ok(self
            .records
            .get(keys::ALERTED_QUARANTINE)?
            .and_then(|bytes| String::from_utf8(bytes).ok()?.parse().ok())
            .unwrap_or(0))
    }

    /// Records that quarantined records up to number `n` were alerted.
    pub fn save_alerted_quarantine(&self, n: u64) -> Result<(), StoreError> {
        self.records
            .set(keys::ALERTED_QUARANTINE, n.to_string().as_bytes())
    }

    /// Raises `alert` unless its subject was alerted of this kind (and not yet forgotten):
    /// its record and the task of its first attempt, in one write; `true` if it did.
    pub fn raise_alert(&self, alert: &Alert) -> Result<bool, StoreError> {
        let kind = alert.kind.as_str();
        let key = keys::alert(kind, &alert.subject);
        if self.records.get(&key)?.is_some() {
            return Ok(false);
        }
        let now = self.now();
        let task = AlertTask::Attempt {
            kind: kind.into(),
            subject: alert.subject.clone(),
            n: 0,
        }
        .task();
        let entry = (key, encode(alert, self.alert_exp(now)));
        ALERTS.add(
            self.claims,
            self.records,
            self.clock,
            now,
            &task,
            vec![entry],
        )?;
        Ok(true)
    }

    /// Forgotten a lifetime after its delivery ends; its keys expire two lifetimes after they
    /// are written in case that task is lost.
    fn alert_exp(&self, now: u64) -> u64 {
        now.saturating_add(self.ttl_ms.saturating_mul(2))
    }

    /// An alert raised and not forgotten, with its delivery so far.
    pub fn alert(
        &self,
        kind: &str,
        subject: &str,
    ) -> Result<Option<(Alert, Option<AlertLog>)>, StoreError> {
        let Some(alert) = self.read::<Alert>(&keys::alert(kind, subject))? else {
            return Ok(None);
        };
        let log = self.read::<AlertLog>(&keys::alert_log(kind, subject))?;
        Ok(Some((alert.v, log.map(|l| l.v))))
    }

    /// Claims attempt `n` of an alert; `false` if another run made it.
    pub fn claim_alert_attempt(&self, alert: &Alert, n: u32) -> Result<bool, StoreError> {
        let key = keys::alert_attempt(alert.kind.as_str(), &alert.subject, n);
        Ok(self.claims.increment(&key, 1)? == 1)
    }

    /// Writes an alert's delivery, with `then` (a task and when it is due) in the same write.
    pub fn save_alert_log(
        &self,
        alert: &Alert,
        log: &AlertLog,
        then: Option<(Task, u64)>,
    ) -> Result<(), StoreError> {
        let entry = (
            keys::alert_log(alert.kind.as_str(), &alert.subject),
            encode(log, self.alert_exp(self.now())),
        );
        match then {
            Some((task, at)) => ALERTS.add(
                self.claims,
                self.records,
                self.clock,
                at,
                &task,
                vec![entry],
            ),
            None => self.records.set_many(&[entry]),
        }
    }

    /// Deletes an alert, its delivery and the claims of its `attempts` attempts: its subject
    /// may be alerted again.
    pub fn forget_alert(&self, kind: &str, subject: &str, attempts: u32) -> Result<(), StoreError> {
        let claims: Vec<String> = (0..=attempts)
            .map(|n| keys::alert_attempt(kind, subject, n))
            .collect();
        self.claims.delete_many(&claims)?;
        self.records
            .delete_many(&[keys::alert(kind, subject), keys::alert_log(kind, subject)])
    }

    // ----- removal

    /// Deletes every key of a deposit in two deletes, one per label (each one statement on
    /// SQLite, one `DEL` on Redis): first what finds it (`references`, which must name every
    /// invoice it handed out, then its record and its creates' invoice records) with its
    /// notes and credit records, then its claims, the removal marker last. A removal that
    /// stops between them leaves only claims, which a repeat finds by name. The `nonces` its
    /// records name go first, in a delete of their own, while those records still exist.
    pub fn remove_deposit(
        &self,
        id: &DepositId,
        (references, nonces): (&[Reference], &[String]),
        generation: u32,
    ) -> Result<(), StoreError> {
        // A create of the id waits until this removal ends (see `removal_unfinished`).
        self.claims.increment(&keys::life(id), 1)?;
        if !nonces.is_empty() {
            let doomed: Vec<String> = nonces.iter().map(|n| keys::nonce(n)).collect();
            self.claims.delete_many(&doomed)?;
        }
        let notes = Self::counter(self.records, &keys::note_count(id))?;
        let creates = self.creates(id)?;
        let mut doomed: Vec<String> = references.iter().map(keys::reference).collect();
        doomed.push(keys::deposit(id));
        doomed.extend((1..=creates).map(|token| keys::handed_out(id, token)));
        doomed.extend((1..=notes).map(|n| keys::note(id, n)));
        doomed.extend((1..=generation).map(|g| keys::credit(id, g)));
        doomed.extend([
            keys::note_count(id),
            keys::generation(id),
            keys::credit(id, 0),
            keys::credited(id),
            keys::hold(id),
            keys::check_round(id),
        ]);
        doomed
            .chunks(1000)
            .try_for_each(|chunk| self.records.delete_many(chunk))?;
        self.claims.delete_many(&[
            keys::payment_claim(id),
            keys::create_claim(id),
            keys::life(id),
        ])
    }
}
