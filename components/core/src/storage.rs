//! The key layout and every store access of the service.
//!
//! Store `default` (records, values in TTL envelopes):
//! `deposit:{id}`, `ref:{reference}` → id, `credit:{id}`, `orphan:{id}`.
//! Store `claims` (raw counters written only by `increment`):
//! `paid:{id}` (the payment claim; its presence lists the deposit as owed a credit until a
//! sweep sees it credited), `attempt:{id}:{generation}`, `orphan:{id}` (lists an orphan mark
//! so it is removed with its claim), `nonce:{bucket}:{nonce}`.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::credit::Credit;
use crate::deposit::Deposit;
use crate::envelope::{Envelope, Opened};
use crate::platform::{KeyValue, Platform, StoreError};

const DEPOSIT: &str = "deposit:";
const REFERENCE: &str = "ref:";
const CREDIT: &str = "credit:";
const ORPHAN: &str = "orphan:";
const PAYMENT_CLAIM: &str = "paid:";
const ATTEMPT_CLAIM: &str = "attempt:";

/// Key of a deposit record.
pub fn deposit_key(id: &str) -> String {
    format!("{DEPOSIT}{id}")
}

/// Key of a reference → deposit id mapping.
pub fn reference_key(reference: &str) -> String {
    format!("{REFERENCE}{reference}")
}

/// Key of a deposit's payment and credit state.
pub fn credit_key(id: &str) -> String {
    format!("{CREDIT}{id}")
}

fn orphan_key(id: &str) -> String {
    format!("{ORPHAN}{id}")
}

fn payment_claim_key(id: &str) -> String {
    format!("{PAYMENT_CLAIM}{id}")
}

fn attempt_claim_key(id: &str, generation: u32) -> String {
    format!("{ATTEMPT_CLAIM}{id}:{generation}")
}

/// A deposit as stored: its record, the record's expiry and, once paid, its credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeposit {
    /// The record.
    pub deposit: Deposit,
    /// Expiry of the record (Unix ms).
    pub expires_at: u64,
    /// Payment and delivery state; `Some` means PAID.
    pub credit: Option<Credit>,
}

/// When a sweep first saw a payment claim without a recorded payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrphanMark {
    /// Unix ms.
    pub first_seen: u64,
}

/// The `claims` store, sorted out by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClaimIndex {
    /// Deposit ids holding a payment claim: paid deposits not yet seen credited by a sweep.
    pub paid: Vec<String>,
    /// Attempt-claim keys per deposit id.
    pub attempts: BTreeMap<String, Vec<String>>,
    /// Deposit ids that carry an orphan mark.
    pub orphans: std::collections::BTreeSet<String>,
    /// Every nonce key.
    pub nonces: Vec<String>,
}

/// Typed access to deposits and claims.
pub struct DepositStore<'a> {
    records: &'a dyn KeyValue,
    claims: &'a dyn KeyValue,
    ttl_ms: u64,
}

impl<'a> DepositStore<'a> {
    /// Store access for a request.
    pub fn new(platform: &Platform<'a>, config: &Config) -> Self {
        Self {
            records: platform.records,
            claims: platform.claims,
            ttl_ms: config.deposit_ttl_ms,
        }
    }

    fn read<T: DeserializeOwned>(
        &self,
        key: &str,
        now: u64,
    ) -> Result<Option<Opened<T>>, StoreError> {
        match self.records.get(key)? {
            None => Ok(None),
            Some(bytes) => Envelope::open(&bytes, now)
                .map(Some)
                .map_err(|e| StoreError::Other(format!("{key}: {e}"))),
        }
    }

    /// Loads a deposit. A deposit whose record and credit have both expired reads as absent
    /// and its keys are deleted.
    pub fn load(&self, id: &str, now: u64) -> Result<Option<StoredDeposit>, StoreError> {
        let Some(deposit) = self.read::<Deposit>(&deposit_key(id), now)? else {
            return Ok(None);
        };
        self.complete(id, deposit, self.read_credit(id, now)?)
    }

    /// Like [`Self::load`], with the credit state already read by [`Self::read_credit`].
    pub fn load_with_credit(
        &self,
        id: &str,
        now: u64,
        credit: Option<Opened<Credit>>,
    ) -> Result<Option<StoredDeposit>, StoreError> {
        let Some(deposit) = self.read::<Deposit>(&deposit_key(id), now)? else {
            return Ok(None);
        };
        self.complete(id, deposit, credit)
    }

