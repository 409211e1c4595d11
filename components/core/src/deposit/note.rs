//! What a callback reported that changed no state, kept at `note:{id}:{n}`. Notes are only
//! ever added (a counter hands out their numbers), so concurrent callbacks never lose one.

use serde::{Deserialize, Serialize};

use crate::ids::Reference;

/// A note about one invoice of a deposit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// The deposit's epoch (notes of an earlier deposit of the same id are ignored).
    pub epoch: u64,
    /// The invoice the callback was about.
    pub reference: Reference,
    /// When it arrived (Unix ms).
    pub at: u64,
    /// What it said.
    pub kind: NoteKind,
    /// The callback's `X-Nonce`, when this note is what remembers it: the nonce key is then
    /// removed with the deposit (see [`crate::store::DepositStore::remove_deposit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// What a callback said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NoteKind {
    /// The gateway reported the invoice failed or expired.
    #[serde(rename_all = "camelCase")]
    Failed {
        /// Gateway result code.
        result_code: Option<String>,
        /// The gateway said the invoice can no longer be paid (it expired, or its time to be
        /// paid is over): nothing more will come of it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        closed: bool,
    },
    /// The invoice was paid with another amount than the deposit's: not credited.
    #[serde(rename_all = "camelCase")]
    WrongAmount {
        /// The amount as the gateway sent it.
        received: String,
    },
    /// The invoice was paid in full but this callback did not record the payment: either it
    /// is the payment whose recorder died (the sweep recovers it from this note), or another
    /// invoice of the deposit was credited and this money is to be refunded.
    #[serde(rename_all = "camelCase")]
    Paid {
        /// Payment method.
        payment_method: Option<String>,
        /// Gateway result code.
        result_code: Option<String>,
    },
    /// An operator acted on the deposit from the console (the note's reference is the
    /// invoice acted on).
    #[serde(rename_all = "camelCase")]
    Operator {
        /// What was done.
        action: OperatorAction,
        /// The operator's name (`admin_token`).
        by: String,
        /// Why, as the operator wrote it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// What an operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OperatorAction {
    /// Asked for the credit to be delivered again now.
    Resend,
    /// Refunded a payment that was not credited (the invoice of the note): it no longer keeps
    /// the deposit.
    RefundHandled,
    /// Settled by hand a payment of the wrong amount (the invoice of the note): it no longer
    /// keeps the deposit.
    ReviewClosed,
    /// Asked the gateway about the deposit at the next sweep.
    Reconcile,
}

impl Note {
    /// Whether `other` says the same thing about the same invoice (a repeat).
    pub fn repeats(&self, other: &Note) -> bool {
        self.epoch == other.epoch && self.reference == other.reference && {
            match (&self.kind, &other.kind) {
                (NoteKind::Failed { closed: a, .. }, NoteKind::Failed { closed: b, .. }) => a == b,
                (NoteKind::Paid { .. }, NoteKind::Paid { .. }) => true,
                (NoteKind::WrongAmount { received: a }, NoteKind::WrongAmount { received: b }) => {
                    a == b
                }
                // A refund is handled once; every resend is an action of its own.
                (NoteKind::Operator { action: a, .. }, NoteKind::Operator { action: b, .. }) => {
                    a == b && *a == OperatorAction::RefundHandled
                }
                _ => false,
            }
        }
    }
}
