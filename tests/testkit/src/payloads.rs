//! What the Central PG and the bot send, built independently of the app: bearer header,
//! signature, callback bodies.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `Authorization` value for `secret`.
pub fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

/// Hex HMAC-SHA256 of `body` (the `hmac` crate, not the app's code).
#[allow(clippy::expect_used, reason = "HMAC takes keys of any length")]
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A PAID callback body for `id`, as the Central PG sends it.
pub fn paid_body(id: &str, reference: &str, amount: u64) -> String {
    serde_json::json!({
        "orderId": id, "reference": reference, "status": "PAID", "resultCode": "00",
        "duitkuData": {"merchantOrderId": id, "amount": amount.to_string(), "paymentMethod": "BC"}
    })
    .to_string()
}

/// A FAILED callback body for `id`.
pub fn failed_body(id: &str, reference: &str) -> String {
    serde_json::json!({"orderId": id, "reference": reference, "status": "FAILED", "resultCode": "02"})
        .to_string()
}
