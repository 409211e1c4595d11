//! Bench-only store surgery: reads every key a real flow left in the store (listing the SQLite
//! table or `SCAN`ning Redis, which the app itself never does) and writes clones of them with
//! other deposit ids, references and nonces, keeping the schedules consistent: expiry slots
//! spread over future buckets, `count:` counters equal to the slots written, `block:`/`day:`
//! markers set.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where a store lives, as the bench sees it.
pub enum Raw {
    /// `default.db` and `claims.db` in this directory (one file per label).
    Sqlite(PathBuf),
    /// Redis URL (both labels in one database).
    Redis(String),
}

/// One stored entry: label (`default`/`claims`; `default` for Redis), key, value.
pub type Entry = (String, String, Vec<u8>);

impl Raw {
    fn sqlite(dir: &Path, label: &str) -> Result<rusqlite::Connection> {
        let c = rusqlite::Connection::open(dir.join(format!("{label}.db")))?;
        c.busy_timeout(std::time::Duration::from_secs(30))?;
        Ok(c)
    }

    fn redis(url: &str) -> Result<redis::Connection> {
        Ok(redis::Client::open(url)?.get_connection()?)
    }

    /// Every entry in the store.
    pub fn dump(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        match self {
            Raw::Sqlite(dir) => {
                for label in ["default", "claims"] {
                    let c = Self::sqlite(dir, label)?;
                    let mut q = c.prepare("SELECT store, key, value FROM spin_key_value")?;
                    let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                    for row in rows {
                        out.push(row?);
                    }
                }
            }
            Raw::Redis(url) => {
                let mut c = Self::redis(url)?;
                let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c)?;
                for key in keys {
                    let value: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut c)?;
                    out.push(("default".into(), key, value));
                }
            }
        }
        Ok(out)
    }

    /// Keys and bytes in use: SQLite rows and (page_count - freelist_count) * page_size over
    /// both files; Redis DBSIZE and used_memory.
    pub fn size(&self) -> Result<(u64, u64)> {
        match self {
            Raw::Sqlite(dir) => {
                let (mut rows, mut bytes) = (0u64, 0u64);
                for label in ["default", "claims"] {
                    let c = Self::sqlite(dir, label)?;
                    let n: i64 =
                        c.query_row("SELECT count(*) FROM spin_key_value", [], |r| r.get(0))?;
                    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                    let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
                    let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
                    rows += n as u64;
                    bytes += ((pages - free) * size) as u64;
                }
                Ok((rows, bytes))
            }
            Raw::Redis(url) => {
                let mut c = Self::redis(url)?;
                let n: u64 = redis::cmd("DBSIZE").query(&mut c)?;
                let info: String = redis::cmd("INFO").arg("memory").query(&mut c)?;
                Ok((n, crate::stack::parse_used_memory(&info)?))
            }
        }
    }

    /// Writes entries: one SQLite transaction per label, or pipelined Redis SETs.
    fn write(&self, entries: &[Entry]) -> Result<()> {
        match self {
            Raw::Sqlite(dir) => {
                for label in ["default", "claims"] {
                    let mut c = Self::sqlite(dir, label)?;
                    let tx = c.transaction()?;
                    {
                        let mut q = tx.prepare(
                            "INSERT OR REPLACE INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)",
                        )?;
                        for (l, k, v) in entries.iter().filter(|e| e.0 == label) {
                            q.execute(rusqlite::params![l, k, v])?;
                        }
                    }
                    tx.commit()?;
                }
            }
            Raw::Redis(url) => {
                let mut c = Self::redis(url)?;
                for chunk in entries.chunks(10_000) {
                    let mut p = redis::pipe();
                    for (_, k, v) in chunk {
                        p.cmd("SET").arg(k).arg(v.as_slice()).ignore();
                    }
                    p.query::<()>(&mut c)?;
                }
            }
        }
        Ok(())
    }

    fn counter(&self, n: u64) -> Vec<u8> {
        match self {
            Raw::Sqlite(_) => (n as i64).to_le_bytes().to_vec(),
            Raw::Redis(_) => n.to_string().into_bytes(),
        }
    }
}

/// The keys one flow left, to be cloned with substitutions.
pub struct Template {
    /// Entries (other than slots) naming the template's id, reference or nonce.
    records: Vec<Entry>,
    /// Slots naming it: (label, schedule, bucket, value).
    slots: Vec<(String, String, u64, Vec<u8>)>,
    /// What to substitute in keys and values (longest first).
    names: Vec<String>,
}

fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let from = from.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to.as_bytes());
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// `value` with its envelope's expiry (`{"exp":…`) `by_ms` earlier; a value without one, or
/// that never expires, as it is.
fn shift_expiry(value: Vec<u8>, by_ms: u64) -> Vec<u8> {
    const HEAD: &[u8] = b"{\"exp\":";
    let Some(rest) = value.strip_prefix(HEAD) else {
        return value;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let exp: Option<u64> = std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|d| d.parse().ok());
    match exp {
        Some(exp) if exp != u64::MAX => {
            let mut out = HEAD.to_vec();
            out.extend_from_slice(exp.saturating_sub(by_ms).to_string().as_bytes());
            out.extend_from_slice(&rest[digits..]);
            out
        }
        _ => value,
    }
}

