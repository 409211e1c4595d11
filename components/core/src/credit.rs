//! The payment of a deposit and its delivery to the bot, kept at `credit:{id}` (generation 0,
//! written by the PAID callback that won the payment claim) and `credit:{id}:{g}` (written by
//! owner `g` ≥ 1: a sweep or an operator that took the delivery over).
//!
//! Ownership is handed out by `increment` on `gen:{id}`: a would-be owner reads the counter,
//! increments it, and owns generation `g` only if it got exactly the value it read plus one.
//! Each owner writes only its own generation's key, so a stale owner can never replace a
//! newer one's state; `credit:{id}` is also rewritten by every owner as a hint for cheap
//! reads, and the highest generation written is the truth (see [`CreditLog`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bot::{CreditCall, DeliveryOutcome};
use crate::config::Delivery;
use crate::deposit::Invoice;
use crate::ids::{BotId, DepositId, Reference};
use crate::platform::millis;

/// Where the delivery of a paid deposit stands.
// Externally tagged: `{"inFlight":{"leaseUntil":…}}`, `"credited"` (cheaper to decode in wasm
// than an internally tagged enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CreditState {
    /// An owner is delivering; nobody else may until the lease ends.
    #[serde(rename_all = "camelCase")]
    InFlight {
        /// Unix ms after which the owner is presumed dead.
        lease_until: u64,
    },
    /// Waiting for the next scheduled retry.
    #[serde(rename_all = "camelCase")]
    Scheduled {
        /// Unix ms when the retry is due.
        next_at: u64,
    },
    /// The bot accepted the credit (final).
    Credited,
    /// Automatic retries gave up; only a manual retry tries again.
    Exhausted,
}

/// A payment and its delivery. Everything the bot is sent comes from here, so every resend
/// carries the same body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credit {
    /// The deposit.
    pub deposit_id: DepositId,
    /// Its epoch.
    pub epoch: u64,
    /// Who is credited.
    pub user_id: String,
    /// The bot it is delivered to, and no other (omitted for `default`).
    #[serde(default, skip_serializing_if = "BotId::is_default")]
    pub bot: BotId,
    /// How much.
    pub amount: u64,
    /// The invoice that was paid.
    pub reference: Reference,
    /// When the payment was recorded (Unix ms).
    pub paid_at: u64,
    /// Payment method reported by the gateway.
    pub payment_method: Option<String>,
    /// Gateway result code.
    pub result_code: Option<String>,
    /// True when a sweep recorded a payment whose callback died before recording it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
    /// The recording callback's `X-Nonce`, when this record is what remembers it; every
    /// later owner's copy keeps it, so the nonce key is removed with the deposit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Owner generation that wrote this.
    pub generation: u32,
    /// Deliveries made so far.
    pub attempts: u32,
    /// Scheduled retries made so far.
    pub retries: u32,
    /// Delivery state.
    pub state: CreditState,
    /// When the bot accepted the credit.
    pub credited_at: Option<u64>,
    /// Outcome of the last delivery.
    pub last_result: Option<Value>,
}

/// Who makes a delivery attempt; decides how a failure is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// The PAID callback's quick attempts.
    Inline,
    /// A sweep's scheduled retry.
    Scheduled,
    /// An operator's manual retry.
    Manual,
}

/// Facts of a payment as a callback reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFacts {
    /// When it was recorded.
    pub paid_at: u64,
    /// Payment method.
    pub payment_method: Option<String>,
    /// Gateway result code.
    pub result_code: Option<String>,
}

