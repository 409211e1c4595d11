//! What a measurement runs against: a scratch directory, the stores (SQLite files or a private
//! Redis), the mock gateway and bot, and the app in a process of its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde_json::Value;
use topup_testkit::mocks::{MockBot, MockPg};
use topup_testkit::{free_port, Http, RedisServer};

use crate::load;

/// The shared secret the app, the mocks and the load generator agree on.
pub const SECRET: &str = "bench-shared-secret-0123456789abcdef";

/// The repository root (the bench reads the manifest and the built components from it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The store behind both labels.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    /// One SQLite file per label, as Spin keeps them.
    Sqlite,
    /// One private Redis database for both labels.
    Redis,
}

impl Backend {
    /// Both, in the order they are measured.
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Redis];

    /// Lower-case name, as the report writes it.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Redis => "redis",
        }
    }
}

/// Redis memory in use, from `INFO memory`.
pub fn used_memory(redis: &RedisServer) -> Result<u64> {
    parse_used_memory(&redis.command(0, &["INFO", "memory"])?)
}

/// `used_memory` out of an `INFO memory` reply.
pub fn parse_used_memory(info: &str) -> Result<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no used_memory in INFO")
}

/// What serves the app: the Spin CLI when installed, else the test host.
pub fn runner() -> &'static str {
    let spin = Command::new("spin").arg("--version").output();
    if spin.is_ok_and(|o| o.status.success()) {
        "spin up"
    } else {
        "topup-host"
    }
}

/// A server under load in its own process: the app (the Spin CLI when installed, else the test
/// host) or the native baseline.
pub struct AppProcess {
    /// The server process.
    pub child: Child,
    /// A client for it.
    pub http: Http,
    /// Where the host writes its store-operation counts (the native server keeps none).
    stats: Option<PathBuf>,
}

impl AppProcess {
    /// Starts the app over `runtime_config`; `dir` receives its stats file.
    pub fn start(runtime_config: &Path, env: &HashMap<String, String>, dir: &Path) -> Result<Self> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let stats = dir.join(format!("stats-{port}.json"));
        let mut command = if runner() == "spin up" {
            let mut c = Command::new("spin");
            c.args(["up", "--from"]).arg(root().join("spin.toml"));
            c
        } else {
            let mut c = Command::new(root().join("target/host/topup-host"));
            c.args(["serve", "--stats-file"])
                .arg(&stats)
                .arg("--manifest")
                .arg(root().join("spin.toml"));
            c
        };
        command
            .arg("--runtime-config-file")
            .arg(runtime_config)
            .args(["--listen", &listen]);
        Self::spawn(command, &listen, env, Some(stats))
    }

    /// topup-host (whatever [`runner`] says) serving spin.toml over `runtime_config`, with
    /// `args` added to `serve` (the cost counts need the host's own flags and counters).
    pub fn start_host(
        runtime_config: &Path,
        env: &HashMap<String, String>,
        dir: &Path,
        args: &[String],
    ) -> Result<Self> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let stats = dir.join(format!("stats-{port}.json"));
        let mut command = Command::new(root().join("target/host/topup-host"));
        command
            .args(["serve", "--stats-file"])
            .arg(&stats)
            .arg("--manifest")
            .arg(root().join("spin.toml"))
            .arg("--runtime-config-file")
            .arg(runtime_config)
            .args(["--listen", &listen])
            .args(args);
        Self::spawn(command, &listen, env, Some(stats))
    }

    /// The native baseline in a process of its own, so it pays the same process and loopback
    /// costs as the app and the ratio isolates WebAssembly.
    pub fn start_native(dir: &Path, env: &HashMap<String, String>) -> Result<Self> {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg(crate::native::SUBCOMMAND)
            .arg(&listen)
            .arg(root().join("spin.toml"))
            .arg(dir.join("default.db"))
            .arg(dir.join("claims.db"));
        Self::spawn(command, &listen, env, None)
    }

    /// Runs `command` (a server that will listen on `listen`) with `env`; `stats` is where it
    /// writes its store-operation counts, if it keeps any.
    pub fn spawn(
        mut command: Command,
        listen: &str,
        env: &HashMap<String, String>,
        stats: Option<PathBuf>,
    ) -> Result<Self> {
        let child = command
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start the app (run scripts/bench.sh, which builds it)")?;
        Ok(Self {
            child,
            http: Http::new(&format!("http://{listen}")),
            stats,
        })
    }

    /// Waits for the first 200 from `/health`; returns how long that took.
    pub async fn ready(&self) -> Result<Duration> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            if let Some((200, _)) =
                load::call(&self.http, "GET", "/health", &[], Bytes::new()).await
            {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        bail!("the app did not answer /health")
    }

    /// Stops with SIGTERM and returns the host's store-operation counts.
    pub fn stop(mut self) -> Option<Value> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let stats = std::fs::read(self.stats.as_ref()?).ok()?;
        serde_json::from_slice(&stats).ok()
    }
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// The host's counters that are writes: set/delete, increment, set_many/delete_many.
pub const WRITE_KINDS: [&str; 3] = ["writes", "increments", "batchWrites"];

