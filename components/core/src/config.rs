//! Application configuration, read from Spin variables and validated in one place.

use std::fmt;
use std::time::Duration;

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
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// A secret string whose `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's bytes, for HMAC keys and comparisons.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The validated configuration of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// Current shared secret (bearer token and HMAC key).
    pub shared_secret: Secret,
    /// Previous secret, still accepted inbound during a rotation.
    pub shared_secret_previous: Option<Secret>,
    /// Origin of the Central PG, e.g. `https://pg.example.com`.
    pub central_pg_base_url: String,
    /// Path of the create-invoice call.
    pub central_pg_create_path: String,
    /// Timeout for the create-invoice call.
    pub central_pg_timeout: Duration,
    /// Origin of the bot backend.
    pub bot_backend_url: String,
    /// Path of the credit call.
    pub bot_credit_path: String,
    /// Timeout of one credit delivery made by a sweep or a manual retry.
    pub bot_timeout: Duration,
    /// This app's public URL; when set, `callbackUrl` is sent to the PG.
    pub public_base_url: Option<String>,
    /// CORS origins whose requests are answered with `Access-Control-Allow-Origin`.
    pub allowed_origins: Vec<String>,
    /// Lifetime of deposit records, in milliseconds.
    pub deposit_ttl_ms: u64,
    /// Whether callbacks must carry a fresh `X-Timestamp`.
    pub enforce_timestamp: bool,
    /// Allowed clock skew for `X-Timestamp`, in milliseconds.
    pub timestamp_skew_ms: u64,
    /// How long a used `X-Nonce` is remembered, in milliseconds.
    pub nonce_ttl_ms: u64,
    /// Smallest accepted deposit (rupiah).
    pub min_amount: u64,
    /// Largest accepted deposit (rupiah).
    pub max_amount: u64,
    /// Delays between scheduled credit retries; the last one repeats.
    pub credit_retry_schedule: Vec<Duration>,
    /// Scheduled retries before a credit is marked exhausted.
    pub credit_max_retries: u32,
    /// How long an attempt owns a credit before a sweep may take over.
    pub credit_lease: Duration,
}

/// Every variable the service reads, with its default (`None` = required).
pub const VARIABLES: &[(&str, Option<&str>)] = &[
    ("shared_secret", None),
    ("shared_secret_previous", Some("")),
    ("central_pg_base_url", None),
    ("central_pg_create_path", Some("/invoice/create")),
    ("central_pg_timeout_ms", Some("10000")),
    ("bot_backend_url", None),
    ("bot_credit_path", Some("/internal/deposit-callback")),
    ("bot_timeout_ms", Some("5000")),
    ("public_base_url", Some("")),
    ("allowed_origins", Some("[]")),
    ("deposit_ttl_days", Some("30")),
    ("enforce_timestamp", Some("false")),
    ("timestamp_skew_sec", Some("300")),
    ("nonce_ttl_seconds", Some("600")),
    ("min_amount", Some("1000")),
    ("max_amount", Some("100000000")),
    (
        "credit_retry_schedule",
        Some("60,300,1800,7200,21600,86400"),
    ),
    ("credit_max_retries", Some("30")),
    ("credit_lease_seconds", Some("30")),
];

const MS_PER_DAY: u64 = 86_400_000;

