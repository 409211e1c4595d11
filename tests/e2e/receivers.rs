//! The example receivers under `examples/`, each run as a child process against the real app:
//! a paid deposit credits the receiver's balance once, a replayed credit changes nothing, a
//! tampered credit is refused and delivered later by the sweep, and a receiver that was down
//! is credited once by the sweep when it is back. Beside it, a second instance serves the bot
//! `shop` of `bots` (`BOT_ID=shop`, its own secret, a previous one): it is credited the deposits
//! `shop` creates, refuses another bot's credit, and accepts its previous secret while it
//! rotates. `scripts/receivers.sh` installs their dependencies first; a receiver whose
//! toolchain is absent is reported as skipped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::support::{
    bearer, free_port, manifest, paid_body, sign, Backend, Http, Reply, TempDir, TestApp, SECRET,
};

/// The named bot `shop`: its secret (its key and its signing secret) and the one it rotates from.
const SHOP_SECRET: &str = "receiver-shop-secret-0123456789";
const SHOP_PREVIOUS: &str = "receiver-shop-previous-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_fastapi_aiogram() {
    exercise("python-fastapi-aiogram").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_express_telegraf() {
    exercise("node-express-telegraf").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rust_axum() {
    exercise("rust-axum").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_discordjs() {
    exercise("node-discordjs").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_baileys() {
    exercise("node-baileys").await
}

/// How `scripts/receivers.sh` left a receiver: the command that starts it, or why it is skipped.
fn prepared(name: &str) -> Option<Vec<String>> {
    let root = manifest();
    let dir = root
        .parent()
        .expect("spin.toml is in the repository root")
        .join("target/receivers")
        .join(name);
    if let Ok(reason) = std::fs::read_to_string(dir.join("skipped")) {
        println!("SKIPPED receiver {name}: {}", reason.trim());
        return None;
    }
    let run = std::fs::read_to_string(dir.join("run")).unwrap_or_else(|_| {
        panic!("receiver {name} is not prepared: run scripts/receivers.sh (scripts/test.sh does)")
    });
    Some(run.lines().map(str::to_string).collect())
}

/// One receiver process with `NOTIFIER=log`: what it printed, line by line.
struct Receiver {
    child: Child,
    addr: SocketAddr,
    lines: watch::Receiver<Vec<String>>,
}

impl Receiver {
    /// Starts it on a free port with its SQLite file at `db`, `SHARED_SECRET` = [`SECRET`] and
    /// `env` on top, once it says it is listening.
    async fn start(command: &[String], db: &Path, env: &[(&str, &str)]) -> Self {
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&command[0])
                .args(&command[1..])
                .env("SHARED_SECRET", SECRET)
                .env("HOST", "127.0.0.1")
                .env("PORT", port.to_string())
                .env("DB_PATH", db)
                .env("NOTIFIER", "log")
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
            let stdout = child.stdout.take().expect("piped stdout");
            let (sender, mut lines) = watch::channel(Vec::new());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    sender.send_modify(|lines| lines.push(line));
                }
            });
            let listening = format!("listening on 127.0.0.1:{port}");
            let up = tokio::time::timeout(
                Duration::from_secs(60),
                lines.wait_for(|lines| lines.contains(&listening)),
            )
            .await
            .map(|seen| seen.is_ok());
            match up {
                Ok(true) => {
                    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
                    return Self { child, addr, lines };
                }
                // Its output ended without the line: it exited (the port was taken?); retry.
                Ok(false) => continue,
                Err(_) => panic!("{command:?} did not say {listening:?} within 60 s"),
            }
        }
        panic!("{command:?} exited at startup three times")
    }

    /// The users it told about a credit (`notify {json}` lines), in order.
    fn notified(&self) -> Vec<Value> {
        self.lines
            .borrow()
            .iter()
            .filter_map(|line| line.strip_prefix("notify "))
            .map(|json| serde_json::from_str(json).expect("notify line is JSON"))
            .collect()
    }

    /// Waits until it has told `n` users in all (telling happens after it answers).
    async fn until_notified(&mut self, n: usize) {
        let count = |lines: &Vec<String>| lines.iter().filter(|l| l.starts_with("notify ")).count();
        let seen = tokio::time::timeout(
            Duration::from_secs(10),
            self.lines.wait_for(|lines| count(lines) >= n),
        )
        .await
        .map(|seen| seen.is_ok());
        assert_eq!(
            seen,
            Ok(true),
            "not {n} notifications: {:?}",
            self.lines.borrow()
        );
    }

    /// SIGKILLs it.
    async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The receiver's SQLite file, read the way a seller would query it.
