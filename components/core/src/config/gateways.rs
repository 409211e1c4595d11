//! Each gateway's settings, read from its section of variables; the adapters in
//! `crate::gateway` speak the protocols with them.

use std::time::Duration;

use super::secret::Secret;

/// Which signature formulas the account uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuitkuSignature {
    /// HMAC-SHA256 keyed with the API key (current docs).
    Hmac,
    /// MD5 / SHA-256 over strings ending with the API key (PHP SDK, older docs).
    Legacy,
}

/// The Duitku adapter's settings.
#[derive(Debug, Clone)]
pub struct Duitku {
    /// API origin: `https://api-sandbox.duitku.com` or `https://api-prod.duitku.com`.
    pub base_url: String,
    /// Merchant (project) code, e.g. `DXXXX`.
    pub merchant_code: String,
    /// The project's API key.
    pub api_key: Secret,
    /// Which signature generation the account uses.
    pub signature: DuitkuSignature,
    /// Timeout of one call.
    pub timeout: Duration,
}

/// The Midtrans adapter's settings.
#[derive(Debug, Clone)]
pub struct Midtrans {
    /// Snap origin: `https://app.sandbox.midtrans.com` or `https://app.midtrans.com`.
    pub snap_url: String,
    /// Core API origin (status): `https://api.sandbox.midtrans.com` or `https://api.midtrans.com`.
    pub api_url: String,
    /// The server key.
    pub server_key: Secret,
    /// Timeout of one call.
    pub timeout: Duration,
}

/// The Xendit adapter's settings.
#[derive(Debug, Clone)]
pub struct Xendit {
    /// API origin, `https://api.xendit.co` (test and live differ by key, not by host).
    pub base_url: String,
    /// Secret API key (the Basic auth user name).
    pub secret_key: Secret,
    /// The dashboard's callback verification token.
    pub callback_token: Secret,
    /// Timeout of one call.
    pub timeout: Duration,
}

/// The Tripay adapter's settings.
#[derive(Debug, Clone)]
pub struct Tripay {
    /// API root: `https://tripay.co.id/api-sandbox` or `https://tripay.co.id/api`.
    pub base_url: String,
    /// Merchant code, e.g. `T0001`.
    pub merchant_code: String,
    /// API key (bearer token of the API calls).
    pub api_key: Secret,
    /// Private key (signs requests, verifies callbacks).
    pub private_key: Secret,
    /// Payment channel of closed transactions, e.g. `QRIS` or `BRIVA`.
    pub method: String,
    /// Timeout of one call.
    pub timeout: Duration,
}
