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
use topup_host::clock::ClockSource;
use topup_host::{App, AppOptions};
use topup_testkit::mocks::{BotMode, MockBot, MockPg};

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
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
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

pub use topup_testkit::{bearer, failed_body, paid_body, sign, Http, RedisServer, Reply};

/// A free loopback port.
pub fn free_port() -> u16 {
    topup_testkit::free_port().expect("free port")
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

    /// The runtime config for these stores (written once, before any app reads it: several
    /// processes may start on it at once).
    pub fn runtime_config(&self) -> PathBuf {
        let path = self.dir.join("runtime-config.toml");
        if path.exists() {
            return path;
        }
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
        // Written under another name and renamed, so a reader never sees it half-written.
        let partial = self.dir.join("runtime-config.toml.partial");
        std::fs::write(&partial, text).expect("write runtime config");
        std::fs::rename(&partial, &path).expect("install runtime config");
        path
    }

    /// The Redis server behind the stores (to stop or pause it), if they are on Redis.
    pub fn redis(&self) -> Option<&RedisServer> {
        self.redis.as_ref()
    }

    /// Every key and value of both labels. On Redis both labels live in database 0 (key
    /// names never collide), so it is read once and each key is put under its label by prefix.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::new();
        match (&self.backend, &self.redis) {
            (Backend::Sqlite, _) => {
                for label in ["default", "claims"] {
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
            }
            (Backend::Redis, Some(redis)) => {
                let client = redis::Client::open(redis.url(0)).expect("redis url");
                let mut c = client.get_connection().expect("redis connection");
                let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).expect("keys");
                for key in keys {
                    let value: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut c).expect("get");
                    snapshot.insert((label_of(&key).to_string(), key), value);
                }
            }
            (Backend::Redis, None) => unreachable!("redis backend without server"),
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

    /// Writes `value` at `key` of `label` behind the app's back (to plant a corrupt record).
    pub fn put(&self, label: &str, key: &str, value: &[u8]) {
        match &self.redis {
            None => {
                let connection = rusqlite::Connection::open(self.dir.join(format!("{label}.db")))
                    .expect("open sqlite");
                connection
                    .execute(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT(store, key) DO UPDATE SET value=?3",
                        rusqlite::params![label, key, value],
                    )
                    .expect("write sqlite");
            }
            Some(redis) => {
                let client = redis::Client::open(redis.url(0)).expect("redis url");
                let mut c = client.get_connection().expect("redis connection");
                let () = redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .query(&mut c)
                    .expect("set");
            }
        }
    }

    /// Makes the app's writes to the `default` label fail until the guard is dropped, while
    /// reads keep working. SQLite: another connection holds the write lock of `default.db`
    /// (`BEGIN IMMEDIATE`), so a write fails: after the host's 5 s busy timeout, or at once
    /// when its transaction has already read (SQLite does not wait then). Redis: `maxmemory 1`
    /// with `noeviction`, so every write (of both labels, one database) is refused with OOM.
    pub fn block_writes(&self) -> WriteBlock {
        match &self.redis {
            None => {
                let connection =
                    rusqlite::Connection::open(self.dir.join("default.db")).expect("open sqlite");
                connection
                    .execute_batch("BEGIN IMMEDIATE")
                    .expect("take the write lock");
                WriteBlock::Sqlite(connection)
            }
            Some(redis) => {
                redis
                    .command(0, &["CONFIG", "SET", "maxmemory-policy", "noeviction"])
                    .expect("maxmemory-policy");
                redis
                    .command(0, &["CONFIG", "SET", "maxmemory", "1"])
                    .expect("maxmemory");
                WriteBlock::Redis(redis.url(0))
            }
        }
    }
}

/// Writes to the store fail while this lives (see [`Stores::block_writes`]).
pub enum WriteBlock {
    /// The connection holding `default.db`'s write lock.
    Sqlite(rusqlite::Connection),
    /// The Redis whose memory limit refuses writes.
    Redis(String),
}

impl Drop for WriteBlock {
    fn drop(&mut self) {
        match self {
            WriteBlock::Sqlite(connection) => connection
                .execute_batch("ROLLBACK")
                .expect("release the write lock"),
            WriteBlock::Redis(url) => {
                let client = redis::Client::open(url.as_str()).expect("redis url");
                let mut c = client.get_connection().expect("redis connection");
                let () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory")
                    .arg("0")
                    .query(&mut c)
                    .expect("lift maxmemory");
            }
        }
    }
}

