//! Application configuration, read from Spin variables in sections, each route reading only
//! the sections it uses (every variable is a host call through Spin's provider chain).

mod parse;

use std::fmt;
use std::time::Duration;

use crate::platform::Variables;
pub use parse::ConfigError;
use parse::{
    parse_bool, parse_millis, parse_origin, parse_origins, parse_path, parse_public_url,
    parse_schedule, parse_seconds, parse_ttl_days, parse_u64, read,
};

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

/// A part of the configuration, read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The shared secrets: inbound auth and the signatures of outbound calls.
    Auth,
    /// `X-Timestamp` and `X-Nonce` rules.
    Replay,
    /// Accepted deposit amounts.
    Amounts,
    /// The Central PG's create-invoice call.
    Gateway,
    /// How long deposits live.
    Lifetime,
    /// Crediting the bot: where, how long, how often.
    Delivery,
}

impl Section {
    /// The Spin variables of this section.
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Section::Auth => &["shared_secret", "shared_secret_previous"],
            Section::Replay => &[
                "enforce_timestamp",
                "timestamp_skew_sec",
                "nonce_ttl_seconds",
            ],
            Section::Amounts => &["min_amount", "max_amount"],
            Section::Gateway => &[
                "central_pg_base_url",
                "central_pg_create_path",
                "central_pg_timeout_ms",
                "public_base_url",
            ],
            Section::Lifetime => &["deposit_ttl_days"],
            Section::Delivery => &[
                "bot_backend_url",
                "bot_credit_path",
                "bot_timeout_ms",
                "credit_retry_schedule",
                "credit_max_retries",
                "credit_lease_seconds",
            ],
        }
    }
}

/// Every section.
pub const ALL_SECTIONS: &[Section] = &[
    Section::Auth,
    Section::Replay,
    Section::Amounts,
    Section::Gateway,
    Section::Lifetime,
    Section::Delivery,
];

/// Read by every route: CORS.
pub const CORS_VARIABLES: &[&str] = &["allowed_origins"];

/// Total time a PAID callback spends on inline credit attempts (the leases are checked
/// against it).
pub const INLINE_BUDGET: Duration = Duration::from_millis(2000);

/// The shared secrets.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Current shared secret (bearer token and HMAC key).
    pub shared_secret: Secret,
    /// Previous secret, still accepted inbound during a rotation.
    pub shared_secret_previous: Option<Secret>,
}

impl Auth {
    /// The secrets accepted on inbound requests: current first, then the previous one.
    pub fn inbound_secrets(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.shared_secret).chain(self.shared_secret_previous.as_ref())
    }
}

/// `X-Timestamp` and `X-Nonce` rules.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Whether callbacks must carry a fresh `X-Timestamp`.
    pub enforce_timestamp: bool,
    /// Allowed clock skew for `X-Timestamp`, in milliseconds.
    pub timestamp_skew_ms: u64,
    /// How long a used `X-Nonce` is remembered, in milliseconds.
    pub nonce_ttl_ms: u64,
}

/// Accepted deposit amounts (rupiah).
#[derive(Debug, Clone)]
pub struct Amounts {
    /// Smallest accepted deposit.
    pub min_amount: u64,
    /// Largest accepted deposit.
    pub max_amount: u64,
}

/// The Central PG's create-invoice call.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Origin of the Central PG, e.g. `https://pg.example.com`.
    pub central_pg_base_url: String,
    /// Path of the create-invoice call.
    pub central_pg_create_path: String,
    /// Timeout for the create-invoice call.
    pub central_pg_timeout: Duration,
    /// This app's public URL; when set, `callbackUrl` is sent to the PG.
    pub public_base_url: Option<String>,
}

impl Gateway {
    /// How long a create of a chosen id holds it: the gateway's timeout plus a margin for
    /// the store writes around the call.
    pub fn create_lease(&self) -> Duration {
        self.central_pg_timeout + Duration::from_secs(5)
    }
}

/// How long deposits live.
#[derive(Debug, Clone)]
pub struct Lifetime {
    /// Lifetime of deposit records, in milliseconds.
    pub deposit_ttl_ms: u64,
}

