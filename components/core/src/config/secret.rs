//! Secrets: values that never appear in `Debug` output, logs or responses.

use std::fmt;

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

    /// Whether `given` is this secret: both hashed first (the time tells nothing of either's
    /// length), then compared in constant time.
    pub fn matches(&self, given: &str) -> bool {
        use sha2::{Digest, Sha256};
        subtle::ConstantTimeEq::ct_eq(
            &Sha256::digest(self.0.as_bytes())[..],
            &Sha256::digest(given.as_bytes())[..],
        )
        .into()
    }

    /// Whether two secrets are the same, compared in constant time.
    pub fn same_as(&self, other: &Secret) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), other.0.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
