//! TTL envelope: Spin's key-value store has no expiry, so every value is stored as
//! `{"exp":<unix ms>,"v":<value>}` and a read past `exp` is a miss.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A stored value with its expiry time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Expiry, Unix milliseconds.
    pub exp: u64,
    /// The value.
    pub v: T,
}

/// What a stored envelope turned out to be on read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened<T> {
    /// Present and not expired.
    Live(Envelope<T>),
    /// Present but past its expiry: treat as absent and delete.
    Expired(Envelope<T>),
}

/// A stored value that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored value is not a valid envelope: {0}")]
pub struct CorruptValue(pub String);

impl<T: Serialize> Envelope<T> {
    /// Wraps `value` to expire at `exp` (Unix ms).
    pub fn new(value: T, exp: u64) -> Self {
        Self { exp, v: value }
    }

    /// The bytes to store.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain structs and strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl<T: DeserializeOwned> Envelope<T> {
    /// Decodes stored bytes and classifies them against `now` (Unix ms).
    pub fn open(bytes: &[u8], now: u64) -> Result<Opened<T>, CorruptValue> {
        let envelope: Envelope<T> =
            serde_json::from_slice(bytes).map_err(|e| CorruptValue(e.to_string()))?;
        Ok(if now >= envelope.exp {
            Opened::Expired(envelope)
        } else {
            Opened::Live(envelope)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_value_and_expiry() {
        let bytes = Envelope::new("DEP1".to_string(), 2_000).encode();
        assert_eq!(bytes, br#"{"exp":2000,"v":"DEP1"}"#);
        match Envelope::<String>::open(&bytes, 1_999).unwrap() {
            Opened::Live(e) => assert_eq!((e.exp, e.v.as_str()), (2_000, "DEP1")),
            other => panic!("expected live, got {other:?}"),
        }
    }

    #[test]
    fn read_at_or_after_expiry_is_expired() {
        let bytes = Envelope::new(1u8, 2_000).encode();
        assert!(matches!(
            Envelope::<u8>::open(&bytes, 2_000),
            Ok(Opened::Expired(_))
        ));
        assert!(matches!(
            Envelope::<u8>::open(&bytes, 9_999),
            Ok(Opened::Expired(_))
        ));
    }

    #[test]
    fn garbage_and_raw_counters_are_corrupt() {
        for bytes in [&b"not json"[..], b"{\"v\":1}", &1i64.to_le_bytes(), b"7"] {
            assert!(Envelope::<u8>::open(bytes, 0).is_err(), "{bytes:?}");
        }
    }
}
