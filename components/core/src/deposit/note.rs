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
    Operator(OperatorNote),
}

/// What an operator did, by whom and why: `{"action","by","reason"?}`. Read and written
/// through `serde_json::Value`, which every component links already: a derived decoder of
/// its own would cost the sweep 2 KB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorNote {
    /// What was done.
    pub action: OperatorAction,
    /// The operator's name (`admin_token`).
    pub by: String,
    /// Why, as the operator wrote it.
    pub reason: Option<String>,
}

impl Serialize for OperatorNote {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::json!({ "action": self.action.as_str(), "by": self.by });
        if let (Some(reason), serde_json::Value::Object(map)) = (&self.reason, &mut value) {
            map.insert("reason".into(), reason.clone().into());
        }
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OperatorNote {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
        let action = field("action")
            .and_then(OperatorAction::parse)
            .ok_or_else(|| serde::de::Error::custom("an operator note without a known action"))?;
        let by = field("by")
            .ok_or_else(|| serde::de::Error::custom("an operator note without its operator"))?;
        Ok(Self {
            action,
            by: by.to_string(),
            reason: field("reason").map(str::to_string),
        })
    }
}

/// What an operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl OperatorAction {
    const NAMES: [(OperatorAction, &'static str); 4] = [
        (Self::Resend, "resend"),
        (Self::RefundHandled, "refundHandled"),
        (Self::ReviewClosed, "reviewClosed"),
        (Self::Reconcile, "reconcile"),
    ];

    /// Its name in notes and timelines.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("", |(_, name)| name)
    }

    /// The action named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(a, _)| *a)
    }
}

impl Note {
    /// The operator's note among `notes` that settled this payment by hand with `action` (a
    /// refund handled, a review closed), and what it says.
    pub fn settled_by<'n>(
        &self,
        notes: &'n [Note],
        action: OperatorAction,
    ) -> Option<(&'n Note, &'n OperatorNote)> {
        notes.iter().find_map(|n| match &n.kind {
            NoteKind::Operator(o)
                if o.action == action && n.epoch == self.epoch && n.reference == self.reference =>
            {
                Some((n, o))
            }
            _ => None,
        })
    }

    /// Whether `other` says the same thing about the same invoice (a repeat).
    pub fn repeats(&self, other: &Note) -> bool {
        self.epoch == other.epoch && self.reference == other.reference && {
            match (&self.kind, &other.kind) {
                (NoteKind::Failed { closed: a, .. }, NoteKind::Failed { closed: b, .. }) => a == b,
                (NoteKind::Paid { .. }, NoteKind::Paid { .. }) => true,
                (NoteKind::WrongAmount { received: a }, NoteKind::WrongAmount { received: b }) => {
                    a == b
                }
                // A refund is handled, a review closed, once; every other action is one of
                // its own.
                (NoteKind::Operator(a), NoteKind::Operator(b)) => {
                    a.action == b.action
                        && matches!(
                            a.action,
                            OperatorAction::RefundHandled | OperatorAction::ReviewClosed
                        )
                }
                _ => false,
            }
        }
    }
}