/// Crediting the bot.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Origin of the bot backend.
    pub bot_backend_url: String,
    /// Path of the credit call.
    pub bot_credit_path: String,
    /// Timeout of one credit delivery made by a sweep or a manual retry.
    pub bot_timeout: Duration,
    /// Delays between scheduled credit retries; the last one repeats.
    pub credit_retry_schedule: Vec<Duration>,
    /// Scheduled retries before a credit is marked exhausted.
    pub credit_max_retries: u32,
    /// How long an attempt owns a credit before a sweep may take over.
    pub credit_lease: Duration,
}

/// The configuration a route read: CORS always, the sections it declared.
#[derive(Debug, Clone)]
pub struct Config {
    /// CORS origins whose requests are answered with `Access-Control-Allow-Origin`.
    pub allowed_origins: Vec<String>,
    auth: Option<Auth>,
    replay: Option<Replay>,
    amounts: Option<Amounts>,
    gateway: Option<Gateway>,
    lifetime: Option<Lifetime>,
    delivery: Option<Delivery>,
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

fn not_read(section: Section) -> ConfigError {
    ConfigError::new(
        section.variables()[0],
        "is not read by this route (a route declares the sections it uses)",
    )
}

impl Config {
    /// Reads CORS and `sections`, validating each variable.
    pub fn load(vars: &dyn Variables, sections: &[Section]) -> Result<Self, ConfigError> {
        let get = |name: &'static str| read(vars, name);
        let wants = |section| sections.contains(&section);
        let mut config = Self {
            allowed_origins: parse_origins(&get("allowed_origins")?)?,
            auth: None,
            replay: None,
            amounts: None,
            gateway: None,
            lifetime: None,
            delivery: None,
        };
        if wants(Section::Auth) {
            let shared_secret = get("shared_secret")?;
            if shared_secret.is_empty() {
                return Err(ConfigError::new("shared_secret", "must not be empty"));
            }
            let previous = get("shared_secret_previous")?;
            config.auth = Some(Auth {
                shared_secret: Secret::new(shared_secret),
                shared_secret_previous: (!previous.is_empty()).then(|| Secret::new(previous)),
            });
        }
        if wants(Section::Replay) {
            config.replay = Some(Replay {
                enforce_timestamp: parse_bool("enforce_timestamp", &get("enforce_timestamp")?)?,
                timestamp_skew_ms: parse_seconds(
                    "timestamp_skew_sec",
                    &get("timestamp_skew_sec")?,
                )?,
                nonce_ttl_ms: parse_seconds("nonce_ttl_seconds", &get("nonce_ttl_seconds")?)?,
            });
        }
        if wants(Section::Amounts) {
            let min_amount = parse_u64("min_amount", &get("min_amount")?)?;
            let max_amount = parse_u64("max_amount", &get("max_amount")?)?;
            if min_amount == 0 || min_amount > max_amount {
                return Err(ConfigError::new(
                    "max_amount",
                    "need 0 < min_amount <= max_amount",
                ));
            }
            config.amounts = Some(Amounts {
                min_amount,
                max_amount,
            });
        }
        if wants(Section::Gateway) {
            config.gateway = Some(Gateway {
                central_pg_base_url: parse_origin(
                    "central_pg_base_url",
                    &get("central_pg_base_url")?,
                )?,
                central_pg_create_path: parse_path(
                    "central_pg_create_path",
                    &get("central_pg_create_path")?,
                )?,
                central_pg_timeout: parse_millis(
                    "central_pg_timeout_ms",
                    &get("central_pg_timeout_ms")?,
                )?,
                public_base_url: parse_public_url(&get("public_base_url")?)?,
            });
        }
        if wants(Section::Lifetime) {
            config.lifetime = Some(Lifetime {
                deposit_ttl_ms: parse_ttl_days(&get("deposit_ttl_days")?)?,
            });
        }
        if wants(Section::Delivery) {
            config.delivery = Some(Delivery {
                bot_backend_url: parse_origin("bot_backend_url", &get("bot_backend_url")?)?,
                bot_credit_path: parse_path("bot_credit_path", &get("bot_credit_path")?)?,
                bot_timeout: parse_millis("bot_timeout_ms", &get("bot_timeout_ms")?)?,
                credit_retry_schedule: parse_schedule(&get("credit_retry_schedule")?)?,
                credit_max_retries: parse_u64("credit_max_retries", &get("credit_max_retries")?)?
                    .try_into()
                    .map_err(|_| ConfigError::new("credit_max_retries", "too large"))?,
                credit_lease: Duration::from_millis(parse_seconds(
                    "credit_lease_seconds",
                    &get("credit_lease_seconds")?,
                )?),
            });
        }
        config.check_combinations()?;
        Ok(config)
    }

