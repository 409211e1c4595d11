//! The bots behind one deployment: `default` (the single-bot variables) and the bots the
//! `bots` variable names, each with its own keys, signing secret and credit URL.

use serde_json::Value;

use super::auth::{Auth, SignatureScheme};
use super::parse::{parse_origin, parse_path, ConfigError};
use super::secret::Secret;
use crate::ids::BotId;

/// The variable naming the bots besides `default`.
pub const BOTS: &str = "bots";

/// The manifest's slots for the bots' credit origins: each credit-making component lists
/// `{{ bot_origin_N }}` in `allowed_outbound_hosts` (Spin cannot take hosts from JSON).
pub const BOT_ORIGIN_SLOTS: [&str; 4] = [
    "bot_origin_1",
    "bot_origin_2",
    "bot_origin_3",
    "bot_origin_4",
];

/// Most bots `bots` may name.
const MAX_BOTS: usize = 32;
/// Most API keys one bot may have.
const MAX_API_KEYS: usize = 4;

/// A bot that `bots` names.
#[derive(Debug, Clone)]
pub struct Bot {
    /// Its id.
    pub id: BotId,
    /// Signs its credits (current secret; `shared_secret_previous`'s counterpart is only
    /// accepted inbound).
    pub signing: Auth,
    /// Bearer tokens it may call us with: its secret, its previous secret, its API keys.
    pub keys: Vec<Secret>,
    /// Origin of its credit URL.
    pub origin: String,
    /// Path of its credit URL.
    pub credit_path: String,
}

/// The named bots and the origins the manifest allows for them.
#[derive(Debug, Clone, Default)]
pub struct Bots {
    /// Bots besides `default`.
    pub named: Vec<Bot>,
    /// `bot_origin_1…4` that are set.
    pub allowed_origins: Vec<String>,
}

/// Why a credit cannot be sent to its bot: it stays owed, and nothing goes elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unroutable {
    /// No bot of this id is configured (removed from `bots`, or a typo).
    UnknownBot(BotId),
    /// Its origin is not one the manifest allows (`bot_origin_1…4`).
    OriginNotAllowed(BotId),
}

impl Unroutable {
    /// The configuration error it stands for (no secret in it).
    pub fn config_error(&self) -> ConfigError {
        match self {
            Self::UnknownBot(id) => ConfigError::new(
                BOTS,
                format!("names no bot `{id}`; its credits stay owed until it is configured again"),
            ),
            Self::OriginNotAllowed(id) => ConfigError::new(
                BOTS,
                format!(
                    "bot `{id}`'s credit origin is not allowed by the manifest: set one of \
                     bot_origin_1…4 to it (they are in allowed_outbound_hosts)"
                ),
            ),
        }
    }
}

/// The error of a token that is a key of two bots (`bots` must give each bot keys of its own).
pub fn shared_key(first: &BotId, second: &BotId) -> ConfigError {
    ConfigError::new(
        BOTS,
        format!("bots `{first}` and `{second}` share a key; give each bot keys of its own"),
    )
}

impl Bots {
    /// Parses `bots` (a JSON array; empty = only `default`) and reads the origin slots
    /// when it names any. (A key two bots share is found where keys are compared: a token
    /// names one bot, or the request is refused.)
    #[inline(never)]
    pub fn parse(
        raw: &str,
        mut slot: impl FnMut(&'static str) -> Result<String, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        if raw.is_empty() || raw == "[]" {
            return Ok(Self::default());
        }
        let bad = |problem: String| ConfigError::new(BOTS, problem);
        let value: Value = serde_json::from_slice(raw.as_bytes())
            .map_err(|_| bad("must be a JSON array of bots".into()))?;
        let Value::Array(entries) = value else {
            return Err(bad("must be a JSON array of bots".into()));
        };
        if entries.len() > MAX_BOTS {
            return Err(bad(format!("names more than {MAX_BOTS} bots")));
        }
        let mut named: Vec<Bot> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let bot = parse_bot(index, entry)?;
            if named.iter().any(|b| b.id == bot.id) {
                return Err(bad(format!("names bot `{}` twice", bot.id)));
            }
            named.push(bot);
        }
        let mut allowed_origins = Vec::new();
        for name in BOT_ORIGIN_SLOTS {
            let value = slot(name)?;
            if !value.trim().is_empty() {
                allowed_origins.push(parse_origin(name, &value)?);
            }
        }
        Ok(Self {
            named,
            allowed_origins,
        })
    }

    /// The named bot `id`.
    pub fn get(&self, id: &BotId) -> Option<&Bot> {
        self.named.iter().find(|b| &b.id == id)
    }

    /// Whether the manifest lets credits reach `bot`'s origin: `default_origin`
    /// (`bot_backend_url`'s), or a slot's (spelt the same, but for case).
    pub fn allows(&self, bot: &Bot, default_origin: &str) -> bool {
        // Host names are case-insensitive; a port is compared as written.
        std::iter::once(default_origin)
            .chain(self.allowed_origins.iter().map(String::as_str))
            .any(|allowed| allowed.eq_ignore_ascii_case(&bot.origin))
    }
}

