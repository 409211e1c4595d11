//! Time-bucketed work lists: how the sweep finds what is due without listing keys.
//!
//! A task due at `t` goes into bucket `t / width`: `increment` on `count:{name}:{bucket}` in
//! `claims` hands out a slot number `n`, and `slot:{name}:{bucket}:{n}` in `default` holds the
//! task (written in the same `set_many` as whatever record the task is about). The sweep
//! visits buckets in order from a cursor, each only once its end is [`CLOCK_MARGIN_MS`] in the
//! past, reads slots `1..=count`, runs them and deletes the bucket. Markers per day and per
//! block of buckets (`day:{name}:{day}`, `block:{name}:{block}`, set by a bucket's first
//! writer) let it skip empty stretches with one read. Its cost is the days and blocks passed
//! plus the tasks due, whatever the history.
//!
//! A writer whose clock, read after its slot was written, has reached the bucket's end cannot
//! rule out that the sweep already read that bucket, so it adds the task again to a later
//! bucket (a task may run twice; every task is idempotent). A slot whose writer died before
//! writing it is a hole, skipped: that writer's caller never got an answer and retries.
//! Clocks of the instances must agree within [`CLOCK_MARGIN_MS`].

use serde::{Deserialize, Serialize};

use crate::ids::DepositId;
use crate::platform::{Clock, KeyValue, StoreError};
use crate::store::counter;
use crate::store::keys;

/// How far apart the instances' clocks may be; a bucket is swept this long after its end.
pub const CLOCK_MARGIN_MS: u64 = 2_000;

/// What the sweep must do.
// Externally tagged (`{"credit":{"id":…}}`): much smaller to decode in wasm than a tag field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Task {
    /// Check a deposit's credit: deliver it if due, recover a payment whose recorder died.
    Credit {
        /// The deposit.
        id: DepositId,
        /// A generation whose owner had written nothing when this look was scheduled, a lease
        /// earlier: if it still has not, it died and may be taken over.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        waited: Option<u32>,
    },
    /// Remove a deposit whose lifetime ended, unless something is still owed on it.
    Expire {
        /// The deposit.
        id: DepositId,
    },
    /// Forget a used `X-Nonce`.
    Nonce {
        /// The nonce.
        nonce: String,
    },
    /// Ask the gateway whether a deposit still pending was paid (its callback may be lost).
    Reconcile {
        /// The deposit.
        id: DepositId,
        /// Its epoch when scheduled (a later deposit of the id has its own task).
        epoch: u64,
        /// Checks made so far (picks the next delay).
        round: u32,
        /// A check of its own, asked for by a notice the gateway did not confirm: it does not
        /// schedule a next one (the deposit's own checks go on).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        once: bool,
    },
    /// Deliver or forget an alert ([`AlertTask`], written out): one string, so
    /// the sweep, which never runs it, decodes no more than that.
    Alert(String),
}

/// What the alerts' schedule holds: an attempt to make, or an alert to forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertTask {
    /// Make attempt `n` (from 0) unless the alert was delivered.
    Attempt {
        /// `alert:{kind}:{subject}`.
        kind: String,
        /// What it is about.
        subject: String,
        /// The attempt.
        n: u32,
    },
    /// Raise an alert about what a route reported (`r:{kind}:{id}:{detail}`, written by
    /// [`crate::flow::alerts::raise`]): the alerts' run reads the rest from the store.
    Raise {
        /// Its kind ([`crate::alert::AlertKind::as_str`]).
        kind: String,
        /// The deposit, if any.
        id: String,
        /// What else the route knew: an invoice's reference, a gateway, or what was set
        /// aside and why.
        detail: String,
    },
    /// Forget an alert whose delivery ended a lifetime ago, with its `n` attempts' claims.
    Forget {
        /// Its kind.
        kind: String,
        /// What it is about.
        subject: String,
        /// Attempts made.
        n: u32,
    },
}

impl AlertTask {
    /// As scheduled: `a:{n}:{kind}:{subject}`, `f:{n}:{kind}:{subject}` or
    /// `r:{kind}:{id}:{detail}`.
    pub fn task(&self) -> Task {
        Task::Alert(match self {
            Self::Attempt { kind, subject, n } => format!("a:{n}:{kind}:{subject}"),
            Self::Forget { kind, subject, n } => format!("f:{n}:{kind}:{subject}"),
            Self::Raise { kind, id, detail } => return Self::raise(kind, id, detail),
        })
    }

    /// The task of [`AlertTask::Raise`] from borrowed parts (what a route writes).
    pub fn raise(kind: &str, id: &str, detail: &str) -> Task {
        Task::Alert(format!("r:{kind}:{id}:{detail}"))
    }

