//! Application configuration, read from Spin variables in sections, each route reading only
//! the sections it uses (every variable is a host call through Spin's provider chain).

mod alerts;
mod auth;
mod bots;
mod console;
mod gateways;
mod labels;
mod load;
mod parse;
mod secret;

pub use alerts::{AlertTelegram, AlertWebhook, Alerts, ALERT_SWITCHES, ALERT_VARIABLES};
pub use auth::{Auth, SignatureScheme};
pub use bots::{shared_key, Bot, Bots, Unroutable, BOTS, BOT_ORIGIN_SLOTS};
pub use console::{Console, Operator, ADMIN_TOKEN};
pub use gateways::{Duitku, DuitkuSignature, Midtrans, Tripay, Xendit};
pub use labels::{StoreLabels, KV_LABELS};
pub use secret::Secret;

use std::time::Duration;

use crate::ids::{BotId, GatewayName};
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
    /// The credentials of gateways taken out of `gateways_enabled`, while they are still set:
    /// read by the routes that serve deposits already made (callbacks, the sweep), not by
    /// create. No variables of its own.
    Retired,
    /// The bots besides `default` and the manifest's slots for their origins (the slots are
    /// read only while `bots` names one).
    Bots,
    /// The operator console's tokens.
    Console,
    /// Where the operator is alerted.
    Alerts,
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
            Section::CentralPg => &["pg_shared_secret", "pg_signature"],
            Section::Gateways => &[
                "gateways_enabled",
                "gateway_default",
                "gateway_timeout_ms",
                "reconcile_after_seconds",
            ],
            Section::Reconcile => &["reconcile_schedule", "reconcile_max_per_sweep"],
            Section::Retired => &[],
            Section::Bots => &[
                BOTS,
                BOT_ORIGIN_SLOTS[0],
                BOT_ORIGIN_SLOTS[1],
                BOT_ORIGIN_SLOTS[2],
                BOT_ORIGIN_SLOTS[3],
            ],
            Section::Console => &[ADMIN_TOKEN],
            Section::Alerts => ALERT_VARIABLES,
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

/// The sections a route reads, as a constant: the list, and the same set as bits. A route's
/// set is known when the component is compiled, so [`Config::load`]'s tests of it fold away
/// and a component links only the parsing of the sections it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections {
    list: &'static [Section],
    bits: u32,
}

impl Sections {
    /// The set of `list`.
    pub const fn of(list: &'static [Section]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < list.len() {
            bits |= 1 << list[i] as u32;
            i += 1;
        }
        Self { list, bits }
    }

    /// Whether `section` is in the set.
    pub fn contains(self, section: Section) -> bool {
        self.bits & (1 << section as u32) != 0
    }

    /// The sections, in the order they were listed.
    pub fn list(self) -> &'static [Section] {
        self.list
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
    Section::Retired,
    Section::Bots,
    Section::Console,
    Section::Alerts,
];

/// Every gateway's credentials section.
pub const GATEWAY_SECTIONS: &[Section] = &[
    Section::Duitku,
    Section::Midtrans,
    Section::Xendit,
    Section::Tripay,
];

/// Read for every route: CORS, and (by the glue) the store's labels.
pub const ROUTE_VARIABLES: &[&str] = &["allowed_origins", KV_LABELS];

/// Total time a PAID callback spends on inline credit attempts (the leases are checked
/// against it).
pub const INLINE_BUDGET: Duration = Duration::from_millis(2000);

/// Where a credit goes and what signs it.
#[derive(Debug, Clone)]
pub struct CreditTarget<'a> {
    /// The credit URL (origin and path).
    pub url: String,
    /// The owning bot's secret.
    pub auth: &'a Auth,
}

/// Where each bot's credits go: the configuration a delivery reads.
#[derive(Debug, Clone, Copy)]
pub struct BotRoutes<'a> {
    /// The single-bot secrets (`default` signs with them).
    pub auth: &'a Auth,
    /// `default`'s credit URL, and timeouts and retries for every bot.
    pub delivery: &'a Delivery,
    /// The named bots.
    pub bots: &'a Bots,
}

