//! How long a deposit lives: its records stay while anything is owed on it, then for the
//! retention period (`deposit_ttl_days`) after it was settled. Readers use this to decide
//! whether a deposit is still there; the sweep uses it to decide when to remove it.

use crate::credit::{Credit, CreditLog};
use crate::deposit::note::{Note, NoteKind, OperatorAction};
use crate::deposit::Deposit;
use crate::envelope::Envelope;
use crate::ids::Reference;
use crate::platform::StoreError;
use crate::store::DepositStore;

/// Until when a deposit must be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Until this time (Unix ms); then it is removed.
    Until(u64),
    /// For as long as something is owed or under review.
    Owed,
}

impl Life {
    /// Whether the deposit is still there at `now`.
    pub fn is_alive(self, now: u64) -> bool {
        match self {
            Life::Until(end) => now < end,
            Life::Owed => true,
        }
    }
}

/// What decides a deposit's life, as read from the store.
pub struct LifeFacts<'a> {
    /// Expiry of `deposit:{id}`.
    pub record_expiry: u64,
    /// Its epoch (notes and credits of an earlier deposit of the id do not count).
    pub epoch: u64,
    /// Its credit.
    pub credit: &'a CreditLog,
    /// Its notes.
    pub notes: &'a [Note],
    /// Whether a PAID callback claimed the payment.
    pub payment_claimed: bool,
    /// Whether an invoice it handed out may still be paid for all its gateway has said (see
    /// [`is_settled`]); never at the Central PG, which cannot be asked.
    pub unsettled: bool,
    /// The retention period (ms).
    pub ttl_ms: u64,
}

/// Whether nothing more can come of invoice `reference` of epoch `epoch`: its payment is
/// recorded (`credit`), a payment of it is noted (to recover, refund or review), or its
/// gateway said it can no longer be paid.
pub fn is_settled(
    reference: &Reference,
    epoch: u64,
    credit: Option<&Credit>,
    notes: &[Note],
) -> bool {
    credit.is_some_and(|c| c.epoch == epoch && c.reference == *reference)
        || notes.iter().any(|n| {
            n.epoch == epoch
                && n.reference == *reference
                && matches!(
                    n.kind,
                    NoteKind::Paid { .. }
                        | NoteKind::WrongAmount { .. }
                        | NoteKind::Failed { closed: true, .. }
                )
        })
}

/// Until when a deposit must be kept.
pub fn life(facts: &LifeFacts) -> Life {
    let credit = facts.credit.current().filter(|c| c.epoch == facts.epoch);
    let mut end = facts.record_expiry;
    match credit {
        Some(c) if c.is_credited() => {
            let settled = c.credited_at.unwrap_or(c.paid_at);
            end = end.max(settled.saturating_add(facts.ttl_ms));
        }
        // Paid and not (yet) delivered: kept until the bot has it.
        Some(_) => return Life::Owed,
        // Claimed but never recorded: its recorder died and the sweep recovers it from the
        // gateway's retry; if that never comes, keep it one more retention period.
        None if facts.payment_claimed => {
            end = end.saturating_add(facts.ttl_ms);
        }
        None => {}
    }
    let credited_reference = credit.map(|c| &c.reference);
    let notes = || facts.notes.iter().filter(|n| n.epoch == facts.epoch);
    let unresolved = notes().any(|n| match n.kind {
        NoteKind::Failed { .. } | NoteKind::Operator(_) => false,
        NoteKind::WrongAmount { .. } => n
            .settled_by(facts.notes, OperatorAction::ReviewClosed)
            .is_none(),
        // A payment not credited: to recover, or to refund (until an operator refunded it;
        // only a payment beside a credit can be marked so).
        NoteKind::Paid { .. } => {
            credited_reference != Some(&n.reference)
                && !(credited_reference.is_some()
                    && n.settled_by(facts.notes, OperatorAction::RefundHandled)
                        .is_some())
        }
    });
    if unresolved {
        return Life::Owed;
    }
    // What an operator did stays on record a retention period after.
    if let Some(last) = notes()
        .filter(|n| matches!(n.kind, NoteKind::Operator(_)))
        .map(|n| n.at)
        .max()
    {
        end = end.max(last.saturating_add(facts.ttl_ms));
    }
    if facts.unsettled {
        // Its gateway has not yet said how an invoice ended: reconciliation keeps asking.
        end = end.max(unsettled_until(facts.record_expiry, facts.ttl_ms));
    }
    Life::Until(end)
}

/// How long past its record's end a deposit whose gateway has not said how its invoices
/// ended is kept, asking: a lifetime, and at least a week (a gateway's status API down for
/// longer, or its credentials gone, and the deposit is removed unsettled).
pub const UNSETTLED_GRACE_MS: u64 = 7 * 86_400_000;

/// Until when a deposit whose record ends at `record_expiry` may wait for its gateway.
pub fn unsettled_until(record_expiry: u64, ttl_ms: u64) -> u64 {
    record_expiry.saturating_add(ttl_ms.max(UNSETTLED_GRACE_MS))
}

/// The life of `deposit`, from its credit and notes (both read by the caller) and what else
/// decides it.
pub fn life_of(
    store: &DepositStore,
    deposit: &Envelope<Deposit>,
    credit: &CreditLog,
    notes: &[Note],
) -> Result<Life, StoreError> {
    let epoch = deposit.v.epoch;
    let unsettled = !deposit.v.gateway.is_central() && {
        let current = credit.current();
        store
            .invoices(&deposit.v)?
            .iter()
            .any(|i| !is_settled(&i.reference, epoch, current, notes))
    };
    Ok(life(&LifeFacts {
        record_expiry: deposit.exp,
        epoch,
        credit,
        notes,
        payment_claimed: store.payment_claimed(&deposit.v.deposit_id)?,
        unsettled,
        ttl_ms: store.ttl_ms(),
    }))
}

/// Whether `deposit` is still there at `now`, reading its credit and notes when its record's
/// expiry has passed.
pub fn is_alive(
    store: &DepositStore,
    deposit: &Envelope<Deposit>,
    now: u64,
) -> Result<bool, StoreError> {
    if now < deposit.exp {
        return Ok(true);
    }
    let id = &deposit.v.deposit_id;
    let credit = store.credit_log(id)?.of_epoch(Some(deposit.v.epoch));
    Ok(life_of(store, deposit, &credit, &store.notes(id)?)?.is_alive(now))
}
