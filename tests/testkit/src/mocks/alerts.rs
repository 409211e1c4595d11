//! The operator's two alert channels, as strict as the real ones: a webhook receiver that
//! checks what a receiver of signed alerts must (JSON, bearer, the timestamped signature over
//! `{X-Timestamp}.{X-Nonce}.{body}`, one alert per `Idempotency-Key`), and Telegram's Bot API
//! `sendMessage` (its token in the path, a JSON body naming its chat and a text of at most
//! 4096 characters, answered as Telegram answers). Both record every request.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::{lock, serve, Received, Reply};

/// The path the receiver takes alerts on (`alert_url` is its URL plus this).
pub const ALERT_HOOK_PATH: &str = "/hooks/topup";

/// Longest `text` Telegram's `sendMessage` takes.
pub const TELEGRAM_MAX_TEXT: usize = 4096;

/// Whether `content-type` is `application/json` (parameters such as a charset allowed).
fn is_json(received: &Received) -> bool {
    received
        .header("content-type")
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// A failure the mock was told to answer: this status, to this many requests.
#[derive(Debug, Clone, Copy)]
struct Failing {
    status: u16,
    left: Option<u32>,
}

impl Failing {
    /// The status to answer now, counting the request against `left`.
    fn take(slot: &mut Option<Failing>) -> Option<u16> {
        let failing = slot.as_mut()?;
        let status = failing.status;
        match &mut failing.left {
            None => {}
            Some(1) => *slot = None,
            Some(n) => *n -= 1,
        }
        Some(status)
    }
}

// ----- the webhook receiver

/// The receiver's state.
struct ReceiverState {
    secret: Mutex<String>,
    failing: Mutex<Option<Failing>>,
    received: Mutex<Vec<Received>>,
    /// The alerts it took, the first delivery of each `Idempotency-Key`.
    accepted: Mutex<Vec<Received>>,
    keys: Mutex<HashSet<String>>,
    duplicates: AtomicU64,
}

/// A receiver of the app's signed alert webhook, on `POST` [`ALERT_HOOK_PATH`]: it takes an
/// alert only if it is JSON, carries `Authorization: Bearer <secret>`, `X-Timestamp`,
/// `X-Nonce` and `X-Signature` = hex HMAC-SHA256 of `{timestamp}.{nonce}.{body}` under its
/// secret, and an `Idempotency-Key` equal to the body's `id`; each key is taken once (a
/// repeat is answered 200 as a duplicate). Every request is recorded, `authentic` telling
/// whether its bearer and signature were valid.
pub struct MockAlertReceiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
}

/// Serves `state`'s answers over plain HTTP on `addr` (both mocks here answer at once).
async fn serve_plain<S: Send + Sync + 'static>(
    addr: &str,
    state: &Arc<S>,
    answer: fn(&S, Received) -> (u16, Reply),
) -> Result<SocketAddr> {
    let state = state.clone();
    serve(
        addr,
        move |received: Received| {
            let state = state.clone();
            async move { answer(&state, received) }
        },
        None,
        None,
    )
    .await
}