/// Sum of write operations over both labels (set, delete, set_many, delete_many, increment).
pub fn writes(stats: &Value) -> u64 {
    stats
        .as_object()
        .map(|labels| {
            labels
                .values()
                .map(|c| {
                    WRITE_KINDS
                        .iter()
                        .map(|k| c[k].as_u64().unwrap_or(0))
                        .sum::<u64>()
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Both labels in SQLite files next to the runtime config (`default.db`, `claims.db`).
const SQLITE_CONFIG: &str = "[key_value_store.default]\ntype = \"spin\"\npath = \"default.db\"\n\
                             [key_value_store.claims]\ntype = \"spin\"\npath = \"claims.db\"\n";

/// Stores and mocks for one backend, in a scratch directory removed on drop.
pub struct Stack {
    _dir: TempDir,
    /// The scratch directory.
    pub dir: PathBuf,
    /// The private Redis, for [`Backend::Redis`].
    pub redis: Option<RedisServer>,
    /// The mock Central PG.
    pub pg: MockPg,
    /// The mock bot (its mode can be changed mid-run).
    pub bot: MockBot,
    /// The app's environment: the Spin variables that point it at the mocks.
    pub env: HashMap<String, String>,
}

/// Removes its directory on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Stack {
    /// A fresh scratch directory, store and mocks for `backend`.
    pub async fn new(backend: Backend) -> Result<Self> {
        let dir = root()
            .join("target/bench-tmp")
            .join(format!("{backend:?}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let redis = match backend {
            Backend::Redis => Some(RedisServer::start(&dir)?),
            Backend::Sqlite => None,
        };
        let pg = MockPg::start("127.0.0.1:0", SECRET).await?;
        let bot = MockBot::start("127.0.0.1:0", SECRET).await?;
        let env = [
            ("SHARED_SECRET", SECRET.to_string()),
            ("CENTRAL_PG_BASE_URL", pg.url()),
            ("BOT_BACKEND_URL", bot.url()),
            ("CREDIT_RETRY_SCHEDULE", "1".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("SPIN_VARIABLE_{k}"), v))
        .collect();
        Ok(Self {
            _dir: TempDir(dir.clone()),
            dir,
            redis,
            pg,
            bot,
            env,
        })
    }

    /// Starts the app over `runtime_config` with this stack's environment.
    pub fn app(&self, runtime_config: &Path) -> Result<AppProcess> {
        AppProcess::start(runtime_config, &self.env, &self.dir)
    }

    /// A runtime config in a fresh subdirectory (fresh SQLite files, or flushed Redis).
    pub fn runtime_config(&self, name: &str) -> Result<PathBuf> {
        self.runtime_config_keeping(name, false)
    }

    /// A runtime config on SQLite files in a fresh subdirectory `name`, whatever this stack's
    /// backend (the side-by-side runs both stores beside one pair of mocks).
    pub fn sqlite_runtime_config(&self, name: &str) -> Result<PathBuf> {
        let sub = self.dir.join(name);
        let _ = std::fs::remove_dir_all(&sub);
        std::fs::create_dir_all(&sub)?;
        let path = sub.join("runtime-config.toml");
        std::fs::write(&path, SQLITE_CONFIG)?;
        Ok(path)
    }

    /// The runtime config of subdirectory `name`; `keep` reuses its stores as they are.
    pub fn runtime_config_keeping(&self, name: &str, keep: bool) -> Result<PathBuf> {
        let sub = self.dir.join(name);
        std::fs::create_dir_all(&sub)?;
        let text = match &self.redis {
            None => SQLITE_CONFIG.to_string(),
            Some(redis) => {
                if !keep {
                    redis.command(0, &["FLUSHALL"])?;
                }
                format!(
                    "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n\
                     [key_value_store.claims]\ntype = \"redis\"\nurl = \"{}\"\n",
                    redis.url(0),
                    redis.url(0)
                )
            }
        };
        let path = sub.join("runtime-config.toml");
        std::fs::write(&path, text)?;
        Ok(path)
    }
}
