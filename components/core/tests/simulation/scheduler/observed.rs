//! What the drivers saw, for the invariants: the deposits created, the invoices paid, the
//! credits owed.

use super::*;

impl Sim {
    /// Every deposit id a bot was shown.
    pub fn deposit_ids(&self) -> BTreeSet<String> {
        self.shown.iter().map(|s| s.deposit_id.clone()).collect()
    }

    /// Invoices paid with the right amount that the app owes: it acknowledged the payment,
    /// or refused its report while the deposit was alive.
    pub fn paid_invoices(&self) -> Vec<&Shown> {
        self.shown
            .iter()
            .filter(|s| {
                self.paid_shown.contains(&s.reference)
                    && self
                        .chains
                        .iter()
                        .any(|c| c.reference == s.reference && c.paid && c.correct && c.owed)
            })
            .collect()
    }

    /// Invoices paid with the right amount, whether or not the app ever heard of it.
    pub fn all_paid_invoices(&self) -> Vec<&Shown> {
        self.shown
            .iter()
            .filter(|s| self.paid_shown.contains(&s.reference))
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
