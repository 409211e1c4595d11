//! Where the operator is alerted: a signed webhook (`alert_url`), Telegram's Bot API, or both.

use super::auth::{Auth, SignatureScheme};
use super::parse::{parse_origin, ConfigError};
use super::secret::Secret;

/// Every variable of the alerts, in the order they are read.
pub const ALERT_VARIABLES: &[&str] = &[
    "alert_url",
    "alert_origin",
    "alert_secret",
    "alert_telegram_bot_token",
    "alert_telegram_chat_id",
    "alert_telegram_api_url",
];

/// The variables that switch alerts on: while both are empty no alert is raised.
pub const ALERT_SWITCHES: [&str; 2] = ["alert_url", "alert_telegram_chat_id"];

/// Shortest `alert_secret` accepted: it signs what the operator's receiver trusts.
const MIN_SECRET_LEN: usize = 16;

/// The signed webhook.
#[derive(Debug, Clone)]
pub struct AlertWebhook {
    /// Where alerts are posted (within `alert_origin`).
    pub url: String,
    /// Signs them as credits are signed (bearer, `X-Signature` over
    /// `{X-Timestamp}.{X-Nonce}.{body}`).
    pub auth: Auth,
}

/// Telegram's `sendMessage`.
#[derive(Debug, Clone)]
pub struct AlertTelegram {
    /// `https://api.telegram.org` (or a stand-in in tests).
    pub api_url: String,
    /// The Telegram bot's token: part of the URL, so never logged.
    pub bot_token: Secret,
    /// The chat told: a number, or `@channelname`.
    pub chat_id: String,
}

/// Where alerts go; neither set: alerts are off.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    /// The signed webhook, when `alert_url` is set.
    pub webhook: Option<AlertWebhook>,
    /// Telegram, when `alert_telegram_chat_id` is set.
    pub telegram: Option<AlertTelegram>,
}

impl Alerts {
    /// Parses the values of [`ALERT_VARIABLES`], in that order; errors name the variable.
    pub fn parse(values: &[Secret]) -> Result<Self, ConfigError> {
        let value = |i: usize| {
            values
                .get(i)
                .map(|v| String::from_utf8_lossy(v.expose()).trim().to_string())
                .unwrap_or_default()
        };
        let [url, origin, secret, bot_token, chat_id, api_url] = [0, 1, 2, 3, 4, 5].map(value);
        let webhook = if url.is_empty() {
            None
        } else {
            let origin = parse_origin("alert_origin", &origin)?;
            let path = url.strip_prefix(origin.as_str()).unwrap_or_default();
            if !path.starts_with('/') || path.contains([' ', '#']) {
                return Err(ConfigError::new(
                    "alert_url",
                    "must be alert_origin (the slot in allowed_outbound_hosts) followed by a path",
                ));
            }
            if secret.len() < MIN_SECRET_LEN {
                return Err(ConfigError::new(
                    "alert_secret",
                    format!("must be at least {MIN_SECRET_LEN} characters when alert_url is set"),
                ));
            }
            Some(AlertWebhook {
                url,
                auth: Auth {
                    shared_secret: Secret::new(secret),
                    shared_secret_previous: None,
                    scheme: SignatureScheme::Timestamped,
                },
            })
        };
        let telegram = match (chat_id.is_empty(), bot_token.is_empty()) {
            (true, true) => None,
            (true, false) | (false, true) => {
                return Err(ConfigError::new(
                    if chat_id.is_empty() {
                        "alert_telegram_chat_id"
                    } else {
                        "alert_telegram_bot_token"
                    },
                    "alert_telegram_chat_id and alert_telegram_bot_token are set together",
                ))
            }
            (false, false) => {
                let digits = chat_id.strip_prefix('-').unwrap_or(&chat_id);
                let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
                let channel = chat_id.strip_prefix('@').is_some_and(|name| {
                    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
                if !(numeric && chat_id.len() <= 21 || channel && chat_id.len() <= 33) {
                    return Err(ConfigError::new(
                        "alert_telegram_chat_id",
                        "must be a chat id (digits, perhaps after -) or @channelname",
                    ));
                }
                // The token goes into the URL path: nothing that could leave it.
                let token_ok = bot_token.len() <= 100
                    && bot_token.contains(':')
                    && bot_token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
                if !token_ok {
                    return Err(ConfigError::new(
                        "alert_telegram_bot_token",
                        "must be a Telegram bot token (digits:letters, from @BotFather)",
                    ));
                }
                Some(AlertTelegram {
                    api_url: parse_origin("alert_telegram_api_url", &api_url)?,
                    bot_token: Secret::new(bot_token),
                    chat_id,
                })
            }
        };
        Ok(Self { webhook, telegram })
    }

    /// Whether any channel is set.
    pub fn is_on(&self) -> bool {
        self.webhook.is_some() || self.telegram.is_some()
    }
}
