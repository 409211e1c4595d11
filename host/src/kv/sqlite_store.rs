//! Spin's SQLite store: the table `spin_key_value(store, key, value)`, one connection per label
//! behind a mutex, SQLite's defaults (rollback journal, `synchronous=FULL`, one transaction per
//! write), counters as 8-byte little-endian integers, so a file is interchangeable with
//! `spin up`'s.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};

use super::{Backend, Failure};

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