impl Credit {
    /// The call that delivers this payment to the bot.
    pub fn call(&self) -> CreditCall<'_> {
        CreditCall {
            deposit_id: self.deposit_id.as_str(),
            user_id: &self.user_id,
            amount: self.amount,
            reference: self.reference.as_str(),
            status: "PAID",
            paid_at: self.paid_at,
            payment_method: self.payment_method.as_deref(),
            bot_id: (!self.bot.is_default()).then(|| self.bot.as_str()),
        }
    }

    /// A fresh payment of `invoice`, owned by `generation` until `lease` from `facts.paid_at`.
    pub fn new(invoice: &Invoice, facts: PaymentFacts, generation: u32, lease: Duration) -> Self {
        Self {
            deposit_id: invoice.deposit_id.clone(),
            epoch: invoice.epoch,
            user_id: invoice.user_id.clone(),
            bot: invoice.bot.clone(),
            amount: invoice.amount,
            reference: invoice.reference.clone(),
            state: CreditState::InFlight {
                lease_until: facts.paid_at.saturating_add(millis(lease)),
            },
            paid_at: facts.paid_at,
            payment_method: facts.payment_method,
            result_code: facts.result_code,
            recovered: false,
            nonce: None,
            generation,
            attempts: 0,
            retries: 0,
            credited_at: None,
            last_result: None,
        }
    }

    /// Whether the bot accepted the credit.
    pub fn is_credited(&self) -> bool {
        self.state == CreditState::Credited
    }

    /// Whether automatic retries gave up.
    pub fn is_exhausted(&self) -> bool {
        self.state == CreditState::Exhausted
    }

    /// When the next automatic attempt may start.
    pub fn next_attempt_at(&self) -> Option<u64> {
        match self.state {
            CreditState::InFlight { lease_until } => Some(lease_until),
            CreditState::Scheduled { next_at } => Some(next_at),
            CreditState::Credited | CreditState::Exhausted => None,
        }
    }

    /// Whether a sweep should attempt delivery at `now`.
    pub fn is_due(&self, now: u64) -> bool {
        self.next_attempt_at().is_some_and(|at| now >= at)
    }

    /// Whether an owner currently holds a valid lease.
    pub fn is_in_flight(&self, now: u64) -> bool {
        matches!(self.state, CreditState::InFlight { lease_until } if now < lease_until)
    }

    /// The same payment, owned by `generation` for one attempt from `now`.
    pub fn taken_over(&self, generation: u32, now: u64, lease: Duration) -> Self {
        let mut next = self.clone();
        next.generation = generation;
        next.state = CreditState::InFlight {
            lease_until: now.saturating_add(millis(lease)),
        };
        next
    }

    /// Records the outcome of `deliveries` attempts made by `kind` and schedules what follows.
    pub fn record(
        &mut self,
        outcome: &DeliveryOutcome,
        deliveries: u32,
        kind: AttemptKind,
        now: u64,
        delivery: &Delivery,
    ) {
        self.attempts = self.attempts.saturating_add(deliveries);
        self.last_result = Some(outcome.result_json());
        if outcome.is_success() {
            self.state = CreditState::Credited;
            self.credited_at = Some(now);
            return;
        }
        let was_exhausted = self.is_exhausted();
        // A credit its bot cannot be sent stays owed: nothing was tried, nothing is counted.
        let sent = !matches!(outcome, DeliveryOutcome::NotSent(_));
        if kind == AttemptKind::Scheduled && sent {
            self.retries = self.retries.saturating_add(1);
        }
        self.state = if was_exhausted || (sent && self.retries >= delivery.credit_max_retries) {
            CreditState::Exhausted
        } else {
            CreditState::Scheduled {
                next_at: now.saturating_add(millis(delivery.retry_delay(self.retries))),
            }
        };
    }
}

/// A deposit's credit as the store holds it: the hint at `credit:{id}`, and the truth: the
/// success if there was one, else the record of the highest generation written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreditLog {
    /// `credit:{id}`, as last written by any owner.
    pub head: Option<Credit>,
    /// The last generation handed out.
    pub generation: u32,
    /// The success (`credited:{id}`), else the record of the highest generation that wrote one
    /// (`head` if none did).
    pub latest: Option<Credit>,
}

impl CreditLog {
    /// The last generation handed out when its owner has written nothing yet: it is between
    /// its claim and its first write (a few milliseconds) or died there.
    pub fn unwritten_generation(&self) -> Option<u32> {
        let written = self.latest.as_ref().map_or(0, |c| c.generation);
        (self.generation > written).then_some(self.generation)
    }

