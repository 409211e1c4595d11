//! Key-value stores with Spin's semantics, and the `wasi:keyvalue` and `fermyon:spin/variables`
//! host bindings.
//!
//! SQLite: Spin's table `spin_key_value(store, key, value)`, one connection per label behind a
//! mutex, SQLite's defaults (rollback journal, `synchronous=FULL`, one transaction per write),
//! counters as 8-byte little-endian integers. A database file is interchangeable with
//! `spin up`'s. Redis: the label is ignored (all labels share the database the URL names),
//! counters are `INCRBY` text, `get-many` is refused because Spin's Redis backend sends `KEYS`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use redis::AsyncCommands;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use wasmtime::component::{HasSelf, Linker, Resource};

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
                (
                    name.clone(),
                    serde_json::json!({
                        "opens": c.opens.load(Ordering::Relaxed),
                        "reads": c.reads.load(Ordering::Relaxed),
                        "writes": c.writes.load(Ordering::Relaxed),
                        "increments": c.increments.load(Ordering::Relaxed),
                        "batchWrites": c.batch_writes.load(Ordering::Relaxed),
                    }),
                )
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

/// Opens Spin's SQLite store at `path` for `label`.
pub fn open_sqlite(path: &Path, label: &str) -> Result<Arc<dyn Backend>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let connection = Connection::open(path)
        .with_context(|| format!("cannot open SQLite store {}", path.display()))?;
    rusqlite::vtab::array::load_module(&connection)?;
    connection.execute(
        "CREATE TABLE IF NOT EXISTS spin_key_value (
            store TEXT NOT NULL,
            key   TEXT NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (store, key)
        )",
        [],
    )?;
    Ok(Arc::new(SqliteStore {
        label: label.to_string(),
        connection: Arc::new(Mutex::new(connection)),
    }))
}

struct SqliteStore {
    label: String,
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Runs `f` on the connection. An idle connection is used right away (a read takes
    /// microseconds, and `block_in_place` would hand this worker's tasks to another thread
    /// each time); a busy one, held by a write syncing to disk, is waited for inside
    /// `block_in_place`, as Spin waits for every call, so the runtime's other tasks go on.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection, &str) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let poisoned = || Failure::Trap("SQLite connection poisoned".into());
        match self.connection.try_lock() {
            Ok(mut connection) => f(&mut connection, &self.label),
            Err(std::sync::TryLockError::Poisoned(_)) => Err(poisoned()),
            Err(std::sync::TryLockError::WouldBlock) => tokio::task::block_in_place(|| {
                let mut connection = self.connection.lock().map_err(|_| poisoned())?;
                f(&mut connection, &self.label)
            }),
        }
    }
}

const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
                      ON CONFLICT(store, key) DO UPDATE SET value=$3";

