//! The mock bot: applies each credit once per `Idempotency-Key`, in the modes tests need
//! (accept, fail, hang, trickle, slow).

use crate::tls::TlsServer;
use anyhow::Result;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

use super::{lock, Mock, Party, Received, Reply};

/// How the mock bot answers credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotMode {
    /// 200 `{"ok":true}`.
    Accept,
    /// This status.
    Status(u16),
    /// Hold every request until [`MockBot::release`], then accept.
    Hang,
    /// Accept, but send the body one byte per interval (after [`TRICKLE_PADDING`] blanks),
    /// so the whole answer takes far longer than any timeout a test sets.
    Trickle(Duration),
    /// Apply the credit at once, answer only after this long: a caller that dies meanwhile
    /// leaves a credit the bot has applied and the caller never heard of.
    Slow(Duration),
}

/// Leading blanks of a trickled answer (valid JSON whitespace before `{"ok":true}`).
pub const TRICKLE_PADDING: usize = 20;

#[derive(Default)]
struct Ledger {
    received: Vec<Received>,
    /// Credits applied per deposit id (once per Idempotency-Key).
    applied: HashMap<String, u32>,
    /// Requests per deposit id the bot has finished deciding (applied, duplicate or refused).
    decided: HashMap<String, u32>,
    keys: HashMap<String, ()>,
}

/// The mock bot's state.
pub struct BotState {
    secret: Mutex<String>,
    mode: Mutex<BotMode>,
    ledger: Mutex<Ledger>,
    release: watch::Sender<u64>,
}

/// The mock bot backend: applies each credit once per `Idempotency-Key`, as a real bot must.
pub type MockBot = Mock<BotState>;

impl MockBot {
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
            BotState {
                secret: Mutex::new(secret.to_string()),
                mode: Mutex::new(BotMode::Accept),
                ledger: Mutex::new(Ledger::default()),
                release: watch::channel(0).0,
            },
            tls,
        )
        .await
    }

    /// Changes how later requests are answered.
    pub fn set_mode(&self, mode: BotMode) {
        *lock(&self.state.mode) = mode;
    }

    /// Lets every held request go on.
    pub fn release(&self) {
        self.state.release.send_modify(|n| *n += 1);
    }

    /// Every credit request so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.ledger).received.clone()
    }

    /// Credit requests for one deposit.
    pub fn deliveries(&self, deposit_id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.json()["depositId"] == deposit_id)
            .collect()
    }

    /// Credits applied for one deposit.
    pub fn credits(&self, deposit_id: &str) -> u32 {
        lock(&self.state.ledger)
            .applied
            .get(deposit_id)
            .copied()
            .unwrap_or(0)
    }

    /// Requests for one deposit the bot has finished deciding (a held one counts once it is
    /// released and answered).
    pub fn decided(&self, deposit_id: &str) -> u32 {
        lock(&self.state.ledger)
            .decided
            .get(deposit_id)
            .copied()
            .unwrap_or(0)
    }

    /// Credits applied for every deposit.
    pub fn all_credits(&self) -> HashMap<String, u32> {
        lock(&self.state.ledger).applied.clone()
    }
}

impl Party for BotState {
    fn secret(&self) -> &Mutex<String> {
        &self.secret
    }

    async fn answer(&self, received: Received) -> (u16, Reply) {
        let mode = lock(&self.mode).clone();
        let deposit = received.json()["depositId"].as_str().map(str::to_string);
        let (status, text) = self.credit(received, &mode).await;
        if let Some(deposit) = deposit {
            *lock(&self.ledger).decided.entry(deposit).or_default() += 1;
        }
        match mode {
            BotMode::Trickle(every) if status == 200 => (
                status,
                Reply::Trickle {
                    text: format!("{:width$}{text}", "", width = TRICKLE_PADDING),
                    every,
                },
            ),
            _ => (status, Reply::Whole(text)),
        }
    }
}

impl BotState {
    async fn credit(&self, received: Received, mode: &BotMode) -> (u16, String) {
        let authentic = received.authentic;
        let key = received.header("idempotency-key").map(str::to_string);
        let deposit = received.json()["depositId"].as_str().map(str::to_string);
        lock(&self.ledger).received.push(received);
        if !authentic {
            return (401, r#"{"ok":false,"error":"bad signature"}"#.into());
        }
        if *mode == BotMode::Hang {
            let mut released = self.release.subscribe();
            let _ = released.changed().await;
        }
        match mode {
            BotMode::Status(status) => {
                (*status, r#"{"ok":false,"error":"bot unavailable"}"#.into())
            }
            BotMode::Accept | BotMode::Hang | BotMode::Trickle(_) | BotMode::Slow(_) => {
                let (Some(key), Some(deposit)) = (key, deposit) else {
                    return (
                        400,
                        r#"{"ok":false,"error":"missing Idempotency-Key or depositId"}"#.into(),
                    );
                };
                {
                    let mut ledger = lock(&self.ledger);
                    if ledger.keys.insert(key, ()).is_some() {
                        return (200, r#"{"ok":true,"duplicate":true}"#.into());
                    }
                    *ledger.applied.entry(deposit).or_default() += 1;
                }
                if let BotMode::Slow(delay) = mode {
                    tokio::time::sleep(*delay).await;
                }
                (200, r#"{"ok":true}"#.into())
            }
        }
    }
}
