//! The shared secrets and what a peer's signature covers.

use super::secret::Secret;

/// The shared secrets.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Current shared secret (bearer token and HMAC key).
    pub shared_secret: Secret,
    /// Previous secret, still accepted inbound during a rotation.
    pub shared_secret_previous: Option<Secret>,
    /// What the HMAC covers, both ways.
    pub scheme: SignatureScheme,
}

/// What a peer's `X-Signature` covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// The raw body (the original API; `X-Timestamp` and `X-Nonce` are not signed).
    Body,
    /// `{X-Timestamp}.{X-Nonce}.{raw body}`, both headers required: a notice cannot be sent
    /// again with a fresh timestamp or nonce (`pg_signature = timestamped`).
    Timestamped,
}

impl Auth {
    /// The secrets accepted on inbound requests: current first, then the previous one.
    pub fn inbound_secrets(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.shared_secret).chain(self.shared_secret_previous.as_ref())
    }
}