    /// Reads every section (tools and tests).
    pub fn load_all(vars: &dyn Variables) -> Result<Self, ConfigError> {
        Self::load(vars, ALL_SECTIONS)
    }

    /// Refuses values that are fine alone but defeat each other.
    fn check_combinations(&self) -> Result<(), ConfigError> {
        let Some(delivery) = &self.delivery else {
            return Ok(());
        };
        // A delivery must end before its lease, or a sweep takes over while it still runs.
        let longest_delivery = delivery.bot_timeout.max(INLINE_BUDGET);
        if delivery.credit_lease <= longest_delivery {
            return Err(ConfigError::new(
                "credit_lease_seconds",
                format!(
                    "must be longer than bot_timeout_ms and the {} ms inline budget \
                     (a delivery must end before another owner may take it over)",
                    crate::platform::millis(INLINE_BUDGET)
                ),
            ));
        }
        // Between two attempts the records must not reach the end of their lifetime unseen.
        if let Some(lifetime) = &self.lifetime {
            let ttl = Duration::from_millis(lifetime.deposit_ttl_ms);
            if delivery
                .credit_retry_schedule
                .iter()
                .any(|step| *step > ttl)
            {
                return Err(ConfigError::new(
                    "credit_retry_schedule",
                    "no retry step may be longer than deposit_ttl_days",
                ));
            }
        }
        Ok(())
    }

    /// The shared secrets.
    pub fn auth(&self) -> Result<&Auth, ConfigError> {
        self.auth.as_ref().ok_or_else(|| not_read(Section::Auth))
    }

    /// `X-Timestamp` and `X-Nonce` rules.
    pub fn replay(&self) -> Result<&Replay, ConfigError> {
        self.replay
            .as_ref()
            .ok_or_else(|| not_read(Section::Replay))
    }

    /// Accepted amounts.
    pub fn amounts(&self) -> Result<&Amounts, ConfigError> {
        self.amounts
            .as_ref()
            .ok_or_else(|| not_read(Section::Amounts))
    }

    /// The Central PG.
    pub fn gateway(&self) -> Result<&Gateway, ConfigError> {
        self.gateway
            .as_ref()
            .ok_or_else(|| not_read(Section::Gateway))
    }

    /// Deposit lifetime.
    pub fn lifetime(&self) -> Result<&Lifetime, ConfigError> {
        self.lifetime
            .as_ref()
            .ok_or_else(|| not_read(Section::Lifetime))
    }

    /// Crediting the bot.
    pub fn delivery(&self) -> Result<&Delivery, ConfigError> {
        self.delivery
            .as_ref()
            .ok_or_else(|| not_read(Section::Delivery))
    }
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
        let cfg = Config::load_all(&base()).expect("valid config");
        let (gateway, delivery) = (cfg.gateway().unwrap(), cfg.delivery().unwrap());
        let replay = cfg.replay().unwrap();
        assert_eq!(gateway.central_pg_create_path, "/invoice/create");
        assert_eq!(delivery.bot_credit_path, "/internal/deposit-callback");
        assert_eq!(cfg.lifetime().unwrap().deposit_ttl_ms, 30 * 86_400_000);
        assert!(!replay.enforce_timestamp);
        assert_eq!(replay.timestamp_skew_ms, 300_000);
        assert_eq!(replay.nonce_ttl_ms, 600_000);
        let amounts = cfg.amounts().unwrap();
        assert_eq!(
            (amounts.min_amount, amounts.max_amount),
            (1000, 100_000_000)
        );
        assert!(cfg.allowed_origins.is_empty());
        assert_eq!(gateway.public_base_url, None);
        assert_eq!(cfg.auth().unwrap().shared_secret_previous, None);
        assert_eq!(delivery.credit_retry_schedule.len(), 6);
        assert_eq!(delivery.credit_retry_schedule[0], Duration::from_secs(60));
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
            let err = Config::load_all(&vars).expect_err(&format!("{name}={value:?} must fail"));
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
            let err = Config::load_all(&vars).expect_err(&format!("{pairs:?}"));
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
        assert!(Config::load_all(&fine).is_ok());
        let err = Config::load_all(&base().with("credit_lease_seconds", "1")).unwrap_err();
        assert!(err.to_string().contains("bot_timeout_ms"), "{err}");
    }

