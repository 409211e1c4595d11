//! Deposits: the record a create writes, the invoices that pay it and the notes callbacks
//! leave (the status view that merges them with the credit is [`crate::view`]).
//!
//! A deposit's state is spread over keys that each have one kind of writer, so no write can
//! lose another's: `deposit:{id}` (the create), `ref:{reference}` (the create, once per
//! invoice), `credit:{id}…` (whoever owns the payment's delivery, see [`crate::credit`]) and
//! `note:{id}:{n}` (callbacks that change no state: a failure, a wrong amount, a second
//! payment). The deposit is PAID exactly when a credit record exists.

pub mod note;
pub mod request;

use serde::{Deserialize, Serialize};

use crate::ids::{BotId, DepositId, GatewayName, Reference};

/// The record at `deposit:{id}`: who, how much, and where its creation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deposit {
    /// Deposit id.
    pub deposit_id: DepositId,
    /// Tells two deposits of one id apart (an id used again after the first was removed): when
    /// the first create of this deposit began (Unix ms). A new deposit of an id can start only
    /// after the last one was removed, a lifetime later, so epochs never repeat, and nothing
    /// of an id has to outlive its deposit to keep them apart.
    pub epoch: u64,
    /// The bot's user id.
    pub user_id: String,
    /// Amount in rupiah.
    pub amount: u64,
    /// Product description sent to the gateway.
    pub product_details: String,
    /// Customer e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Customer phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msisdn: Option<String>,
    /// Creation time (Unix ms).
    pub created_at: u64,
    /// Where its creation stands.
    pub creation: Creation,
    /// The gateway that bills it (omitted for the Central PG, as in older records).
    #[serde(default, skip_serializing_if = "GatewayName::is_central")]
    pub gateway: GatewayName,
    /// The bot that made it, the only one it is shown to and credited to (omitted for
    /// `default`, as in older records).
    #[serde(default, skip_serializing_if = "BotId::is_default")]
    pub bot: BotId,
}

/// Where a deposit's creation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Creation {
    /// A create holds the id while the gateway answers (chosen ids only).
    #[serde(rename_all = "camelCase")]
    Creating {
        /// The create's claim number.
        token: u64,
        /// Until when (Unix ms); after that another create may take over.
        until: u64,
    },
    /// The gateway refused; the next create of the id may go ahead.
    #[serde(rename_all = "camelCase")]
    Abandoned {
        /// The create's claim number.
        token: u64,
    },
    /// The invoice exists.
    #[serde(rename_all = "camelCase")]
    Open {
        /// The create's claim number (0 for a generated id).
        token: u64,
        /// Gateway reference.
        reference: Reference,
        /// Where the user pays.
        payment_url: String,
    },
}

impl Creation {
    /// The claim number of the create that wrote it.
    pub fn token(&self) -> u64 {
        match self {
            Creation::Creating { token, .. }
            | Creation::Abandoned { token }
            | Creation::Open { token, .. } => *token,
        }
    }
}

impl Deposit {
    /// The invoice, once created.
    pub fn invoice(&self) -> Option<Invoice> {
        match &self.creation {
            Creation::Open {
                token,
                reference,
                payment_url,
            } => Some(Invoice {
                deposit_id: self.deposit_id.clone(),
                epoch: self.epoch,
                user_id: self.user_id.clone(),
                amount: self.amount,
                reference: reference.clone(),
                payment_url: Some(payment_url.clone()),
                attempt: attempt_of(*token),
                bot: self.bot.clone(),
            }),
            _ => None,
        }
    }

    /// The payment page, once created.
    pub fn payment_url(&self) -> Option<&str> {
        match &self.creation {
            Creation::Open { payment_url, .. } => Some(payment_url),
            _ => None,
        }
    }
}

/// The record at `ref:{reference}` (and, for a chosen id, at `inv:{id}:{token}` of the create
/// that made it): the deposit an invoice pays. A callback trusts this over `deposit:{id}`,
/// which a later create may have replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    /// The deposit.
    pub deposit_id: DepositId,
    /// Its epoch.
    pub epoch: u64,
    /// Who is credited when it is paid.
    pub user_id: String,
    /// How much it must be paid with.
    pub amount: u64,
    /// The gateway reference.
    pub reference: Reference,
    /// Where the user pays it (absent in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
    /// The create that made it when that was not the deposit's first (its claim number), else
    /// 0: it names the invoice's order at Duitku (see `Duitku::order_id`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u64,
    /// The bot credited when it is paid (omitted for `default`).
    #[serde(default, skip_serializing_if = "BotId::is_default")]
    pub bot: BotId,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The `attempt` of an invoice made by the create with claim `token` (0 for a generated id's
/// create and for a deposit's first).
pub fn attempt_of(token: u64) -> u64 {
    if token > 1 {
        token
    } else {
        0
    }
}