    /// The current state: the latest record, unless any record already says credited (a
    /// success is final whoever recorded it).
    pub fn current(&self) -> Option<&Credit> {
        match (&self.head, &self.latest) {
            (Some(head), _) if head.is_credited() => Some(head),
            (_, Some(latest)) => Some(latest),
            (head, None) => head.as_ref(),
        }
    }

    /// Whether the deposit is paid.
    pub fn is_paid(&self) -> bool {
        self.current().is_some()
    }

    /// Only what belongs to the deposit of `epoch` (an id used again may find records its
    /// earlier deposit left behind); `None` keeps everything.
    pub fn of_epoch(mut self, epoch: Option<u64>) -> Self {
        if let Some(epoch) = epoch {
            self.head = self.head.filter(|c| c.epoch == epoch);
            self.latest = self.latest.filter(|c| c.epoch == epoch);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::DeliveryOutcome;
    use crate::platform::TransportError;
    use crate::testing::{sample_credit, test_config};

    #[test]
    fn schedule_backs_off_then_caps_then_exhausts() {
        let mut config = test_config().delivery().unwrap().clone();
        config.credit_retry_schedule = vec![Duration::from_secs(60), Duration::from_secs(300)];
        config.credit_max_retries = 3;
        let fail = DeliveryOutcome::Unreachable(TransportError::Timeout);
        let mut credit = sample_credit(0);

        credit.record(&fail, 3, AttemptKind::Inline, 1_000, &config);
        assert_eq!(credit.state, CreditState::Scheduled { next_at: 61_000 });
        credit.record(&fail, 1, AttemptKind::Scheduled, 70_000, &config);
        assert_eq!(credit.state, CreditState::Scheduled { next_at: 370_000 });
        credit.record(&fail, 1, AttemptKind::Scheduled, 400_000, &config);
        assert_eq!(
            credit.state,
            CreditState::Scheduled { next_at: 700_000 },
            "last delay repeats"
        );
        credit.record(&fail, 1, AttemptKind::Scheduled, 800_000, &config);
        assert_eq!(credit.state, CreditState::Exhausted);
        assert_eq!((credit.attempts, credit.retries), (6, 3));
        assert!(!credit.is_due(u64::MAX));

        credit.record(&fail, 1, AttemptKind::Manual, 900_000, &config);
        assert_eq!(
            credit.state,
            CreditState::Exhausted,
            "a failed manual retry stays exhausted"
        );
        credit.record(
            &DeliveryOutcome::Accepted,
            1,
            AttemptKind::Manual,
            950_000,
            &config,
        );
        assert!(credit.is_credited());
        assert_eq!(credit.credited_at, Some(950_000));
    }

    #[test]
    fn lease_and_due() {
        let credit = sample_credit(1_000);
        assert!(credit.is_in_flight(30_999));
        assert!(!credit.is_due(30_999));
        assert!(credit.is_due(31_000));
        let next = credit.taken_over(1, 50_000, Duration::from_secs(10));
        assert_eq!(next.generation, 1);
        assert!(next.is_in_flight(59_999) && next.is_due(60_000));
        assert_eq!(
            next.paid_at, credit.paid_at,
            "the payment's facts never change"
        );
    }

    #[test]
    fn a_credited_record_wins_over_a_later_generation() {
        let mut credited = sample_credit(0);
        credited.state = CreditState::Credited;
        let stale = sample_credit(0).taken_over(2, 10, Duration::from_secs(30));
        let log = CreditLog {
            head: Some(credited.clone()),
            generation: 2,
            latest: Some(stale.clone()),
        };
        assert_eq!(log.current(), Some(&credited));
        let log = CreditLog {
            head: Some(sample_credit(0)),
            generation: 2,
            latest: Some(stale.clone()),
        };
        assert_eq!(
            log.current(),
            Some(&stale),
            "the highest generation is the truth"
        );
        assert!(!CreditLog::default().is_paid());
    }
}
