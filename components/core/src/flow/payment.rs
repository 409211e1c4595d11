//! A verified PAID/FAILED callback and the deposit state machine.
//!
//! `PENDING → PAID`, `PENDING → FAILED`, `FAILED → PAID`; PAID is final. The invoice's record
//! (`ref:{reference}`) says which deposit, user and amount a payment is for. The PAID callback
//! that gets 1 from `increment` on `paid:{id}` records the payment at `credit:{id}` and
//! delivers it; any other PAID (a repeat, a race, a second invoice, a payment whose recorder
//! died) leaves a note, and the sweep recovers a payment that was never recorded. FAILED
//! callbacks only ever add notes, so they cannot undo a payment. A used `X-Nonce` is claimed
//! only once all of this is stored.

use crate::bot::deliver_inline;
use crate::config::Config;
use crate::credit::{AttemptKind, Credit, CreditState, PaymentFacts};
use crate::deposit::note::{Note, NoteKind};
use crate::deposit::{Deposit, Invoice};
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::flow::delivery::save_outcome;
use crate::flow::life::life_of;
use crate::gateway::notification::{CallbackStatus, PaymentCallback};
use crate::platform::Platform;
use crate::store::DepositStore;

/// What a callback did; every outcome is answered 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Payment recorded and the bot accepted the credit.
    Credited,
    /// Payment recorded; the credit is scheduled for retry.
    CreditScheduled,
    /// Payment recorded; a sweep that is recovering it delivers it.
    Recorded,
    /// The payment is claimed but not recorded yet: left for the sweep to recover.
    PaymentPending,
    /// PAID with a different amount: not credited, kept for review.
    AmountMismatch,
    /// A second invoice of a deposit already paid: kept as a refund due.
    RefundDue,
    /// FAILED recorded.
    MarkedFailed,
    /// FAILED after PAID: kept as an ignored event.
    FailedIgnored,
    /// Repeat of something already applied (or being applied).
    Duplicate,
}

/// Applies a verified callback; `nonce` is used only if everything else was stored.
pub fn apply_callback(
    platform: &Platform,
    config: &Config,
    callback: &PaymentCallback,
    nonce: Option<&str>,
) -> Result<CallbackOutcome, ApiError> {
    let store = DepositStore::new(platform, config.lifetime()?);
    if let Some(nonce) = nonce {
        if store.nonce_used(nonce)? {
            return Err(ApiError::NonceReused);
        }
    }
    let outcome = apply(&store, platform, config, callback)?;
    if let Some(nonce) = nonce {
        if !store.claim_nonce(nonce, config.replay()?.nonce_ttl_ms)? {
            return Err(ApiError::NonceReused);
        }
    }
    Ok(outcome)
}

/// The invoice a callback is about, and the deposit record as it stands. An invoice is one
/// the deposit's own era handed out: an earlier deposit of the id (its epoch differs) or
/// another deposit never pays this one.
fn locate(
    store: &DepositStore,
    callback: &PaymentCallback,
) -> Result<(Invoice, Envelope<Deposit>), ApiError> {
    let by_reference = match &callback.reference {
        Some(reference) => store.invoice(reference)?,
        None => None,
    };
    let id = match (&callback.order_id, &by_reference) {
        (Some(id), Some(invoice)) if *id != invoice.deposit_id => {
            return Err(ApiError::reference_mismatch())
        }
        (Some(id), _) => id.clone(),
        (None, Some(invoice)) => invoice.deposit_id.clone(),
        (None, None) => return Err(ApiError::DepositNotFound),
    };
    // Removed at the end of its life (an invoice index may outlive it).
    let deposit = store.deposit(&id)?.ok_or(ApiError::DepositNotFound)?;
    let invoice = match (by_reference, &callback.reference) {
        (Some(invoice), _) if invoice.epoch != deposit.v.epoch => {
            return Err(ApiError::reference_mismatch())
        }
        (Some(invoice), _) => invoice,
        (None, Some(_)) => return Err(ApiError::reference_mismatch()),
        // No reference: the record's invoice, or else the last one its creates handed out
        // (the record of a create that took over and failed names none).
        (None, None) => match deposit.v.invoice() {
            Some(invoice) => invoice,
            None => store
                .invoices(&deposit.v)?
                .pop()
                .ok_or(ApiError::DepositNotFound)?,
        },
    };
    Ok((invoice, deposit))
}

