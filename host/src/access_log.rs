//! One JSON line per request on stderr: when, which manifest route, method, status, how long,
//! and a request id. Nothing the client or the app sent is written except the method (a
//! token) — no header value, body, query string or variable — so no secret can reach the log.
//!
//! Why stderr: stdout is where the host prints `Serving http://…` and where guests' stdout
//! goes (as on `spin up`); the access log is the host's own diagnostics, with its ERROR lines.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one log line says.
pub struct Entry<'a> {
    /// When the request was read.
    pub start: SystemTime,
    /// The request id.
    pub id: &'a str,
    /// The request method.
    pub method: &'a str,
    /// The manifest route that served it (or a fixed word when none did).
    pub route: &'a str,
    /// The status sent, or `None` when the connection was closed without an answer.
    pub status: Option<u16>,
    /// From reading the request to sending the answer's last byte.
    pub elapsed: Duration,
}

/// The line for `entry` (no newline).
pub fn line(entry: &Entry<'_>) -> String {
    // Written field by field to keep this order (serde_json's map would sort the keys).
    let text = |value: &str| serde_json::Value::from(value).to_string();
    let status = entry
        .status
        .map_or_else(|| "null".to_string(), |s| s.to_string());
    let duration_ms = (entry.elapsed.as_secs_f64() * 1_000_000.0).round() / 1_000.0;
    format!(
        "{{\"time\":{},\"requestId\":{},\"method\":{},\"route\":{},\"status\":{status},\"durationMs\":{}}}",
        text(&rfc3339(entry.start)),
        text(entry.id),
        text(entry.method),
        text(entry.route),
        serde_json::Value::from(duration_ms),
    )
}

/// Writes the line for `entry` to stderr.
pub fn write(entry: &Entry<'_>) {
    eprintln!("{}", line(entry));
}

/// A request id unique in this process and, with a random per-process prefix, across
/// processes in practice: 12 hex digits of prefix, 8 of sequence.
pub fn request_id() -> String {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        // std seeds RandomState from the OS's randomness.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish() & 0xffff_ffff_ffff
    });
    let sequence = NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff;
    format!("{prefix:012x}{sequence:08x}")
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-25T16:30:00.123Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// (year, month, day) of a day count since 1970-01-01 (the proleptic Gregorian calendar,
/// counted in 400-year eras of 146,097 days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let at = |s: u64, ms: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_625_400, 123), "2026-11-25T16:50:00.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn ids_differ() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
    }

    #[test]
    fn line_fields() {
        let text = line(&Entry {
            start: UNIX_EPOCH,
            id: "x",
            method: "POST",
            route: "/deposit/create",
            status: Some(200),
            elapsed: Duration::from_micros(12_345),
        });
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["durationMs"], 12.345);
        assert_eq!(value["status"], 200);
        assert_eq!(value["route"], "/deposit/create");
        assert!(text.starts_with("{\"time\":\"1970-01-01T00:00:00.000Z\",\"requestId\""));
        let quoted = line(&Entry {
            start: UNIX_EPOCH,
            id: "x",
            method: "A\"B",
            route: "unrouted",
            status: None,
            elapsed: Duration::ZERO,
        });
        let value: serde_json::Value = serde_json::from_str(&quoted).unwrap();
        assert_eq!(value["method"], "A\"B");
        assert_eq!(value["status"], serde_json::Value::Null);
    }
}