    /// Reads what [`AlertTask::task`] wrote.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(4, ':');
        let (tag, a, b, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if tag == "r" {
            return Some(Self::Raise {
                kind: a.into(),
                id: b.into(),
                detail: rest.into(),
            });
        }
        let (n, kind, subject) = (a.parse().ok()?, b.to_string(), rest.to_string());
        match tag {
            "a" => Some(Self::Attempt { kind, subject, n }),
            "f" => Some(Self::Forget { kind, subject, n }),
            _ => None,
        }
    }
}

/// One work list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Name in keys.
    pub name: &'static str,
    /// Bucket width (ms).
    pub width_ms: u64,
    /// Buckets per block; a block's marker tells the sweep it holds tasks.
    pub block: u64,
    /// Blocks per day; a day's marker tells the sweep one of its blocks holds tasks.
    pub day: u64,
    /// How far back the sweep looks when it has no cursor yet (ms).
    pub lookback_ms: u64,
}

/// Credits to deliver or recover: 1 s buckets, 10-minute blocks, a week of look-back on a new
/// store.
pub const CREDITS: Schedule = Schedule {
    name: "due",
    width_ms: 1_000,
    block: 600,
    day: 144,
    lookback_ms: 7 * 86_400_000,
};

/// Deposits and nonces to expire: 10 s buckets, 10-minute blocks; a new store's first sweep
/// looks back a day (tasks are written a TTL ahead, so only a store never swept for longer
/// than its TTL has older ones).
pub const EXPIRY: Schedule = Schedule {
    name: "exp",
    width_ms: 10_000,
    block: 60,
    day: 144,
    lookback_ms: 86_400_000,
};

/// Pending deposits to check at their gateway: like [`CREDITS`], 1 s buckets, 10-minute
/// blocks, a week of look-back on a new store.
pub const RECONCILE: Schedule = Schedule {
    name: "rec",
    width_ms: 1_000,
    block: 600,
    day: 144,
    lookback_ms: 7 * 86_400_000,
};

/// Alerts to deliver (`POST /internal/alerts`), and to forget: like [`CREDITS`].
pub const ALERTS: Schedule = Schedule {
    name: "alr",
    width_ms: 1_000,
    block: 600,
    day: 144,
    lookback_ms: 7 * 86_400_000,
};

/// Where a sweep resumes a schedule: the next bucket, and the next slot in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Bucket.
    pub bucket: u64,
    /// First slot not yet done in that bucket.
    pub slot: u64,
}

/// Where a newest-first reading goes on: the slots below `slot` in `bucket`, then the
/// buckets below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Before {
    /// Bucket.
    pub bucket: u64,
    /// The slot above the next one to read (`u64::MAX`: the whole bucket).
    pub slot: u64,
}

/// A bucket's tasks, as the sweep reads them.
pub struct Bucket {
    /// Bucket number.
    pub bucket: u64,
    /// Slots handed out (some may be holes).
    pub count: u64,
}

/// A task to add to a schedule, due at `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The schedule.
    pub schedule: Schedule,
    /// When it is due.
    pub at_ms: u64,
    /// The task.
    pub task: Task,
}

/// Adds every task of `tasks`, writing `records` (in the `default` label) in the same
/// operation as their slots: one `increment` a task and one `set_many` in all. Never a bucket
/// that may already have been swept.
pub fn add_all(
    claims: &dyn KeyValue,
    store: &dyn KeyValue,
    clock: &dyn Clock,
    tasks: Vec<Due>,
    records: Vec<(String, Vec<u8>)>,
) -> Result<(), StoreError> {
    // A writer late more than a few times in a row is stalled; its caller retries.
    add_within(claims, store, clock, tasks, records, 4)
}

fn add_within(
    claims: &dyn KeyValue,
    store: &dyn KeyValue,
    clock: &dyn Clock,
    tasks: Vec<Due>,
    mut records: Vec<(String, Vec<u8>)>,
    tries: u32,
) -> Result<(), StoreError> {
    if tries == 0 {
        let names: Vec<&str> = tasks.iter().map(|due| due.schedule.name).collect();
        return Err(StoreError::Other(format!(
            "could not schedule a task in {}: the clock keeps passing its bucket",
            names.join(", ")
        )));
    }
    let mut slots = Vec::with_capacity(tasks.len());
    let mut entries = Vec::with_capacity(tasks.len() + records.len());
    for due in tasks {
        let schedule = due.schedule;
        let bucket = schedule
            .bucket_of(due.at_ms)
            .max(schedule.bucket_of(clock.now_ms()) + 1);
        let slot = schedule.take_slot(claims, bucket)?;
        let value = serde_json::to_vec(&due.task).unwrap_or_default();
        entries.push((slot.clone(), value));
        slots.push((slot, schedule.bucket_end(bucket), due));
    }
    entries.append(&mut records);
    store.set_many(&entries)?;
    let now = clock.now_ms();
    // Too late for its bucket: add it again to a later one, then take the slot back (if the
    // adding fails, the slot stays: it still runs unless its bucket was swept).
    let (taken_back, again): (Vec<String>, Vec<Due>) = slots
        .into_iter()
        .filter(|(_, end, _)| now >= *end)
        .map(|(slot, _, due)| (slot, Due { at_ms: now, ..due }))
        .unzip();
    if again.is_empty() {
        return Ok(());
    }
    add_within(claims, store, clock, again, Vec::new(), tries - 1)?;
    taken_back.iter().try_for_each(|slot| store.delete(slot))
}