impl Config {
    /// Reads and validates every variable.
    pub fn load(vars: &dyn Variables) -> Result<Self, ConfigError> {
        let get = |name: &'static str| read(vars, name);

        let shared_secret = get("shared_secret")?;
        if shared_secret.is_empty() {
            return Err(ConfigError::new("shared_secret", "must not be empty"));
        }
        let previous = get("shared_secret_previous")?;

        let min_amount = parse_u64("min_amount", &get("min_amount")?)?;
        let max_amount = parse_u64("max_amount", &get("max_amount")?)?;
        if min_amount == 0 || min_amount > max_amount {
            return Err(ConfigError::new(
                "max_amount",
                "need 0 < min_amount <= max_amount",
            ));
        }

        let config = Self {
            shared_secret: Secret::new(shared_secret),
            shared_secret_previous: (!previous.is_empty()).then(|| Secret::new(previous)),
            central_pg_base_url: parse_origin("central_pg_base_url", &get("central_pg_base_url")?)?,
            central_pg_create_path: parse_path(
                "central_pg_create_path",
                &get("central_pg_create_path")?,
            )?,
            central_pg_timeout: parse_millis(
                "central_pg_timeout_ms",
                &get("central_pg_timeout_ms")?,
            )?,
            bot_backend_url: parse_origin("bot_backend_url", &get("bot_backend_url")?)?,
            bot_credit_path: parse_path("bot_credit_path", &get("bot_credit_path")?)?,
            bot_timeout: parse_millis("bot_timeout_ms", &get("bot_timeout_ms")?)?,
            public_base_url: parse_public_url(&get("public_base_url")?)?,
            allowed_origins: parse_origins(&get("allowed_origins")?)?,
            deposit_ttl_ms: parse_ttl_days(&get("deposit_ttl_days")?)?,
            enforce_timestamp: parse_bool("enforce_timestamp", &get("enforce_timestamp")?)?,
            timestamp_skew_ms: parse_seconds("timestamp_skew_sec", &get("timestamp_skew_sec")?)?,
            nonce_ttl_ms: parse_seconds("nonce_ttl_seconds", &get("nonce_ttl_seconds")?)?,
            min_amount,
            max_amount,
            credit_retry_schedule: parse_schedule(&get("credit_retry_schedule")?)?,
            credit_max_retries: parse_u64("credit_max_retries", &get("credit_max_retries")?)?
                .try_into()
                .map_err(|_| ConfigError::new("credit_max_retries", "too large"))?,
            credit_lease: Duration::from_millis(parse_seconds(
                "credit_lease_seconds",
                &get("credit_lease_seconds")?,
            )?),
        };
        config.check_combinations()?;
        Ok(config)
    }

    /// Refuses values that are fine alone but defeat each other.
    fn check_combinations(&self) -> Result<(), ConfigError> {
        // A delivery must end before its lease, or a sweep takes over while it still runs.
        let longest_delivery = self.bot_timeout.max(crate::bot::INLINE_BUDGET);
        if self.credit_lease <= longest_delivery {
            return Err(ConfigError::new(
                "credit_lease_seconds",
                format!(
                    "must be longer than bot_timeout_ms and the {} ms inline budget \
                     (a delivery must end before another owner may take it over)",
                    crate::credit::millis(crate::bot::INLINE_BUDGET)
                ),
            ));
        }
        // Between two attempts the records must not reach the end of their lifetime unseen.
        let ttl = Duration::from_millis(self.deposit_ttl_ms);
        if self.credit_retry_schedule.iter().any(|step| *step > ttl) {
            return Err(ConfigError::new(
                "credit_retry_schedule",
                "no retry step may be longer than deposit_ttl_days",
            ));
        }
        Ok(())
    }

    /// How long a create of a chosen id holds it: the gateway's timeout plus a margin for the
    /// store writes around the call.
    pub fn create_lease(&self) -> Duration {
        self.central_pg_timeout + Duration::from_secs(5)
    }

    /// The secrets accepted on inbound requests: current first, then the previous one.
    pub fn inbound_secrets(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.shared_secret).chain(self.shared_secret_previous.as_ref())
    }
}

fn read(vars: &dyn Variables, name: &'static str) -> Result<String, ConfigError> {
    match vars.get(name) {
        Ok(value) => Ok(value),
        Err(VariableError::Undefined) => Err(ConfigError::new(
            name,
            "is not set or not mapped into this component",
        )),
        Err(VariableError::Other(reason)) => Err(ConfigError::new(name, reason)),
    }
}

fn parse_u64(name: &'static str, raw: &str) -> Result<u64, ConfigError> {
    raw.trim()
        .parse::<u64>()
        .map_err(|_| ConfigError::new(name, format!("`{raw}` is not a non-negative integer")))
}

