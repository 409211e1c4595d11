//! The status of a deposit as `/deposit/status` reports it: the record, its credit and its
//! notes merged into one view.

use serde::Serialize;
use serde_json::{json, Value};

use crate::credit::Credit;
use crate::deposit::note::{Note, NoteKind, OperatorAction};
use crate::deposit::{Deposit, Invoice};
use crate::envelope::Envelope;
use crate::flow::life::life_of;
use crate::ids::{DepositId, Reference};
use crate::platform::StoreError;
use crate::store::DepositStore;

/// Where a deposit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DepositStatus {
    /// Invoice created, no final callback yet.
    Pending,
    /// Paid (final).
    Paid,
    /// The gateway reported a failure; a later PAID still wins.
    Failed,
}

/// A FAILED callback after PAID, kept but ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoredEvent {
    /// Status the callback reported.
    pub status: &'static str,
    /// Why it was ignored.
    pub reason: &'static str,
    /// When it arrived (Unix ms).
    pub at: u64,
}

/// A second invoice of a deposit, paid after the first was credited: to refund by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundDue {
    /// The invoice paid and not credited.
    pub reference: Reference,
    /// The invoice that was credited.
    pub credited_reference: Reference,
    /// When its PAID callback arrived (Unix ms).
    pub at: u64,
    /// When an operator marked it refunded, who, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handled: Option<Handled>,
}

/// An operator's mark on a refund: done by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handled {
    /// The operator.
    pub by: String,
    /// When (Unix ms).
    pub at: u64,
    /// Why, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A payment with the wrong amount: not credited, for a human to settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// Why.
    pub reason: &'static str,
    /// The invoice.
    pub reference: Reference,
    /// Amount of the deposit.
    pub expected_amount: u64,
    /// Amount the callback reported (as sent).
    pub received_amount: String,
    /// When it arrived (Unix ms).
    pub at: u64,
    /// When an operator closed it (settled by hand), who, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<Handled>,
}

/// The status view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositView {
    /// Always true.
    pub ok: bool,
    /// Deposit id.
    pub deposit_id: DepositId,
    /// User id.
    pub user_id: String,
    /// Amount in rupiah.
    pub amount: u64,
    /// PENDING, PAID or FAILED.
    pub status: DepositStatus,
    /// Whether the bot accepted the credit.
    pub credited: bool,
    /// Payment page.
    pub payment_url: String,
    /// Gateway reference (of the invoice paid, once paid).
    pub reference: Option<Reference>,
    /// Creation time (Unix ms).
    pub created_at: u64,
    /// Whether a final callback (PAID or FAILED) was received.
    pub callback_received: bool,
    /// When the bot accepted the credit.
    pub credited_at: Option<u64>,
    /// Result of the last credit attempt, or why the payment was not credited.
    pub credit_result: Option<Value>,
    /// When the payment was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<u64>,
    /// Payment method reported by the gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// Credit deliveries made so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_attempts: Option<u32>,
    /// When the next automatic credit attempt is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_credit_attempt_at: Option<u64>,
    /// Whether automatic retries gave up (a manual retry is still possible).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub credit_exhausted: bool,
    /// The last payment with the wrong amount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// Every payment with the wrong amount.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<Review>,
    /// Callbacks that changed nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_events: Vec<IgnoredEvent>,
    /// Payments received and not credited, to refund by hand.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refunds_due: Vec<RefundDue>,
}

/// A deposit's status from its credit and notes; `shown` is the invoice it shows.
pub fn status_of(
    credit: Option<&Credit>,
    notes: &[Note],
    shown: Option<&Invoice>,
) -> DepositStatus {
    let reference = shown.map(|i| &i.reference);
    if credit.is_some() {
        DepositStatus::Paid
    } else if notes
        .iter()
        .any(|n| matches!(n.kind, NoteKind::Failed { .. }) && Some(&n.reference) == reference)
    {
        DepositStatus::Failed
    } else {
        DepositStatus::Pending
    }
}

/// The operator's mark on payment `payment` (a refund handled, a review closed), if any.
fn operator_mark(notes: &[Note], payment: &Note, action: OperatorAction) -> Option<Handled> {
    payment.settled_by(notes, action).map(|(mark, o)| Handled {
        by: o.by.clone(),
        at: mark.at,
        reason: o.reason.clone(),
    })
}

/// A deposit as its readers show it: its view, and the facts it was made from.
pub struct Shown {
    /// The view.
    pub view: DepositView,
    /// The record.
    pub deposit: Deposit,
    /// Its notes (of its epoch), oldest first.
    pub notes: Vec<Note>,
    /// Its credit as last written.
    pub credit: Option<Credit>,
}