fn apply(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    callback: &PaymentCallback,
) -> Result<CallbackOutcome, ApiError> {
    let (invoice, deposit) = locate(store, callback)?;
    if deposit.v.gateway != callback.gateway {
        // A genuine notice of another gateway (an order id reused there) pays nothing here.
        return Err(ApiError::gateway_mismatch());
    }
    let id = &invoice.deposit_id;
    let now = store.now();
    let head = store
        .head(id)?
        .filter(|credit| credit.epoch == invoice.epoch);
    if now >= deposit.exp {
        let credit = store
            .credit_log_after(id, head.clone())?
            .of_epoch(Some(invoice.epoch));
        if !life_of(store, &deposit, &credit, &store.notes(id)?)?.is_alive(now) {
            return Err(ApiError::DepositNotFound);
        }
    }
    let note = |kind| Note {
        epoch: invoice.epoch,
        reference: invoice.reference.clone(),
        at: now,
        kind,
    };
    match callback.status {
        CallbackStatus::Failed => {
            let notes = store.notes(id)?;
            store.add_note(
                id,
                &note(NoteKind::Failed {
                    result_code: callback.result_code.clone(),
                    closed: callback.closed,
                }),
                &notes,
                None,
            )?;
            Ok(if head.is_some() {
                CallbackOutcome::FailedIgnored
            } else {
                CallbackOutcome::MarkedFailed
            })
        }
        CallbackStatus::Paid => {
            let (raw_amount, amount) = callback.amount.clone().unwrap_or_default();
            if amount != Some(invoice.amount) {
                let notes = store.notes(id)?;
                store.add_note(
                    id,
                    &note(NoteKind::WrongAmount {
                        received: raw_amount,
                    }),
                    &notes,
                    None,
                )?;
                return Ok(CallbackOutcome::AmountMismatch);
            }
            let facts = PaymentFacts {
                paid_at: now,
                payment_method: callback.payment_method.clone(),
                result_code: callback.result_code.clone(),
            };
            let paid_note = note(NoteKind::Paid {
                payment_method: facts.payment_method.clone(),
                result_code: facts.result_code.clone(),
            });
            if let Some(recorded) = head {
                return repeated_payment(store, &invoice, &recorded, &paid_note);
            }
            if !store.claim_payment(id)? {
                // Claimed, not recorded: the recorder is mid-way or died (or the claim is
                // left from an earlier deposit of this id). The sweep records this payment
                // one lease from now unless the recorder does first.
                let notes = store.notes(id)?;
                let lease = config.delivery()?.credit_lease;
                let check_at = now.saturating_add(crate::platform::millis(lease));
                store.add_note(id, &paid_note, &notes, Some(check_at))?;
                return Ok(CallbackOutcome::PaymentPending);
            }
            record_and_deliver(store, platform, config, &invoice, facts)
        }
    }
}

/// A PAID for a deposit whose payment is recorded.
fn repeated_payment(
    store: &DepositStore,
    invoice: &Invoice,
    recorded: &Credit,
    paid_note: &Note,
) -> Result<CallbackOutcome, ApiError> {
    let id = &invoice.deposit_id;
    if recorded.reference != invoice.reference {
        // Money arrived twice for one deposit: credited once, the other is refunded by hand.
        let notes = store.notes(id)?;
        store.add_note(id, paid_note, &notes, None)?;
        return Ok(CallbackOutcome::RefundDue);
    }
    if let CreditState::InFlight { lease_until } = recorded.state {
        // Its owner may die before recording the outcome: make sure a sweep looks then.
        store.schedule_credit(id, lease_until, Vec::new())?;
    }
    Ok(CallbackOutcome::Duplicate)
}

/// The callback that won the payment claim: records the payment, then tries the bot.
fn record_and_deliver(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    invoice: &Invoice,
    facts: PaymentFacts,
) -> Result<CallbackOutcome, ApiError> {
    let id = &invoice.deposit_id;
    let (auth, delivery) = (config.auth()?, config.delivery()?);
    let mut credit = Credit::new(invoice, facts, 0, delivery.credit_lease);
    store.save_credit(&credit)?;
    // A sweep recovering this payment took a generation first: it delivers.
    if store.generation(id)? > 0 {
        let lease_end = credit.next_attempt_at().unwrap_or_else(|| store.now());
        store.schedule_credit(id, lease_end, Vec::new())?;
        return Ok(CallbackOutcome::Recorded);
    }
    let (outcome, deliveries) = deliver_inline(
        auth,
        delivery,
        &credit.call(),
        platform.http,
        platform.clock,
    );
    credit.record(
        &outcome,
        deliveries,
        AttemptKind::Inline,
        platform.clock.now_ms(),
        delivery,
    );
    save_outcome(store, &credit)?;
    Ok(if credit.is_credited() {
        CallbackOutcome::Credited
    } else {
        CallbackOutcome::CreditScheduled
    })
}
