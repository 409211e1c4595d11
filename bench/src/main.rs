//! `topup-bench`: throughput, latency, size, start time, memory, store writes and store size of
//! every route, on SQLite and Redis, plus a native baseline. Prints figures and writes
//! BENCHMARKS.md; it never fails on speed.

mod clone;
mod history;
mod load;
mod native;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use load::{Operation, Outcome};
use serde_json::Value;
use topup_testkit::mocks::{BotMode, MockBot, MockPg};
use topup_testkit::{free_port, Http, RedisServer};

const SECRET: &str = "bench-shared-secret-0123456789abcdef";
const CONCURRENCY: [usize; 3] = [1, 16, 64];
const COMPONENTS: [&str; 6] = [
    "health",
    "deposit_create",
    "payment_callback",
    "deposit_status",
    "sweep",
    "manual_retry",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Redis,
}

struct Options {
    duration: Duration,
    out: PathBuf,
    size_deposits: usize,
    quick: bool,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(native::SUBCOMMAND) {
        return native::serve_process(&args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let options = Options {
        duration: Duration::from_secs(if quick { 1 } else { 5 }),
        out: root().join("BENCHMARKS.md"),
        size_deposits: if quick { 10_000 } else { 100_000 },
        quick,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.iter().any(|a| a == "--history-only") {
        // Only the "Store at volume" section (replaced in BENCHMARKS.md).
        return runtime.block_on(history::run(quick));
    }
    runtime.block_on(bench(&options))
}

/// Redis memory in use, from `INFO memory`.
fn used_memory(redis: &RedisServer) -> Result<u64> {
    parse_used_memory(&redis.command(0, &["INFO", "memory"])?)
}

fn parse_used_memory(info: &str) -> Result<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no used_memory in INFO")
}

/// A server under load in its own process: the app (the Spin CLI when installed, else the test
/// host) or the native baseline.
struct AppProcess {
    child: Child,
    http: Http,
    /// Where the host writes its store-operation counts (the native server keeps none).
    stats: Option<PathBuf>,
}

fn runner() -> &'static str {
    let spin = Command::new("spin").arg("--version").output();
    if spin.is_ok_and(|o| o.status.success()) {
        "spin up"
    } else {
        "topup-host"
    }
}

impl AppProcess {
    fn start(runtime_config: &Path, env: &HashMap<String, String>, dir: &Path) -> Result<Self> {
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

    /// The native baseline in a process of its own, so it pays the same process and loopback
    /// costs as the app and the ratio isolates WebAssembly.
    fn start_native(dir: &Path, env: &HashMap<String, String>) -> Result<Self> {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg(native::SUBCOMMAND)
            .arg(&listen)
            .arg(root().join("spin.toml"))
            .arg(dir.join("default.db"))
            .arg(dir.join("claims.db"));
        Self::spawn(command, &listen, env, None)
    }

    fn spawn(
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

    async fn ready(&self) -> Result<Duration> {
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
    fn stop(mut self) -> Option<Value> {
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
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Sum of write operations over both labels (set, delete, set_many, delete_many, increment).
fn writes(stats: &Value) -> u64 {
    stats
        .as_object()
        .map(|labels| {
            labels
                .values()
                .map(|c| {
                    ["writes", "increments", "batchWrites"]
                        .iter()
                        .map(|k| c[k].as_u64().unwrap_or(0))
                        .sum::<u64>()
                })
                .sum()
        })
        .unwrap_or(0)
}

struct Stack {
    _dir: TempDir,
    dir: PathBuf,
    redis: Option<RedisServer>,
    _pg: MockPg,
    bot: MockBot,
    env: HashMap<String, String>,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Stack {
    async fn new(backend: Backend) -> Result<Self> {
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
            _pg: pg,
            bot,
            env,
        })
    }

    /// A runtime config in a fresh subdirectory (fresh SQLite files, or flushed Redis).
    fn runtime_config(&self, name: &str) -> Result<PathBuf> {
        self.runtime_config_keeping(name, false)
    }

    /// The runtime config of subdirectory `name`; `keep` reuses its stores as they are.
    fn runtime_config_keeping(&self, name: &str, keep: bool) -> Result<PathBuf> {
        let sub = self.dir.join(name);
        std::fs::create_dir_all(&sub)?;
        let text = match &self.redis {
            None => "[key_value_store.default]\ntype = \"spin\"\npath = \"default.db\"\n\
                     [key_value_store.claims]\ntype = \"spin\"\npath = \"claims.db\"\n"
                .to_string(),
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

struct Row {
    backend: String,
    scenario: &'static str,
    concurrency: usize,
    outcome: Outcome,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    facts: Vec<(String, String)>,
}

impl Report {
    fn fact(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        println!("{name}: {value}");
        self.facts.push((name, value));
    }
}

fn print_row(row: &Row) {
    let o = &row.outcome;
    println!(
        "{:<8} {:<12} c={:<3} ops={:<7} err={:<4} {:>9.1}/s p50={:>7.2}ms p99={:>7.2}ms max={:>8.2}ms",
        row.backend, row.scenario, row.concurrency, o.operations, o.errors, o.per_second, o.p50_ms, o.p99_ms, o.max_ms
    );
}

async fn bench(options: &Options) -> Result<()> {
    let mut report = Report::default();
    report.fact("runner", runner());
    for name in COMPONENTS {
        let path = root().join(format!("target/wasm32-wasip2/release/{name}.wasm"));
        let bytes = std::fs::metadata(&path)
            .with_context(|| format!("{} missing: run scripts/bench.sh", path.display()))?
            .len();
        report.fact(
            format!("size of {name}.wasm"),
            format!("{bytes} bytes ({:.1} KiB)", bytes as f64 / 1024.0),
        );
    }

    for backend in [Backend::Sqlite, Backend::Redis] {
        bench_backend(backend, options, &mut report).await?;
    }
    bench_native(options, &mut report).await?;
    store_size(options, &mut report).await?;
    write_report(options, &report)?;
    history::run(options.quick).await
}

async fn bench_backend(backend: Backend, options: &Options, report: &mut Report) -> Result<()> {
    let label = format!("{backend:?}").to_lowercase();
    let stack = Stack::new(backend).await?;

    // Start to first 200: once without the compiled-component cache, once with it.
    if backend == Backend::Sqlite && runner() == "topup-host" {
        let _ = std::fs::remove_dir_all(root().join(".spin/host-cache"));
        let cold = AppProcess::start(&stack.runtime_config("cold")?, &stack.env, &stack.dir)?;
        let time = cold.ready().await?;
        cold.stop();
        report.fact(
            "start to first 200, no compiled cache (compiles 6 components)",
            format!("{} ms", time.as_millis()),
        );
    }
    let mut warm = Vec::new();
    for i in 0..3 {
        let app = AppProcess::start(
            &stack.runtime_config(&format!("warm{i}"))?,
            &stack.env,
            &stack.dir,
        )?;
        warm.push(app.ready().await?.as_millis());
        app.stop();
    }
    warm.sort_unstable();
    report.fact(
        format!("{label}: start to first 200, warm (median of 3)"),
        format!("{} ms", warm[1]),
    );

    // Writes per paid flow, and proof that reads do not write.
    let mut paid_ids = Vec::new();
    for nonce in [false, true] {
        let app = AppProcess::start(
            &stack.runtime_config(&format!("writes{nonce}"))?,
            &stack.env,
            &stack.dir,
        )?;
        app.ready().await?;
        let mut flows = 0u64;
        for i in 0..100 {
            if let Some((id, reference)) =
                load::create(&app.http, SECRET, &format!("w{i}"), 50_000).await
            {
                if nonce {
                    paid_ids.push(id.clone());
                }
                let nonce_value = format!("nonce-{i}");
                if load::pay(
                    &app.http,
                    SECRET,
                    &id,
                    &reference,
                    50_000,
                    nonce.then_some(nonce_value.as_str()),
                )
                .await
                {
                    flows += 1;
                }
            }
        }
        if let Some(stats) = app.stop() {
            let per_flow = writes(&stats) as f64 / flows.max(1) as f64;
            report.fact(
                format!(
                    "{label}: store writes per paid flow{}",
                    if nonce { " with X-Nonce" } else { "" }
                ),
                format!("{per_flow:.2} ({flows} flows; per label: {stats})"),
            );
        }
    }

    let reader = AppProcess::start(
        &stack.runtime_config_keeping("writestrue", true)?,
        &stack.env,
        &stack.dir,
    )?;
    reader.ready().await?;
    let paid_ids = Arc::new(paid_ids);
    load::run(
        &reader.http,
        SECRET,
        Operation::Status(paid_ids.clone()),
        16,
        Duration::from_secs(1),
    )
    .await;
    load::run(
        &reader.http,
        SECRET,
        Operation::Health,
        16,
        Duration::from_secs(1),
    )
    .await;
    if let Some(stats) = reader.stop() {
        report.fact(
            format!(
                "{label}: store writes during 1 s of status reads of paid deposits + 1 s of health"
            ),
            writes(&stats).to_string(),
        );
    }

    let app = AppProcess::start(&stack.runtime_config("load")?, &stack.env, &stack.dir)?;
    app.ready().await?;
    let mut ids = Vec::new();
    for i in 0..1000 {
        if let Some((id, _)) = load::create(&app.http, SECRET, &format!("seed{i}"), 50_000).await {
            ids.push(id);
        }
    }
    let ids = Arc::new(ids);
    let mut peak_rss = rss_kib(app.child.id());
    for (scenario, operation) in [
        ("health", Operation::Health),
        ("status", Operation::Status(ids.clone())),
        ("create", Operation::Create),
        ("paid flow", Operation::PaidFlow),
    ] {
        for concurrency in CONCURRENCY {
            let peak = Arc::new(AtomicU64::new(0));
            let sampler = {
                let (pid, peak) = (app.child.id(), peak.clone());
                tokio::spawn(async move {
                    loop {
                        peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                })
            };
            let outcome = load::run(
                &app.http,
                SECRET,
                operation.clone(),
                concurrency,
                options.duration,
            )
            .await;
            sampler.abort();
            peak_rss = peak_rss.max(peak.load(Ordering::Relaxed));
            let row = Row {
                backend: label.clone(),
                scenario,
                concurrency,
                outcome,
            };
            print_row(&row);
            report.rows.push(row);
        }
    }
    report.fact(
        format!("{label}: peak resident memory of the app process under load"),
        format!("{} MiB", peak_rss / 1024),
    );

    // Sweep over many due retries: the bot is down while 500 deposits are paid, then back.
    stack.bot.set_mode(BotMode::Status(503));
    let mut owed = Vec::new();
    for i in 0..500 {
        if let Some((id, reference)) =
            load::create(&app.http, SECRET, &format!("sweep{i}"), 10_000).await
        {
            owed.push((id, reference));
        }
    }
    let pays = owed
        .iter()
        .map(|(id, reference)| load::pay(&app.http, SECRET, id, reference, 10_000, None));
    futures::future::join_all(pays).await;
    stack.bot.set_mode(BotMode::Accept);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let started = Instant::now();
    let (mut sweeps, mut credited) = (0, 0);
    loop {
        let reply = load::call(
            &app.http,
            "POST",
            "/internal/credit-retry",
            &[("authorization", &format!("Bearer {SECRET}"))],
            Bytes::new(),
        )
        .await;
        let Some((200, body)) = reply else {
            bail!("sweep failed")
        };
        let body: Value = serde_json::from_slice(&body)?;
        sweeps += 1;
        credited += body["credited"].as_u64().unwrap_or(0);
        if body["remaining"] == 0 || sweeps > 100 {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    report.fact(
        format!("{label}: sweep of 500 due credits"),
        format!(
            "{credited} credited in {sweeps} sweeps, {elapsed:.2} s ({:.0} credits/s)",
            credited as f64 / elapsed
        ),
    );
    let once = owed.iter().all(|(id, _)| stack.bot.credits(id) == 1);
    report.fact(
        format!("{label}: each swept deposit credited exactly once"),
        once.to_string(),
    );
    app.stop();
    Ok(())
}

async fn bench_native(options: &Options, report: &mut Report) -> Result<()> {
    let stack = Stack::new(Backend::Sqlite).await?;
    let dir = stack.dir.join("native");
    std::fs::create_dir_all(&dir)?;
    sqlite_write_rate(&dir, options, report).await?;
    let server = AppProcess::start_native(&dir, &stack.env)?;
    server.ready().await?;
    let http = &server.http;
    let mut ids = Vec::new();
    for i in 0..1000 {
        if let Some((id, _)) = load::create(http, SECRET, &format!("seed{i}"), 50_000).await {
            ids.push(id);
        }
    }
    let ids = Arc::new(ids);
    for (scenario, operation) in [
        ("health", Operation::Health),
        ("status", Operation::Status(ids)),
        ("create", Operation::Create),
        ("paid flow", Operation::PaidFlow),
    ] {
        let outcome = load::run(http, SECRET, operation, 16, options.duration).await;
        let row = Row {
            backend: "native".into(),
            scenario,
            concurrency: 16,
            outcome,
        };
        print_row(&row);
        let wasm = report
            .rows
            .iter()
            .find(|r| r.backend == "sqlite" && r.scenario == scenario && r.concurrency == 16)
            .map(|r| r.outcome.per_second);
        if let Some(wasm) = wasm {
            report.notes.push(format!(
                "{scenario}: native {:.0}/s vs wasm {:.0}/s on SQLite at 16 connections: wasm overhead ×{:.2}",
                row.outcome.per_second,
                wasm,
                row.outcome.per_second / wasm.max(0.001)
            ));
        }
        report.rows.push(row);
    }
    server.stop();
    Ok(())
}

/// One writer's rate of single-key writes to the host's SQLite store (each its own synced
/// transaction, as in Spin): the disk's ceiling for SQLite paid flows on this machine.
async fn sqlite_write_rate(dir: &Path, options: &Options, report: &mut Report) -> Result<()> {
    let store = topup_host::kv::open_sqlite(&dir.join("write-rate.db"), "default")?;
    let value = vec![b'x'; 700];
    let start = Instant::now();
    let budget = options.duration.min(Duration::from_secs(3));
    let mut writes = 0u64;
    while start.elapsed() < budget {
        store
            .set(&format!("k{writes}"), &value)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        writes += 1;
    }
    report.fact(
        "SQLite store, one writer, single-key writes",
        format!(
            "{:.0}/s (each a synced transaction; 5 per paid flow)",
            writes as f64 / start.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

async fn store_size(options: &Options, report: &mut Report) -> Result<()> {
    use topup_core::bot::DeliveryOutcome;
    use topup_core::credit::{AttemptKind, Credit, PaymentFacts};
    use topup_core::deposit::{Creation, Invoice};
    use topup_core::envelope::Envelope;
    use topup_core::ids::Reference;
    use topup_core::store::keys;

    let config = topup_core::testing::test_config();
    let delivery = config.delivery().map_err(|e| anyhow::anyhow!("{e}"))?;
    let ttl = config
        .lifetime()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .deposit_ttl_ms;
    let n = options.size_deposits;
    // What a paid and credited deposit leaves in `default`: its record, its invoice, the
    // credit hint and the success (the payment claim and schedule slots are not counted).
    let entries: Vec<(String, Vec<u8>)> = (0..n)
        .flat_map(|i| {
            let mut deposit = topup_core::testing::sample_deposit(
                &format!("DEP{:016X}", i as u64 * 7919),
                50_000,
            );
            deposit.user_id = format!("{}", 100_000_000 + i);
            let reference = Reference::parse(&format!("DS{:010}{}", i, deposit.deposit_id))
                .unwrap_or_else(|| unreachable!("a plain ASCII reference"));
            deposit.creation = Creation::Open {
                token: 0,
                payment_url: format!(
                    "https://app.duitku.com/redirect_checkout?reference={reference}"
                ),
                reference: reference.clone(),
            };
            deposit.created_at = 1_795_000_000_000 + i as u64;
            let invoice = Invoice {
                deposit_id: deposit.deposit_id.clone(),
                epoch: deposit.epoch,
                user_id: deposit.user_id.clone(),
                amount: deposit.amount,
                reference: reference.clone(),
            };
            let facts = PaymentFacts {
                paid_at: deposit.created_at + 60_000,
                payment_method: Some("BC".into()),
                result_code: Some("00".into()),
            };
            let mut credit = Credit::new(&invoice, facts, 0, Duration::from_secs(30));
            credit.record(
                &DeliveryOutcome::Accepted,
                1,
                AttemptKind::Inline,
                deposit.created_at + 60_300,
                delivery,
            );
            let exp = deposit.created_at + ttl;
            let id = deposit.deposit_id.clone();
            vec![
                (keys::deposit(&id), Envelope::new(&deposit, exp).encode()),
                (
                    keys::reference(&reference),
                    Envelope::new(&invoice, exp).encode(),
                ),
                (
                    keys::credit(&id, 0),
                    Envelope::new(&credit, u64::MAX).encode(),
                ),
                (
                    keys::credited(&id),
                    Envelope::new(&credit, u64::MAX).encode(),
                ),
            ]
        })
        .collect();

    for backend in [Backend::Sqlite, Backend::Redis] {
        let stack = Stack::new(backend).await?;
        let store: Arc<dyn topup_host::kv::Backend> = match &stack.redis {
            None => topup_host::kv::open_sqlite(&stack.dir.join("size.db"), "default")?,
            Some(redis) => topup_host::kv::open_redis(&redis.url(0))?,
        };
        let before = stack
            .redis
            .as_ref()
            .map(used_memory)
            .transpose()?
            .unwrap_or(0);
        for chunk in entries.chunks(3000) {
            store
                .set_many(chunk.to_vec())
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        let size = match &stack.redis {
            None => std::fs::metadata(stack.dir.join("size.db"))?.len(),
            Some(redis) => used_memory(redis)? - before,
        };
        report.fact(
            format!("{backend:?} store size after {n} paid and credited deposits"),
            format!(
                "{:.1} MiB ({} bytes per deposit; deposit, invoice, credit and success records){}",
                size as f64 / 1048576.0,
                size / n as u64,
                if backend == Backend::Redis {
                    ", Redis used_memory"
                } else {
                    ", SQLite file"
                }
            ),
        );
    }
    Ok(())
}

fn rate<'a>(
    report: &'a Report,
    backend: &str,
    scenario: &str,
    concurrency: usize,
) -> Option<&'a Outcome> {
    report
        .rows
        .iter()
        .find(|r| r.backend == backend && r.scenario == scenario && r.concurrency == concurrency)
        .map(|r| &r.outcome)
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// Issue 5's targets and the original worker's figures, checked against what was measured.
fn targets(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for backend in ["sqlite", "redis"] {
        if let Some(o) = rate(report, backend, "status", 16) {
            lines.push(format!(
                "{}: {backend} status reads at 16 connections >= 4,400/s with p99 <= 10 ms: {:.0}/s, p99 {:.2} ms",
                mark(o.per_second >= 4400.0 && o.p99_ms <= 10.0), o.per_second, o.p99_ms
            ));
        }
        let (floor, worker) = if backend == "redis" {
            (400.0, 200.0)
        } else {
            (200.0, 200.0)
        };
        if let Some(o) = rate(report, backend, "paid flow", 16) {
            lines.push(format!(
                "{}: {backend} paid flows at 16 connections >= {floor:.0}/s: {:.0}/s ({:.1}x the worker's ~{worker:.0})",
                mark(o.per_second >= floor), o.per_second, o.per_second / worker
            ));
        }
        for (scenario, worker) in [("health", 6200.0), ("status", 2200.0), ("create", 570.0)] {
            if let Some(o) = rate(report, backend, scenario, 16) {
                lines.push(format!(
                    "{}: {backend} {scenario} at least twice the original worker (~{worker:.0}/s): {:.0}/s = {:.1}x",
                    mark(o.per_second >= 2.0 * worker), o.per_second, o.per_second / worker
                ));
            }
        }
    }
    for (name, value) in &report.facts {
        if name.contains("writes per paid flow") && !name.contains("Nonce") {
            let per_flow: f64 = value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::MAX);
            lines.push(format!(
                "{}: at most 5 store writes per paid flow ({name}): {per_flow:.2}",
                mark(per_flow <= 5.0)
            ));
        }
        if name.starts_with("size of") {
            let bytes: f64 = value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::MAX);
            lines.push(format!(
                "{}: {name} <= 300 KiB: {:.1} KiB",
                mark(bytes <= 300.0 * 1024.0),
                bytes / 1024.0
            ));
        }
        if name.contains("start to first 200, warm") {
            let ms: f64 = value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::MAX);
            lines.push(format!(
                "{}: {name} <= 500 ms: {ms:.0} ms",
                mark(ms <= 500.0)
            ));
        }
    }
    for scenario in ["health", "status", "create", "paid flow"] {
        if let (Some(native), Some(wasm)) = (
            rate(report, "native", scenario, 16),
            rate(report, "sqlite", scenario, 16),
        ) {
            let ratio = native.per_second / wasm.per_second.max(0.001);
            lines.push(format!(
                "{}: wasm overhead vs native on SQLite <= 2x ({scenario}): x{ratio:.2}",
                mark(ratio <= 2.0)
            ));
        }
    }
    lines
}

fn write_report(options: &Options, report: &Report) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();

    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(md, "Measured by `scripts/bench.sh` (`cargo run --profile host -p topup-bench`). Figures only; nothing here is asserted by tests.\n")?;
    writeln!(md, "- date: {date}; commit: {commit}")?;
    writeln!(
        md,
        "- machine: {cores} cores ({cpu}), {:.1} GiB memory",
        mem_kib as f64 / 1048576.0
    )?;
    writeln!(md, "- each scenario runs {} s, closed loop over loopback; load generator, app, mocks and stores share the machine", options.duration.as_secs())?;
    writeln!(md, "- native: the same core routes served by hyper without WebAssembly, in a process of its own like the app, over the same SQLite store code")?;
    writeln!(md, "- SQLite keeps SQLite's defaults (rollback journal, synchronous=FULL, one transaction per write), as Spin does\n")?;
    writeln!(
        md,
        "| store | scenario | conns | ops | errors | ops/s | p50 ms | p99 ms | max ms |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for row in &report.rows {
        let o = &row.outcome;
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
            row.backend,
            row.scenario,
            row.concurrency,
            o.operations,
            o.errors,
            o.per_second,
            o.p50_ms,
            o.p99_ms,
            o.max_ms
        )?;
    }
    writeln!(md, "\nA paid flow is `POST /deposit/create` + signed PAID callback, during which the app credits the mock bot; it counts as one operation.\n")?;
    writeln!(md, "## Other figures\n")?;
    for (name, value) in &report.facts {
        writeln!(md, "- {name}: {value}")?;
    }
    writeln!(md, "\n## Against the targets\n")?;
    for line in targets(report) {
        writeln!(md, "- {line}")?;
    }
    if !report.notes.is_empty() {
        writeln!(md, "\n## WebAssembly overhead\n")?;
        for note in &report.notes {
            writeln!(md, "- {note}")?;
        }
    }
    std::fs::write(&options.out, md)?;
    println!("wrote {}", options.out.display());
    Ok(())
}
