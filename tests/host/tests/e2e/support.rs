//! Shared machinery of the end-to-end suite: the real components on the host, a private
//! SQLite directory or `redis-server` per test, the mock PG and bot, and an HTTP client.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use topup_host::mocks::{MockBot, MockPg};
use topup_host::{App, AppOptions};

/// The shared secret every test starts with.
pub const SECRET: &str = "e2e-shared-secret-0123456789";

/// Which key-value backend the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Spin's SQLite store (two files in a temp dir).
    Sqlite,
    /// A private redis-server.
    Redis,
}

/// Generates one `#[tokio::test]` per backend for an `async fn scenario(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario($crate::support::Backend::Redis).await
                }
            )*
        }
    };
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The repository's `spin.toml`, after checking the components were built.
pub fn manifest() -> PathBuf {
    let root = repo_root();
    let wasm = root.join("target/wasm32-wasip2/release/health.wasm");
    assert!(
        wasm.exists(),
        "components are not built: run `cargo build --target wasm32-wasip2 --release` (scripts/test.sh does)"
    );
    root.join("spin.toml")
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the target dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates it.
    pub fn new() -> Self {
        let path = repo_root().join("target/e2e-tmp").join(format!(
            "{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub use topup_host::testkit::{Http, RedisServer, Reply};

/// A free loopback port.
pub fn free_port() -> u16 {
    topup_host::testkit::free_port().expect("free port")
}

/// What the stores hold, keyed by (label, key).
pub type Snapshot = BTreeMap<(String, String), Vec<u8>>;

/// The stores behind one app, readable from the test.
pub struct Stores {
    backend: Backend,
    dir: PathBuf,
    redis: Option<RedisServer>,
}

impl Stores {
    fn new(backend: Backend, dir: &Path) -> Self {
        let redis =
            (backend == Backend::Redis).then(|| RedisServer::start(dir).expect("redis-server"));
        Self {
            backend,
            dir: dir.to_path_buf(),
            redis,
        }
    }

    /// Writes the runtime config for these stores and returns its path.
    pub fn runtime_config(&self) -> PathBuf {
        let text = match &self.redis {
            None => "[key_value_store.default]\ntype = \"spin\"\npath = \"default.db\"\n\n\
                     [key_value_store.claims]\ntype = \"spin\"\npath = \"claims.db\"\n"
                .to_string(),
            Some(redis) => format!(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n\n\
                 [key_value_store.claims]\ntype = \"redis\"\nurl = \"{}\"\n",
                redis.url(0),
                redis.url(0)
            ),
        };
        let path = self.dir.join("runtime-config.toml");
        std::fs::write(&path, text).expect("write runtime config");
        path
    }

    /// Every key and value of both labels.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::new();
        for (label, db) in [("default", 0u8), ("claims", 1u8)] {
            match (&self.backend, &self.redis) {
                (Backend::Sqlite, _) => {
                    let path = self.dir.join(format!("{label}.db"));
                    if !path.exists() {
                        continue;
                    }
                    let connection = rusqlite::Connection::open(path).expect("open sqlite");
                    let mut statement = connection
                        .prepare("SELECT store, key, value FROM spin_key_value")
                        .expect("query");
                    let rows = statement
                        .query_map([], |row| {
                            Ok((
                                (row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                                row.get::<_, Vec<u8>>(2)?,
                            ))
                        })
                        .expect("rows");
                    for row in rows {
                        let ((store, key), value) = row.expect("row");
                        assert_eq!(store, label, "Spin's table keeps the label in `store`");
                        snapshot.insert((store, key), value);
                    }
                }
                (Backend::Redis, Some(redis)) => {
                    let client = redis::Client::open(redis.url(db)).expect("redis url");
                    let mut c = client.get_connection().expect("redis connection");
                    let keys: Vec<String> =
                        redis::cmd("KEYS").arg("*").query(&mut c).expect("keys");
                    for key in keys {
                        let value: Vec<u8> =
                            redis::cmd("GET").arg(&key).query(&mut c).expect("get");
                        snapshot.insert((label.to_string(), key), value);
                    }
                }
                (Backend::Redis, None) => unreachable!("redis backend without server"),
            }
        }
        snapshot
    }

    /// Keys of one label.
    pub fn keys(&self, label: &str) -> Vec<String> {
        self.snapshot()
            .into_keys()
            .filter(|(l, _)| l == label)
            .map(|(_, k)| k)
            .collect()
    }
}

/// Hex HMAC-SHA256 of `body` (computed with the `hmac` crate, independently of the app).
pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A PAID callback body for `id`.
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

/// Where the app under test runs.
pub enum Server {
    /// Inside the test process.
    InProcess(tokio::task::JoinHandle<()>),
    /// A `topup-host serve` child process.
    Process(Child),
}

/// The app under test with its stores and upstream mocks.
pub struct TestApp {
    /// Client for the app.
    pub http: Http,
    /// The mock Central PG.
    pub pg: MockPg,
    /// The mock bot.
    pub bot: MockBot,
    /// The stores.
    pub stores: Stores,
    /// Address the app listens on.
    pub addr: SocketAddr,
    server: Option<Server>,
    env: HashMap<String, String>,
    _dir: TempDir,
}

/// Variables every test sets (the upstream URLs are added per test).
fn base_env(pg: &str, bot: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("SHARED_SECRET", SECRET),
        ("CENTRAL_PG_BASE_URL", pg),
        ("BOT_BACKEND_URL", bot),
        // Fast, bounded retries in tests; each test may override.
        ("CREDIT_RETRY_SCHEDULE", "1"),
        ("CREDIT_LEASE_SECONDS", "3"),
        ("BOT_TIMEOUT_MS", "1000"),
    ]
    .into_iter()
    .map(|(k, v)| (format!("SPIN_VARIABLE_{k}"), v.to_string()))
    .collect();
    for (name, value) in extra {
        env.insert(
            format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()),
            value.to_string(),
        );
    }
    env
}

impl TestApp {
    /// Starts the app in-process with `vars` (lower-case Spin variable names).
    pub async fn start(backend: Backend, vars: &[(&str, &str)]) -> Self {
        let dir = TempDir::new();
        let stores = Stores::new(backend, dir.path());
        let pg = MockPg::start("127.0.0.1:0", SECRET).await.expect("mock pg");
        let bot = MockBot::start("127.0.0.1:0", SECRET)
            .await
            .expect("mock bot");
        let env = base_env(&pg.url(), &bot.url(), vars);
        let mut app = Self {
            http: Http::new("http://127.0.0.1:1"),
            pg,
            bot,
            stores,
            addr: "127.0.0.1:1".parse().expect("addr"),
            server: None,
            env,
            _dir: dir,
        };
        app.launch_in_process().await;
        app
    }

    async fn launch_in_process(&mut self) {
        let options = AppOptions {
            manifest: manifest(),
            runtime_config: Some(self.stores.runtime_config()),
            env: self.env.clone(),
        };
        let app = App::load(&options).await.expect("load app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        self.addr = listener.local_addr().expect("addr");
        self.http = Http::new(&format!("http://{}", self.addr));
        let task = tokio::spawn(async move {
            let _ = app.serve(listener).await;
        });
        self.server = Some(Server::InProcess(task));
    }

    /// Restarts the app as a `topup-host` child process on the same stores.
    pub async fn restart_as_process(&mut self) {
        self.stop();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_topup-host"))
            .args(["serve", "--manifest"])
            .arg(manifest())
            .arg("--runtime-config-file")
            .arg(self.stores.runtime_config())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env_clear()
            .envs(&self.env)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn topup-host");
        self.addr = format!("127.0.0.1:{port}").parse().expect("addr");
        self.http = Http::new(&format!("http://{}", self.addr));
        self.server = Some(Server::Process(child));
        for _ in 0..500 {
            if let Ok(reply) = self
                .http
                .try_send("GET", "/health", &[], Bytes::new())
                .await
            {
                if reply.status == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("topup-host did not come up");
    }

    /// Kills the app (SIGKILL for a process), leaving the stores as they are.
    pub fn kill(&mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        match self.server.take() {
            Some(Server::InProcess(task)) => task.abort(),
            Some(Server::Process(mut child)) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            None => {}
        }
    }

    /// Restarts in-process with changed variables (e.g. after a secret rotation).
    pub async fn restart_with(&mut self, vars: &[(&str, &str)]) {
        self.stop();
        for (name, value) in vars {
            self.env.insert(
                format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()),
                value.to_string(),
            );
        }
        self.launch_in_process().await;
    }

    /// `Authorization` header value for the current secret.
    pub fn bearer() -> String {
        format!("Bearer {SECRET}")
    }

    /// POST /deposit/create with a JSON body.
    pub async fn create(&self, body: &Value) -> Reply {
        self.http
            .send(
                "POST",
                "/deposit/create",
                &[
                    ("authorization", &Self::bearer()),
                    ("content-type", "application/json"),
                ],
                body.to_string(),
            )
            .await
    }

    /// Creates a deposit that must succeed; returns (depositId, reference).
    pub async fn new_deposit(&self, user: &str, amount: u64) -> (String, String) {
        let reply = self
            .create(&serde_json::json!({"userId": user, "amount": amount}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json());
        let body = reply.json();
        (
            body["depositId"].as_str().expect("depositId").to_string(),
            body["reference"].as_str().expect("reference").to_string(),
        )
    }

    /// POST a callback signed with `secret`, plus `extra` headers.
    pub async fn callback_signed(&self, body: &str, secret: &str, extra: &[(&str, &str)]) -> Reply {
        let signature = sign(secret, body.as_bytes());
        let bearer = format!("Bearer {secret}");
        let mut headers = vec![
            ("authorization", bearer.as_str()),
            ("content-type", "application/json"),
            ("x-signature", signature.as_str()),
        ];
        headers.extend_from_slice(extra);
        self.http
            .send(
                "POST",
                "/internal/payment-callback",
                &headers,
                body.to_string(),
            )
            .await
    }

    /// POST a correctly signed callback.
    pub async fn callback(&self, body: &str) -> Reply {
        self.callback_signed(body, SECRET, &[]).await
    }

    /// GET /deposit/status?{query}.
    pub async fn status(&self, query: &str) -> Reply {
        self.http
            .send(
                "GET",
                &format!("/deposit/status?{query}"),
                &[("authorization", &Self::bearer())],
                Bytes::new(),
            )
            .await
    }

    /// Status of a deposit that must exist.
    pub async fn view(&self, id: &str) -> Value {
        let reply = self.status(&format!("depositId={id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.json());
        reply.json()
    }

    /// POST /internal/credit-retry.
    pub async fn sweep(&self) -> Value {
        let reply = self
            .http
            .send(
                "POST",
                "/internal/credit-retry",
                &[("authorization", &Self::bearer())],
                Bytes::new(),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json());
        reply.json()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}
