//! `wasi:keyvalue` as the core's [`KeyValue`], granted per Spin interface: [`ReadStore`]
//! (`store`: reads, and deletes of expired records), [`Store`] (`store` + `batch`),
//! [`CounterStore`] (`store` + `batch` + `atomics`) and [`NoStore`]. A component links only
//! the grant it names, so it imports only the interfaces it uses. Buckets open on first use.

use std::cell::OnceCell;

// wasi:keyvalue@0.2.0-draft2 in both builds (spin-sdk 7 keeps it for atomics and batches).
#[cfg(not(feature = "p3"))]
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};
#[cfg(feature = "p3")]
use spin_sdk_p3::experimental::wasi::keyvalue::{atomics, batch, store};
use topup_core::platform::{KeyValue, StoreError};

/// A lazily opened bucket; every grant goes through it.
struct Bucket {
    label: &'static str,
    bucket: OnceCell<Result<store::Bucket, StoreError>>,
}

impl Bucket {
    fn new(label: &'static str) -> Self {
        Self {
            label,
            bucket: OnceCell::new(),
        }
    }

    fn get(&self) -> Result<&store::Bucket, StoreError> {
        self.bucket
            .get_or_init(|| store::open(self.label).map_err(convert))
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn convert(error: store::Error) -> StoreError {
    match error {
        store::Error::AccessDenied => StoreError::AccessDenied,
        store::Error::NoSuchStore => StoreError::NoSuchStore,
        store::Error::Other(message) => StoreError::Other(message),
    }
}

/// What a component may do with a store label.
pub trait StoreGrant: KeyValue {
    /// Whether the grant opens a label at all.
    const OPENS: bool = true;

    /// The grant for `label`.
    fn open(label: &'static str) -> Self;
}

fn not_granted() -> StoreError {
    StoreError::Other("operation not granted to this component".into())
}

/// A bucket with the `store` interface, plus `batch` if `BATCH` and `atomics` if `ATOMICS`.
/// The flags are constants, so a grant without them never links (or imports) those calls.
pub struct Grant<const BATCH: bool, const ATOMICS: bool>(Bucket);

/// The `store` interface only: reads, and deletes (one by one) of expired records.
pub type ReadStore = Grant<false, false>;
/// `store` and `batch`: records written in single transactions, no counters.
pub type Store = Grant<true, false>;
/// `store`, `batch` and `atomics`: everything, including `increment` claims.
pub type CounterStore = Grant<true, true>;

impl<const BATCH: bool, const ATOMICS: bool> StoreGrant for Grant<BATCH, ATOMICS> {
    fn open(label: &'static str) -> Self {
        Self(Bucket::new(label))
    }
}

impl<const BATCH: bool, const ATOMICS: bool> KeyValue for Grant<BATCH, ATOMICS> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get()?.get(key).map_err(convert)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.get()?.set(key, value).map_err(convert)
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        if !BATCH {
            return Err(not_granted());
        }
        batch::set_many(self.0.get()?, entries).map_err(convert)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.get()?.delete(key).map_err(convert)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        if !BATCH {
            return keys.iter().try_for_each(|key| self.delete(key));
        }
        batch::delete_many(self.0.get()?, keys).map_err(convert)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        if !ATOMICS {
            return Err(not_granted());
        }
        atomics::increment(self.0.get()?, key, delta).map_err(convert)
    }
}

/// No access: the component does not list this label in `key_value_stores`.
pub struct NoStore;

impl StoreGrant for NoStore {
    const OPENS: bool = false;

    fn open(_: &'static str) -> Self {
        Self
    }
}

impl KeyValue for NoStore {
    fn get(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::AccessDenied)
    }

    fn set(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::AccessDenied)
    }

    fn set_many(&self, _: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        Err(StoreError::AccessDenied)
    }

    fn delete(&self, _: &str) -> Result<(), StoreError> {
        Err(StoreError::AccessDenied)
    }

    fn delete_many(&self, _: &[String]) -> Result<(), StoreError> {
        Err(StoreError::AccessDenied)
    }

    fn increment(&self, _: &str, _: i64) -> Result<i64, StoreError> {
        Err(StoreError::AccessDenied)
    }
}