impl<'a> BotRoutes<'a> {
    /// Where `bot`'s credits go and what signs them; a bot that is not configured, or whose
    /// origin the manifest does not allow, gets none (its credits stay owed).
    pub fn target(&self, bot: &BotId) -> Result<CreditTarget<'a>, Unroutable> {
        let delivery = self.delivery;
        if bot.is_default() {
            return Ok(CreditTarget {
                url: format!("{}{}", delivery.bot_backend_url, delivery.bot_credit_path),
                auth: self.auth,
            });
        }
        let named = self
            .bots
            .get(bot)
            .ok_or_else(|| Unroutable::UnknownBot(bot.clone()))?;
        if !self.bots.allows(named, &delivery.bot_backend_url) {
            return Err(Unroutable::OriginNotAllowed(bot.clone()));
        }
        Ok(CreditTarget {
            url: format!("{}{}", named.origin, named.credit_path),
            auth: &named.signing,
        })
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

/// The longest an invoice at a gateway that can be asked may be paid (the gateways' own
/// default).
pub const MAX_INVOICE_VALIDITY: Duration = Duration::from_secs(86_400);

impl Lifetime {
    /// How long an invoice at a gateway that can be asked may be paid: a day, or half a
    /// deposit's lifetime when that is shorter, so that asking the gateway once it is over
    /// tells how the invoice ended well before its deposit is removed.
    pub fn invoice_validity(&self) -> Duration {
        Duration::from_millis(self.deposit_ttl_ms / 2).min(MAX_INVOICE_VALIDITY)
    }
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

impl Delivery {
    /// How long after the attempt that follows `retries` retries the next one comes: the
    /// schedule's entry, its last repeating (credits and alerts alike).
    pub fn retry_delay(&self, retries: u32) -> Duration {
        let schedule = &self.credit_retry_schedule;
        let index = (retries as usize).min(schedule.len().saturating_sub(1));
        schedule
            .get(index)
            .copied()
            .unwrap_or(Duration::from_secs(60))
    }
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
    bots: Option<Bots>,
    console: Option<Secret>,
    alerts: Option<Vec<Secret>>,
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
    (KV_LABELS, Some("two")),
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
    ("pg_signature", Some("body")),
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
    (BOTS, Some("[]")),
    ("bot_origin_1", Some("https://bot-origin-1.invalid")),
    ("bot_origin_2", Some("https://bot-origin-2.invalid")),
    ("bot_origin_3", Some("https://bot-origin-3.invalid")),
    ("bot_origin_4", Some("https://bot-origin-4.invalid")),
    (ADMIN_TOKEN, Some("")),
    ("alert_url", Some("")),
    ("alert_origin", Some("https://alert-origin.invalid")),
    ("alert_secret", Some("")),
    ("alert_telegram_bot_token", Some("")),
    ("alert_telegram_chat_id", Some("")),
    ("alert_telegram_api_url", Some("https://api.telegram.org")),
];

fn not_read(section: Section) -> ConfigError {
    ConfigError::new(
        section
            .variables()
            .first()
            .copied()
            .unwrap_or("gateways_enabled"),
        "is not read by this route (a route declares the sections it uses)",
    )
}

impl Config {
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

    /// Why a gateway's settings are absent: not enabled (and its credentials not set, or not
    /// read by this route), or its section not read.
    fn gateway_missing(&self, gateway: GatewayName, section: Section) -> ConfigError {
        match &self.gateways {
            Some(gateways) if !gateways.is_enabled(gateway) => ConfigError::new(
                "gateways_enabled",
                format!("does not enable {gateway}, and its credentials are not set"),
            ),
            _ => not_read(section),
        }
    }

    /// Whether `gateway` can be spoken to: the Central PG always; another while its
    /// credentials are loaded (enabled, or retired with its credentials still set).
    pub fn has_credentials(&self, gateway: GatewayName) -> bool {
        match gateway {
            GatewayName::Central => true,
            GatewayName::Duitku => self.duitku.is_some(),
            GatewayName::Midtrans => self.midtrans.is_some(),
            GatewayName::Xendit => self.xendit.is_some(),
            GatewayName::Tripay => self.tripay.is_some(),
        }
    }

    /// Duitku's settings (while enabled, or retired with its credentials set).
    pub fn duitku(&self) -> Result<&Duitku, ConfigError> {
        self.duitku
            .as_ref()
            .ok_or_else(|| self.gateway_missing(GatewayName::Duitku, Section::Duitku))
    }

    /// Midtrans's settings (while enabled, or retired with its credentials set).
    pub fn midtrans(&self) -> Result<&Midtrans, ConfigError> {
        self.midtrans
            .as_ref()
            .ok_or_else(|| self.gateway_missing(GatewayName::Midtrans, Section::Midtrans))
    }

    /// Xendit's settings (while enabled, or retired with its credentials set).
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

    /// The bots besides `default`.
    pub fn bots(&self) -> Result<&Bots, ConfigError> {
        self.bots.as_ref().ok_or_else(|| not_read(Section::Bots))
    }

    /// The operator console's tokens, checked against every bot's key (an operator token
    /// opens every bot's deposits).
    pub fn console(&self) -> Result<Console, ConfigError> {
        let raw = self
            .console
            .as_ref()
            .ok_or_else(|| not_read(Section::Console))?;
        let console = Console::parse(raw)?;
        let bots = self.bots()?;
        let keys: Vec<&Secret> = self
            .auth()?
            .inbound_secrets()
            .chain(bots.named.iter().flat_map(|b| &b.keys))
            .collect();
        console.distinct_from(&keys)?;
        Ok(console)
    }

    /// Where the operator is alerted (parsed here: only the alerts' route links it).
    pub fn alerts(&self) -> Result<Alerts, ConfigError> {
        let raw = self
            .alerts
            .as_ref()
            .ok_or_else(|| not_read(Section::Alerts))?;
        Alerts::parse(raw)
    }

    /// Where each bot's credits go and what signs them.
    pub fn bot_routes(&self) -> Result<BotRoutes<'_>, ConfigError> {
        Ok(BotRoutes {
            auth: self.auth()?,
            delivery: self.delivery()?,
            bots: self.bots()?,
        })
    }

    /// Tripay's settings (while enabled, or retired with its credentials set).
    pub fn tripay(&self) -> Result<&Tripay, ConfigError> {
        self.tripay
            .as_ref()
            .ok_or_else(|| self.gateway_missing(GatewayName::Tripay, Section::Tripay))
    }
}

#[cfg(test)]
mod tests;
