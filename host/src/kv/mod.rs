//! Key-value stores with Spin's semantics (the two backends are in `sqlite_store.rs` and
//! `redis_store.rs`), and the `wasi:keyvalue` and `fermyon:spin/variables` host bindings.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use serde::Serialize;
use wasmtime::component::{HasSelf, Linker, Resource};

mod redis_store;
mod sqlite_store;

pub use redis_store::open_redis;
pub use sqlite_store::{open_sqlite, COUNTS_VAR as SQLITE_COUNTS_VAR};

use crate::server::HostState;
use crate::variables::GetError;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "topup:host/spin-imports",
        // Variables are an in-memory lookup: a plain call avoids the async host-call machinery.
        imports: {
            "fermyon:spin/variables.get": trappable,
            default: async | trappable,
        },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
    });
}

use bindings::fermyon::spin::variables;
use bindings::wasi::keyvalue::{atomics, batch, store};

/// A failed store operation: reported to the guest, or (like a panic in Spin's host) a trap.
#[derive(Debug)]
pub enum Failure {
    /// `error::other(message)` for the guest.
    Store(String),
    /// Ends the request with a 500, as Spin does when its store code panics.
    Trap(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::Store(error.to_string())
    }
}

/// Operations of one labelled store.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Value of `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Failure>;
    /// Writes `key`.
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Failure>;
    /// Removes `key`.
    async fn delete(&self, key: &str) -> Result<(), Failure>;
    /// Whether `key` exists.
    async fn exists(&self, key: &str) -> Result<bool, Failure>;
    /// Every key.
    async fn keys(&self) -> Result<Vec<String>, Failure>;
    /// Values of several keys.
    async fn get_many(&self, keys: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>, Failure>;
    /// Writes several keys.
    async fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), Failure>;
    /// Removes several keys.
    async fn delete_many(&self, keys: Vec<String>) -> Result<(), Failure>;
    /// Atomic add.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Failure>;
    /// SQLite only, under `TOPUP_SQLITE_COUNTS=1`: (committed transactions that changed rows,
    /// rows changed) so far.
    fn sync_counts(&self) -> Option<(u64, u64)> {
        None
    }
}

/// Operation counts of one label (written to the stats file for benchmarks).
#[derive(Debug, Default, Serialize)]
pub struct OpCounts {
    opens: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    increments: AtomicU64,
    batch_writes: AtomicU64,
}

/// One label: its backend and counters.
pub struct Label {
    name: String,
    backend: Arc<dyn Backend>,
    counts: OpCounts,
}

/// How long one key-value call may take by default (`--store-timeout`).
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Every configured label.
#[derive(Default)]
pub struct Stores {
    labels: BTreeMap<String, Label>,
    /// Limit of one call (none: unbounded, as in Spin).
    timeout: Option<Duration>,
}

impl Stores {
    /// Every later call that takes longer than `limit` fails with a store error (the core
    /// answers 503 `STORE_UNAVAILABLE`) instead of holding its request: Spin's Redis store
    /// waits for ever on a Redis that is down or paused. The call itself is abandoned; a
    /// write already sent may still land, as after any store error.
    pub fn set_timeout(&mut self, limit: Duration) {
        self.timeout = Some(limit);
    }

