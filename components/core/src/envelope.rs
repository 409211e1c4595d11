//! TTL envelope: Spin's key-value store has no expiry, so every value is stored as
//! `{"exp":<unix ms>,"v":<value>}` and a read past `exp` is a miss.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// A stored value with its expiry time.
///
/// Read as a JSON object only, and its value, when a struct, as an object only (see
/// [`Objects`]): every record is written as one, and the array form serde's derive also
/// accepts would link a second reader of every record type into each component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Envelope<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor(PhantomData))
    }
}

struct EnvelopeVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for EnvelopeVisitor<T> {
    type Value = Envelope<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut exp = None;
        let mut v = None;
        while let Some(key) = map.next_key::<EnvelopeField>()? {
            match key {
                EnvelopeField::Exp if exp.is_some() => {
                    return Err(de::Error::duplicate_field("exp"))
                }
                EnvelopeField::Exp => exp = Some(map.next_value()?),
                EnvelopeField::V if v.is_some() => return Err(de::Error::duplicate_field("v")),
                EnvelopeField::V => v = Some(map.next_value_seed(Objects(PhantomData))?),
                EnvelopeField::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            exp: exp.ok_or_else(|| de::Error::missing_field("exp"))?,
            v: v.ok_or_else(|| de::Error::missing_field("v"))?,
        })
    }
}

/// The envelope's fields; others are ignored.
enum EnvelopeField {
    Exp,
    V,
    Other,
}

impl<'de> Deserialize<'de> for EnvelopeField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = EnvelopeField;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(match name {
                    "exp" => EnvelopeField::Exp,
                    "v" => EnvelopeField::V,
                    _ => EnvelopeField::Other,
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

/// Reads a `T` whose structs are JSON objects: the deserializer it hands `T` serves a
/// struct as a map, so the derived reader's array form is never called (and not linked).
struct Objects<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Objects<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(StructsAsMaps(deserializer))
    }
}

/// Forwards every request to the inner deserializer, a struct's as a map's.
struct StructsAsMaps<D>(D);

macro_rules! forward {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method(visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for StructsAsMaps<D> {
    type Error = D::Error;

    forward!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
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