impl Schedule {
    fn day_len(&self) -> u64 {
        self.block * self.day
    }

    /// The bucket of a task due at `at_ms`.
    pub fn bucket_of(&self, at_ms: u64) -> u64 {
        at_ms / self.width_ms
    }

    fn bucket_end(&self, bucket: u64) -> u64 {
        (bucket + 1).saturating_mul(self.width_ms)
    }

    /// Adds `task` due at `at_ms`, writing `records` (in the `default` label) in the same
    /// operation as the task's slot. Never a bucket that may already have been swept.
    pub fn add(
        &self,
        claims: &dyn KeyValue,
        store: &dyn KeyValue,
        clock: &dyn Clock,
        at_ms: u64,
        task: &Task,
        records: Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let due = Due {
            schedule: *self,
            at_ms,
            task: task.clone(),
        };
        add_all(claims, store, clock, vec![due], records)
    }

    /// Hands out the next slot of `bucket`, setting the markers it needs first.
    fn take_slot(&self, claims: &dyn KeyValue, bucket: u64) -> Result<String, StoreError> {
        let n = claims.increment(&keys::slot_count(self.name, bucket), 1)?;
        let n = u64::try_from(n).unwrap_or(0);
        // The markers must exist before the slot does, the day's before the block's. The
        // bucket's first writer sets them; the others check (the first may have died).
        let block = keys::block(self.name, bucket / self.block);
        if n == 1 || claims.get(&block)?.is_none() {
            let day = keys::day(self.name, bucket / self.day_len());
            if claims.get(&day)?.is_none() {
                claims.increment(&day, 1)?;
            }
            claims.increment(&block, 1)?;
        }
        Ok(keys::slot(self.name, bucket, n))
    }