    /// Runs one backend call within the limit.
    async fn limited<T>(
        &self,
        label: &str,
        call: impl std::future::Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        let Some(limit) = self.timeout else {
            return call.await;
        };
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Store(format!(
                "store {label:?} did not answer within {} ms",
                limit.as_millis()
            ))),
        }
    }

    /// Adds a label.
    pub fn insert(&mut self, label: &str, backend: Arc<dyn Backend>) {
        self.labels.insert(
            label.to_string(),
            Label {
                name: label.to_string(),
                backend,
                counts: OpCounts::default(),
            },
        );
    }

    /// Whether a label is configured.
    pub fn contains(&self, label: &str) -> bool {
        self.labels.contains_key(label)
    }

    /// Counts an open of a label (for the benchmark's round trips per request).
    pub fn count_open(&self, label: &str) {
        if let Some(label) = self.labels.get(label) {
            count(&label.counts.opens);
        }
    }

    /// Counters per label, as JSON.
    pub fn stats(&self) -> serde_json::Value {
        self.labels
            .iter()
            .map(|(name, label)| {
                let c = &label.counts;
                let mut counts = serde_json::json!({
                    "opens": c.opens.load(Ordering::Relaxed),
                    "reads": c.reads.load(Ordering::Relaxed),
                    "writes": c.writes.load(Ordering::Relaxed),
                    "increments": c.increments.load(Ordering::Relaxed),
                    "batchWrites": c.batch_writes.load(Ordering::Relaxed),
                });
                if let (Some((transactions, rows)), Some(map)) =
                    (label.backend.sync_counts(), counts.as_object_mut())
                {
                    map.insert("sqliteSyncedTransactions".into(), transactions.into());
                    map.insert("sqliteRowsChanged".into(), rows.into());
                }
                (name.clone(), counts)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// The resource behind `wasi:keyvalue/store.bucket`.
pub struct Bucket {
    label: String,
}

/// The resource behind `wasi:keyvalue/atomics.cas` (never created: CAS is refused).
pub struct Cas;

/// Adds `wasi:keyvalue` and `fermyon:spin/variables` to the linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    atomics::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    batch::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    variables::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

type Outcome<T> = wasmtime::Result<Result<T, store::Error>>;

impl HostState {
    fn label(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<&Label> {
        let name = &self.table.get(bucket)?.label;
        self.stores
            .labels
            .get(name)
            .ok_or_else(|| wasmtime::format_err!("store {name:?} vanished"))
    }
}

/// Turns a backend result into the guest's result, or a trap.
fn outcome<T>(result: Result<T, Failure>) -> Outcome<T> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(Failure::Store(message)) => Ok(Err(store::Error::Other(message))),
        Err(Failure::Trap(message)) => Err(wasmtime::format_err!(message)),
    }
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        if !self.allowed_stores.contains(&identifier) {
            return Ok(Err(store::Error::AccessDenied));
        }
        if !self.stores.contains(&identifier) {
            return Ok(Err(store::Error::NoSuchStore));
        }
        self.stores.count_open(&identifier);
        Ok(Ok(self.table.push(Bucket { label: identifier })?))
    }
}

impl store::HostBucket for HostState {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        let label = self.label(&bucket)?;
        count(&label.counts.reads);
        outcome(
            self.stores
                .limited(&label.name, label.backend.get(&key))
                .await,
        )
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        let label = self.label(&bucket)?;
        count(&label.counts.writes);
        outcome(
            self.stores
                .limited(&label.name, label.backend.set(&key, &value))
                .await,
        )
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        let label = self.label(&bucket)?;
        count(&label.counts.writes);
        outcome(
            self.stores
                .limited(&label.name, label.backend.delete(&key))
                .await,
        )
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        let label = self.label(&bucket)?;
        count(&label.counts.reads);
        outcome(
            self.stores
                .limited(&label.name, label.backend.exists(&key))
                .await,
        )
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Outcome<store::KeyResponse> {
        if cursor.is_some() {
            return Ok(Err(store::Error::Other(
                "list_keys: cursor not supported".into(),
            )));
        }
        let label = self.label(&bucket)?;
        count(&label.counts.reads);
        outcome(
            self.stores
                .limited(&label.name, label.backend.keys())
                .await
                .map(|keys| store::KeyResponse { keys, cursor: None }),
        )
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Outcome<i64> {
        let label = self.label(&bucket)?;
        count(&label.counts.increments);
        outcome(
            self.stores
                .limited(&label.name, label.backend.increment(&key, delta))
                .await,
        )
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        _value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        self.table.delete(cas)?;
        Ok(Err(atomics::CasError::StoreError(store::Error::Other(
            "compare-and-swap is not offered: it is not atomic on Spin's stores".into(),
        ))))
    }
}

impl atomics::HostCas for HostState {
    async fn new(&mut self, _bucket: Resource<Bucket>, _key: String) -> Outcome<Resource<Cas>> {
        Ok(Err(store::Error::Other(
            "compare-and-swap is not offered: it is not atomic on Spin's stores".into(),
        )))
    }

    async fn current(&mut self, _cas: Resource<Cas>) -> Outcome<Option<Vec<u8>>> {
        Ok(Err(store::Error::Other(
            "compare-and-swap is not offered".into(),
        )))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<(String, Option<Vec<u8>>)>> {
        if keys.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let label = self.label(&bucket)?;
        count(&label.counts.reads);
        outcome(
            self.stores
                .limited(&label.name, label.backend.get_many(keys))
                .await,
        )
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        if entries.is_empty() {
            return Ok(Ok(()));
        }
        let label = self.label(&bucket)?;
        count(&label.counts.batch_writes);
        outcome(
            self.stores
                .limited(&label.name, label.backend.set_many(entries))
                .await,
        )
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        let label = self.label(&bucket)?;
        count(&label.counts.batch_writes);
        outcome(
            self.stores
                .limited(&label.name, label.backend.delete_many(keys))
                .await,
        )
    }
}

impl variables::Host for HostState {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        Ok(self.variables.get(&name).map_err(|error| match error {
            GetError::InvalidName(message) => variables::Error::InvalidName(message),
            GetError::Undefined(message) => variables::Error::Undefined(message),
        }))
    }
}

/// The labels a component may open.
pub type AllowedStores = Arc<HashSet<String>>;