#[async_trait]
impl Backend for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        self.with(|c, store| {
            Ok(
                c.prepare_cached("SELECT value FROM spin_key_value WHERE store=$1 AND key=$2")?
                    .query_row([store, key], |row| row.get(0))
                    .optional()?,
            )
        })
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Failure> {
        self.with(|c, store| {
            c.prepare_cached(UPSERT)?
                .execute(rusqlite::params![store, key, value])?;
            Ok(())
        })
    }

    async fn delete(&self, key: &str) -> Result<(), Failure> {
        self.with(|c, store| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store=$1 AND key=$2")?
                .execute([store, key])?;
            Ok(())
        })
    }

    async fn exists(&self, key: &str) -> Result<bool, Failure> {
        self.with(|c, store| {
            Ok(
                c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store=$1 AND key=$2 LIMIT 1")?
                    .exists([store, key])?,
            )
        })
    }

    async fn keys(&self) -> Result<Vec<String>, Failure> {
        self.with(|c, store| {
            let mut statement =
                c.prepare_cached("SELECT key FROM spin_key_value WHERE store=$1")?;
            let keys = statement
                .query_map([store], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(keys)
        })
    }

    async fn get_many(&self, keys: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>, Failure> {
        // Spin answers only the keys that exist.
        self.with(|c, store| {
            let mut found = Vec::new();
            let mut statement =
                c.prepare_cached("SELECT value FROM spin_key_value WHERE store=$1 AND key=$2")?;
            for key in keys {
                let value: Option<Vec<u8>> = statement
                    .query_row([store, &key], |row| row.get(0))
                    .optional()?;
                if let Some(value) = value {
                    found.push((key, Some(value)));
                }
            }
            Ok(found)
        })
    }

    async fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), Failure> {
        self.with(|c, store| {
            let tx = c.transaction()?;
            for (key, value) in &entries {
                tx.prepare_cached(UPSERT)?
                    .execute(rusqlite::params![store, key, value])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), Failure> {
        // One statement over `rarray`, as Spin does: no limit on the number of keys.
        let keys: Vec<rusqlite::types::Value> = keys.into_iter().map(Into::into).collect();
        let keys = std::rc::Rc::new(keys);
        self.with(|c, store| {
            c.prepare_cached(
                "DELETE FROM spin_key_value WHERE store=:name AND key IN rarray(:keys)",
            )?
            .execute(rusqlite::named_params! {":name": store, ":keys": keys})?;
            Ok(())
        })
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Failure> {
        self.with(|c, store| {
            let tx = c.transaction()?;
            let current: Option<Vec<u8>> = tx
                .prepare_cached("SELECT value FROM spin_key_value WHERE store=$1 AND key=$2")?
                .query_row([store, key], |row| row.get(0))
                .optional()?;
            let current = match current {
                None => 0,
                Some(bytes) => i64::from_le_bytes(bytes.try_into().map_err(|_| {
                    // Spin's host panics here ("incorrect length").
                    Failure::Trap(format!(
                        "increment of {key:?}: value is not an 8-byte counter"
                    ))
                })?),
            };
            let next = current.wrapping_add(delta);
            tx.prepare_cached(UPSERT)?.execute(rusqlite::params![
                store,
                key,
                next.to_le_bytes()
            ])?;
            tx.commit()?;
            Ok(next)
        })
    }
}

/// Spin's Redis store at `url`; it connects on first use and reconnects after failures.
pub fn open_redis(url: &str) -> Result<Arc<dyn Backend>> {
    let client = redis::Client::open(url).with_context(|| format!("invalid Redis URL {url}"))?;
    Ok(Arc::new(RedisStore {
        client,
        connection: tokio::sync::OnceCell::new(),
    }))
}

struct RedisStore {
    client: redis::Client,
    connection: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
}

impl RedisStore {
    async fn connection(&self) -> Result<redis::aio::ConnectionManager, Failure> {
        let manager = self
            .connection
            .get_or_try_init(|| self.client.get_connection_manager())
            .await?;
        Ok(manager.clone())
    }
}

#[async_trait]
impl Backend for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        Ok(self.connection().await?.get(key).await?)
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Failure> {
        Ok(self.connection().await?.set(key, value).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), Failure> {
        Ok(self.connection().await?.del(key).await?)
    }

    async fn exists(&self, key: &str) -> Result<bool, Failure> {
        Ok(self.connection().await?.exists(key).await?)
    }

    async fn keys(&self) -> Result<Vec<String>, Failure> {
        Ok(self.connection().await?.keys("*").await?)
    }

    async fn get_many(&self, _: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>, Failure> {
        Err(Failure::Store(
            "get-many is not usable on Spin's Redis store (it sends KEYS, not MGET)".into(),
        ))
    }

    async fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), Failure> {
        Ok(self.connection().await?.mset(&entries).await?)
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), Failure> {
        Ok(self.connection().await?.del(keys).await?)
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Failure> {
        Ok(self.connection().await?.incr(key, delta).await?)
    }
}

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
