//! `wasi:keyvalue` (store, atomics, batch) as the core's [`KeyValue`]. The bucket is opened on
//! first use, so a route that never touches a store never opens it.

use std::cell::OnceCell;

use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};
use topup_core::platform::{KeyValue, StoreError};

/// One labelled Spin key-value store.
pub struct SpinStore {
    label: &'static str,
    bucket: OnceCell<Result<store::Bucket, StoreError>>,
}

impl SpinStore {
    /// The store with this label (opened lazily).
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            bucket: OnceCell::new(),
        }
    }

    fn bucket(&self) -> Result<&store::Bucket, StoreError> {
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

impl KeyValue for SpinStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bucket()?.get(key).map_err(convert)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.bucket()?.set(key, value).map_err(convert)
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        batch::set_many(self.bucket()?, entries).map_err(convert)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.bucket()?.delete(key).map_err(convert)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        batch::delete_many(self.bucket()?, keys).map_err(convert)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(self.bucket()?, key, delta).map_err(convert)
    }

    fn list_keys(&self) -> Result<Vec<String>, StoreError> {
        // Spin answers everything at once and rejects cursors.
        Ok(self.bucket()?.list_keys(None).map_err(convert)?.keys)
    }
}