struct Ledger(PathBuf);

impl Ledger {
    fn open(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(&self.0, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open receiver db")
    }

    /// Balance of `user` (0 when never credited).
    fn balance(&self, user: &str) -> i64 {
        let connection = self.open();
        connection
            .query_row(
                "SELECT COALESCE((SELECT balance FROM balances WHERE user_id = ?1), 0)",
                [user],
                |row| row.get(0),
            )
            .expect("read balance")
    }

    /// Idempotency keys applied.
    fn keys(&self) -> Vec<String> {
        let connection = self.open();
        let mut statement = connection
            .prepare("SELECT idempotency_key FROM credits ORDER BY idempotency_key")
            .expect("query");
        let keys = statement
            .query_map([], |row| row.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("keys");
        keys
    }
}

/// A credit call as the proxy saw it, and what the receiver answered.
#[derive(Clone)]
struct Forwarded {
    headers: Vec<(String, String)>,
    body: Bytes,
    tampered: bool,
    /// The receiver's status; `None` when it could not be reached.
    status: Option<u16>,
}

#[derive(Default)]
struct ProxyState {
    upstream: Option<SocketAddr>,
    tamper: bool,
    forwarded: Vec<Forwarded>,
}

/// Sits between the app and the receiver (`bot_backend_url` points here): forwards each
/// credit call unchanged, or with one digit of its amount changed while `tamper` is on; when
/// the receiver is unreachable it drops the app's connection without an answer, as a dead
/// receiver does.
#[derive(Clone)]
struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

impl Proxy {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let proxy = Self {
            addr: listener.local_addr().expect("proxy addr"),
            state: Arc::default(),
        };
        let state = proxy.state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| forward(state.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set_upstream(&self, upstream: Option<SocketAddr>) {
        self.state.lock().expect("proxy state").upstream = upstream;
    }

    fn set_tamper(&self, on: bool) {
        self.state.lock().expect("proxy state").tamper = on;
    }

    /// Calls forwarded for deposit `id`.
    fn forwarded(&self, id: &str) -> Vec<Forwarded> {
        self.state
            .lock()
            .expect("proxy state")
            .forwarded
            .iter()
            .filter(|f| header(&f.headers, "idempotency-key") == Some(id))
            .cloned()
            .collect()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The body with the first digit of `"amount":` changed (same length, so still well-formed).
fn tamper(body: &[u8]) -> Bytes {
    let mut body = body.to_vec();
    let at = body
        .windows(9)
        .position(|w| w == b"\"amount\":")
        .expect("credit body has an amount")
        + 9;
    body[at] = if body[at] == b'9' { b'8' } else { b'9' };
    Bytes::from(body)
}

async fn forward(
    state: Arc<Mutex<ProxyState>>,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| *name != http::header::HOST)
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let (upstream, tampered) = {
        let state = state.lock().expect("proxy state");
        (state.upstream, state.tamper)
    };
    let sent = if tampered {
        tamper(&body)
    } else {
        body.clone()
    };
    let reply = match upstream {
        Some(addr) => {
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .filter(|(n, _)| n != "content-length")
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            Http::new(&format!("http://{addr}"))
                .try_send(parts.method.as_str(), path, &pairs, sent)
                .await
                .ok()
        }
        None => None,
    };
    state
        .lock()
        .expect("proxy state")
        .forwarded
        .push(Forwarded {
            headers,
            body,
            tampered,
            status: reply.as_ref().map(|r| r.status),
        });
    let reply = reply.ok_or("receiver unreachable")?; // an error drops the connection
    let mut response = hyper::Response::new(Full::new(reply.body));
    *response.status_mut() = http::StatusCode::from_u16(reply.status)?;
    *response.headers_mut() = reply.headers;
    Ok(response)
}

/// Sends `call` to the receiver again, byte for byte.
async fn replay(receiver: &Receiver, call: &Forwarded) -> crate::support::Reply {
    let headers: Vec<(&str, &str)> = call
        .headers
        .iter()
        .filter(|(n, _)| n != "content-length")
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    Http::new(&format!("http://{}", receiver.addr))
        .send(
            "POST",
            "/internal/deposit-callback",
            &headers,
            call.body.clone(),
        )
        .await
}

/// A credit call's body as the app makes it, for `bot` (`None`: `default`, no `botId`).
fn credit_body(id: &str, user: &str, amount: u64, bot: Option<&str>) -> Value {
    let mut body = json!({
        "depositId": id, "userId": user, "amount": amount, "reference": format!("REF-{id}"),
        "status": "PAID", "paidAt": 1_700_000_000_000_u64, "paymentMethod": "BC",
    });
    if let Some(bot) = bot {
        body["botId"] = json!(bot);
    }
    body
}

/// Sends `body` to the receiver as a credit call whose bearer and signature are `secret`'s.
async fn send_credit(receiver: &Receiver, secret: &str, body: &Value) -> Reply {
    let raw = body.to_string();
    let key = body["depositId"].as_str().unwrap_or_default();
    let signature = sign(secret, raw.as_bytes());
    Http::new(&format!("http://{}", receiver.addr))
        .send(
            "POST",
            "/internal/deposit-callback",
            &[
                ("authorization", &bearer(secret)),
                ("content-type", "application/json"),
                ("idempotency-key", key),
                ("x-signature", &signature),
            ],
            raw,
        )
        .await
}

/// The whole story for one receiver.
async fn exercise(name: &str) {
    let Some(command) = prepared(name) else {
        return;
    };
    let dir = TempDir::new();
    let ledger = Ledger(dir.path().join("receiver.db"));
    let shop_ledger = Ledger(dir.path().join("shop.db"));
    let shop_env = [
        ("BOT_ID", "shop"),
        ("SHARED_SECRET", SHOP_SECRET),
        ("SHARED_SECRET_PREVIOUS", SHOP_PREVIOUS),
    ];
    let (mut receiver, mut shop) = tokio::join!(
        Receiver::start(&command, &ledger.0, &[]),
        Receiver::start(&command, &shop_ledger.0, &shop_env),
    );
    let proxy = Proxy::start().await;
    proxy.set_upstream(Some(receiver.addr));
    // `shop`'s credits go through a proxy of their own, on an origin only a slot allows.
    let shop_proxy = Proxy::start().await;
    shop_proxy.set_upstream(Some(shop.addr));
    let bots = json!([{
        "id": "shop", "secret": SHOP_SECRET, "previousSecret": SHOP_PREVIOUS,
        "creditUrl": format!("{}/internal/deposit-callback", shop_proxy.url()),
    }])
    .to_string();
    // The whole inline budget (2 s) for one answer: a loaded CI machine is slow, not failing.
    let app = TestApp::start(
        Backend::Sqlite,
        &[
            ("bot_backend_url", &proxy.url()),
            ("bots", &bots),
            ("bot_origin_1", &shop_proxy.url()),
            ("bot_timeout_ms", "2000"),
            ("credit_lease_seconds", "5"),
        ],
    )
    .await;

    // Unsigned: refused, nothing stored (also its first request, so later ones are warm).
    let unsigned = Http::new(&format!("http://{}", receiver.addr))
        .send(
            "POST",
            "/internal/deposit-callback",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "X"),
            ],
            r#"{"depositId":"X","userId":"tg:101","amount":1,"status":"PAID"}"#,
        )
        .await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.json());
    assert!(ledger.keys().is_empty());

    // Paid: the app credits the receiver inline, the balance changes once, the user is told.
    let (paid, reference) = app.new_deposit("tg:101", 50_000).await;
    assert_eq!(
        app.callback(&paid_body(&paid, &reference, 50_000))
            .await
            .status,
        200
    );
    let view = app.view(&paid).await;
    assert_eq!(view["credited"], json!(true), "{view}");
    assert_eq!(ledger.balance("tg:101"), 50_000);
    receiver.until_notified(1).await;
    assert_eq!(
        receiver.notified(),
        vec![json!({"userId": "tg:101", "amount": 50_000, "depositId": paid})]
    );

    // The same call again, byte for byte: 2xx, nothing changes, nobody is told twice.
    let calls = proxy.forwarded(&paid);
    assert_eq!(calls.len(), 1, "one delivery");
    let again = replay(&receiver, &calls[0]).await;
    assert!((200..300).contains(&again.status), "{}", again.json());
    assert_ne!(again.json()["ok"], json!(false), "{}", again.json());
    assert_eq!(ledger.balance("tg:101"), 50_000);
    assert_eq!(ledger.keys(), vec![paid.clone()]);

    // Tampered on the way: refused (not 2xx, so the app keeps it owed), nothing credited.
    proxy.set_tamper(true);
    let (tampered, reference) = app.new_deposit("tg:102", 20_000).await;
    assert_eq!(
        app.callback(&paid_body(&tampered, &reference, 20_000))
            .await
            .status,
        200
    );
    proxy.set_tamper(false);
    let calls = proxy.forwarded(&tampered);
    assert!(
        !calls.is_empty() && calls.iter().all(|c| c.tampered),
        "tampered only"
    );
    for call in &calls {
        assert_eq!(call.status, Some(401), "a tampered credit is refused");
    }
    let tampered_view = app.view(&tampered).await;
    assert_eq!(tampered_view["credited"], json!(false), "{tampered_view}");
    assert_eq!(ledger.balance("tg:102"), 0);

    // The receiver down: the app cannot deliver, the credit stays owed.
    receiver.kill().await;
    proxy.set_upstream(None);
    let (while_down, reference) = app.new_deposit("tg:103", 30_000).await;
    assert_eq!(
        app.callback(&paid_body(&while_down, &reference, 30_000))
            .await
            .status,
        200
    );
    let down_view = app.view(&while_down).await;
    assert_eq!(down_view["credited"], json!(false), "{down_view}");
    assert!(proxy
        .forwarded(&while_down)
        .iter()
        .all(|c| c.status.is_none()));

    // Up again on the same file; the sweep delivers both owed credits, each once.
    let mut receiver = Receiver::start(&command, &ledger.0, &[]).await;
    proxy.set_upstream(Some(receiver.addr));
    let due = [&tampered_view, &down_view]
        .iter()
        .map(|v| v["nextCreditAttemptAt"].as_u64().expect("a retry is due"))
        .max()
        .unwrap_or_else(|| app.clock.now_ms());
    app.clock.until_sweepable(due);
    app.sweep_until(Duration::from_secs(20), |answers| {
        answers
            .iter()
            .map(|a| a["credited"].as_u64().unwrap_or(0))
            .sum::<u64>()
            >= 2
    })
    .await;
    for id in [&tampered, &while_down] {
        let view = app.view(id).await;
        assert_eq!(view["credited"], json!(true), "{view}");
    }
    let sweep = app.sweep().await;
    assert_eq!(sweep["attempted"], json!(0), "nothing left owed: {sweep}");
    assert_eq!(ledger.balance("tg:101"), 50_000);
    assert_eq!(ledger.balance("tg:102"), 20_000);
    assert_eq!(ledger.balance("tg:103"), 30_000);
    let mut keys = vec![paid, tampered.clone(), while_down.clone()];
    keys.sort();
    assert_eq!(ledger.keys(), keys);
    receiver.until_notified(2).await;
    let mut told: Vec<String> = receiver
        .notified()
        .iter()
        .map(|n| n["depositId"].as_str().unwrap_or_default().to_string())
        .collect();
    told.sort();
    let mut owed = vec![tampered, while_down];
    owed.sort();
    assert_eq!(told, owed, "each user told once");

    // The bot `shop` has a receiver of its own: the default bot's secret is not its secret
    // (also its first request, so later ones are warm).
    let not_its_secret =
        send_credit(&shop, SECRET, &credit_body("X", "tg:201", 1, Some("shop"))).await;
    assert_eq!(not_its_secret.status, 401, "{}", not_its_secret.json());
    assert!(shop_ledger.keys().is_empty());

    // A deposit `shop` creates is credited to its receiver, once, signed with its secret.
    let shop_key = bearer(SHOP_SECRET);
    let created = app
        .http
        .send(
            "POST",
            "/deposit/create",
            &[
                ("authorization", &shop_key),
                ("content-type", "application/json"),
            ],
            json!({"userId": "tg:201", "amount": 40_000}).to_string(),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.json());
    let created = created.json();
    let shop_paid = created["depositId"]
        .as_str()
        .expect("depositId")
        .to_string();
    let reference = created["reference"].as_str().expect("reference");
    assert_eq!(
        app.callback(&paid_body(&shop_paid, reference, 40_000))
            .await
            .status,
        200
    );
    let shop_view = app
        .http
        .send(
            "GET",
            &format!("/deposit/status?depositId={shop_paid}"),
            &[("authorization", &shop_key)],
            Bytes::new(),
        )
        .await;
    assert_eq!(shop_view.status, 200, "{}", shop_view.json());
    assert_eq!(
        shop_view.json()["credited"],
        json!(true),
        "{}",
        shop_view.json()
    );
    assert_eq!(shop_ledger.balance("tg:201"), 40_000);
    assert_eq!(shop_ledger.keys(), vec![shop_paid.clone()]);
    let calls = shop_proxy.forwarded(&shop_paid);
    assert_eq!(calls.len(), 1, "one delivery");
    let sent: Value = serde_json::from_slice(&calls[0].body).expect("credit body is JSON");
    assert_eq!(sent["botId"], json!("shop"), "{sent}");
    assert_eq!(header(&calls[0].headers, "authorization"), Some(&*shop_key));
    let signature = sign(SHOP_SECRET, &calls[0].body);
    assert_eq!(header(&calls[0].headers, "x-signature"), Some(&*signature));
    assert!(
        proxy.forwarded(&shop_paid).is_empty(),
        "not to the default bot"
    );
    assert_eq!(ledger.keys(), keys, "nothing for the default receiver");
    shop.until_notified(1).await;

    // Another bot's credit (`wa`, or `default`'s without `botId`), signed with shop's own
    // secret: refused with 403, nothing stored.
    for bot in [Some("wa"), None] {
        let refused = send_credit(
            &shop,
            SHOP_SECRET,
            &credit_body("other-bot", "tg:201", 5_000, bot),
        )
        .await;
        let answer = refused.json();
        assert_eq!(refused.status, 403, "{bot:?}: {answer}");
        assert_eq!(answer["ok"], json!(false), "{answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    assert_eq!(shop_ledger.balance("tg:201"), 40_000);
    assert_eq!(shop_ledger.keys(), vec![shop_paid.clone()]);

    // Signed with its previous secret while it rotates (SHARED_SECRET_PREVIOUS): credited.
    let rotated = send_credit(
        &shop,
        SHOP_PREVIOUS,
        &credit_body("rotated", "tg:202", 7_000, Some("shop")),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.json());
    assert_eq!(rotated.json()["ok"], json!(true), "{}", rotated.json());
    assert_eq!(shop_ledger.balance("tg:202"), 7_000);
    assert_eq!(shop_ledger.balance("tg:201"), 40_000);
    let mut shop_keys = vec![shop_paid.clone(), "rotated".to_string()];
    shop_keys.sort();
    assert_eq!(shop_ledger.keys(), shop_keys);
    shop.until_notified(2).await;
    assert_eq!(
        shop.notified(),
        vec![
            json!({"userId": "tg:201", "amount": 40_000, "depositId": shop_paid}),
            json!({"userId": "tg:202", "amount": 7_000, "depositId": "rotated"}),
        ],
        "the refused credits told nobody"
    );
    shop.kill().await;
    receiver.kill().await;
}
