//! Identifiers parsed once at the edge: a value of these types is valid by construction, so
//! no store key is ever built from unchecked input.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::platform::Random;

/// A deposit id: `[A-Za-z0-9_-]{1,64}` (also the gateway's order id and the bot's
/// `Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DepositId(String);

/// The rule every deposit id follows, for error messages.
pub const DEPOSIT_ID_RULE: &str = "depositId must match [A-Za-z0-9_-]{1,64}";

impl DepositId {
    /// Parses an id; `None` when it breaks the rule.
    pub fn parse(id: &str) -> Option<Self> {
        let valid = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        valid.then(|| Self(id.to_string()))
    }

    /// `DEP` + 16 upper-case hex digits from `random`.
    pub fn generate(random: &dyn Random) -> Self {
        let mut bytes = [0u8; 8];
        random.fill(&mut bytes);
        Self(format!("DEP{}", hex::encode_upper(bytes)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A gateway invoice reference: 1 to 128 printable ASCII characters, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference(String);

impl Reference {
    /// Parses a reference; `None` when it is not plausible.
    pub fn parse(reference: &str) -> Option<Self> {
        let valid =
            (1..=128).contains(&reference.len()) && reference.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| Self(reference.to_string()))
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_id {
    ($name:ident, $what:literal) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text)
                    .ok_or_else(|| serde::de::Error::custom(concat!("invalid ", $what)))
            }
        }
    };
}

text_id!(DepositId, "deposit id");
text_id!(Reference, "reference");
text_id!(BotId, "bot id");

/// A bot behind this deployment: `[a-z0-9_-]{1,32}`. `default` is the bot of the single-bot
/// variables (`shared_secret`, `bot_backend_url`); the `bots` variable names the others.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BotId(String);

impl BotId {
    /// The id of the single-bot variables' bot.
    pub const DEFAULT: &'static str = "default";

    /// Parses an id; `None` when it breaks the rule.
    pub fn parse(id: &str) -> Option<Self> {
        let valid = (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        valid.then(|| Self(id.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the single-bot variables' bot (records of it omit the field).
    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }
}

impl Default for BotId {
    /// Records written before there were several bots are the default bot's.
    fn default() -> Self {
        Self(Self::DEFAULT.to_string())
    }
}

/// The gateways this service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayName {
    /// The Central PG (Duitku-compatible, run by the seller); the default.
    Central,
    /// Duitku POP.
    Duitku,
    /// Midtrans Snap.
    Midtrans,
    /// Xendit Invoices.
    Xendit,
    /// Tripay closed payments.
    Tripay,
}

impl GatewayName {
    /// Every gateway, in the order they are documented.
    pub const ALL: [GatewayName; 5] = [
        GatewayName::Central,
        GatewayName::Duitku,
        GatewayName::Midtrans,
        GatewayName::Xendit,
        GatewayName::Tripay,
    ];

    /// The name used in variables, requests and routes.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayName::Central => "central",
            GatewayName::Duitku => "duitku",
            GatewayName::Midtrans => "midtrans",
            GatewayName::Xendit => "xendit",
            GatewayName::Tripay => "tripay",
        }
    }

    /// The gateway called `name` (exact, lower case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// The path of this gateway's callback route.
    pub fn callback_path(self) -> &'static str {
        match self {
            GatewayName::Central => "/internal/payment-callback",
            GatewayName::Duitku => "/callback/duitku",
            GatewayName::Midtrans => "/callback/midtrans",
            GatewayName::Xendit => "/callback/xendit",
            GatewayName::Tripay => "/callback/tripay",
        }
    }
}

impl Default for GatewayName {
    /// Records written before there were several gateways are the Central PG's.
    fn default() -> Self {
        GatewayName::Central
    }
}

impl GatewayName {
    /// Whether this is the Central PG (records of the default gateway omit the field).
    pub fn is_central(&self) -> bool {
        *self == GatewayName::Central
    }
}

impl fmt::Display for GatewayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FixedRandom;

    #[test]
    fn deposit_ids() {
        for good in ["D1", "my_ID-1", &"x".repeat(64)] {
            assert!(DepositId::parse(good).is_some(), "{good}");
        }
        for bad in ["", "a b", "a:b", "é", &"x".repeat(65)] {
            assert!(DepositId::parse(bad).is_none(), "{bad:?}");
        }
        let generated = DepositId::generate(&FixedRandom(0xAB));
        assert_eq!(generated.as_str(), "DEPABABABABABABABAB");
        assert!(DepositId::parse(generated.as_str()).is_some());
    }

    #[test]
    fn references_are_printable_ascii() {
        assert!(Reference::parse("DS1234-ABC").is_some());
        for bad in ["", "with space", "tab\t", "é", &"r".repeat(129)] {
            assert!(Reference::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn bot_ids_are_short_lower_case_names() {
        for good in ["default", "shop", "wa_bot-2", &"b".repeat(32)] {
            assert!(BotId::parse(good).is_some(), "{good}");
        }
        for bad in ["", "Shop", "a b", "a:b", "é", &"b".repeat(33)] {
            assert!(BotId::parse(bad).is_none(), "{bad:?}");
        }
        assert!(BotId::default().is_default());
        assert!(!BotId::parse("shop").unwrap().is_default());
    }

    #[test]
    fn ids_round_trip_through_json_and_refuse_invalid_text() {
        let id = DepositId::parse("D-1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""D-1""#);
        assert_eq!(serde_json::from_str::<DepositId>(r#""D-1""#).unwrap(), id);
        assert!(serde_json::from_str::<DepositId>(r#""a b""#).is_err());
    }
}
