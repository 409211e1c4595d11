//! Removing a deposit whose life ended: every key of it, whether anyone reads it or not.

use crate::flow::life::{life_of, Life};
use crate::ids::{DepositId, Reference};
use crate::platform::StoreError;
use crate::store::DepositStore;

/// What an expiry task did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Every key of the deposit is gone.
    Removed,
    /// Not yet: checked again later.
    NotYet,
}

fn check_again(store: &DepositStore, id: &DepositId, at: u64) -> Result<Expired, StoreError> {
    store.schedule_expiry(id, at, Vec::new())?;
    Ok(Expired::NotYet)
}

/// Removes deposit `id` if its life has ended; otherwise schedules the next look.
pub fn expire(store: &DepositStore, id: &DepositId) -> Result<Expired, StoreError> {
    let now = store.now();
    let Some(deposit) = store.deposit(id)? else {
        // The record is gone (a removal that stopped half-way): remove what is left.
        let generation = store.generation(id)?;
        store.remove_deposit(id, (&[], &[]), generation)?;
        return Ok(Expired::Removed);
    };
    if now < deposit.exp {
        return check_again(store, id, deposit.exp);
    }
    let log = store.credit_log(id)?;
    let credit = log.clone().of_epoch(Some(deposit.v.epoch));
    let notes = store.notes(id)?;
    match life_of(store, &deposit, &credit, &notes)? {
        Life::Until(end) if now < end => check_again(store, id, end),
        Life::Owed => {
            // A credit due with nobody on it (its recorder died and the gateway never
            // resent the callback): hand it to the next sweep.
            if let Some(credit) = credit.current().filter(|c| c.is_due(now)) {
                store.schedule_credit(&credit.deposit_id, now, Vec::new())?;
            }
            check_again(store, id, store.expiry_from(now))
        }
        Life::Until(_) => {
            let mut references: Vec<Reference> = Vec::new();
            let known = store
                .handed_out(&deposit.v)?
                .into_iter()
                .map(|i| i.reference)
                .chain(credit.head.iter().map(|c| c.reference.clone()))
                .chain(credit.latest.iter().map(|c| c.reference.clone()))
                .chain(notes.iter().map(|n| n.reference.clone()));
            for reference in known {
                if !references.contains(&reference) {
                    references.push(reference);
                }
            }
            // Nonces its callbacks left in its records, of any epoch (the others have expiry
            // tasks).
            let mut nonces: Vec<String> = Vec::new();
            let named = notes.iter().filter_map(|n| n.nonce.clone()).chain(
                [log.head, log.latest]
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.nonce),
            );
            for nonce in named {
                if !nonces.contains(&nonce) {
                    nonces.push(nonce);
                }
            }
            store.remove_deposit(id, (&references, &nonces), credit.generation)?;
            Ok(Expired::Removed)
        }
    }
}