    fn complete(
        &self,
        id: &str,
        deposit: Opened<Deposit>,
        credit: Option<Opened<Credit>>,
    ) -> Result<Option<StoredDeposit>, StoreError> {
        let (deposit, deposit_live) = split(deposit);
        let (credit, credit_live) = match credit {
            Some(opened) => {
                let (envelope, live) = split(opened);
                (Some(envelope.v), live)
            }
            None => (None, false),
        };
        if !deposit_live && !credit_live {
            let mut doomed = vec![deposit_key(id), reference_key(&deposit.v.reference)];
            if credit.is_some() {
                doomed.push(credit_key(id));
            }
            self.records.delete_many(&doomed)?;
            return Ok(None);
        }
        Ok(Some(StoredDeposit {
            expires_at: deposit.exp,
            deposit: deposit.v,
            credit,
        }))
    }

    /// Only the credit state of a deposit: enough to see that a payment claim is finished,
    /// with one read.
    pub fn read_credit(&self, id: &str, now: u64) -> Result<Option<Opened<Credit>>, StoreError> {
        self.read::<Credit>(&credit_key(id), now)
    }

    /// The deposit id a gateway reference belongs to.
    pub fn resolve_reference(
        &self,
        reference: &str,
        now: u64,
    ) -> Result<Option<String>, StoreError> {
        let key = reference_key(reference);
        match self.read::<String>(&key, now)? {
            None => Ok(None),
            Some(Opened::Live(envelope)) => Ok(Some(envelope.v)),
            Some(Opened::Expired(_)) => {
                self.records.delete(&key)?;
                Ok(None)
            }
        }
    }

    /// Stores a new deposit and its reference mapping in one write.
    pub fn insert(&self, deposit: &Deposit, now: u64) -> Result<(), StoreError> {
        let exp = now.saturating_add(self.ttl_ms);
        self.records.set_many(&[
            (
                deposit_key(&deposit.deposit_id),
                Envelope::new(deposit, exp).encode(),
            ),
            (
                reference_key(&deposit.reference),
                Envelope::new(&deposit.deposit_id, exp).encode(),
            ),
        ])
    }

    /// Rewrites a deposit record, renewing its lifetime.
    pub fn save_deposit(&self, deposit: &Deposit, now: u64) -> Result<(), StoreError> {
        let exp = now.saturating_add(self.ttl_ms);
        self.records.set(
            &deposit_key(&deposit.deposit_id),
            &Envelope::new(deposit, exp).encode(),
        )
    }

    /// Writes a deposit's credit state; it lives at least as long as the record.
    pub fn save_credit(
        &self,
        stored: &StoredDeposit,
        credit: &Credit,
        now: u64,
    ) -> Result<(), StoreError> {
        let exp = now.saturating_add(self.ttl_ms).max(stored.expires_at);
        self.records.set(
            &credit_key(&stored.deposit.deposit_id),
            &Envelope::new(credit, exp).encode(),
        )
    }

    /// Claims the payment of a deposit; only the first caller gets `true`.
    pub fn claim_payment(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.claims.increment(&payment_claim_key(id), 1)? == 1)
    }

    /// Claims delivery generation `generation`; only the first caller gets `true`.
    pub fn claim_attempt(&self, id: &str, generation: u32) -> Result<bool, StoreError> {
        Ok(self
            .claims
            .increment(&attempt_claim_key(id, generation), 1)?
            == 1)
    }

    /// Lists the `claims` store.
    pub fn claim_index(&self) -> Result<ClaimIndex, StoreError> {
        let mut index = ClaimIndex::default();
        for key in self.claims.list_keys()? {
            if let Some(id) = key.strip_prefix(PAYMENT_CLAIM) {
                index.paid.push(id.to_string());
            } else if let Some((id, _)) = key
                .strip_prefix(ATTEMPT_CLAIM)
                .and_then(|rest| rest.rsplit_once(':'))
            {
                index.attempts.entry(id.to_string()).or_default().push(key);
            } else if let Some(id) = key.strip_prefix(ORPHAN) {
                index.orphans.insert(id.to_string());
            } else if key.starts_with(crate::replay::NONCE_PREFIX) {
                index.nonces.push(key);
            }
        }
        Ok(index)
    }

    /// Deletes claim keys (finished credits, old nonces), a thousand per statement.
    pub fn delete_claims(&self, keys: &[String]) -> Result<(), StoreError> {
        keys.chunks(1000)
            .try_for_each(|chunk| self.claims.delete_many(chunk))
    }

    /// The payment-claim key of a deposit (for cleanup lists).
    pub fn payment_claim(&self, id: &str) -> String {
        payment_claim_key(id)
    }

    /// When a sweep first saw this deposit's claim without a payment record.
    pub fn orphan_mark(&self, id: &str, now: u64) -> Result<Option<OrphanMark>, StoreError> {
        Ok(match self.read::<OrphanMark>(&orphan_key(id), now)? {
            Some(Opened::Live(envelope)) | Some(Opened::Expired(envelope)) => Some(envelope.v),
            None => None,
        })
    }

    /// Remembers when a sweep first saw an orphaned payment claim, and lists the mark in the
    /// claims store so it is removed together with the claim.
    pub fn mark_orphan(&self, id: &str, now: u64) -> Result<(), StoreError> {
        let mark = OrphanMark { first_seen: now };
        self.records.set(
            &orphan_key(id),
            &Envelope::new(mark, now.saturating_add(self.ttl_ms)).encode(),
        )?;
        self.claims.increment(&orphan_key(id), 1).map(drop)
    }

    /// Removes an orphan mark; returns its claims-store key for the batch delete.
    pub fn clear_orphan(&self, id: &str) -> Result<String, StoreError> {
        self.records.delete(&orphan_key(id))?;
        Ok(orphan_key(id))
    }
}

