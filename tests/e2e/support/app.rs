//! The app under test, its HTTP API as the parties call it, and its mocks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use topup_host::{App, AppOptions};
use topup_testkit::mocks::{BotMode, MockBot, MockPg};

use super::*;

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
    /// The in-process app (None while it runs as a child process).
    pub app: Option<std::sync::Arc<App>>,
    /// Idle timeout of its WASIp3 instances (None: Spin's default).
    idle_timeout: Option<Duration>,
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
        Self::start_with(backend, vars, pg, bot, extra_ca, None).await
    }

    /// Starts the app in-process keeping idle WASIp3 instances for `idle_timeout` (so that a
    /// test can count them without depending on how fast the machine is).
    pub async fn start_keeping_instances(
        backend: Backend,
        vars: &[(&str, &str)],
        idle_timeout: Duration,
    ) -> Self {
        let pg = MockPg::start("127.0.0.1:0", SECRET).await.expect("mock pg");
        let bot = MockBot::start("127.0.0.1:0", SECRET)
            .await
            .expect("mock bot");
        Self::start_with(backend, vars, pg, bot, Vec::new(), Some(idle_timeout)).await
    }

    async fn start_with(
        backend: Backend,
        vars: &[(&str, &str)],
        pg: MockPg,
        bot: MockBot,
        extra_ca: Vec<PathBuf>,
        idle_timeout: Option<Duration>,
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
            app: None,
            idle_timeout,
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
            instance_idle_timeout: self.idle_timeout,
            ..AppOptions::default()
        };
        let app = App::load(&options).await.expect("load app");
        self.app = Some(app.clone());
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
        self.app = None;
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

    /// Changes variables of the running in-process app without restarting it (as a dynamic
    /// variables provider would): its instances, reused ones included, read the new values.
    pub fn set_variables(&mut self, vars: &[(&str, &str)]) {
        for (name, value) in vars {
            self.env.insert(
                format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()),
                value.to_string(),
            );
        }
        let app = self.app.as_ref().expect("the app runs in-process");
        app.set_variables(&self.env).expect("variables resolve");
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

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}
