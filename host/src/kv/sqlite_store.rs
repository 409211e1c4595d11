//! Spin's SQLite store: the table `spin_key_value(store, key, value)`, one connection per label
//! behind a mutex, SQLite's defaults (rollback journal, `synchronous=FULL`, one transaction per
//! write), counters as 8-byte little-endian integers, so a file is interchangeable with
//! `spin up`'s.
//!
//! With `TOPUP_SQLITE_COUNTS=1` in the host's environment (for the benchmark; off by default,
//! and then nothing is counted), each label also counts, from SQLite's own `total_changes`,
//! the store calls that changed rows (each one committed transaction, synced to disk) and the
//! rows they changed; [`super::Stores::stats`] reports them as `sqliteSyncedTransactions` and
//! `sqliteRowsChanged`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};

use super::{Backend, Failure};

/// Opens Spin's SQLite store at `path` for `label`.
pub fn open_sqlite(path: &Path, label: &str) -> Result<Arc<dyn Backend>> {
    let counting = std::env::var_os(COUNTS_VAR).is_some_and(|v| v == "1");
    open(path, label, counting)
}

fn open(path: &Path, label: &str, counting: bool) -> Result<Arc<dyn Backend>> {
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
        counts: counting.then(SyncCounts::default),
    }))
}

/// The environment variable that turns on [`SyncCounts`] (`1`).
pub const COUNTS_VAR: &str = "TOPUP_SQLITE_COUNTS";

/// What one label's connection changed, from SQLite's `total_changes` around each call.
#[derive(Default)]
struct SyncCounts {
    /// Calls that changed at least one row: each is one committed (and synced) transaction,
    /// an autocommit statement or the call's own `BEGIN … COMMIT`.
    transactions: AtomicU64,
    /// Rows inserted, updated or deleted.
    rows: AtomicU64,
}

struct SqliteStore {
    label: String,
    connection: Arc<Mutex<Connection>>,
    /// `Some` only under [`COUNTS_VAR`].
    counts: Option<SyncCounts>,
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
        let run = |connection: &mut Connection| match &self.counts {
            None => f(connection, &self.label),
            Some(counts) => {
                // Every call runs under the connection's lock: the difference is its own.
                let before = connection.total_changes();
                let result = f(connection, &self.label);
                let changed = connection.total_changes().saturating_sub(before);
                if changed > 0 {
                    counts.transactions.fetch_add(1, Ordering::Relaxed);
                    counts.rows.fetch_add(changed, Ordering::Relaxed);
                }
                result
            }
        };
        match self.connection.try_lock() {
            Ok(mut connection) => run(&mut connection),
            Err(std::sync::TryLockError::Poisoned(_)) => Err(poisoned()),
            Err(std::sync::TryLockError::WouldBlock) => tokio::task::block_in_place(|| {
                let mut connection = self.connection.lock().map_err(|_| poisoned())?;
                run(&mut connection)
            }),
        }
    }
}

const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
                      ON CONFLICT(store, key) DO UPDATE SET value=$3";

#[async_trait]
impl Backend for SqliteStore {
    fn sync_counts(&self) -> Option<(u64, u64)> {
        let counts = self.counts.as_ref()?;
        Some((
            counts.transactions.load(Ordering::Relaxed),
            counts.rows.load(Ordering::Relaxed),
        ))
    }

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

    use super::*;

    /// SQLite's file change counter (header bytes 24..28): bumped by every committed
    /// transaction that modified the file.
    fn file_changes(path: &Path) -> u32 {
        let header = std::fs::read(path).unwrap();
        u32::from_be_bytes(header[24..28].try_into().unwrap())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn counts_the_transactions_sqlite_commits() {
        let dir = std::env::temp_dir().join(format!("topup-sqlite-counts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("kv.db");
        let store = open(&path, "default", true).unwrap();
        let start = file_changes(&path);
        store.set("a", b"1").await.unwrap();
        store
            .set_many(vec![
                ("b".into(), b"2".to_vec()),
                ("c".into(), b"3".to_vec()),
            ])
            .await
            .unwrap();
        store.increment("n", 1).await.unwrap();
        store.delete("absent").await.unwrap();
        store.get("a").await.unwrap();
        store
            .delete_many(vec!["a".into(), "b".into(), "absent".into()])
            .await
            .unwrap();
        // set, set_many, increment, delete_many: 4 transactions; 1 + 2 + 1 + 2 rows.
        assert_eq!(store.sync_counts(), Some((4, 6)));
        assert_eq!(file_changes(&path) - start, 4);
        let quiet = open(&dir.join("off.db"), "default", false).unwrap();
        quiet.set("a", b"1").await.unwrap();
        assert_eq!(quiet.sync_counts(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