/// Reads what `/deposit/status` and the console show of `deposit`; `None` while a create
/// waits for its invoice, or once its life has ended (it is about to be removed).
pub fn read_shown(
    store: &DepositStore,
    deposit: Envelope<Deposit>,
) -> Result<Option<Shown>, StoreError> {
    let id = &deposit.v.deposit_id;
    let epoch = deposit.v.epoch;
    let credit = store.credit_view(id)?.of_epoch(Some(epoch));
    let notes: Vec<_> = store
        .notes(id)?
        .into_iter()
        .filter(|n| n.epoch == epoch)
        .collect();
    // A create still waiting for its invoice is not shown; a record whose create failed after
    // taking over from one that handed out its invoice in its last instant shows that one.
    let shown = match deposit.v.invoice() {
        Some(invoice) => Some(invoice),
        None => store.invoices(&deposit.v)?.pop(),
    };
    if shown.is_none() && credit.current().is_none() && notes.is_empty() {
        return Ok(None);
    }
    let now = store.now();
    if now >= deposit.exp && !life_of(store, &deposit, &credit, &notes)?.is_alive(now) {
        return Ok(None);
    }
    let current = credit.current().cloned();
    let view = DepositView::new(deposit.v.clone(), shown.as_ref(), current.clone(), &notes);
    Ok(Some(Shown {
        view,
        deposit: deposit.v,
        notes,
        credit: current,
    }))
}

impl DepositView {
    /// Merges the record, the invoice it shows (its own, or one its creates handed out), its
    /// credit and its notes (all of this deposit's epoch).
    pub fn new(
        deposit: Deposit,
        shown: Option<&Invoice>,
        credit: Option<Credit>,
        notes: &[Note],
    ) -> Self {
        let status = status_of(credit.as_ref(), notes, shown);
        let credited_reference = credit.as_ref().map(|c| c.reference.clone());
        let mut reviews = Vec::new();
        let mut refunds_due = Vec::new();
        let mut ignored_events = Vec::new();
        for note in notes {
            match &note.kind {
                NoteKind::WrongAmount { received } => reviews.push(Review {
                    reason: "AMOUNT_MISMATCH",
                    reference: note.reference.clone(),
                    expected_amount: deposit.amount,
                    received_amount: received.clone(),
                    at: note.at,
                    closed: operator_mark(notes, note, OperatorAction::ReviewClosed),
                }),
                NoteKind::Paid { .. } => {
                    if let Some(credited) = &credited_reference {
                        if *credited != note.reference {
                            refunds_due.push(RefundDue {
                                reference: note.reference.clone(),
                                credited_reference: credited.clone(),
                                at: note.at,
                                handled: operator_mark(notes, note, OperatorAction::RefundHandled),
                            });
                        }
                    }
                }
                NoteKind::Failed { .. } if credit.is_some() => ignored_events.push(IgnoredEvent {
                    status: "FAILED",
                    reason: "PAID is final",
                    at: note.at,
                }),
                NoteKind::Failed { .. } | NoteKind::Operator(_) => {}
            }
        }
        let review_result = reviews.last().map(|r| {
            json!({
                "ok": false,
                "error": r.reason,
                "detail": { "expectedAmount": r.expected_amount, "receivedAmount": r.received_amount },
            })
        });
        let reference = credited_reference
            .or_else(|| shown.map(|i| i.reference.clone()))
            .or_else(|| notes.last().map(|n| n.reference.clone()));
        Self {
            ok: true,
            status,
            credited: credit.as_ref().is_some_and(Credit::is_credited),
            callback_received: credit.is_some()
                || notes
                    .iter()
                    .any(|n| matches!(n.kind, NoteKind::Failed { .. })),
            credited_at: credit.as_ref().and_then(|c| c.credited_at),
            credit_result: credit
                .as_ref()
                .and_then(|c| c.last_result.clone())
                .or(review_result),
            paid_at: credit.as_ref().map(|c| c.paid_at),
            payment_method: credit.as_ref().and_then(|c| c.payment_method.clone()),
            credit_attempts: credit.as_ref().map(|c| c.attempts),
            next_credit_attempt_at: credit.as_ref().and_then(Credit::next_attempt_at),
            credit_exhausted: credit.as_ref().is_some_and(Credit::is_exhausted),
            payment_url: shown
                .and_then(|i| i.payment_url.clone())
                .or_else(|| deposit.payment_url().map(str::to_string))
                .unwrap_or_default(),
            deposit_id: deposit.deposit_id,
            user_id: deposit.user_id,
            amount: deposit.amount,
            reference,
            created_at: deposit.created_at,
            review: reviews.last().cloned(),
            reviews,
            ignored_events,
            refunds_due,
        }
    }
}
