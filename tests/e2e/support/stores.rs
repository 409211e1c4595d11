//! The stores behind a test app, read and written from the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

/// What the stores hold, keyed by (label, key).
pub type Snapshot = BTreeMap<(String, String), Vec<u8>>;

/// The stores behind one app, readable from the test.
pub struct Stores {
    backend: Backend,
    dir: PathBuf,
    redis: Option<RedisServer>,
}

impl Stores {
    pub(crate) fn new(backend: Backend, dir: &Path) -> Self {
        let redis =
            (backend == Backend::Redis).then(|| RedisServer::start(dir).expect("redis-server"));
        Self {
            backend,
            dir: dir.to_path_buf(),
            redis,
        }
    }

    /// The runtime config for these stores (written once, before any app reads it: several
    /// processes may start on it at once).
    pub fn runtime_config(&self) -> PathBuf {
        let path = self.dir.join("runtime-config.toml");
        if path.exists() {
            return path;
        }
        // Each label in use, as a platform with only those labels defines them.
        let text: String = labels_in_use()
            .iter()
            .map(|label| match &self.redis {
                None => {
                    format!("[key_value_store.{label}]\ntype = \"spin\"\npath = \"{label}.db\"\n\n")
                }
                Some(redis) => format!(
                    "[key_value_store.{label}]\ntype = \"redis\"\nurl = \"{}\"\n\n",
                    redis.url(0)
                ),
            })
            .collect();
        // Written under another name and renamed, so a reader never sees it half-written.
        let partial = self.dir.join("runtime-config.toml.partial");
        std::fs::write(&partial, text).expect("write runtime config");
        std::fs::rename(&partial, &path).expect("install runtime config");
        path
    }

    /// The Redis server behind the stores (to stop or pause it), if they are on Redis.
    pub fn redis(&self) -> Option<&RedisServer> {
        self.redis.as_ref()
    }

    /// Every key and value of both labels. On Redis both labels live in database 0 (key
    /// names never collide), so it is read once and each key is put under its label by prefix;
    /// so are the keys of `default.db` when everything is in `default` (`E2E_LABELS=single`).
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::new();
        match (&self.backend, &self.redis) {
            (Backend::Sqlite, _) => {
                for label in labels_in_use() {
                    let path = self.dir.join(format!("{label}.db"));
                    if !path.exists() {
                        continue;
                    }
                    let connection = rusqlite::Connection::open(path).expect("open sqlite");
                    let mut statement = connection
                        .prepare("SELECT store, key, value FROM spin_key_value")
                        .expect("query");
                    let rows = statement
                        .query_map([], |row| {
                            Ok((
                                (row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                                row.get::<_, Vec<u8>>(2)?,
                            ))
                        })
                        .expect("rows");
                    for row in rows {
                        let ((store, key), value) = row.expect("row");
                        assert_eq!(store, *label, "Spin's table keeps the label in `store`");
                        let label = if single_label() {
                            label_of(&key)
                        } else {
                            label
                        };
                        snapshot.insert((label.to_string(), key), value);
                    }
                }
            }
            (Backend::Redis, Some(redis)) => {
                let client = redis::Client::open(redis.url(0)).expect("redis url");
                let mut c = client.get_connection().expect("redis connection");
                let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).expect("keys");
                for key in keys {
                    let value: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut c).expect("get");
                    snapshot.insert((label_of(&key).to_string(), key), value);
                }
            }
            (Backend::Redis, None) => unreachable!("redis backend without server"),
        }
        snapshot
    }

    /// Keys of one label.
    pub fn keys(&self, label: &str) -> Vec<String> {
        self.snapshot()
            .into_keys()
            .filter(|(l, _)| l == label)
            .map(|(_, k)| k)
            .collect()
    }

    /// Writes `value` at `key` of `label` behind the app's back (to plant a corrupt record).
    pub fn put(&self, label: &str, key: &str, value: &[u8]) {
        let label = if single_label() { "default" } else { label };
        match &self.redis {
            None => {
                let connection = rusqlite::Connection::open(self.dir.join(format!("{label}.db")))
                    .expect("open sqlite");
                connection
                    .execute(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT(store, key) DO UPDATE SET value=?3",
                        rusqlite::params![label, key, value],
                    )
                    .expect("write sqlite");
            }
            Some(redis) => {
                let client = redis::Client::open(redis.url(0)).expect("redis url");
                let mut c = client.get_connection().expect("redis connection");
                let () = redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .query(&mut c)
                    .expect("set");
            }
        }
    }

    /// Makes the app's writes to the `default` label fail until the guard is dropped, while
    /// reads keep working. SQLite: another connection holds the write lock of `default.db`
    /// (`BEGIN IMMEDIATE`), so a write fails: after the host's 5 s busy timeout, or at once
    /// when its transaction has already read (SQLite does not wait then). Redis: `maxmemory 1`
    /// with `noeviction`, so every write (of both labels, one database) is refused with OOM.
    pub fn block_writes(&self) -> WriteBlock {
        match &self.redis {
            None => {
                let connection =
                    rusqlite::Connection::open(self.dir.join("default.db")).expect("open sqlite");
                connection
                    .execute_batch("BEGIN IMMEDIATE")
                    .expect("take the write lock");
                WriteBlock::Sqlite(connection)
            }
            Some(redis) => {
                redis
                    .command(0, &["CONFIG", "SET", "maxmemory-policy", "noeviction"])
                    .expect("maxmemory-policy");
                redis
                    .command(0, &["CONFIG", "SET", "maxmemory", "1"])
                    .expect("maxmemory");
                WriteBlock::Redis(redis.url(0))
            }
        }
    }
}