impl MockAlertReceiver {
    /// Listens on `addr` (port 0 for a free one), verifying with `secret`.
    pub async fn start(addr: &str, secret: &str) -> Result<Self> {
        let state = Arc::new(ReceiverState {
            secret: Mutex::new(secret.to_string()),
            failing: Mutex::new(None),
            received: Mutex::new(Vec::new()),
            accepted: Mutex::new(Vec::new()),
            keys: Mutex::new(HashSet::new()),
            duplicates: AtomicU64::new(0),
        });
        let addr = serve_plain(addr, &state, ReceiverState::answer).await?;
        Ok(Self { addr, state })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (the app's `alert_origin`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where alerts go: [`Self::url`] plus [`ALERT_HOOK_PATH`] (the app's `alert_url`).
    pub fn hook_url(&self) -> String {
        format!("{}{ALERT_HOOK_PATH}", self.url())
    }

    /// Answers `status` to every later request, until [`Self::recover`].
    pub fn fail_with(&self, status: u16) {
        *lock(&self.state.failing) = Some(Failing { status, left: None });
    }

    /// Answers `status` to the next `n` requests, then takes alerts again.
    pub fn fail_next(&self, n: u32, status: u16) {
        *lock(&self.state.failing) = (n > 0).then_some(Failing {
            status,
            left: Some(n),
        });
    }

    /// Takes alerts again.
    pub fn recover(&self) {
        *lock(&self.state.failing) = None;
    }

    /// Every request so far, whatever it was answered.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }

    /// The alerts taken: the first authentic delivery of each `Idempotency-Key`.
    pub fn accepted(&self) -> Vec<Received> {
        lock(&self.state.accepted).clone()
    }

    /// Authentic deliveries of a key already taken.
    pub fn duplicates(&self) -> u64 {
        self.state.duplicates.load(Ordering::SeqCst)
    }
}

/// What a receiver answers when it refuses: `{"ok":false,"error":...}`.
fn refused(status: u16, error: &str) -> (u16, Reply) {
    (
        status,
        Reply::Whole(json!({"ok": false, "error": error}).to_string()),
    )
}

impl ReceiverState {
    fn answer(&self, mut received: Received) -> (u16, Reply) {
        received.authentic = timestamped_authentic(&lock(&self.secret), &received);
        lock(&self.received).push(received.clone());
        if let Some(status) = Failing::take(&mut lock(&self.failing)) {
            return refused(status, "receiver unavailable");
        }
        if received.path != ALERT_HOOK_PATH {
            return refused(404, "not found");
        }
        if received.method != "POST" {
            return refused(405, "method not allowed");
        }
        if !is_json(&received) {
            return refused(415, "content-type must be application/json");
        }
        if !received.authentic {
            return refused(401, "bad bearer or signature");
        }
        let body = received.json();
        let key = received.header("idempotency-key").unwrap_or_default();
        let well_formed = ["id", "kind", "subject", "text"]
            .iter()
            .all(|field| body[field].as_str().is_some_and(|v| !v.is_empty()))
            && body["at"].is_u64();
        if !well_formed {
            return refused(400, "not an alert");
        }
        if key.is_empty() || body["id"] != key || received.header("x-nonce") != Some(key) {
            return refused(400, "Idempotency-Key and X-Nonce must be the alert's id");
        }
        if !lock(&self.keys).insert(key.to_string()) {
            self.duplicates.fetch_add(1, Ordering::SeqCst);
            return (200, r#"{"ok":true,"duplicate":true}"#.into());
        }
        lock(&self.accepted).push(received);
        (200, r#"{"ok":true}"#.into())
    }
}

/// Whether `received` carries `Authorization: Bearer <secret>` and `X-Signature` = hex
/// HMAC-SHA256 of `{X-Timestamp}.{X-Nonce}.{body}` (a decimal timestamp, a nonce given).
pub fn timestamped_authentic(secret: &str, received: &Received) -> bool {
    let (Some(timestamp), Some(nonce), Some(signature)) = (
        received.header("x-timestamp"),
        received.header("x-nonce"),
        received.header("x-signature"),
    ) else {
        return false;
    };
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) || nonce.is_empty() {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(format!("{timestamp}.{nonce}.").as_bytes());
    mac.update(&received.body);
    let signature_ok = hex::decode(signature)
        .ok()
        .is_some_and(|given| mac.verify_slice(&given).is_ok());
    received.header("authorization") == Some(&format!("Bearer {secret}")) && signature_ok
}

// ----- Telegram

/// Telegram's state.
struct TelegramState {
    token: String,
    chat_id: String,
    failing: Mutex<Option<Failing>>,
    received: Mutex<Vec<Received>>,
    /// The bodies of the messages sent.
    messages: Mutex<Vec<Value>>,
    next_id: AtomicU64,
}

/// Telegram's Bot API as `sendMessage` sees it: only `POST /bot<token>/sendMessage` with its
/// token (another token: 401 Unauthorized; another path or method: 404 Not Found), a JSON body
/// whose `chat_id` is its chat and whose `text` is 1 to 4096 characters (else 400 Bad
/// Request), answered `{"ok":true,"result":<the Message>}`. Every request is recorded,
/// `authentic` telling whether it carried the token.
pub struct MockTelegram {
    addr: SocketAddr,
    state: Arc<TelegramState>,
}

impl MockTelegram {
    /// Listens on `addr` (port 0 for a free one) as the bot with `token`, in chat `chat_id`.
    pub async fn start(addr: &str, token: &str, chat_id: &str) -> Result<Self> {
        let state = Arc::new(TelegramState {
            token: token.to_string(),
            chat_id: chat_id.to_string(),
            failing: Mutex::new(None),
            received: Mutex::new(Vec::new()),
            messages: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        });
        let addr = serve_plain(addr, &state, TelegramState::answer).await?;
        Ok(Self { addr, state })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (the app's `alert_telegram_api_url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `status` (as Telegram words it, e.g. 429 Too Many Requests) to the next `n`
    /// requests.
    pub fn fail_next(&self, n: u32, status: u16) {
        *lock(&self.state.failing) = (n > 0).then_some(Failing {
            status,
            left: Some(n),
        });
    }

    /// Every request so far, whatever it was answered.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }

    /// The bodies of the messages it sent.
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.state.messages).clone()
    }
}

/// Telegram's error answer.
fn telegram_error(code: u16, description: &str) -> (u16, Reply) {
    (
        code,
        Reply::Whole(
            json!({"ok": false, "error_code": code, "description": description}).to_string(),
        ),
    )
}

fn bad_request(why: &str) -> (u16, Reply) {
    telegram_error(400, &format!("Bad Request: {why}"))
}

impl TelegramState {
    fn answer(&self, mut received: Received) -> (u16, Reply) {
        let path = received
            .path
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let call = path
            .strip_prefix("/bot")
            .and_then(|rest| rest.split_once('/'));
        received.authentic = call.is_some_and(|(token, _)| token == self.token);
        lock(&self.received).push(received.clone());
        let Some((token, method)) = call else {
            return telegram_error(404, "Not Found");
        };
        if token != self.token {
            return telegram_error(401, "Unauthorized");
        }
        if received.method != "POST" || method != "sendMessage" {
            return telegram_error(404, "Not Found");
        }
        if let Some(status) = Failing::take(&mut lock(&self.failing)) {
            let description = match status {
                429 => "Too Many Requests: retry after 1".to_string(),
                500 => "Internal Server Error".to_string(),
                other => format!("Error {other}"),
            };
            return telegram_error(status, &description);
        }
        if !is_json(&received) {
            return bad_request("content-type must be application/json");
        }
        let Ok(body) = serde_json::from_slice::<Value>(&received.body) else {
            return bad_request("can't parse JSON object");
        };
        if !body.is_object() {
            return bad_request("can't parse JSON object");
        }
        let chat = match &body["chat_id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => return bad_request("chat_id is empty"),
            _ => return bad_request("chat not found"),
        };
        if chat != self.chat_id {
            return bad_request("chat not found");
        }
        let text = match &body["text"] {
            Value::String(text) => text.clone(),
            Value::Null => return bad_request("message text is empty"),
            _ => return bad_request("field \"text\" must be of type String"),
        };
        if text.trim().is_empty() {
            return bad_request("message text is empty");
        }
        if text.chars().count() > TELEGRAM_MAX_TEXT {
            return bad_request("message is too long");
        }
        if !matches!(
            body["disable_web_page_preview"],
            Value::Null | Value::Bool(_)
        ) {
            return bad_request("field \"disable_web_page_preview\" must be of type Boolean");
        }
        let message_id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let chat_id = chat
            .parse::<i64>()
            .map_or_else(|_| Value::String(chat.clone()), Value::from);
        let date = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        lock(&self.messages).push(body);
        (
            200,
            Reply::Whole(
                json!({"ok": true, "result": {
                    "message_id": message_id,
                    "chat": {"id": chat_id, "type": "supergroup"},
                    "date": date,
                    "text": text,
                }})
                .to_string(),
            ),
        )
    }
}