fn parse_seconds(name: &'static str, raw: &str) -> Result<u64, ConfigError> {
    let secs = parse_u64(name, raw)?;
    if secs == 0 {
        return Err(ConfigError::new(name, "must be at least 1"));
    }
    secs.checked_mul(1000)
        .ok_or_else(|| ConfigError::new(name, "too large"))
}

fn parse_millis(name: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    match parse_u64(name, raw)? {
        0 => Err(ConfigError::new(name, "must be at least 1")),
        ms => Ok(Duration::from_millis(ms)),
    }
}

fn parse_bool(name: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(ConfigError::new(
            name,
            format!("`{raw}` is not true/false/1/0"),
        )),
    }
}

fn parse_ttl_days(raw: &str) -> Result<u64, ConfigError> {
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
fn parse_origin(name: &'static str, raw: &str) -> Result<String, ConfigError> {
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

fn parse_path(name: &'static str, raw: &str) -> Result<String, ConfigError> {
    let value = raw.trim();
    if !value.starts_with('/') || value.contains([' ', '#']) {
        return Err(ConfigError::new(name, "must be a path starting with /"));
    }
    Ok(value.to_string())
}

fn parse_public_url(raw: &str) -> Result<Option<String>, ConfigError> {
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

fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    const NAME: &str = "allowed_origins";
    let value = raw.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let origins: Vec<String> = serde_json::from_str(value)
        .map_err(|_| ConfigError::new(NAME, "must be a JSON array of strings"))?;
    if origins.iter().any(|o| o.is_empty()) {
        return Err(ConfigError::new(NAME, "origins must not be empty strings"));
    }
    Ok(origins)
}

fn parse_schedule(raw: &str) -> Result<Vec<Duration>, ConfigError> {
    const NAME: &str = "credit_retry_schedule";
    let delays = raw
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| {
                    ConfigError::new(
                        NAME,
                        format!("`{raw}` is not a comma-separated list of seconds"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() {
        return Err(ConfigError::new(NAME, "must list at least one delay"));
    }
    Ok(delays)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MapVariables;

    fn base() -> MapVariables {
        MapVariables::new(&[
            ("shared_secret", "s3cr3t-value"),
            ("central_pg_base_url", "https://pg.example.com"),
            ("bot_backend_url", "http://127.0.0.1:9000"),
        ])
    }

    #[test]
    fn defaults_follow_the_spec() {
        let cfg = Config::load(&base()).expect("valid config");
        assert_eq!(cfg.central_pg_create_path, "/invoice/create");
        assert_eq!(cfg.bot_credit_path, "/internal/deposit-callback");
        assert_eq!(cfg.deposit_ttl_ms, 30 * 86_400_000);
        assert!(!cfg.enforce_timestamp);
        assert_eq!(cfg.timestamp_skew_ms, 300_000);
        assert_eq!(cfg.nonce_ttl_ms, 600_000);
        assert_eq!((cfg.min_amount, cfg.max_amount), (1000, 100_000_000));
        assert!(cfg.allowed_origins.is_empty());
        assert_eq!(cfg.public_base_url, None);
        assert_eq!(cfg.shared_secret_previous, None);
        assert_eq!(cfg.credit_retry_schedule.len(), 6);
        assert_eq!(cfg.credit_retry_schedule[0], Duration::from_secs(60));
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("shared_secret", ""),
            ("central_pg_base_url", "pg.example.com"),
            ("central_pg_base_url", "https://pg.example.com/api"),
            ("central_pg_base_url", "https://pg.example.com/"),
            ("bot_backend_url", ""),
            ("central_pg_create_path", "invoice"),
            ("central_pg_timeout_ms", "soon"),
            ("central_pg_timeout_ms", "0"),
            ("bot_timeout_ms", "-5"),
            ("public_base_url", "ftp://x"),
            ("allowed_origins", "https://a.example"),
            ("allowed_origins", "[1,2]"),
            ("deposit_ttl_days", "thirty"),
            ("deposit_ttl_days", "0"),
            ("deposit_ttl_days", "NaN"),
            ("enforce_timestamp", "yes please"),
            ("timestamp_skew_sec", "5m"),
            ("nonce_ttl_seconds", "0"),
            ("min_amount", "1e3"),
            ("max_amount", "-1"),
            ("credit_retry_schedule", "60,soon"),
            ("credit_retry_schedule", ""),
            ("credit_max_retries", "many"),
            ("credit_lease_seconds", "0"),
        ];
        for (name, value) in cases {
            let vars = base().with(name, value);
            let err = Config::load(&vars).expect_err(&format!("{name}={value:?} must fail"));
            assert_eq!(
                err.variable, *name,
                "{name}={value:?} blamed {}",
                err.variable
            );
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn combinations_that_defeat_the_lease_are_refused() {
        let refused = |pairs: &[(&str, &str)], variable: &str| {
            let vars = pairs.iter().fold(base(), |v, (n, x)| v.with(n, x));
            let err = Config::load(&vars).expect_err(&format!("{pairs:?}"));
            assert_eq!(err.variable, variable, "{pairs:?}: {err}");
        };
        refused(&[("credit_lease_seconds", "2")], "credit_lease_seconds");
        refused(
            &[("credit_lease_seconds", "5"), ("bot_timeout_ms", "5000")],
            "credit_lease_seconds",
        );
        refused(
            &[
                ("deposit_ttl_days", "0.5"),
                ("credit_retry_schedule", "60,86400"),
            ],
            "credit_retry_schedule",
        );
        let fine = base()
            .with("credit_lease_seconds", "6")
            .with("bot_timeout_ms", "5000")
            .with("deposit_ttl_days", "1")
            .with("credit_retry_schedule", "60,86400");
        assert!(Config::load(&fine).is_ok());
        let err = Config::load(&base().with("credit_lease_seconds", "1")).unwrap_err();
        assert!(err.to_string().contains("bot_timeout_ms"), "{err}");
    }

    #[test]
    fn min_above_max_is_refused() {
        let vars = base().with("min_amount", "5000").with("max_amount", "4000");
        assert_eq!(Config::load(&vars).unwrap_err().variable, "max_amount");
    }

    #[test]
    fn missing_required_variable_is_named() {
        let vars = MapVariables::new(&[("shared_secret", "x"), ("bot_backend_url", "http://b")]);
        let err = Config::load(&vars).unwrap_err();
        assert_eq!(err.variable, "central_pg_base_url");
        assert!(err.problem.contains("not set"));
    }

    #[test]
    fn config_errors_never_echo_the_secret() {
        let vars = base().with("shared_secret_previous", "old-secret-value");
        let cfg = Config::load(&vars).unwrap();
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("s3cr3t-value"));
        assert!(!debug.contains("old-secret-value"));
        assert_eq!(cfg.inbound_secrets().count(), 2);
    }

    #[test]
    fn fractional_ttl_and_flags_parse() {
        let vars = base()
            .with("deposit_ttl_days", "0.5")
            .with("credit_retry_schedule", "60,300,1800,7200,21600")
            .with("enforce_timestamp", "TRUE")
            .with("allowed_origins", r#"["https://shop.example"]"#)
            .with("public_base_url", "https://topup.example/");
        let cfg = Config::load(&vars).unwrap();
        assert_eq!(cfg.deposit_ttl_ms, 43_200_000);
        let ttl = |v: &str| {
            let vars = base()
                .with("deposit_ttl_days", v)
                .with("credit_retry_schedule", "1");
            Config::load(&vars).map(|c| c.deposit_ttl_ms)
        };
        assert_eq!(ttl("0.00003").unwrap(), 2_592);
        assert_eq!(ttl(".25").unwrap(), 21_600_000);
        assert_eq!(ttl("3650").unwrap(), 3650 * 86_400_000);
        assert_eq!(ttl("0.000001").unwrap(), 1_000, "at least one second");
        for bad in ["3650.5", "3651", ".", "", "1e3", "-1", "0.0", "1.2.3"] {
            assert!(ttl(bad).is_err(), "{bad:?}");
        }
        assert!(cfg.enforce_timestamp);
        assert_eq!(cfg.allowed_origins, vec!["https://shop.example"]);
        assert_eq!(
            cfg.public_base_url.as_deref(),
            Some("https://topup.example")
        );
    }
}
