//! Credit receiver for bot-topup-backend: axum takes the app's signed credit call, an SQLite
//! file applies each `Idempotency-Key` once, and a notifier tells the user.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use rusqlite::{Connection, TransactionBehavior};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS balances (user_id TEXT PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS credits (
  idempotency_key TEXT PRIMARY KEY, user_id TEXT NOT NULL, amount INTEGER NOT NULL,
  reference TEXT, credited_at INTEGER NOT NULL);";

/// The credit call's body (fields we do not use are ignored).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreditCall {
    deposit_id: String,
    user_id: String,
    amount: i64,
    reference: Option<String>,
    status: String,
    /// The bot credited; absent for `default`.
    bot_id: Option<String>,
}

/// How the user is told about a credit.
enum Notifier {
    /// Prints the message (tests, dry runs).
    Log,
    /// Sends it with the Telegram Bot API; `userId` is the chat id, optionally `tg:`-prefixed.
    Telegram {
        http: reqwest::Client,
        token: String,
    },
}

impl Notifier {
    async fn notify(&self, user_id: &str, amount: i64, deposit_id: &str) -> Result<(), String> {
        match self {
            Notifier::Log => {
                let line = json!({"userId": user_id, "amount": amount, "depositId": deposit_id});
                println!("notify {line}");
                Ok(())
            }
            Notifier::Telegram { http, token } => {
                let chat_id = user_id.strip_prefix("tg:").unwrap_or(user_id);
                let text = format!("Top-up of Rp {amount} received ({deposit_id}).");
                http.post(format!("https://api.telegram.org/bot{token}/sendMessage"))
                    .json(&json!({"chat_id": chat_id, "text": text}))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map(drop)
                    .map_err(|e| e.without_url().to_string()) // the URL holds the token
            }
        }
    }
}

#[derive(Clone)]
struct AppState {
    /// `SHARED_SECRET` and, while it rotates, `SHARED_SECRET_PREVIOUS`.
    secrets: Arc<[String]>,
    /// The bot this receiver serves (`BOT_ID`, `default` when unset).
    bot_id: Arc<str>,
    db: Arc<Mutex<Connection>>,
    notifier: Arc<Notifier>,
}

/// Whether the bearer token and the HMAC of the bytes received are ours (constant time).
fn signed_by_app(secret: &str, raw_body: &[u8], headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).map(|v| v.as_bytes()).unwrap_or_default();
    let Ok(signature) = hex::decode(header("x-signature")) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(raw_body);
    let signature_ok = mac.verify_slice(&signature).is_ok();
    // Hashing both sides first makes the comparison constant-time whatever the lengths.
    let bearer = Sha256::digest(header("authorization"));
    let bearer_ok: bool = bearer
        .ct_eq(&Sha256::digest(format!("Bearer {secret}")))
        .into();
    signature_ok && bearer_ok
}

/// Records the key and adds to the balance in one transaction; false if the key was seen.
fn apply_credit(db: &mut Connection, key: &str, call: &CreditCall) -> rusqlite::Result<bool> {
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let inserted = tx.execute(
        "INSERT INTO credits VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        (key, &call.user_id, call.amount, &call.reference, now_ms),
    )? == 1;
    if inserted {
        tx.execute(
            "INSERT INTO balances VALUES (?1, ?2)
             ON CONFLICT(user_id) DO UPDATE SET balance = balance + excluded.balance",
            (&call.user_id, call.amount),
        )?;
    }
    tx.commit()?;
    Ok(inserted)
}

fn answer(status: StatusCode, body: Value) -> (StatusCode, Json<Value>) {
    (status, Json(body))
}

/// The credit call: 2xx once the credit is stored (or was already); otherwise a status the
/// app retries later.
async fn credit(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw_body: Bytes, // the bytes as sent: never re-serialise before verifying
) -> (StatusCode, Json<Value>) {
    // Every secret is checked (no early exit), so the time taken does not say which one matched.
    let signed = state.secrets.iter().fold(false, |any, secret| {
        signed_by_app(secret, &raw_body, &headers) | any
    });
    if !signed {
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"ok": false, "error": "BAD_SIGNATURE"}),
        );
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let call = serde_json::from_slice::<CreditCall>(&raw_body).ok();
    let (Some(key), Some(call)) = (key, call) else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"ok": false, "error": "BAD_CREDIT"}),
        );
    };
    if key != call.deposit_id || call.amount <= 0 || call.status != "PAID" {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"ok": false, "error": "BAD_CREDIT"}),
        );
    }
    // Another bot's credit: refused, nothing stored.
    if call.bot_id.as_deref().unwrap_or("default") != &*state.bot_id {
        return answer(
            StatusCode::FORBIDDEN,
            json!({"ok": false, "error": "WRONG_BOT"}),
        );
    }
    let key = key.to_string();
    let db = state.db.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let mut db = db.lock().map_err(|_| "store lock poisoned".to_string())?;
        let applied = apply_credit(&mut db, &key, &call).map_err(|e| e.to_string())?;
        Ok::<_, String>((applied, key, call))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|result| result);
    match stored {
        Ok((applied, key, call)) => {
            if applied {
                // The credit is stored: a failed message must not undo or repeat it.
                let notifier = state.notifier.clone();
                tokio::spawn(async move {
                    if let Err(error) = notifier.notify(&call.user_id, call.amount, &key).await {
                        eprintln!("could not notify user {} of {key}: {error}", call.user_id);
                    }
                });
            }
            answer(StatusCode::OK, json!({"ok": true, "replayed": !applied}))
        }
        Err(error) => {
            eprintln!("credit failed: {error}");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"ok": false, "error": "STORE_ERROR"}),
            )
        }
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let set = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let secret = set("SHARED_SECRET").ok_or("SHARED_SECRET is required")?;
    // While the secret rotates, credits signed with the previous one are accepted too.
    let secrets: Vec<String> = std::iter::once(secret)
        .chain(set("SHARED_SECRET_PREVIOUS"))
        .collect();
    let db = Connection::open(env("DB_PATH", "receiver.db"))?;
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    db.execute_batch(SCHEMA)?;
    let notifier = match env("NOTIFIER", "telegram").as_str() {
        "log" => Notifier::Log,
        _ => Notifier::Telegram {
            http: reqwest::Client::new(),
            token: std::env::var("TELEGRAM_BOT_TOKEN")
                .map_err(|_| "TELEGRAM_BOT_TOKEN is required (or NOTIFIER=log)")?,
        },
    };
    let state = AppState {
        secrets: secrets.into(),
        bot_id: set("BOT_ID").unwrap_or_else(|| "default".into()).into(),
        db: Arc::new(Mutex::new(db)),
        notifier: Arc::new(notifier),
    };
    let app = Router::new()
        .route(
            &env("CREDIT_PATH", "/internal/deposit-callback"),
            post(credit),
        )
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state);
    let addr = format!("{}:{}", env("HOST", "127.0.0.1"), env("PORT", "8080"));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