    #[test]
    fn a_route_reads_only_its_sections() {
        // Only CORS and the Lifetime section: nothing else is read, not even the required
        // secrets, and a section not read is a clear error naming its variable.
        let vars = MapVariables::new(&[]);
        let cfg = Config::load(&vars, &[Section::Lifetime]).expect("no secret needed");
        assert_eq!(cfg.lifetime().unwrap().deposit_ttl_ms, 30 * 86_400_000);
        assert_eq!(cfg.auth().unwrap_err().variable, "shared_secret");
        assert_eq!(cfg.delivery().unwrap_err().variable, "bot_backend_url");
        // Every variable belongs to exactly one section, or to CORS.
        let mut named: Vec<&str> = ALL_SECTIONS
            .iter()
            .flat_map(|s| s.variables().iter().copied())
            .chain(CORS_VARIABLES.iter().copied())
            .collect();
        named.sort_unstable();
        let mut all: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
        all.sort_unstable();
        assert_eq!(named, all);
    }

    #[test]
    fn min_above_max_is_refused() {
        let vars = base().with("min_amount", "5000").with("max_amount", "4000");
        assert_eq!(Config::load_all(&vars).unwrap_err().variable, "max_amount");
    }

    #[test]
    fn missing_required_variable_is_named() {
        let vars = MapVariables::new(&[("shared_secret", "x"), ("bot_backend_url", "http://b")]);
        let err = Config::load_all(&vars).unwrap_err();
        assert_eq!(err.variable, "central_pg_base_url");
        assert!(err.problem.contains("not set"));
    }

    #[test]
    fn config_errors_never_echo_the_secret() {
        let vars = base().with("shared_secret_previous", "old-secret-value");
        let cfg = Config::load_all(&vars).unwrap();
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("s3cr3t-value"));
        assert!(!debug.contains("old-secret-value"));
        assert_eq!(cfg.auth().unwrap().inbound_secrets().count(), 2);
    }

    #[test]
    fn fractional_ttl_and_flags_parse() {
        let vars = base()
            .with("deposit_ttl_days", "0.5")
            .with("credit_retry_schedule", "60,300,1800,7200,21600")
            .with("enforce_timestamp", "TRUE")
            .with("allowed_origins", r#"["https://shop.example"]"#)
            .with("public_base_url", "https://topup.example/");
        let cfg = Config::load_all(&vars).unwrap();
        assert_eq!(cfg.lifetime().unwrap().deposit_ttl_ms, 43_200_000);
        let ttl = |v: &str| {
            let vars = base()
                .with("deposit_ttl_days", v)
                .with("credit_retry_schedule", "1");
            Config::load_all(&vars).map(|c| c.lifetime().unwrap().deposit_ttl_ms)
        };
        assert_eq!(ttl("0.00003").unwrap(), 2_592);
        assert_eq!(ttl(".25").unwrap(), 21_600_000);
        assert_eq!(ttl("3650").unwrap(), 3650 * 86_400_000);
        assert_eq!(ttl("0.000001").unwrap(), 1_000, "at least one second");
        for bad in ["3650.5", "3651", ".", "", "1e3", "-1", "0.0", "1.2.3"] {
            assert!(ttl(bad).is_err(), "{bad:?}");
        }
        assert!(cfg.replay().unwrap().enforce_timestamp);
        assert_eq!(cfg.allowed_origins, vec!["https://shop.example"]);
        assert_eq!(
            cfg.gateway().unwrap().public_base_url.as_deref(),
            Some("https://topup.example")
        );
    }
}
