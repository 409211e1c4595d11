//! The key layout, in one place. Both labels may share one Redis database (Spin's Redis store
//! ignores labels), so every key name here is unique across the two labels.
//!
//! Label `default` (records, values are TTL envelopes unless noted):
//!
//! | key | value |
//! |---|---|
//! | `deposit:{id}` | the deposit: who, how much, and its invoice once created |
//! | `ref:{reference}` | the invoice: which deposit it pays, for whom, how much |
//! | `inv:{id}:{token}` | the same invoice, as the create with claim `token` handed it out |
//! | `credit:{id}` | the payment and its delivery as last written (a hint once taken over) |
//! | `credit:{id}:{g}` | the payment and its delivery as owner generation `g` ≥ 1 wrote it |
//! | `credited:{id}` | the payment as delivered: written with every success, never otherwise |
//! | `gen:{id}` | counter: the last owner generation handed out |
//! | `notes:{id}` / `note:{id}:{n}` | counter / what a callback reported that changed no state |
//! | `hold:{id}` | a create claimed the id but has not written it yet: since when |
//! | `checks:{id}` | the last round of its status checks that scheduled the next (plain JSON) |
//! | `slot:{schedule}:{bucket}:{n}` | a task of a schedule (plain JSON) |
//! | `cursor:{schedule}` | where the sweep resumes a schedule (plain JSON) |
//! | `quarantine` / `quarantine:{n}` | counter / a record the sweep could not read |
//! | `alert:{kind}:{subject}` | an alert raised: what happened to what, when |
//! | `alertlog:{kind}:{subject}` | its delivery: attempts, channels that took it, state |
//! | `alerted:quarantine` | the last quarantined record alerted (plain number) |
//!
//! Label `claims` (raw counters written only by `increment`):
//!
//! | key | decides |
//! |---|---|
//! | `paid:{id}` | which PAID callback records the payment (the one that gets 1) |
//! | `create:{id}` | which create of a chosen id calls the gateway |
//! | `life:{id}` | that a removal of the id began and has not finished (the next create waits) |
//! | `nonce:{nonce}` | which callback uses an `X-Nonce` |
//! | `count:{schedule}:{bucket}` | slot numbers of a schedule bucket |
//! | `block:{schedule}:{block}` | that a block of buckets holds tasks |
//! | `day:{schedule}:{day}` | that a day of blocks holds tasks |
//! | `alerting:{kind}:{subject}:{n}` | which delivery run makes attempt `n` of an alert |

use crate::ids::{DepositId, Reference};

/// `deposit:{id}`.
pub fn deposit(id: &DepositId) -> String {
    format!("deposit:{id}")
}

/// `ref:{reference}`.
pub fn reference(reference: &Reference) -> String {
    format!("ref:{reference}")
}

/// `inv:{id}:{token}`.
pub fn handed_out(id: &DepositId, token: u64) -> String {
    format!("inv:{id}:{token}")
}

/// `credit:{id}` for generation 0, `credit:{id}:{g}` after.
pub fn credit(id: &DepositId, generation: u32) -> String {
    if generation == 0 {
        format!("credit:{id}")
    } else {
        format!("credit:{id}:{generation}")
    }
}

/// `credited:{id}`.
pub fn credited(id: &DepositId) -> String {
    format!("credited:{id}")
}

/// `gen:{id}`.
pub fn generation(id: &DepositId) -> String {
    format!("gen:{id}")
}

/// `notes:{id}`.
pub fn note_count(id: &DepositId) -> String {
    format!("notes:{id}")
}

/// `note:{id}:{n}`.
pub fn note(id: &DepositId, n: u64) -> String {
    format!("note:{id}:{n}")
}

/// `hold:{id}`.
pub fn hold(id: &DepositId) -> String {
    format!("hold:{id}")
}

/// `life:{id}`.
pub fn life(id: &DepositId) -> String {
    format!("life:{id}")
}

/// `paid:{id}`.
pub fn payment_claim(id: &DepositId) -> String {
    format!("paid:{id}")
}

/// `checks:{id}`.
pub fn check_round(id: &DepositId) -> String {
    format!("checks:{id}")
}

/// `create:{id}`.
pub fn create_claim(id: &DepositId) -> String {
    format!("create:{id}")
}

/// `nonce:{nonce}`.
pub fn nonce(nonce: &str) -> String {
    format!("nonce:{nonce}")
}

/// `slot:{schedule}:{bucket}:{n}`.
pub fn slot(schedule: &str, bucket: u64, n: u64) -> String {
    format!("slot:{schedule}:{bucket}:{n}")
}

/// `count:{schedule}:{bucket}`.
pub fn slot_count(schedule: &str, bucket: u64) -> String {
    format!("count:{schedule}:{bucket}")
}

/// `block:{schedule}:{block}`.
pub fn block(schedule: &str, block: u64) -> String {
    format!("block:{schedule}:{block}")
}

/// `day:{schedule}:{day}`.
pub fn day(schedule: &str, day: u64) -> String {
    format!("day:{schedule}:{day}")
}

/// `cursor:{schedule}`.
pub fn cursor(schedule: &str) -> String {
    format!("cursor:{schedule}")
}

/// `quarantine`.
pub const QUARANTINE_COUNT: &str = "quarantine";

/// `quarantine:{n}`.
pub fn quarantined(n: u64) -> String {
    format!("quarantine:{n}")
}

/// `alert:{kind}:{subject}`.
pub fn alert(kind: &str, subject: &str) -> String {
    format!("alert:{kind}:{subject}")
}

/// `alerted:quarantine`.
pub const ALERTED_QUARANTINE: &str = "alerted:quarantine";

/// `alertlog:{kind}:{subject}`.
pub fn alert_log(kind: &str, subject: &str) -> String {
    format!("alertlog:{kind}:{subject}")
}

/// `alerting:{kind}:{subject}:{n}`.
pub fn alert_attempt(kind: &str, subject: &str, n: u32) -> String {
    format!("alerting:{kind}:{subject}:{n}")
}
