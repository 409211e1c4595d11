//! What the drivers saw and what the gateways' ledgers hold, for the invariants: the deposits
//! created, the invoices paid, the credits owed.

use crate::gateways::{Gw, TxnState};

use super::*;

impl Sim {
    /// Every deposit id a bot was shown.
    pub fn deposit_ids(&self) -> BTreeSet<String> {
        self.shown.iter().map(|s| s.deposit_id.clone()).collect()
    }

    /// Whether the ledger of `shown`'s gateway has it paid; with the invoice's own amount when
    /// `in_full`, with another when not.
    fn ledger_paid(&self, shown: &Shown, in_full: bool) -> bool {
        self.world
            .ledger
            .borrow()
            .get(&shown.reference)
            .is_some_and(|t| t.state == TxnState::Paid && (t.paid == Some(shown.amount)) == in_full)
    }

    /// Whether the app was told of `shown`'s payment: a gateway that can be asked always
    /// counts (reconciliation must find it); the Central PG only when the app acknowledged a
    /// report of it or refused one while the deposit was alive.
    fn told(&self, shown: &Shown, in_full: bool) -> bool {
        shown.gateway != Gw::Central
            || self
                .chains
                .iter()
                .any(|c| c.reference == shown.reference && c.paid && c.correct == in_full && c.owed)
    }

    /// Invoices paid in full that the app owes.
    pub fn paid_invoices(&self) -> Vec<&Shown> {
        self.shown
            .iter()
            .filter(|s| self.ledger_paid(s, true) && self.told(s, true))
            .collect()
    }

    /// Invoices paid in full, whether or not the app ever heard of it.
    pub fn all_paid_invoices(&self) -> Vec<&Shown> {
        self.shown
            .iter()
            .filter(|s| self.ledger_paid(s, true))
            .collect()
    }

    /// Invoices paid with another amount that the app was told of: each must wait for a human.
    pub fn wrongly_paid_invoices(&self) -> Vec<&Shown> {
        self.shown
            .iter()
            .filter(|s| {
                self.ledger_paid(s, false)
                    && (s.gateway != Gw::Central
                        || self
                            .chains
                            .iter()
                            .any(|c| c.reference == s.reference && c.paid && !c.correct && c.done))
            })
            .collect()
    }

    /// Deposits that must be credited but are not (yet).
    pub fn owed_ids(&self) -> Vec<String> {
        let bot = self.world.bot.borrow();
        self.paid_invoices()
            .iter()
            .map(|s| s.deposit_id.clone())
            .filter(|id| !self.corrupted.contains(id) && !bot.applied.contains_key(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}
