//! Parsing of single variables; each error names its variable.

use std::time::Duration;

use crate::ids::GatewayName;
use crate::platform::{VariableError, Variables};

/// A configuration problem, always naming the variable. Never contains a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("variable `{variable}`: {problem}")]
pub struct ConfigError {
    /// The Spin variable at fault.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    pub(super) fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

const MS_PER_DAY: u64 = 86_400_000;

pub(super) fn read(vars: &dyn Variables, name: &'static str) -> Result<String, ConfigError> {
    match vars.get(name) {
        Ok(value) => Ok(value),
        Err(VariableError::Undefined) => Err(ConfigError::new(
            name,
            "is not set or not mapped into this component",
        )),
        Err(VariableError::Other(reason)) => Err(ConfigError::new(name, reason)),
    }
}

pub(super) fn parse_u64(name: &'static str, raw: &str) -> Result<u64, ConfigError> {
    raw.trim()
        .parse::<u64>()
        .map_err(|_| ConfigError::new(name, format!("`{raw}` is not a non-negative integer")))
}

pub(super) fn parse_seconds(name: &'static str, raw: &str) -> Result<u64, ConfigError> {
    let secs = parse_u64(name, raw)?;
    if secs == 0 {
        return Err(ConfigError::new(name, "must be at least 1"));
    }
    secs.checked_mul(1000)
        .ok_or_else(|| ConfigError::new(name, "too large"))
}

pub(super) fn parse_millis(name: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    match parse_u64(name, raw)? {
        0 => Err(ConfigError::new(name, "must be at least 1")),
        ms => Ok(Duration::from_millis(ms)),
    }
}

pub(super) fn parse_bool(name: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(ConfigError::new(
            name,
            format!("`{raw}` is not true/false/1/0"),
        )),
    }
}

pub(super) fn parse_ttl_days(raw: &str) -> Result<u64, ConfigError> {
    const NAME: &str = "deposit_ttl_days";
    let invalid = || ConfigError::new(NAME, format!("`{raw}` is not a number of days"));
    // Decimal days parsed exactly, without floating point: `30`, `0.5`, `0.00003`.
    let value = raw.trim();
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(invalid());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| invalid())?
    };
    if whole > 3650 || (whole == 3650 && fraction.bytes().any(|b| b != b'0')) {
        return Err(ConfigError::new(
            NAME,
            "must be more than 0 and at most 3650",
        ));
    }
    let mut ms = whole * MS_PER_DAY;
    let mut scale = MS_PER_DAY;
    for digit in fraction.bytes().take(12) {
        scale /= 10;
        ms += u64::from(digit - b'0') * scale;
    }
    if ms == 0 {
        return Err(ConfigError::new(
            NAME,
            "must be more than 0 and at most 3650",
        ));
    }
    // Never shorter than one second.
    Ok(ms.max(1000))
}

/// A scheme + authority only: these values also feed `allowed_outbound_hosts`, where Spin
/// denies every request of a component if a templated value carries a path.
pub(super) fn parse_origin(name: &'static str, raw: &str) -> Result<String, ConfigError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(ConfigError::new(name, "must not be empty"));
    }
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| ConfigError::new(name, "must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(ConfigError::new(
            name,
            "must be scheme://host[:port] with no path, query or trailing slash",
        ));
    }
    Ok(value.to_string())
}

pub(super) fn parse_path(name: &'static str, raw: &str) -> Result<String, ConfigError> {
    let value = raw.trim();
    if !value.starts_with('/') || value.contains([' ', '#']) {
        return Err(ConfigError::new(name, "must be a path starting with /"));
    }
    Ok(value.to_string())
}

pub(super) fn parse_public_url(raw: &str) -> Result<Option<String>, ConfigError> {
    let value = raw.trim().trim_end_matches('/');
    if value.is_empty() {
        return Ok(None);
    }
    if !(value.starts_with("http://") || value.starts_with("https://")) || value.contains(' ') {
        return Err(ConfigError::new(
            "public_base_url",
            "must be empty or an http(s) URL",
        ));
    }
    Ok(Some(value.to_string()))
}

pub(super) fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    const NAME: &str = "allowed_origins";
    let value = raw.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    // `from_slice`, not `from_str`: every other JSON read is from bytes, and a second reader
    // type would link a second copy of serde_json's parser.
    let origins: Vec<String> = serde_json::from_slice(value.as_bytes())
        .map_err(|_| ConfigError::new(NAME, "must be a JSON array of strings"))?;
    if origins.iter().any(|o| o.is_empty()) {
        return Err(ConfigError::new(NAME, "origins must not be empty strings"));
    }
    Ok(origins)
}

/// A comma-separated list of seconds, at least one.
pub(super) fn parse_schedule(name: &'static str, raw: &str) -> Result<Vec<Duration>, ConfigError> {
    let delays = raw
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| {
                    ConfigError::new(
                        name,
                        format!("`{raw}` is not a comma-separated list of seconds"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() {
        return Err(ConfigError::new(name, "must list at least one delay"));
    }
    Ok(delays)
}

/// `gateways_enabled`: comma-separated gateway names, at least one, none twice.
pub(super) fn parse_gateways(raw: &str) -> Result<Vec<GatewayName>, ConfigError> {
    const NAME: &str = "gateways_enabled";
    let mut enabled = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let gateway = GatewayName::parse(part).ok_or_else(|| {
            ConfigError::new(
                NAME,
                format!("`{part}` is not one of central, duitku, midtrans, xendit, tripay"),
            )
        })?;
        if enabled.contains(&gateway) {
            return Err(ConfigError::new(NAME, format!("`{part}` is listed twice")));
        }
        enabled.push(gateway);
    }
    if enabled.is_empty() {
        return Err(ConfigError::new(NAME, "must name at least one gateway"));
    }
    Ok(enabled)
}
