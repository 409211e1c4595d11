//! Counters and probes for the "Store at volume" section: host store counters, Redis
//! SLOWLOG / LATENCY, and CPU time from /proc.

use anyhow::Result;
use serde_json::Value;

use crate::stack::WRITE_KINDS;

const KINDS: [&str; 5] = ["opens", "reads", "writes", "increments", "batchWrites"];

/// (`stats` - `base`) / `n` for one label and kind of operation.
pub fn delta(stats: &Option<Value>, base: &Option<Value>, label: &str, kind: &str, n: u64) -> f64 {
    let get = |s: &Option<Value>| {
        s.as_ref()
            .and_then(|s| s[label][kind].as_u64())
            .unwrap_or(0)
    };
    get(stats).saturating_sub(get(base)) as f64 / n.max(1) as f64
}

/// Table cells "default / claims" for every kind, and all writes per request.
pub fn per_request(stats: &Option<Value>, base: &Option<Value>, n: u64) -> (String, f64) {
    let cells: Vec<String> = KINDS
        .iter()
        .map(|k| {
            format!(
                "{:.2} / {:.2}",
                delta(stats, base, "default", k, n),
                delta(stats, base, "claims", k, n)
            )
        })
        .collect();
    (cells.join(" | "), all_writes(stats, base, n))
}

/// (`stats` - `base`) / `n` for every kind of write over both labels.
pub fn all_writes(stats: &Option<Value>, base: &Option<Value>, n: u64) -> f64 {
    ["default", "claims"]
        .iter()
        .flat_map(|l| WRITE_KINDS.map(|k| delta(stats, base, l, k, n)))
        .sum()
}

/// The slowest Redis command since [`slow_reset`], and LATENCY LATEST.
pub struct Slow {
    /// Duration, µs.
    pub max_us: u64,
    /// Its name and first argument.
    pub command: String,
    /// LATENCY LATEST, compact.
    pub latency: String,
}

fn connect(url: &str) -> Result<redis::Connection> {
    Ok(redis::Client::open(url)?.get_connection()?)
}

/// Logs every command from now on and clears the logs.
pub fn slow_reset(url: &str) -> Result<()> {
    let mut c = connect(url)?;
    for (k, v) in [
        ("slowlog-log-slower-than", "0"),
        ("slowlog-max-len", "1000000"),
        ("latency-monitor-threshold", "1"),
    ] {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query::<()>(&mut c)?;
    }
    redis::cmd("SLOWLOG").arg("RESET").query::<()>(&mut c)?;
    redis::cmd("LATENCY").arg("RESET").query::<()>(&mut c)?;
    Ok(())
}

fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        redis::Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(" "),
        other => format!("{other:?}"),
    }
}

/// Reads the logs, then stops logging every command.
pub fn slow_report(url: &str) -> Result<Slow> {
    let mut c = connect(url)?;
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG").arg("GET").arg(-1).query(&mut c)?;
    let mut slow = Slow {
        max_us: 0,
        command: "-".into(),
        latency: String::new(),
    };
    for entry in &entries {
        let redis::Value::Array(fields) = entry else {
            continue;
        };
        let (Some(redis::Value::Int(us)), Some(redis::Value::Array(args))) =
            (fields.get(2), fields.get(3))
        else {
            continue;
        };
        let name = args.first().map(text).unwrap_or_default().to_uppercase();
        if ["SLOWLOG", "CONFIG", "LATENCY", "INFO", "DBSIZE", "KEYS"].contains(&name.as_str()) {
            continue;
        }
        if *us as u64 >= slow.max_us {
            slow.max_us = *us as u64;
            let arg: String = args
                .get(1)
                .map(text)
                .unwrap_or_default()
                .chars()
                .take(40)
                .collect();
            slow.command = format!("{name} {arg}");
        }
    }
    let latest: Vec<redis::Value> = redis::cmd("LATENCY").arg("LATEST").query(&mut c)?;
    slow.latency = if latest.is_empty() {
        "none".into()
    } else {
        latest
            .iter()
            .map(|e| match e {
                redis::Value::Array(f) if f.len() >= 4 => format!(
                    "{} latest {} ms max {} ms",
                    text(&f[0]),
                    text(&f[2]),
                    text(&f[3])
                ),
                other => text(other),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg("10000")
        .query::<()>(&mut c)?;
    redis::cmd("SLOWLOG").arg("RESET").query::<()>(&mut c)?;
    Ok(slow)
}

/// User + system CPU of a process (`self` or a pid), in clock ticks (1/100 s).
pub fn cpu_ticks(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<u64> = rest
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse().ok())
                .collect();
            Some(f.iter().sum())
        })
        .unwrap_or(0)
}

/// Busy and total ticks of the whole machine.
pub struct Snapshot(u64, u64);

/// Now.
pub fn machine_snapshot() -> Snapshot {
    let line = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = line
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    Snapshot(total - idle, total)
}

/// Share of all cores busy since `since`, %.
pub fn machine_busy(since: &Snapshot) -> f64 {
    let now = machine_snapshot();
    let busy = now.0.saturating_sub(since.0) as f64;
    let total = now.1.saturating_sub(since.1).max(1) as f64;
    100.0 * busy / total
}