/// The label a key belongs to, from its prefix: the table in
/// components/core/src/store/keys.rs. A key it does not name is a finding (both labels share
/// one Redis database only because no name is used in both), so it panics.
pub fn label_of(key: &str) -> &'static str {
    const DEFAULT: [&str; 11] = [
        "deposit:",
        "ref:",
        "credit:",
        "credited:",
        "gen:",
        "notes:",
        "note:",
        "hold:",
        "slot:",
        "cursor:",
        "quarantine:",
    ];
    const CLAIMS: [&str; 7] = [
        "paid:", "create:", "life:", "nonce:", "count:", "block:", "day:",
    ];
    if key == "quarantine" || DEFAULT.iter().any(|p| key.starts_with(p)) {
        "default"
    } else if CLAIMS.iter().any(|p| key.starts_with(p)) {
        "claims"
    } else {
        panic!("key {key:?} is in no label of components/core/src/store/keys.rs")
    }
}

/// Prints one row of the closing note's fault table.
pub fn report(scenario: &str, backend: Backend, expected: &str, observed: &str) {
    println!("FAULT-TABLE | {scenario} | {backend:?} | {expected} | {observed}");
}

/// The clock the app under test reads: the system clock plus an offset the test moves forward
/// (the host's `--clock-offset-file`), so leases, retry times and TTLs pass without waiting.
pub struct TestClock {
    file: PathBuf,
    offset_ms: AtomicU64,
    /// `spin up` has no clock offset: there, moving the clock means waiting.
    real_time: bool,
}

impl TestClock {
    fn new(dir: &Path) -> Self {
        let file = dir.join("clock-offset-ms");
        std::fs::write(&file, "0").expect("write clock offset");
        Self {
            file,
            offset_ms: AtomicU64::new(0),
            real_time: Runtime::from_env() != Runtime::Host,
        }
    }

    /// The host's view of this clock.
    pub fn source(&self) -> ClockSource {
        ClockSource {
            offset_file: Some(self.file.clone()),
        }
    }

    /// Unix time in ms as the app reads it now.
    pub fn now_ms(&self) -> u64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis();
        u64::try_from(system).expect("ms fit u64") + self.offset_ms.load(Ordering::SeqCst)
    }

    /// Moves the app's clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        if self.real_time {
            std::thread::sleep(by);
            return;
        }
        let ms = u64::try_from(by.as_millis()).expect("ms fit u64");
        let offset = self.offset_ms.fetch_add(ms, Ordering::SeqCst) + ms;
        std::fs::write(&self.file, offset.to_string()).expect("write clock offset");
    }

    /// Moves the clock until a credit due at `due_ms` (a view's `nextCreditAttemptAt`) is in
    /// a bucket a sweep visits: credits due are kept in 1 s buckets and a bucket is visited
    /// once its end is 2 s in the past (components/core/src/store/schedule.rs).
    pub fn until_sweepable(&self, due_ms: u64) {
        self.advance_to((due_ms / 1_000 + 1) * 1_000 + 2_000 + 50);
    }

    /// Moves the clock to `at_ms` (not back).
    pub fn advance_to(&self, at_ms: u64) {
        let now = self.now_ms();
        if at_ms > now {
            self.advance(Duration::from_millis(at_ms - now));
        }
    }
}

