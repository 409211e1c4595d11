//! Taking a delivery over and delivering: what a sweep, an operator's retry and the recovery
//! of an orphaned payment have in common.

use crate::bot::{credit_request, DeliveryOutcome};
use crate::config::{BotRoutes, Delivery, Unroutable};
use crate::credit::{AttemptKind, Credit, CreditLog, PaymentFacts};
use crate::deposit::note::{Note, NoteKind};
use crate::deposit::Invoice;
use crate::ids::DepositId;
use crate::platform::{Platform, StoreError, TransportError};
use crate::store::DepositStore;

/// A payment seen only in a callback's note: its recorder died before writing it.
pub struct Orphan {
    /// The invoice that was paid.
    pub invoice: Invoice,
    /// What the callback reported.
    pub facts: PaymentFacts,
}

impl Orphan {
    /// The first payment in full among `notes` of deposit epoch `epoch`, with its invoice.
    pub fn find(
        store: &DepositStore,
        notes: &[Note],
        epoch: Option<u64>,
    ) -> Result<Option<Self>, StoreError> {
        for note in notes {
            if epoch.is_some_and(|e| e != note.epoch) {
                continue;
            }
            if let NoteKind::Paid {
                payment_method,
                result_code,
            } = &note.kind
            {
                if let Some(invoice) = store.invoice(&note.reference)? {
                    return Ok(Some(Self {
                        invoice,
                        facts: PaymentFacts {
                            paid_at: note.at,
                            payment_method: payment_method.clone(),
                            result_code: result_code.clone(),
                        },
                    }));
                }
            }
        }
        Ok(None)
    }
}

/// Takes over the delivery of deposit `id` (of `epoch`, when its record is there) as the
/// generation after `log.generation`; `None` when another owner got there first. With no
/// credit recorded, `orphan` supplies the payment (unless its recorder turns out to have
/// written it meanwhile). `log` must already be limited to `epoch`.
pub fn take_over(
    store: &DepositStore,
    delivery: &Delivery,
    id: &DepositId,
    epoch: Option<u64>,
    log: &CreditLog,
    orphan: Option<&Orphan>,
) -> Result<Option<Credit>, StoreError> {
    let lease = delivery.credit_lease;
    let Some(generation) = store.claim_generation(id, log.generation)? else {
        return Ok(None);
    };
    let now = store.now();
    let base = match log.current() {
        Some(credit) => credit.clone(),
        // The recorder writes `credit:{id}` then reads `gen:{id}`; we took a generation and
        // now read `credit:{id}`: one of us sees the other, so one set of facts is sent.
        None => match (
            store
                .head(id)?
                .filter(|c| epoch.is_none_or(|e| c.epoch == e)),
            orphan,
        ) {
            (Some(recorded), _) => recorded,
            (None, Some(orphan)) => {
                let mut recovered =
                    Credit::new(&orphan.invoice, orphan.facts.clone(), generation, lease);
                recovered.recovered = true;
                recovered
            }
            (None, None) => return Ok(None),
        },
    };
    let owned = base.taken_over(generation, now, lease);
    // Checked again when the lease ends, in case this owner dies.
    let lease_end = owned.next_attempt_at().unwrap_or(now);
    store.save_credit_due(&owned, lease_end)?;
    Ok(Some(owned))
}

/// Sends owned credits concurrently, each to its own bot, and records each outcome (a credit
/// whose bot cannot be reached is not sent and stays owed); returns them as recorded, each
/// with why it was not sent, if it was not.
pub fn deliver(
    store: &DepositStore,
    platform: &Platform,
    routes: BotRoutes,
    owned: Vec<Credit>,
    kind: AttemptKind,
) -> Result<Vec<(Credit, Option<Unroutable>)>, StoreError> {
    let delivery = routes.delivery;
    let now = platform.clock.now_ms();
    // Per credit: where it goes, or why it cannot be sent.
    let targets = owned
        .iter()
        .map(|credit| routes.target(&credit.bot))
        .collect::<Vec<_>>();
    let requests = owned
        .iter()
        .zip(&targets)
        .filter_map(|(credit, target)| {
            let target = target.as_ref().ok()?;
            Some(credit_request(
                target,
                &credit.call(),
                now,
                delivery.bot_timeout,
            ))
        })
        .collect();
    let mut results = platform.http.send_all(requests).into_iter();
    let done = platform.clock.now_ms();
    let mut recorded = Vec::with_capacity(owned.len());
    for (mut credit, target) in owned.into_iter().zip(targets) {
        let held = target.as_ref().err().cloned();
        let (outcome, deliveries) = match target {
            Err(why) => (DeliveryOutcome::NotSent(why), 0),
            Ok(_) => {
                let result = results
                    .next()
                    .unwrap_or_else(|| Err(TransportError::Other("no answer".into())));
                (DeliveryOutcome::classify(result), 1)
            }
        };
        credit.record(&outcome, deliveries, kind, done, delivery);
        save_outcome(store, &credit)?;
        recorded.push((credit, held));
    }
    Ok(recorded)
}

/// Writes an attempt's outcome; a retry to come is scheduled in the same write.
pub fn save_outcome(store: &DepositStore, credit: &Credit) -> Result<(), StoreError> {
    match credit.next_attempt_at() {
        Some(at) => store.save_credit_due(credit, at),
        None => store.save_credit(credit),
    }
}