/// Writes to the store fail while this lives (see [`Stores::block_writes`]).
pub enum WriteBlock {
    /// The connection holding `default.db`'s write lock.
    Sqlite(rusqlite::Connection),
    /// The Redis whose memory limit refuses writes.
    Redis(String),
}

impl Drop for WriteBlock {
    fn drop(&mut self) {
        match self {
            WriteBlock::Sqlite(connection) => connection
                .execute_batch("ROLLBACK")
                .expect("release the write lock"),
            WriteBlock::Redis(url) => {
                let client = redis::Client::open(url.as_str()).expect("redis url");
                let mut c = client.get_connection().expect("redis connection");
                let () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory")
                    .arg("0")
                    .query(&mut c)
                    .expect("lift maxmemory");
            }
        }
    }
}

/// The label a key belongs to, from its prefix: the table in
/// components/core/src/store/keys.rs. A key it does not name is a finding (both labels share
/// one Redis database only because no name is used in both), so it panics.
pub fn label_of(key: &str) -> &'static str {
    const DEFAULT: [&str; 15] = [
        "deposit:",
        "ref:",
        "inv:",
        "credit:",
        "credited:",
        "gen:",
        "notes:",
        "note:",
        "hold:",
        "checks:",
        "slot:",
        "cursor:",
        "quarantine:",
        "alert:",
        "alertlog:",
    ];
    const CLAIMS: [&str; 8] = [
        "paid:",
        "create:",
        "life:",
        "nonce:",
        "count:",
        "block:",
        "day:",
        "alerting:",
    ];
    if key == "quarantine" || DEFAULT.iter().any(|p| key.starts_with(p)) {
        "default"
    } else if CLAIMS.iter().any(|p| key.starts_with(p)) {
        "claims"
    } else {
        panic!("key {key:?} is in no label of components/core/src/store/keys.rs")
    }
}

/// Every (label, key) of `snapshot` whose key or value contains `needle`.
pub fn mentions(snapshot: &Snapshot, needle: &str) -> Vec<(String, String)> {
    snapshot
        .iter()
        .filter(|((_, key), value)| {
            key.contains(needle) || String::from_utf8_lossy(value).contains(needle)
        })
        .map(|(k, _)| k.clone())
        .collect()
}