fn split<T>(opened: Opened<T>) -> (Envelope<T>, bool) {
    match opened {
        Opened::Live(envelope) => (envelope, true),
        Opened::Expired(envelope) => (envelope, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{sample_deposit, test_config, TestPlatform};
    use std::time::Duration;

    #[test]
    fn insert_writes_record_and_reference_in_one_batch() {
        let platform = TestPlatform::new();
        let store = DepositStore::new(&platform.platform(), &test_config());
        store.insert(&sample_deposit("D1", 5000), 1_000).unwrap();
        assert_eq!(platform.records.write_ops(), 1);
        assert_eq!(
            store.resolve_reference("REF-D1", 2_000).unwrap().as_deref(),
            Some("D1")
        );
        let loaded = store.load("D1", 2_000).unwrap().unwrap();
        assert_eq!(loaded.deposit.amount, 5000);
        assert_eq!(loaded.expires_at, 1_000 + test_config().deposit_ttl_ms);
        assert_eq!(loaded.credit, None);
    }

    #[test]
    fn expired_deposit_is_a_miss_and_its_keys_are_deleted() {
        let platform = TestPlatform::new();
        let config = test_config();
        let store = DepositStore::new(&platform.platform(), &config);
        store.insert(&sample_deposit("D1", 5000), 0).unwrap();
        let later = config.deposit_ttl_ms;
        assert_eq!(store.load("D1", later).unwrap(), None);
        assert_eq!(platform.records.keys(), Vec::<String>::new());
        assert_eq!(store.resolve_reference("REF-D1", later).unwrap(), None);
    }

    #[test]
    fn a_live_credit_keeps_an_old_record_alive() {
        let platform = TestPlatform::new();
        let config = test_config();
        let store = DepositStore::new(&platform.platform(), &config);
        store.insert(&sample_deposit("D1", 5000), 0).unwrap();
        let stored = store.load("D1", 10).unwrap().unwrap();
        let credit = Credit::new_payment(1_000, None, None, Duration::from_secs(30));
        store.save_credit(&stored, &credit, 1_000).unwrap();
        let after_record_expiry = config.deposit_ttl_ms + 10;
        let loaded = store.load("D1", after_record_expiry).unwrap().unwrap();
        assert_eq!(loaded.credit, Some(credit));
        assert_eq!(
            store.load("D1", config.deposit_ttl_ms + 1_000).unwrap(),
            None
        );
        assert!(platform.records.keys().is_empty());
    }

    #[test]
    fn corrupt_values_are_store_errors_not_panics() {
        let platform = TestPlatform::new();
        platform.records.set("deposit:D1", b"{not json").unwrap();
        let store = DepositStore::new(&platform.platform(), &test_config());
        assert!(matches!(store.load("D1", 0), Err(StoreError::Other(_))));
    }

    #[test]
    fn claims_have_one_winner_and_are_indexed() {
        let platform = TestPlatform::new();
        let store = DepositStore::new(&platform.platform(), &test_config());
        assert!(store.claim_payment("D1").unwrap());
        assert!(!store.claim_payment("D1").unwrap());
        assert!(store.claim_attempt("D1", 1).unwrap());
        assert!(!store.claim_attempt("D1", 1).unwrap());
        assert!(store.claim_attempt("D1", 2).unwrap());
        platform.claims.increment("nonce:7:abc", 1).unwrap();
        let index = store.claim_index().unwrap();
        assert_eq!(index.paid, vec!["D1"]);
        assert_eq!(index.attempts["D1"], vec!["attempt:D1:1", "attempt:D1:2"]);
        assert_eq!(index.nonces, vec!["nonce:7:abc"]);
    }
}
