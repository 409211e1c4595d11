//! Application configuration, read from Spin variables in sections, each route reading only
//! the sections it uses (every variable is a host call through Spin's provider chain).

mod gateways;
mod parse;
mod secret;

pub use gateways::{Duitku, DuitkuSignature, Midtrans, Tripay, Xendit};
pub use secret::Secret;

use std::time::Duration;

use crate::ids::GatewayName;
use crate::platform::Variables;
pub use parse::ConfigError;
use parse::{
    parse_bool, parse_gateways, parse_millis, parse_origin, parse_origins, parse_path,
    parse_public_url, parse_schedule, parse_seconds, parse_ttl_days, parse_u64, read,
};

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
    /// The Central PG's own secret (falls back to the `Auth` secrets).
    CentralPg,
    /// Which gateways are enabled, the default one, their timeout.
    Gateways,
    /// Duitku's credentials (read only while Duitku is enabled).
    Duitku,
    /// Midtrans's credentials (read only while Midtrans is enabled).
    Midtrans,
    /// Xendit's credentials (read only while Xendit is enabled).
    Xendit,
    /// Tripay's credentials (read only while Tripay is enabled).
    Tripay,
    /// How the sweep asks gateways about deposits still pending.
    Reconcile,
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
            Section::CentralPg => &["pg_shared_secret"],
            Section::Gateways => &[
                "gateways_enabled",
                "gateway_default",
                "gateway_timeout_ms",
                "reconcile_after_seconds",
            ],
            Section::Reconcile => &["reconcile_schedule", "reconcile_max_per_sweep"],
            Section::Duitku => &[
                "duitku_base_url",
                "duitku_merchant_code",
                "duitku_api_key",
                "duitku_signature",
            ],
            Section::Midtrans => &[
                "midtrans_snap_url",
                "midtrans_api_url",
                "midtrans_server_key",
            ],
            Section::Xendit => &[
                "xendit_base_url",
                "xendit_secret_key",
                "xendit_callback_token",
            ],
            Section::Tripay => &[
                "tripay_base_url",
                "tripay_api_path",
                "tripay_merchant_code",
                "tripay_api_key",
                "tripay_private_key",
                "tripay_method",
            ],
        }
    }

    /// The section holding a gateway's credentials (`None` for the Central PG).
    pub fn of_gateway(gateway: GatewayName) -> Option<Section> {
        match gateway {
            GatewayName::Central => None,
            GatewayName::Duitku => Some(Section::Duitku),
            GatewayName::Midtrans => Some(Section::Midtrans),
            GatewayName::Xendit => Some(Section::Xendit),
            GatewayName::Tripay => Some(Section::Tripay),
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
    Section::CentralPg,
    Section::Gateways,
    Section::Duitku,
    Section::Midtrans,
    Section::Xendit,
    Section::Tripay,
    Section::Reconcile,
];

/// Every gateway's credentials section.
pub const GATEWAY_SECTIONS: &[Section] = &[
    Section::Duitku,
    Section::Midtrans,
    Section::Xendit,
    Section::Tripay,
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

/// Which gateways take deposits.
#[derive(Debug, Clone)]
pub struct Gateways {
    /// The enabled gateways (`POST /deposit/create` may name any of them).
    pub enabled: Vec<GatewayName>,
    /// The gateway of a create that names none.
    pub default: GatewayName,
    /// Timeout of one call to Duitku, Midtrans, Xendit or Tripay.
    pub timeout: Duration,
    /// How long after its create a pending deposit is first checked at its gateway (ms).
    pub reconcile_after_ms: u64,
}

/// How the sweep asks gateways about deposits still pending.
#[derive(Debug, Clone)]
pub struct Reconcile {
    /// Delays between checks of one deposit, the last repeating (the first check comes
    /// `reconcile_after_seconds` after the create).
    pub schedule: Vec<Duration>,
    /// Most status queries one sweep sends.
    pub max_per_sweep: u32,
}

impl Gateways {
    /// Whether `gateway` is enabled.
    pub fn is_enabled(&self, gateway: GatewayName) -> bool {
        self.enabled.contains(&gateway)
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
    central_auth: Option<Auth>,
    gateways: Option<Gateways>,
    duitku: Option<Duitku>,
    midtrans: Option<Midtrans>,
    xendit: Option<Xendit>,
    tripay: Option<Tripay>,
    reconcile: Option<Reconcile>,
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
    ("pg_shared_secret", Some("")),
    ("gateways_enabled", Some("central")),
    ("gateway_default", Some("central")),
    ("gateway_timeout_ms", Some("10000")),
    ("duitku_base_url", Some("https://api-sandbox.duitku.com")),
    ("duitku_merchant_code", Some("")),
    ("duitku_api_key", Some("")),
    ("duitku_signature", Some("hmac")),
    (
        "midtrans_snap_url",
        Some("https://app.sandbox.midtrans.com"),
    ),
    ("midtrans_api_url", Some("https://api.sandbox.midtrans.com")),
    ("midtrans_server_key", Some("")),
    ("xendit_base_url", Some("https://api.xendit.co")),
    ("xendit_secret_key", Some("")),
    ("xendit_callback_token", Some("")),
    ("tripay_base_url", Some("https://tripay.co.id")),
    ("tripay_api_path", Some("/api-sandbox")),
    ("tripay_merchant_code", Some("")),
    ("tripay_api_key", Some("")),
    ("tripay_private_key", Some("")),
    ("tripay_method", Some("QRIS")),
    ("reconcile_after_seconds", Some("600")),
    (
        "reconcile_schedule",
        Some("600,1800,3600,10800,21600,86400"),
    ),
    ("reconcile_max_per_sweep", Some("20")),
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
            central_auth: None,
            gateways: None,
            duitku: None,
            midtrans: None,
            xendit: None,
            tripay: None,
            reconcile: None,
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
                credit_retry_schedule: parse_schedule(
                    "credit_retry_schedule",
                    &get("credit_retry_schedule")?,
                )?,
                credit_max_retries: parse_u64("credit_max_retries", &get("credit_max_retries")?)?
                    .try_into()
                    .map_err(|_| ConfigError::new("credit_max_retries", "too large"))?,
                credit_lease: Duration::from_millis(parse_seconds(
                    "credit_lease_seconds",
                    &get("credit_lease_seconds")?,
                )?),
            });
        }
        if wants(Section::CentralPg) {
            let pg_secret = get("pg_shared_secret")?;
            config.central_auth = Some(if pg_secret.is_empty() {
                // Compatibility: without its own secret the Central PG shares the bot's.
                config.auth()?.clone()
            } else {
                Auth {
                    shared_secret: Secret::new(pg_secret),
                    shared_secret_previous: None,
                }
            });
        }
        if wants(Section::Gateways) {
            let enabled = parse_gateways(&get("gateways_enabled")?)?;
            let default = get("gateway_default")?;
            let default = GatewayName::parse(default.trim())
                .filter(|name| enabled.contains(name))
                .ok_or_else(|| {
                    ConfigError::new(
                        "gateway_default",
                        format!("`{default}` is not one of gateways_enabled"),
                    )
                })?;
            config.gateways = Some(Gateways {
                enabled,
                default,
                timeout: parse_millis("gateway_timeout_ms", &get("gateway_timeout_ms")?)?,
                reconcile_after_ms: parse_seconds(
                    "reconcile_after_seconds",
                    &get("reconcile_after_seconds")?,
                )?,
            });
        }
        if wants(Section::Reconcile) {
            let schedule = parse_schedule("reconcile_schedule", &get("reconcile_schedule")?)?;
            if schedule.iter().any(Duration::is_zero) {
                return Err(ConfigError::new(
                    "reconcile_schedule",
                    "every delay must be at least 1 second",
                ));
            }
            let max = parse_u64("reconcile_max_per_sweep", &get("reconcile_max_per_sweep")?)?;
            config.reconcile = Some(Reconcile {
                schedule,
                max_per_sweep: u32::try_from(max)
                    .ok()
                    .filter(|m| (1..=1000).contains(m))
                    .ok_or_else(|| {
                        ConfigError::new("reconcile_max_per_sweep", "must be 1 to 1000")
                    })?,
            });
        }
        for section in GATEWAY_SECTIONS.iter().copied().filter(|s| wants(*s)) {
            config.load_gateway(vars, section)?;
        }
        config.check_combinations()?;
        Ok(config)
    }

    /// Reads one gateway's credentials, only while that gateway is enabled (a disabled one
    /// costs no variable reads); each must then be set.
    fn load_gateway(&mut self, vars: &dyn Variables, section: Section) -> Result<(), ConfigError> {
        let gateways = self.gateways().map_err(|_| not_read(Section::Gateways))?;
        let enabled = GatewayName::ALL
            .into_iter()
            .find(|g| Section::of_gateway(*g) == Some(section))
            .is_some_and(|g| gateways.is_enabled(g));
        if !enabled {
            return Ok(());
        }
        let timeout = gateways.timeout;
        let get = |name: &'static str| read(vars, name);
        let set = |name: &'static str| -> Result<String, ConfigError> {
            let value = get(name)?.trim().to_string();
            if value.is_empty() {
                return Err(ConfigError::new(
                    name,
                    "must be set while its gateway is in gateways_enabled",
                ));
            }
            Ok(value)
        };
        match section {
            Section::Duitku => {
                let signature = match get("duitku_signature")?.trim() {
                    "hmac" => DuitkuSignature::Hmac,
                    "legacy" => DuitkuSignature::Legacy,
                    other => {
                        return Err(ConfigError::new(
                            "duitku_signature",
                            format!("`{other}` is not hmac or legacy"),
                        ))
                    }
                };
                self.duitku = Some(Duitku {
                    base_url: parse_origin("duitku_base_url", &get("duitku_base_url")?)?,
                    merchant_code: set("duitku_merchant_code")?,
                    api_key: Secret::new(set("duitku_api_key")?),
                    signature,
                    timeout,
                });
            }
            Section::Midtrans => {
                self.midtrans = Some(Midtrans {
                    snap_url: parse_origin("midtrans_snap_url", &get("midtrans_snap_url")?)?,
                    api_url: parse_origin("midtrans_api_url", &get("midtrans_api_url")?)?,
                    server_key: Secret::new(set("midtrans_server_key")?),
                    timeout,
                });
            }
            Section::Xendit => {
                self.xendit = Some(Xendit {
                    base_url: parse_origin("xendit_base_url", &get("xendit_base_url")?)?,
                    secret_key: Secret::new(set("xendit_secret_key")?),
                    callback_token: Secret::new(set("xendit_callback_token")?),
                    timeout,
                });
            }
            Section::Tripay => {
                let origin = parse_origin("tripay_base_url", &get("tripay_base_url")?)?;
                let path = parse_path("tripay_api_path", &get("tripay_api_path")?)?;
                self.tripay = Some(Tripay {
                    base_url: format!("{origin}{}", path.trim_end_matches('/')),
                    merchant_code: set("tripay_merchant_code")?,
                    api_key: Secret::new(set("tripay_api_key")?),
                    private_key: Secret::new(set("tripay_private_key")?),
                    method: set("tripay_method")?,
                    timeout,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads every section (tools and tests).
    pub fn load_all(vars: &dyn Variables) -> Result<Self, ConfigError> {
        Self::load(vars, ALL_SECTIONS)
    }

    /// Refuses values that are fine alone but defeat each other.
    fn check_combinations(&self) -> Result<(), ConfigError> {
        // Duitku's and Tripay's create calls must carry our callback URL.
        if let (Some(gateways), Some(gateway)) = (&self.gateways, &self.gateway) {
            let needs_url = [GatewayName::Duitku, GatewayName::Tripay]
                .into_iter()
                .find(|g| gateways.is_enabled(*g));
            if let (Some(name), None) = (needs_url, &gateway.public_base_url) {
                return Err(ConfigError::new(
                    "public_base_url",
                    format!(
                        "must be set while {name} is enabled (its invoices carry the callback URL)"
                    ),
                ));
            }
        }
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

    /// The secrets shared with the Central PG: `pg_shared_secret`, or the bot's when unset.
    pub fn central_auth(&self) -> Result<&Auth, ConfigError> {
        self.central_auth
            .as_ref()
            .ok_or_else(|| not_read(Section::CentralPg))
    }

    /// Enabled gateways and the default.
    pub fn gateways(&self) -> Result<&Gateways, ConfigError> {
        self.gateways
            .as_ref()
            .ok_or_else(|| not_read(Section::Gateways))
    }

    /// Why a gateway's settings are absent: not enabled, or its section not read.
    fn gateway_missing(&self, gateway: GatewayName, section: Section) -> ConfigError {
        match &self.gateways {
            Some(gateways) if !gateways.is_enabled(gateway) => {
                ConfigError::new("gateways_enabled", format!("does not enable {gateway}"))
            }
            _ => not_read(section),
        }
    }

    /// Duitku's settings (while enabled).
    pub fn duitku(&self) -> Result<&Duitku, ConfigError> {
        self.duitku
            .as_ref()
            .ok_or_else(|| self.gateway_missing(GatewayName::Duitku, Section::Duitku))
    }

    /// Midtrans's settings (while enabled).
    pub fn midtrans(&self) -> Result<&Midtrans, ConfigError> {
        self.midtrans
            .as_ref()
            .ok_or_else(|| self.gateway_missing(GatewayName::Midtrans, Section::Midtrans))
    }

    /// Xendit's settings (while enabled).
    pub fn xendit(&self) -> Result<&Xendit, ConfigError> {
        self.xendit
            .as_ref()
            .ok_or_else(|| self.gateway_missing(GatewayName::Xendit, Section::Xendit))
    }

    /// How the sweep reconciles pending deposits.
    pub fn reconcile(&self) -> Result<&Reconcile, ConfigError> {
        self.reconcile
            .as_ref()
            .ok_or_else(|| not_read(Section::Reconcile))
    }

    /// Tripay's settings (while enabled).
    pub fn tripay(&self) -> Result<&Tripay, ConfigError> {
        self.tripay
            .as_ref()
            .ok_or_else(|| self.gateway_missing(GatewayName::Tripay, Section::Tripay))
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

    fn with_gateways(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars = pairs.iter().fold(base(), |v, (n, x)| v.with(n, x));
        Config::load_all(&vars)
    }

    #[test]
    fn central_alone_by_default_and_no_gateway_credentials_needed() {
        let cfg = Config::load_all(&base()).unwrap();
        let gateways = cfg.gateways().unwrap();
        assert_eq!(gateways.enabled, vec![GatewayName::Central]);
        assert_eq!(gateways.default, GatewayName::Central);
        assert_eq!(cfg.duitku().unwrap_err().variable, "gateways_enabled");
        assert_eq!(cfg.tripay().unwrap_err().variable, "gateways_enabled");
    }

    #[test]
    fn gateway_list_and_default_errors_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("gateways_enabled", "")], "gateways_enabled"),
            (
                &[("gateways_enabled", "central,paypal")],
                "gateways_enabled",
            ),
            (
                &[("gateways_enabled", "central,central")],
                "gateways_enabled",
            ),
            (&[("gateways_enabled", "Central")], "gateways_enabled"),
            (&[("gateway_default", "xendit")], "gateway_default"),
            (&[("gateway_timeout_ms", "0")], "gateway_timeout_ms"),
            (
                &[("reconcile_after_seconds", "0")],
                "reconcile_after_seconds",
            ),
            (&[("reconcile_schedule", "600,soon")], "reconcile_schedule"),
            (&[("reconcile_schedule", "600,0")], "reconcile_schedule"),
            (
                &[("reconcile_max_per_sweep", "0")],
                "reconcile_max_per_sweep",
            ),
            (
                &[("reconcile_max_per_sweep", "5000")],
                "reconcile_max_per_sweep",
            ),
            (
                &[("gateways_enabled", "central,midtrans")],
                "midtrans_server_key",
            ),
            (
                &[
                    ("gateways_enabled", "xendit"),
                    ("gateway_default", "xendit"),
                    ("xendit_secret_key", "k"),
                ],
                "xendit_callback_token",
            ),
            (
                &[
                    ("gateways_enabled", "central,duitku"),
                    ("duitku_merchant_code", "D1"),
                    ("duitku_api_key", "k"),
                ],
                "public_base_url",
            ),
            (
                &[
                    ("gateways_enabled", "central,duitku"),
                    ("duitku_merchant_code", "D1"),
                    ("duitku_api_key", "k"),
                    ("duitku_signature", "sha1"),
                    ("public_base_url", "https://topup.example"),
                ],
                "duitku_signature",
            ),
            (
                &[
                    ("gateways_enabled", "central,midtrans"),
                    ("midtrans_server_key", "k"),
                    ("midtrans_api_url", "https://api.midtrans.com/v2"),
                ],
                "midtrans_api_url",
            ),
        ];
        for (pairs, variable) in cases {
            let err = with_gateways(pairs).expect_err(&format!("{pairs:?}"));
            assert_eq!(err.variable, *variable, "{pairs:?}: {err}");
        }
    }

    #[test]
    fn enabled_gateways_are_configured_and_secrets_stay_hidden() {
        let cfg = with_gateways(&[
            ("gateways_enabled", "central, duitku,midtrans,xendit,tripay"),
            ("gateway_default", "tripay"),
            ("public_base_url", "https://topup.example"),
            ("duitku_merchant_code", "D1"),
            ("duitku_api_key", "duitku-key-value"),
            ("duitku_signature", "legacy"),
            ("midtrans_server_key", "midtrans-key-value"),
            ("xendit_secret_key", "xendit-key-value"),
            ("xendit_callback_token", "xendit-token-value"),
            ("tripay_merchant_code", "T1"),
            ("tripay_api_key", "tripay-key-value"),
            ("tripay_private_key", "tripay-private-value"),
            ("tripay_api_path", "/api"),
        ])
        .unwrap();
        assert_eq!(cfg.gateways().unwrap().default, GatewayName::Tripay);
        assert_eq!(cfg.gateways().unwrap().enabled.len(), 5);
        assert_eq!(cfg.duitku().unwrap().signature, DuitkuSignature::Legacy);
        assert_eq!(cfg.tripay().unwrap().base_url, "https://tripay.co.id/api");
        assert_eq!(
            cfg.midtrans().unwrap().api_url,
            "https://api.sandbox.midtrans.com"
        );
        let debug = format!("{cfg:?}");
        for secret in [
            "duitku-key-value",
            "midtrans-key-value",
            "xendit-key-value",
            "xendit-token-value",
            "tripay-key-value",
            "tripay-private-value",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn central_pg_secret_defaults_to_the_bots_and_can_be_its_own() {
        let shared = Config::load_all(&base()).unwrap();
        let central = shared.central_auth().unwrap();
        assert_eq!(central.shared_secret, Secret::new("s3cr3t-value"));
        let own = Config::load_all(
            &base()
                .with("pg_shared_secret", "pg-only")
                .with("shared_secret_previous", "old"),
        )
        .unwrap();
        let central = own.central_auth().unwrap();
        assert_eq!(central.shared_secret, Secret::new("pg-only"));
        // The bot's secrets (current or previous) are not the PG's.
        assert_eq!(central.inbound_secrets().count(), 1);
    }

    #[test]
    fn disabled_gateways_cost_no_variable_reads() {
        // Only the Gateways section and Duitku's: with Duitku disabled, none of its variables
        // is read (they are absent here, so a read would fail).
        let vars = MapVariables::new(&[]);
        struct Only<'a>(&'a MapVariables);
        impl Variables for Only<'_> {
            fn get(&self, name: &str) -> Result<String, crate::platform::VariableError> {
                assert!(!name.starts_with("duitku_"), "read {name}");
                self.0.get(name)
            }
        }
        let cfg = Config::load(&Only(&vars), &[Section::Gateways, Section::Duitku]).unwrap();
        assert_eq!(cfg.duitku().unwrap_err().variable, "gateways_enabled");
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
