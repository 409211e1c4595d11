//! Walking a schedule: the due buckets in order from its cursor, each task run, each bucket
//! dropped once done, the cursor saved where the walk stopped. Shared by the sweep (credits,
//! status checks, expiry) and the alerts' delivery.

use crate::platform::StoreError;
use crate::store::schedule::{Cursor, Schedule, Task};
use crate::store::DepositStore;

/// Most bucket and marker reads per schedule per walk.
const MAX_SCAN_READS: u64 = 20_000;

/// What a walk runs the tasks with.
pub trait TaskRunner<'a> {
    /// The store the schedule is in.
    fn store(&self) -> &DepositStore<'a>;
    /// Whether to stop before the next task of `schedule` (the cursor stays on it).
    fn out_of_budget(&self, schedule: &Schedule) -> bool;
    /// Runs (or queues) one task.
    fn run(&mut self, task: Task) -> Result<(), StoreError>;
    /// Finishes the queued tasks: called before a bucket is dropped.
    fn flush(&mut self) -> Result<(), StoreError>;
    /// Sets aside a record that cannot be read.
    fn quarantine(&mut self, what: &str, reason: &str) -> Result<(), StoreError>;
    /// The walk stopped with tasks due left.
    fn more(&mut self);
}

/// Runs the due tasks of `schedule` with `runner`, within its budget.
pub fn run_schedule<'a>(
    runner: &mut impl TaskRunner<'a>,
    schedule: &Schedule,
) -> Result<(), StoreError> {
    let (records, claims, clock) = {
        let store = runner.store();
        (store.records, store.claims, store.clock)
    };
    let now = clock.now_ms();
    let until = schedule.open_from(now);
    let mut stored = true;
    let mut cursor = match schedule.cursor(records, now) {
        Err(StoreError::Corrupt(reason)) => {
            stored = false;
            runner.quarantine(&format!("cursor:{}", schedule.name), &reason)?;
            Cursor {
                bucket: until.saturating_sub(schedule.lookback_ms / schedule.width_ms),
                slot: 1,
            }
        }
        other => other?,
    };
    let started_at = cursor;
    let mut reads = 0;
    loop {
        if runner.out_of_budget(schedule) {
            runner.more();
            break;
        }
        let mut from = cursor.bucket;
        let found = schedule.next_bucket(claims, &mut from, until, &mut reads, MAX_SCAN_READS)?;
        let Some(bucket) = found else {
            if from < until {
                runner.more();
            }
            cursor = Cursor {
                bucket: from.max(cursor.bucket),
                slot: if from > cursor.bucket { 1 } else { cursor.slot },
            };
            break;
        };
        if bucket.bucket != cursor.bucket {
            cursor = Cursor {
                bucket: bucket.bucket,
                slot: 1,
            };
        }
        let mut n = cursor.slot;
        while n <= bucket.count && !runner.out_of_budget(schedule) {
            match schedule.task(records, bucket.bucket, n) {
                Ok(None) => {}
                Ok(Some(task)) => runner.run(task)?,
                Err(StoreError::Corrupt(reason)) => {
                    runner.quarantine(
                        &format!("task {}:{}:{n}", schedule.name, bucket.bucket),
                        &reason,
                    )?;
                }
                Err(error) => return Err(error),
            }
            n += 1;
        }
        runner.flush()?;
        if n > cursor.slot {
            schedule.drop_slots(records, bucket.bucket, cursor.slot, n - 1)?;
        }
        if n <= bucket.count {
            cursor = Cursor {
                bucket: bucket.bucket,
                slot: n,
            };
            runner.more();
            break;
        }
        schedule.drop_bucket(claims, bucket.bucket)?;
        cursor = Cursor {
            bucket: bucket.bucket + 1,
            slot: 1,
        };
    }
    // A sweep that passed nothing writes nothing (frequent sweeps stay read-only); a corrupt
    // cursor is always replaced.
    if stored && cursor == started_at {
        return Ok(());
    }
    schedule.save_cursor(records, cursor)
}