#[inline(never)]
fn parse_bot(index: usize, entry: &Value) -> Result<Bot, ConfigError> {
    let at = |problem: &str| ConfigError::new(BOTS, format!("bot {index}: {problem}"));
    let Value::Object(fields) = entry else {
        return Err(at("must be an object"));
    };
    // One pass over the fields: each known one of its type, nothing else.
    let (mut id, mut secret, mut previous, mut url) = (None, None, None, None);
    let mut api_keys: &[Value] = &[];
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("id", Value::String(v)) => id = Some(v.as_str()),
            ("secret", Value::String(v)) => secret = Some(v.as_str()),
            ("previousSecret", Value::String(v)) => previous = Some(v.as_str()),
            ("apiKeys", Value::Array(v)) => api_keys = v,
            ("creditUrl", Value::String(v)) => url = Some(v.as_str()),
            ("previousSecret" | "apiKeys", Value::Null) => {}
            _ => {
                return Err(at(&format!(
                    "`{name}` is not a field of a bot, or not of its type (id, secret, \
                     previousSecret, creditUrl: strings; apiKeys: an array of strings)"
                )))
            }
        }
    }
    let id = id
        .and_then(BotId::parse)
        .ok_or_else(|| at("`id` must match [a-z0-9_-]{1,32}"))?;
    let at = |problem: &str| ConfigError::new(BOTS, format!("bot `{id}`: {problem}"));
    if id.is_default() {
        return Err(at(
            "`default` is the bot of shared_secret and bot_backend_url; give this one another id",
        ));
    }
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or_else(|| at("`secret` must be a non-empty string"))?;
    if api_keys.len() > MAX_API_KEYS {
        return Err(at("`apiKeys` holds at most 4 keys"));
    }
    let mut keys = vec![Secret::new(secret)];
    keys.extend(previous.filter(|p| !p.is_empty()).map(Secret::new));
    for key in api_keys {
        match key.as_str() {
            Some(k) if !k.is_empty() => keys.push(Secret::new(k)),
            _ => return Err(at("`apiKeys` must hold non-empty strings")),
        }
    }
    let url = url.ok_or_else(|| at("`creditUrl` is required"))?;
    let url_error = || at("`creditUrl` must be http(s)://host[:port]/path");
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(url_error)?;
    let path_start = url.len() - rest.len() + rest.find('/').ok_or_else(url_error)?;
    let origin = parse_origin(BOTS, &url[..path_start]).map_err(|_| url_error())?;
    let credit_path = parse_path(BOTS, &url[path_start..]).map_err(|_| url_error())?;
    if credit_path.contains('?') {
        return Err(url_error());
    }
    Ok(Bot {
        signing: Auth {
            shared_secret: Secret::new(secret),
            shared_secret_previous: None,
            scheme: SignatureScheme::Body,
        },
        id,
        keys,
        origin,
        credit_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_slots(_: &'static str) -> Result<String, ConfigError> {
        Ok(String::new())
    }

    fn parse(raw: &str) -> Result<Bots, ConfigError> {
        Bots::parse(raw, no_slots)
    }

    #[test]
    fn an_empty_variable_names_no_bot_and_reads_no_slot() {
        let bots = Bots::parse("", |_| panic!("no slot is read")).unwrap();
        assert!(bots.named.is_empty());
        assert!(Bots::parse(" [] ", |_| panic!()).unwrap().named.is_empty());
    }

    #[test]
    fn a_bot_has_its_keys_its_signing_secret_and_its_credit_url() {
        let bots = Bots::parse(
            r#"[{"id":"shop","secret":"s-new","previousSecret":"s-old","apiKeys":["k1"],
                 "creditUrl":"https://Shop.example/hook/credit"}]"#,
            |name| {
                Ok(match name {
                    "bot_origin_2" => "https://shop.example".into(),
                    _ => String::new(),
                })
            },
        )
        .unwrap();
        let shop = bots.get(&BotId::parse("shop").unwrap()).unwrap();
        assert_eq!(shop.origin, "https://Shop.example");
        assert_eq!(shop.credit_path, "/hook/credit");
        assert_eq!(shop.signing.shared_secret, Secret::new("s-new"));
        assert_eq!(
            shop.keys,
            vec![
                Secret::new("s-new"),
                Secret::new("s-old"),
                Secret::new("k1")
            ]
        );
        assert_eq!(bots.allowed_origins, vec!["https://shop.example"]);
        let default_origin = "http://bot.test";
        assert!(bots.allows(shop, default_origin));
        let elsewhere = Bots {
            allowed_origins: vec!["https://other.example".into()],
            ..bots.clone()
        };
        assert!(!elsewhere.allows(shop, default_origin));
        let beside_default = Bots {
            allowed_origins: Vec::new(),
            ..bots.clone()
        };
        assert!(beside_default.allows(shop, "https://shop.EXAMPLE"));
    }

    #[test]
    fn every_mistake_names_the_variable_and_the_bot_and_never_a_secret() {
        let cases = [
            ("{}", "JSON array"),
            ("[1]", "bot 0: must be an object"),
            (
                r#"[{"id":"Shop","secret":"x","creditUrl":"http://a/b"}]"#,
                "bot 0: `id`",
            ),
            (
                r#"[{"id":"default","secret":"x","creditUrl":"http://a/b"}]"#,
                "another id",
            ),
            (
                r#"[{"id":"a","creditUrl":"http://a/b"}]"#,
                "bot `a`: `secret`",
            ),
            (r#"[{"id":"a","secret":"x"}]"#, "`creditUrl` is required"),
            (
                r#"[{"id":"a","secret":"x","creditUrl":"http://a"}]"#,
                "`creditUrl` must",
            ),
            (
                r#"[{"id":"a","secret":"x","creditUrl":"ftp://a/b"}]"#,
                "`creditUrl` must",
            ),
            (
                r#"[{"id":"a","secret":"x","creditUrl":"http://a/b?q=1"}]"#,
                "`creditUrl` must",
            ),
            (
                r#"[{"id":"a","secret":"x","creditUrl":"http://a/b","secretPrevious":"y"}]"#,
                "`secretPrevious` is not a field of a bot",
            ),
            (
                r#"[{"id":"a","secret":"x","creditUrl":"http://a/b","apiKeys":[""]}]"#,
                "`apiKeys`",
            ),
            (
                r#"[{"id":"a","secret":"x1","creditUrl":"http://a/b"},{"id":"a","secret":"x2","creditUrl":"http://a/b"}]"#,
                "names bot `a` twice",
            ),
        ];
        for (raw, expected) in cases {
            let error = parse(raw).unwrap_err();
            assert_eq!(error.variable, BOTS, "{raw}");
            assert!(error.problem.contains(expected), "{raw}: {}", error.problem);
            for secret in ["x1", "x2"] {
                assert!(!error.problem.contains(secret), "{raw}: {}", error.problem);
            }
        }
    }

    #[test]
    fn a_slot_that_is_set_must_be_an_origin() {
        let error = Bots::parse(
            r#"[{"id":"a","secret":"x","creditUrl":"http://a/b"}]"#,
            |name| {
                Ok(if name == "bot_origin_3" {
                    "http://a/path".into()
                } else {
                    String::new()
                })
            },
        )
        .unwrap_err();
        assert_eq!(error.variable, "bot_origin_3");
    }
}