    /// Where the sweep resumes: the stored cursor, or `lookback_ms` before `now`.
    pub fn cursor(&self, store: &dyn KeyValue, now: u64) -> Result<Cursor, StoreError> {
        let key = keys::cursor(self.name);
        match store.get(&key)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("{key}: {e}"))),
            None => Ok(Cursor {
                bucket: self.bucket_of(now.saturating_sub(self.lookback_ms)),
                slot: 1,
            }),
        }
    }

    /// Saves the cursor (concurrent sweeps may move it back; that only repeats work).
    pub fn save_cursor(&self, store: &dyn KeyValue, cursor: Cursor) -> Result<(), StoreError> {
        store.set(
            &keys::cursor(self.name),
            &serde_json::to_vec(&cursor).unwrap_or_default(),
        )
    }

    /// The first bucket the sweep may not visit yet at `now`: a bucket is visited once its
    /// end is [`CLOCK_MARGIN_MS`] in the past.
    pub fn open_from(&self, now: u64) -> u64 {
        self.bucket_of(now.saturating_sub(CLOCK_MARGIN_MS))
    }

    /// The next bucket at or after `from` (and before `until`) that holds tasks, reading as
    /// few keys as it can; `reads` counts them. `None` when there is none before `until` or
    /// `max_reads` ran out first (then `from` tells where the search stopped). A day or block
    /// whose marker is absent is skipped whole (never past `until`: a task may still arrive
    /// there); one the scan walks out of loses its marker.
    pub fn next_bucket(
        &self,
        claims: &dyn KeyValue,
        from: &mut u64,
        until: u64,
        reads: &mut u64,
        max_reads: u64,
    ) -> Result<Option<Bucket>, StoreError> {
        let (day_len, block_len) = (self.day_len(), self.block);
        let (mut in_day, mut in_block) = (false, false);
        while *from < until && *reads < max_reads {
            if !in_day || *from % day_len == 0 {
                if in_day {
                    claims.delete(&keys::day(self.name, *from / day_len - 1))?;
                }
                *reads += 1;
                if claims
                    .get(&keys::day(self.name, *from / day_len))?
                    .is_none()
                {
                    *from = ((*from / day_len + 1) * day_len).min(until);
                    (in_day, in_block) = (false, false);
                    continue;
                }
                (in_day, in_block) = (true, false);
            }
            if !in_block || *from % block_len == 0 {
                if in_block {
                    claims.delete(&keys::block(self.name, *from / block_len - 1))?;
                }
                *reads += 1;
                if claims
                    .get(&keys::block(self.name, *from / block_len))?
                    .is_none()
                {
                    *from = ((*from / block_len + 1) * block_len).min(until);
                    in_block = false;
                    continue;
                }
                in_block = true;
            }
            *reads += 1;
            let key = keys::slot_count(self.name, *from);
            if let Some(bytes) = claims.get(&key)? {
                let count = u64::try_from(counter::decode(&key, &bytes)?).unwrap_or(0);
                return Ok(Some(Bucket {
                    bucket: *from,
                    count,
                }));
            }
            *from += 1;
        }
        Ok(None)
    }

    /// Reads tasks newest first: the slots below `from`, then
    /// every lower bucket down to `floor`, skipping a day or block whose marker is absent
    /// with one read. Each key read costs one of `budget`; `visit` returns false to stop
    /// (after its task). Returns where to go on from, or `None` once `floor` is passed. Only
    /// reads: markers are the sweep's to remove.
    pub fn walk_back(
        &self,
        claims: &dyn KeyValue,
        store: &dyn KeyValue,
        from: Before,
        floor: u64,
        budget: &mut u32,
        mut visit: impl FnMut(u64, Task, &mut u32) -> Result<bool, StoreError>,
    ) -> Result<Option<Before>, StoreError> {
        let (day_len, block_len) = (self.day_len(), self.block);
        let (mut bucket, mut below) = (from.bucket, from.slot);
        let (mut day_seen, mut block_seen) = (None, None);
        // Moves to the last bucket before `first` (`false` once that is under `floor`).
        let step_below = |first: u64, bucket: &mut u64, below: &mut u64| {
            *below = u64::MAX;
            match first.checked_sub(1) {
                Some(b) if b >= floor => {
                    *bucket = b;
                    true
                }
                _ => false,
            }
        };
        while bucket >= floor {
            if *budget == 0 {
                return Ok(Some(Before {
                    bucket,
                    slot: below,
                }));
            }
            let day = bucket / day_len;
            if day_seen != Some(day) {
                *budget -= 1;
                if claims.get(&keys::day(self.name, day))?.is_none() {
                    if !step_below(day * day_len, &mut bucket, &mut below) {
                        return Ok(None);
                    }
                    continue;
                }
                day_seen = Some(day);
            }
            let block = bucket / block_len;
            if block_seen != Some(block) {
                *budget = budget.saturating_sub(1);
                if claims.get(&keys::block(self.name, block))?.is_none() {
                    if !step_below(block * block_len, &mut bucket, &mut below) {
                        return Ok(None);
                    }
                    continue;
                }
                block_seen = Some(block);
            }
            *budget = budget.saturating_sub(1);
            let key = keys::slot_count(self.name, bucket);
            let count = match claims.get(&key)? {
                Some(bytes) => u64::try_from(counter::decode(&key, &bytes)?).unwrap_or(0),
                None => 0,
            };
            let mut n = count.min(below.saturating_sub(1));
            while n >= 1 {
                if *budget == 0 {
                    return Ok(Some(Before {
                        bucket,
                        slot: n + 1,
                    }));
                }
                *budget -= 1;
                // A hole, or a slot that is not a task, is passed over: reading never fails
                // on one record.
                let task = self.task(store, bucket, n).ok().flatten();
                n -= 1;
                if let Some(task) = task {
                    if !visit(bucket, task, budget)? {
                        return Ok(Some(Before {
                            bucket,
                            slot: n + 1,
                        }));
                    }
                }
            }
            if !step_below(bucket, &mut bucket, &mut below) {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The task in slot `n` of `bucket`; `Ok(None)` for a hole, `Err(Corrupt)` for garbage.
    pub fn task(
        &self,
        store: &dyn KeyValue,
        bucket: u64,
        n: u64,
    ) -> Result<Option<Task>, StoreError> {
        let key = keys::slot(self.name, bucket, n);
        match store.get(&key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{key}: {e}"))),
        }
    }

    /// Deletes slots `first..=last` of `bucket`.
    pub fn drop_slots(
        &self,
        store: &dyn KeyValue,
        bucket: u64,
        first: u64,
        last: u64,
    ) -> Result<(), StoreError> {
        let slots: Vec<String> = (first..=last)
            .map(|n| keys::slot(self.name, bucket, n))
            .collect();
        slots
            .chunks(1000)
            .try_for_each(|chunk| store.delete_many(chunk))
    }

    /// Deletes a finished bucket's counter.
    pub fn drop_bucket(&self, claims: &dyn KeyValue, bucket: u64) -> Result<(), StoreError> {
        claims.delete(&keys::slot_count(self.name, bucket))
    }
}
