//! Alerts: the operator is told, once per event, when money needs a hand — a credit gave up,
//! a payment is to be refunded, a payment of the wrong amount waits for review, a record was
//! quarantined, or a gateway's callbacks went missing while its payments were found by asking
//! it. The routes where that happens write a task of a few ids in the `alr` schedule
//! (nothing while alerts are off: [`crate::flow::alerts::raise`]); the quarantine is read
//! where it is kept. `POST /internal/alerts` makes the alert from the store (once:
//! `alert:{kind}:{subject}`), delivers it to the webhook and Telegram with the credits' retry
//! schedule, and forgets it a lifetime later.
//!
//! Once per event: a subject is alerted once per kind until it is forgotten (a deposit's
//! subject carries its epoch, so a reused id is a new subject). Each attempt is claimed by
//! `increment` on `alerting:{kind}:{subject}:{n}` and the next one is scheduled before it is
//! sent, so concurrent runs never send one attempt twice and a run that dies is followed by
//! the next attempt; only a run that dies after the receiver took the alert and before it
//! recorded that may send it again (with the same `Idempotency-Key`).

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::credit::Credit;
use crate::deposit::Invoice;
use crate::ids::{DepositId, GatewayName};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AlertKind {
    /// A credit's scheduled retries gave up: it waits for a manual retry.
    Exhausted,
    /// A second payment of a deposit already paid: refund it by hand.
    RefundDue,
    /// A payment of another amount than the deposit's: settle it by hand.
    Review,
    /// A record the sweep could not read was set aside.
    Quarantined,
    /// A gateway's payment was found by asking it, its callback never came.
    CallbacksMissing,
}

impl AlertKind {
    /// Its name in keys and bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exhausted => "exhausted",
            Self::RefundDue => "refundDue",
            Self::Review => "review",
            Self::Quarantined => "quarantined",
            Self::CallbacksMissing => "callbacksMissing",
        }
    }
}

/// An alert as raised (the webhook's body is this, with its `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// What happened.
    pub kind: AlertKind,
    /// To what: `{depositId}.{epoch}`, the record quarantined, or `{gateway}.{utc day}`.
    pub subject: String,
    /// The deposit, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit_id: Option<DepositId>,
    /// The gateway, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayName>,
    /// When it was raised (Unix ms).
    pub at: u64,
    /// One sentence for a person (Telegram's message).
    pub text: String,
}

const DAY_MS: u64 = 86_400_000;

impl Alert {
    /// `{kind}:{subject}`: the webhook's `Idempotency-Key` and `X-Nonce`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.subject)
    }

    /// The webhook's body.
    pub fn body(&self) -> Vec<u8> {
        let mut value = json!(self);
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("id".into(), self.id().into());
        }
        value.to_string().into_bytes()
    }

    fn of_deposit(kind: AlertKind, id: &DepositId, epoch: u64, at: u64, text: String) -> Self {
        Self {
            kind,
            subject: format!("{id}.{epoch}"),
            deposit_id: Some(id.clone()),
            gateway: None,
            at,
            text,
        }
    }

    /// A credit that gave up.
    pub fn exhausted(credit: &Credit, at: u64) -> Self {
        Self::of_deposit(
            AlertKind::Exhausted,
            &credit.deposit_id,
            credit.epoch,
            at,
            format!(
                "Credit of deposit {} (Rp {}, user {}) gave up after {} attempts: the bot did not accept it. Resend it from the console once the bot is fixed.",
                credit.deposit_id, credit.amount, credit.user_id, credit.attempts
            ),
        )
    }

    /// A second payment of a paid deposit, on `invoice`.
    pub fn refund_due(invoice: &Invoice, at: u64) -> Self {
        Self::of_deposit(
            AlertKind::RefundDue,
            &invoice.deposit_id,
            invoice.epoch,
            at,
            format!(
                "Deposit {} (Rp {}, user {}) was paid twice: invoice {} is not credited. Refund it, then mark it handled in the console.",
                invoice.deposit_id, invoice.amount, invoice.user_id, invoice.reference
            ),
        )
    }

    /// A payment of `received` instead of the invoice's amount.
    pub fn review(invoice: &Invoice, received: &str, at: u64) -> Self {
        Self::of_deposit(
            AlertKind::Review,
            &invoice.deposit_id,
            invoice.epoch,
            at,
            format!(
                "Deposit {} (user {}) was paid {} instead of Rp {} on invoice {}: not credited. Settle it, then close the review in the console.",
                invoice.deposit_id,
                invoice.user_id,
                received.chars().take(40).collect::<String>(),
                invoice.amount,
                invoice.reference
            ),
        )
    }

    /// A record set aside.
    pub fn quarantined(what: &str, reason: &str, at: u64) -> Self {
        Self {
            kind: AlertKind::Quarantined,
            subject: what.chars().take(200).collect(),
            deposit_id: None,
            gateway: None,
            at,
            text: format!(
                "The sweep set aside {what}, which it could not read ({}). See the console's quarantine.",
                reason.chars().take(200).collect::<String>()
            ),
        }
    }

    /// A payment of deposit `id` at `gateway` found by asking it: once per gateway and UTC day.
    pub fn callbacks_missing(gateway: GatewayName, id: &DepositId, at: u64) -> Self {
        Self {
            kind: AlertKind::CallbacksMissing,
            subject: format!("{}.{}", gateway.as_str(), at / DAY_MS),
            deposit_id: Some(id.clone()),
            gateway: Some(gateway),
            at,
            text: format!(
                "{} paid deposit {id} but its callback never came: the sweep found it by asking. Check the callback URL in the {} dashboard.",
                gateway.as_str(),
                gateway.as_str()
            ),
        }
    }
}

/// Where an alert's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AlertState {
    /// Being sent, or waiting for its next attempt.
    Retrying,
    /// Every channel took it.
    Sent,
    /// Its attempts ran out.
    GaveUp,
    /// No channel is configured any more.
    NoChannel,
}

/// An alert's delivery, kept at `alertlog:{kind}:{subject}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertLog {
    /// Attempts made (or begun).
    pub attempts: u32,
    /// The webhook took it.
    #[serde(default)]
    pub webhook: bool,
    /// Telegram took it.
    #[serde(default)]
    pub telegram: bool,
    /// Where it stands.
    pub state: AlertState,
    /// What the last attempt's channels answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// When it was last written.
    pub at: u64,
}

impl AlertLog {
    /// Whether nothing more is to be done.
    pub fn is_final(&self) -> bool {
        self.state != AlertState::Retrying
    }
}