/// Every (label, key) of `snapshot` whose key or value contains `needle`.
pub fn mentions(snapshot: &Snapshot, needle: &str) -> Vec<(String, String)> {
    snapshot
        .iter()
        .filter(|((_, key), value)| {
            key.contains(needle) || String::from_utf8_lossy(value).contains(needle)
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// Where the app under test runs.
pub enum Server {
    /// Inside the test process.
    InProcess(tokio::task::JoinHandle<()>),
    /// A `topup-host serve` child process (boxed: its HTTP client is large).
    Process(Box<Process>),
}

/// The app's HTTP API as the bot, the gateway and the scheduler call it, on one instance.
#[derive(Clone)]
pub struct Api {
    /// Client for the instance.
    pub http: Http,
}

/// A `topup-host serve` (or `spin up`) child process on a test app's stores; SIGKILLed on
/// drop.
pub struct Process {
    /// Its API.
    pub api: Api,
    /// Address it listens on.
    pub addr: SocketAddr,
    child: Child,
    /// `spin up` runs its trigger as a child: the whole process group is signalled.
    group: bool,
}

impl Process {
    /// SIGKILLs it (no chance to finish anything) and reaps it.
    pub fn kill(mut self) {
        self.reap();
    }

    fn reap(&mut self) {
        if self.group {
            self.signal("KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) to it (to its process group under Spin).
    pub fn signal(&self, name: &str) {
        let target = if self.group {
            format!("-{}", self.child.id())
        } else {
            self.child.id().to_string()
        };
        let sent = Command::new("kill")
            .args([&format!("-{name}"), "--", &target])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} {target} failed");
    }

    /// Waits (polling, at most `limit`) for it to exit; its exit status, or None if it still
    /// runs.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---- The child-process runtime: `topup-host serve`, or `spin up` when asked ----

/// What runs the app in child-process mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// `topup-host serve` (the default, and what CI uses).
    Host,
    /// `<spin> up`: set `SPIN_BIN=/path/to/spin`, or `E2E_RUNTIME=spin` with `spin` on PATH.
    Spin(PathBuf),
}

impl Runtime {
    /// The runtime the environment asks for (read once per test process).
    pub fn from_env() -> Self {
        static CHOSEN: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
        CHOSEN
            .get_or_init(|| {
                if let Some(bin) = std::env::var_os("SPIN_BIN").filter(|b| !b.is_empty()) {
                    return Runtime::Spin(PathBuf::from(bin));
                }
                if std::env::var("E2E_RUNTIME").as_deref() == Ok("spin") {
                    let on_path = std::env::var_os("PATH").and_then(|path| {
                        std::env::split_paths(&path)
                            .map(|dir| dir.join("spin"))
                            .find(|candidate| candidate.is_file())
                    });
                    let spin = on_path.expect("E2E_RUNTIME=spin but no `spin` on PATH");
                    return Runtime::Spin(spin);
                }
                Runtime::Host
            })
            .clone()
    }

    /// The command serving `manifest` with `runtime_config` on `listen` (arguments only; the
    /// caller sets environment and output).
    pub fn command(&self, manifest: &Path, runtime_config: &Path, listen: &str) -> Command {
        match self {
            Runtime::Host => {
                let mut command = Command::new(env!("CARGO_BIN_EXE_topup-host"));
                command
                    .args(["serve", "--manifest"])
                    .arg(manifest)
                    .arg("--runtime-config-file")
                    .arg(runtime_config)
                    .args(["--listen", listen]);
                command
            }
            Runtime::Spin(bin) => {
                let mut command = Command::new(bin);
                command
                    .args(["up", "--listen", listen, "--runtime-config-file"])
                    .arg(runtime_config)
                    .arg("--from")
                    .arg(manifest);
                // Its own process group, so that the trigger child is signalled with it.
                std::os::unix::process::CommandExt::process_group(&mut command, 0);
                command
            }
        }
    }
}

/// How to start one child process beyond the defaults.
#[derive(Default)]
pub struct Launch {
    /// Use this runtime instead of [`Runtime::from_env`].
    pub runtime: Option<Runtime>,
    /// More `topup-host serve` flags (host only).
    pub args: Vec<String>,
    /// Write the process's stderr to this file instead of the test's.
    pub stderr: Option<PathBuf>,
}

// ---- end of the child-process runtime ----

impl Drop for Process {
    fn drop(&mut self) {
        self.reap();
    }
}

impl std::ops::Deref for Process {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The app under test with its stores and upstream mocks.
pub struct TestApp {
    /// The API of the instance the test talks to.
    pub api: Api,
    /// The mock Central PG.
    pub pg: MockPg,
    /// The mock bot.
    pub bot: MockBot,
    /// The stores.
    pub stores: Stores,
    /// Address the app listens on.
    pub addr: SocketAddr,
    /// The clock the app reads.
    pub clock: TestClock,
    server: Option<Server>,
    env: HashMap<String, String>,
    /// CA files the app trusts for outbound HTTPS (`--extra-ca`).
    extra_ca: Vec<PathBuf>,
    _dir: TempDir,
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
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
        let pg = MockPg::start("127.0.0.1:0", SECRET).await.expect("mock pg");
        let bot = MockBot::start("127.0.0.1:0", SECRET)
            .await
            .expect("mock bot");
        Self::start_with_mocks(backend, vars, pg, bot, Vec::new()).await
    }

    /// Starts the app in-process against `pg` and `bot` (HTTPS mocks, say), trusting the CA
    /// certificates in the `extra_ca` PEM files as `topup-host serve --extra-ca` does.
    pub async fn start_with_mocks(
        backend: Backend,
        vars: &[(&str, &str)],
        pg: MockPg,
        bot: MockBot,
        extra_ca: Vec<PathBuf>,
    ) -> Self {
        let dir = TempDir::new();
        let stores = Stores::new(backend, dir.path());
        let env = base_env(&pg.url(), &bot.url(), vars);
        let mut app = Self {
            api: Api {
                http: Http::new("http://127.0.0.1:1"),
            },
            pg,
            bot,
            stores,
            addr: "127.0.0.1:1".parse().expect("addr"),
            server: None,
            env,
            clock: TestClock::new(dir.path()),
            extra_ca,
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
            clock: self.clock.source(),
            tls: topup_host::tls::TlsOptions {
                extra_ca: self.extra_ca.clone(),
            },
            ..AppOptions::default()
        };
        let app = App::load(&options).await.expect("load app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        self.addr = listener.local_addr().expect("addr");
        self.api.http = Http::new(&format!("http://{}", self.addr));
        let task = tokio::spawn(async move {
            let _ = app.serve(listener).await;
        });
        self.server = Some(Server::InProcess(task));
    }

    /// Starts `n` more `topup-host` child processes on the same stores and variables (more
    /// instances of the app, as several `spin up` behind a balancer), each answering /health.
    pub async fn spawn_processes(&self, n: usize) -> Vec<Process> {
        let mut processes = Vec::new();
        for _ in 0..n {
            processes.push(self.spawn_process().await);
        }
        processes
    }

    /// One `topup-host serve` (or `spin up`, see [`Runtime`]) on a free port, once it
    /// answers /health (on another port if that one was taken meanwhile and the process exited).
    async fn spawn_process(&self) -> Process {
        self.launch(Launch::default()).await
    }

    /// [`TestApp::spawn_process`] with a chosen runtime, flags and stderr.
    pub async fn launch(&self, launch: Launch) -> Process {
        let runtime = launch.runtime.clone().unwrap_or_else(Runtime::from_env);
        assert!(
            launch.args.is_empty() || runtime == Runtime::Host,
            "host flags {:?} given to {runtime:?}",
            launch.args
        );
        let mut exits = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            let mut command = runtime.command(&manifest(), &self.stores.runtime_config(), &listen);
            command.args(&launch.args).env_clear().envs(&self.env);
            if runtime == Runtime::Host {
                // Host-only flags: the test's clock and its private CA.
                command.arg("--clock-offset-file").arg(&self.clock.file);
                for ca in &self.extra_ca {
                    command.arg("--extra-ca").arg(ca);
                }
            } else {
                // Spin needs a home (plugins, caches) and a PATH.
                for name in ["HOME", "PATH"] {
                    if let Some(value) = std::env::var_os(name) {
                        command.env(name, value);
                    }
                }
            }
            let stderr = match &launch.stderr {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("open stderr file"),
                ),
                None => Stdio::inherit(),
            };
            let child = command
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("spawn the app's runtime");
            let addr: SocketAddr = listen.parse().expect("addr");
            let mut process = Process {
                api: Api {
                    http: Http::new(&format!("http://{addr}")),
                },
                addr,
                child,
                group: runtime != Runtime::Host,
            };
            // `spin up` compiles the components at start: give it longer.
            let polls = if runtime == Runtime::Host { 500 } else { 3000 };
            for _ in 0..polls {
                if let Ok(Some(status)) = process.child.try_wait() {
                    exits.push(status);
                    break;
                }
                if let Ok(reply) = process
                    .http
                    .try_send("GET", "/health", &[], Bytes::new())
                    .await
                {
                    if reply.status == 200 {
                        return process;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                !exits.is_empty(),
                "{runtime:?} on {addr} did not come up in {} s",
                polls / 50
            );
        }
        panic!("{runtime:?} exited at startup: {exits:?}")
    }

    /// Restarts the app as a `topup-host` child process on the same stores.
    pub async fn restart_as_process(&mut self) {
        self.stop();
        let process = self.spawn_process().await;
        self.addr = process.addr;
        self.api = process.api.clone();
        self.server = Some(Server::Process(Box::new(process)));
    }

    /// Kills the app (SIGKILL for a process), leaving the stores as they are.
    pub fn kill(&mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        match self.server.take() {
            Some(Server::InProcess(task)) => task.abort(),
            Some(Server::Process(process)) => process.kill(),
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
        bearer(SECRET)
    }
}

impl Api {
    /// POST /deposit/create with a JSON body.
    pub async fn create(&self, body: &Value) -> Reply {
        self.http
            .send(
                "POST",
                "/deposit/create",
                &[
                    ("authorization", &TestApp::bearer()),
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
        let bearer = bearer(secret);
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
                &[("authorization", &TestApp::bearer())],
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

    /// POST /internal/credit-retry, whatever it answers.
    pub async fn sweep_reply(&self) -> Reply {
        self.http
            .send(
                "POST",
                "/internal/credit-retry",
                &[("authorization", &TestApp::bearer())],
                Bytes::new(),
            )
            .await
    }

    /// POST /internal/credit-retry, which must answer 200.
    pub async fn sweep(&self) -> Value {
        let reply = self.sweep_reply().await;
        assert_eq!(reply.status, 200, "{}", reply.json());
        reply.json()
    }
}

impl TestApp {
    /// Sweeps, moving the app's clock 1 s forward between sweeps, until `done` holds for the
    /// answers so far (each must be 200), for at most `limit` of the app's time; returns them.
    pub async fn sweep_until(
        &self,
        limit: Duration,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let mut answers = Vec::new();
        for _ in 0..=limit.as_secs() {
            answers.push(self.sweep().await);
            if done(&answers) {
                return answers;
            }
            self.clock.advance(Duration::from_secs(1));
        }
        panic!(
            "not done after {limit:?} ({} sweeps, {} cleaned, {} credited, {} quarantined); last: {}",
            answers.len(),
            total(&answers, "cleaned"),
            total(&answers, "credited"),
            total(&answers, "quarantined"),
            answers.last().map(Value::to_string).unwrap_or_default()
        )
    }

    /// Creates `n` deposits of `amount` and pays each with the bot answering 503, through
    /// `apis` in turn, so every credit is owed; returns them (id, reference) and when the last
    /// of their retries is due. The bot is left answering 503.
    pub async fn owed_credits(
        &self,
        apis: &[&Api],
        n: usize,
        amount: u64,
    ) -> (Vec<(String, String)>, u64) {
        self.bot.set_mode(BotMode::Status(503));
        let mut deposits = Vec::new();
        for i in 0..n {
            deposits.push(
                apis[i % apis.len()]
                    .new_deposit(&format!("u{i}"), amount)
                    .await,
            );
        }
        let paid =
            futures::future::join_all(deposits.iter().enumerate().map(|(i, (id, reference))| {
                let body = paid_body(id, reference, amount);
                async move { apis[i % apis.len()].callback(&body).await.status }
            }))
            .await;
        assert!(paid.iter().all(|status| *status == 200), "{paid:?}");
        let views = futures::future::join_all(deposits.iter().map(|(id, _)| self.view(id))).await;
        for view in &views {
            assert_eq!(
                (view["status"].clone(), view["credited"].clone()),
                (serde_json::json!("PAID"), serde_json::json!(false)),
                "{view}"
            );
        }
        let due = views
            .iter()
            .map(|view| {
                view["nextCreditAttemptAt"]
                    .as_u64()
                    .expect("a retry is due")
            })
            .max()
            .expect("some deposits");
        (deposits, due)
    }

    /// Whether every delivery of `id` so far carried the same body bytes and
    /// `Idempotency-Key: id`.
    pub fn resends_identical(&self, id: &str) -> bool {
        let deliveries = self.bot.deliveries(id);
        deliveries
            .iter()
            .all(|d| d.header("idempotency-key") == Some(id) && d.body == deliveries[0].body)
    }
}

/// The sum of one field over sweep answers.
pub fn total(answers: &[Value], field: &str) -> u64 {
    answers.iter().map(|a| a[field].as_u64().unwrap_or(0)).sum()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}
