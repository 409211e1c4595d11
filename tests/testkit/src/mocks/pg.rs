//! The mock Central PG: creates invoices, checks bearer and signature, records requests.

use crate::tls::TlsServer;
use anyhow::Result;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::{lock, Mock, Party, Received, Reply};

/// How the mock PG answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgMode {
    /// Duitku style: `{"statusCode":"00","data":{reference,paymentUrl}}`.
    Nested,
    /// `{reference, paymentUrl}` at the top level.
    TopLevel,
    /// This status with a short body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 JSON without a reference.
    MissingFields,
    /// Answer (nested) only after this long.
    Slow(Duration),
}

/// The mock Central PG's state.
pub struct PgState {
    secret: Mutex<String>,
    mode: Mutex<PgMode>,
    received: Mutex<Vec<Received>>,
    counter: AtomicU64,
}

/// The mock Central PG.
pub type MockPg = Mock<PgState>;

impl MockPg {
    /// Listens on `addr` (use port 0 for a free port).
    pub async fn start(addr: &str, secret: &str) -> Result<Self> {
        Self::start_with(addr, secret, None).await
    }

    /// The same, serving HTTPS.
    pub async fn start_tls(addr: &str, secret: &str, tls: TlsServer) -> Result<Self> {
        Self::start_with(addr, secret, Some(tls)).await
    }

    async fn start_with(addr: &str, secret: &str, tls: Option<TlsServer>) -> Result<Self> {
        Self::launch(
            addr,
            PgState {
                secret: Mutex::new(secret.to_string()),
                mode: Mutex::new(PgMode::Nested),
                received: Mutex::new(Vec::new()),
                counter: AtomicU64::new(0),
            },
            tls,
        )
        .await
    }

    /// Changes how later requests are answered.
    pub fn set_mode(&self, mode: PgMode) {
        *lock(&self.state.mode) = mode;
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }
}

impl Party for PgState {
    fn secret(&self) -> &Mutex<String> {
        &self.secret
    }

    async fn answer(&self, received: Received) -> (u16, Reply) {
        let (status, text) = self.invoice(received).await;
        (status, Reply::Whole(text))
    }
}

impl PgState {
    async fn invoice(&self, received: Received) -> (u16, String) {
        let authentic = received.authentic;
        let order = received.json()["orderId"]
            .as_str()
            .unwrap_or("")
            .to_string();
        lock(&self.received).push(received);
        if !authentic {
            return (401, r#"{"error":"bad signature"}"#.into());
        }
        let mode = lock(&self.mode).clone();
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let reference = format!("DS{n:06}{order}");
        let payment_url = format!("https://pay.mock/redirect_checkout?reference={reference}");
        match mode {
            PgMode::Nested => (200, nested(&reference, &payment_url)),
            PgMode::TopLevel => (
                200,
                json!({"reference": reference, "paymentUrl": payment_url}).to_string(),
            ),
            PgMode::Status(status) => (status, "upstream unhappy".into()),
            PgMode::Garbage => (200, "<html>gateway maintenance</html>".into()),
            PgMode::MissingFields => (200, json!({"statusCode": "00", "data": {}}).to_string()),
            PgMode::Slow(delay) => {
                tokio::time::sleep(delay).await;
                (200, nested(&reference, &payment_url))
            }
        }
    }
}

fn nested(reference: &str, payment_url: &str) -> String {
    json!({"statusCode": "00", "statusMessage": "SUCCESS",
           "data": {"reference": reference, "paymentUrl": payment_url}})
    .to_string()
}