/// Width of an expiry bucket (the `exp` schedule's), ms.
const EXPIRY_BUCKET_MS: u64 = 10_000;

fn parse_slot(key: &str) -> Option<(String, u64)> {
    let mut parts = key.strip_prefix("slot:")?.split(':');
    let schedule = parts.next()?.to_string();
    let bucket = parts.next()?.parse().ok()?;
    Some((schedule, bucket))
}

impl Template {
    /// The entries of `dump` that name any of `names` (the first is substituted last).
    pub fn new(dump: &[Entry], names: &[&str]) -> Self {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mentions = |b: &[u8]| {
            names
                .iter()
                .any(|n| b.windows(n.len()).any(|w| w == n.as_bytes()))
        };
        let mut t = Template {
            records: Vec::new(),
            slots: Vec::new(),
            names: names.clone(),
        };
        for (label, key, value) in dump {
            if let Some((schedule, bucket)) = parse_slot(key) {
                if mentions(value) {
                    t.slots
                        .push((label.clone(), schedule, bucket, value.clone()));
                }
            } else if mentions(key.as_bytes()) {
                t.records.push((label.clone(), key.clone(), value.clone()));
            }
        }
        t
    }

    /// What the template holds, for the report.
    pub fn describe(&self) -> String {
        let mut keys: Vec<String> = self
            .records
            .iter()
            .map(|(l, k, v)| format!("{l}:{k} ({} B)", v.len()))
            .collect();
        keys.extend(
            self.slots
                .iter()
                .map(|(l, s, _, v)| format!("{l}:slot:{s} ({} B)", v.len())),
        );
        keys.join(", ")
    }
}

/// Writes clones of templates, tracking the slot counters and markers it has set.
pub struct Cloner {
    raw: Raw,
    counts: BTreeMap<(String, u64), u64>,
    marked: HashSet<String>,
}

impl Cloner {
    /// Starts from the store's own counters.
    pub fn new(raw: Raw, dump: &[Entry]) -> Self {
        let mut counts = BTreeMap::new();
        let mut marked = HashSet::new();
        for (_, key, value) in dump {
            if let Some(rest) = key.strip_prefix("count:") {
                let mut p = rest.split(':');
                if let (Some(s), Some(Ok(b))) = (p.next(), p.next().map(str::parse::<u64>)) {
                    let n = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .or_else(|| value.as_slice().try_into().ok().map(u64::from_le_bytes))
                        .unwrap_or(0);
                    counts.insert((s.to_string(), b), n);
                }
            }
            if key.starts_with("block:") || key.starts_with("day:") {
                marked.insert(key.clone());
            }
        }
        Self {
            raw,
            counts,
            marked,
        }
    }

    /// The store written to.
    pub fn raw(&self) -> &Raw {
        &self.raw
    }

    /// Writes clones `from..to` of `template`; clone `i` gets the names `name(i)` (one per
    /// template name) and its slots move `1 + i / per_bucket` buckets earlier than the
    /// template's (its life began that much earlier, so it ends that much sooner: its
    /// records' expiries move as much, so each deposit's record names its own expiry bucket).
    pub fn clone_range(
        &mut self,
        template: &Template,
        from: u64,
        to: u64,
        per_bucket: u64,
        name: impl Fn(u64) -> Vec<String>,
    ) -> Result<()> {
        let mut chunk = Vec::new();
        let mut start = from;
        while start < to {
            let end = (start + 50_000).min(to);
            chunk.clear();
            let mut touched = HashSet::new();
            for i in start..end {
                let names = name(i);
                let sub = |b: &[u8]| {
                    let mut b = b.to_vec();
                    for (old, new) in template.names.iter().zip(&names) {
                        b = replace(&b, old, new);
                    }
                    b
                };
                let earlier_ms = (1 + i / per_bucket) * EXPIRY_BUCKET_MS;
                for (l, k, v) in &template.records {
                    let key = String::from_utf8(sub(k.as_bytes())).context("key")?;
                    chunk.push((l.clone(), key, shift_expiry(sub(v), earlier_ms)));
                }
                for (l, schedule, bucket, v) in &template.slots {
                    let b = bucket
                        .checked_sub(1 + i / per_bucket)
                        .context("bucket underflow")?;
                    let n = self.counts.entry((schedule.clone(), b)).or_insert(0);
                    *n += 1;
                    touched.insert((schedule.clone(), b));
                    chunk.push((l.clone(), format!("slot:{schedule}:{b}:{n}"), sub(v)));
                    let (block, day) = if schedule == "due" {
                        (600, 600 * 144)
                    } else {
                        (60, 60 * 144)
                    };
                    for marker in [
                        format!("block:{schedule}:{}", b / block),
                        format!("day:{schedule}:{}", b / day),
                    ] {
                        if self.marked.insert(marker.clone()) {
                            chunk.push(("claims".into(), marker, self.raw.counter(1)));
                        }
                    }
                }
            }
            // The counters of the buckets this chunk wrote slots in, as they now stand.
            for (s, b) in touched {
                if let Some(&n) = self.counts.get(&(s.clone(), b)) {
                    chunk.push((
                        "claims".into(),
                        format!("count:{s}:{b}"),
                        self.raw.counter(n),
                    ));
                }
            }
            self.raw.write(&chunk)?;
            start = end;
        }
        Ok(())
    }
}
