//! A verified PAID/FAILED callback and the deposit state machine.
//!
//! `PENDING → PAID`, `PENDING → FAILED`, `FAILED → PAID`; PAID is final. The invoice's record
//! (`ref:{reference}`) says which deposit, user and amount a payment is for. The PAID callback
//! that gets 1 from `increment` on `paid:{id}` records the payment at `credit:{id}` and
//! delivers it; any other PAID (a repeat, a race, a second invoice, a payment whose recorder
//! died) leaves a note, and the sweep recovers a payment that was never recorded. FAILED
//! callbacks only ever add notes, so they cannot undo a payment. A used `X-Nonce` is claimed
//! only once all of this is stored: when the note or credit this callback wrote names it (and
//! its deposit lives at least `nonce_ttl` more), by one `increment`, its key removed with the
//! deposit; otherwise with an expiry task of its own.

use crate::alert::AlertKind;
use crate::bot::{deliver_inline, DeliveryOutcome};
use crate::config::Config;
use crate::credit::{AttemptKind, Credit, CreditState, PaymentFacts};
use crate::deposit::note::{Note, NoteKind};
use crate::deposit::{Deposit, Invoice};
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::flow::alerts::raise;
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
    let Some(nonce) = nonce else {
        return Ok(apply(&store, platform, config, callback, None)?.0);
    };
    if store.nonce_used(nonce)? {
        return Err(ApiError::NonceReused);
    }
    let ttl = config.replay()?.nonce_ttl_ms;
    let (outcome, named_until) = apply(&store, platform, config, callback, Some((nonce, ttl)))?;
    let first = match named_until {
        Some(deposit_end) => {
            let first = store.claim_recorded_nonce(nonce)?;
            // Paused so long that its deposit may be removed within the nonce's lifetime
            // (perhaps already, with the record naming it): give it a task of its own too.
            if store.now().saturating_add(ttl) > deposit_end {
                store.schedule_nonce_expiry(nonce, ttl)?;
            }
            first
        }
        None => store.claim_nonce(nonce, ttl)?,
    };
    if !first {
        return Err(ApiError::NonceReused);
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

/// What applying a callback did, and, when a record it wrote names its nonce, the end of that
/// record's deposit (its nonce key is removed with it).
type Applied = (CallbackOutcome, Option<u64>);

fn apply(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    callback: &PaymentCallback,
    nonce: Option<(&str, u64)>,
) -> Result<Applied, ApiError> {
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
    // Named in what this callback records only if the deposit outlives the nonce's lifetime.
    let nonce = nonce
        .filter(|(_, ttl)| deposit.exp >= now.saturating_add(*ttl))
        .map(|(nonce, _)| nonce.to_string());
    let named = |written: bool| (written && nonce.is_some()).then_some(deposit.exp);
    let note = |kind| Note {
        epoch: invoice.epoch,
        reference: invoice.reference.clone(),
        at: now,
        kind,
        nonce: nonce.clone(),
    };
    match callback.status {
        CallbackStatus::Failed => {
            let notes = store.notes(id)?;
            let written = store.add_note(
                id,
                &note(NoteKind::Failed {
                    result_code: callback.result_code.clone(),
                    closed: callback.closed,
                }),
                &notes,
                None,
            )?;
            let outcome = if head.is_some() {
                CallbackOutcome::FailedIgnored
            } else {
                CallbackOutcome::MarkedFailed
            };
            Ok((outcome, named(written)))
        }
        CallbackStatus::Paid => {
            let (raw_amount, amount) = callback.amount.clone().unwrap_or_default();
            if amount != Some(invoice.amount) {
                let notes = store.notes(id)?;
                let written = store.add_note(
                    id,
                    &note(NoteKind::WrongAmount {
                        received: raw_amount,
                    }),
                    &notes,
                    None,
                )?;
                if written {
                    let (id, reference) = (id.as_str(), invoice.reference.as_str());
                    raise(platform.variables, store, AlertKind::Review, id, reference);
                }
                return Ok((CallbackOutcome::AmountMismatch, named(written)));
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
                let (outcome, written) = repeated_payment(store, &invoice, &recorded, &paid_note)?;
                if outcome == CallbackOutcome::RefundDue && written {
                    let (id, reference) = (id.as_str(), invoice.reference.as_str());
                    raise(
                        platform.variables,
                        store,
                        AlertKind::RefundDue,
                        id,
                        reference,
                    );
                }
                return Ok((outcome, named(written)));
            }
            if !store.claim_payment(id)? {
                // Claimed, not recorded: the recorder is mid-way or died (or the claim is
                // left from an earlier deposit of this id). The sweep records this payment
                // one lease from now unless the recorder does first.
                let notes = store.notes(id)?;
                let lease = config.delivery()?.credit_lease;
                let check_at = now.saturating_add(crate::platform::millis(lease));
                let written = store.add_note(id, &paid_note, &notes, Some(check_at))?;
                return Ok((CallbackOutcome::PaymentPending, named(written)));
            }
            // A removal deletes a deposit's records before its claims: a claim won because a
            // removal had just deleted the last one finds the record gone (or a later deposit
            // of the id), and the payment it read as unrecorded was recorded and removed.
            match store.deposit(id)? {
                Some(d) if d.v.epoch == invoice.epoch => {}
                // The later deposit's removal takes the claim this left.
                Some(_) => return Err(ApiError::DepositNotFound),
                None => {
                    // The claim this left goes with an expiry task of the id.
                    store.schedule_expiry(id, now, Vec::new())?;
                    return Err(ApiError::DepositNotFound);
                }
            }
            let (outcome, recorded) =
                record_and_deliver(store, platform, config, &invoice, facts, nonce.clone())?;
            Ok((outcome, named(recorded)))
        }
    }
}

/// A PAID for a deposit whose payment is recorded; `true` if it wrote a note.
fn repeated_payment(
    store: &DepositStore,
    invoice: &Invoice,
    recorded: &Credit,
    paid_note: &Note,
) -> Result<(CallbackOutcome, bool), ApiError> {
    let id = &invoice.deposit_id;
    if recorded.reference != invoice.reference {
        // Money arrived twice for one deposit: credited once, the other is refunded by hand.
        let notes = store.notes(id)?;
        let written = store.add_note(id, paid_note, &notes, None)?;
        return Ok((CallbackOutcome::RefundDue, written));
    }
    if let CreditState::InFlight { lease_until } = recorded.state {
        // Its owner may die before recording the outcome: make sure a sweep looks then.
        store.schedule_credit(id, lease_until, Vec::new())?;
    }
    Ok((CallbackOutcome::Duplicate, false))
}

/// The callback that won the payment claim: records the payment (with `nonce`), then tries
/// the bot; `true` if the record it wrote stays the one every later owner copies.
fn record_and_deliver(
    store: &DepositStore,
    platform: &Platform,
    config: &Config,
    invoice: &Invoice,
    facts: PaymentFacts,
    nonce: Option<String>,
) -> Result<(CallbackOutcome, bool), ApiError> {
    let id = &invoice.deposit_id;
    let delivery = config.delivery()?;
    let mut credit = Credit::new(invoice, facts, 0, delivery.credit_lease);
    credit.nonce = nonce;
    store.save_credit(&credit)?;
    // A sweep recovering this payment took a generation first: it delivers, from facts of
    // its own that may not name the nonce.
    if store.generation(id)? > 0 {
        let lease_end = credit.next_attempt_at().unwrap_or_else(|| store.now());
        store.schedule_credit(id, lease_end, Vec::new())?;
        return Ok((CallbackOutcome::Recorded, false));
    }
    let (outcome, deliveries) = match config.bot_routes()?.target(&credit.bot) {
        Ok(target) => deliver_inline(
            &target,
            delivery,
            &credit.call(),
            platform.http,
            platform.clock,
        ),
        // Recorded and owed; the sweep tries again once the bot is configured.
        Err(why) => (DeliveryOutcome::NotSent(why), 0),
    };
    credit.record(
        &outcome,
        deliveries,
        AttemptKind::Inline,
        platform.clock.now_ms(),
        delivery,
    );
    save_outcome(store, &credit)?;
    if credit.is_exhausted() {
        // With `credit_max_retries = 0` the quick attempts are all there is.
        let id = credit.deposit_id.as_str();
        raise(platform.variables, store, AlertKind::Exhausted, id, "");
    }
    let outcome = if credit.is_credited() {
        CallbackOutcome::Credited
    } else {
        CallbackOutcome::CreditScheduled
    };
    Ok((outcome, true))
}
