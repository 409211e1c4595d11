//! "Store at volume": sweep cost against a large history, store size over time, store round
//! trips per request per route, and paid flows with several hosts over one Redis. Figures
//! only; nothing here fails on speed.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use topup_testkit::mocks::BotMode;

use crate::clone::{Cloner, Raw, Template};
use crate::load::{self, Http};
use crate::stack::{root, AppProcess, Backend, Stack, SECRET};
use crate::targets::mark;

mod measure;
mod routes;
use measure::{all_writes, delta, machine_busy, machine_snapshot, slow_report, slow_reset, Slow};
use routes::{round_trips, scale_out};

const NONCE0: &str = "hn-000000000000";
/// The console's operator token in these runs.
const ADMIN: &str = "bench-operator-token-0123456789";
/// Requests per console measurement.
const PAGES: usize = 20;
const SWEEPS: usize = 20;
/// Target: a sweep with nothing due, every history size.
const NOTHING_DUE_MS: f64 = 20.0;
/// Target: no Redis command slower than this.
const REDIS_COMMAND_US: u64 = 10_000;

struct Plan {
    sizes: Vec<u64>,
    nonces: u64,
    expiring: u64,
    trips: usize,
    scale: Duration,
}

fn with(env: &HashMap<String, String>, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = env.clone();
    for (k, v) in extra {
        env.insert(format!("SPIN_VARIABLE_{k}"), v.to_string());
    }
    env
}

fn raw_of(stack: &Stack, sub: &str) -> Raw {
    match &stack.redis {
        None => Raw::Sqlite(stack.dir.join(sub)),
        Some(redis) => Raw::Redis(redis.url(0)),
    }
}

async fn start(
    stack: &Stack,
    rc: &std::path::Path,
    env: &HashMap<String, String>,
) -> Result<AppProcess> {
    let app = AppProcess::start(rc, env, &stack.dir)?;
    app.ready().await?;
    Ok(app)
}

/// The stats of a host that only started and answered one health check.
async fn baseline(
    stack: &Stack,
    rc: &std::path::Path,
    env: &HashMap<String, String>,
) -> Result<Option<Value>> {
    Ok(start(stack, rc, env).await?.stop())
}

/// Sweeps until one answers `"more": false`: (calls, cleaned, credited, time).
async fn sweep_until_done(http: &Http, max: u64) -> Result<(u64, u64, u64, Duration)> {
    let started = Instant::now();
    let (mut calls, mut cleaned, mut credited) = (0, 0, 0);
    loop {
        let v = load::sweep(http, SECRET).await?;
        calls += 1;
        cleaned += v["cleaned"].as_u64().unwrap_or(0);
        credited += v["credited"].as_u64().unwrap_or(0);
        if v["more"] != true || calls >= max {
            return Ok((calls, cleaned, credited, started.elapsed()));
        }
    }
}

/// `total` paid flows (or as many as fit in `duration`) by `workers` workers, spread round
/// robin over `hosts`: (succeeded, failed, seconds).
async fn flows(hosts: &[Http], total: u64, duration: Duration, workers: usize) -> (u64, u64, f64) {
    let next = Arc::new(AtomicU64::new(0));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let tasks = (0..workers).map(|w| {
        let http = hosts[w % hosts.len()].clone();
        let (next, ok, failed) = (next.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            while started.elapsed() < duration && next.fetch_add(1, Ordering::Relaxed) < total {
                let paid = match load::create(&http, SECRET, &format!("v{w}"), 50_000).await {
                    Some((id, r)) => load::pay(&http, SECRET, &id, &r, 50_000, None).await,
                    None => false,
                };
                let counter = if paid { &ok } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    futures::future::join_all(tasks).await;
    (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

/// What the command line changes in the "Store at volume" plan.
#[derive(Debug, Default, clap::Args)]
pub struct Overrides {
    /// History sizes to measure the sweep against, e.g. 10000,100000.
    #[arg(long = "history-sizes", value_name = "N,N,…", value_delimiter = ',')]
    pub sizes: Vec<u64>,
    /// Used nonces in the history.
    #[arg(long = "history-nonces", value_name = "N")]
    pub nonces: Option<u64>,
    /// Paid deposits whose lifetime ends, for "Store size over time".
    #[arg(long = "history-expiring", value_name = "N")]
    pub expiring: Option<u64>,
    /// Only the sweep-against-history tables.
    #[arg(long = "history-sweep-only")]
    pub sweep_only: bool,
}

/// Runs every measurement and writes the "Store at volume" section of BENCHMARKS.md.
pub async fn run(quick: bool, overrides: &Overrides) -> Result<()> {
    let plan = if quick {
        Plan {
            sizes: vec![10_000],
            nonces: 20_000,
            expiring: 2_000,
            trips: 20,
            scale: Duration::from_secs(3),
        }
    } else {
        Plan {
            sizes: vec![10_000, 100_000, 1_000_000],
            nonces: 2_000_000,
            expiring: 100_000,
            trips: 100,
            scale: Duration::from_secs(10),
        }
    };
    let mut plan = plan;
    if !overrides.sizes.is_empty() {
        plan.sizes = overrides.sizes.clone();
    }
    if let Some(n) = overrides.nonces {
        plan.nonces = n;
    }
    if let Some(n) = overrides.expiring {
        plan.expiring = n;
    }
    // The command line as given, for the section's first line.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut md = String::new();
    writeln!(md, "## Store at volume\n")?;
    writeln!(md, "Produced by `topup-bench {}` (also run at the end of a full bench). \
        Store operations are the host's counters (a host process is started per measurement; a process that only started and answered one health check is subtracted). \
        `get-many` is never used by the app, so reads are keys read. Machine busy = share of both cores in use during the measurement, by anything.\n",
        args.join(" "))?;
    writeln!(
        md,
        "- {}; this section is rewritten only by `--history-only` or `--history`\n",
        crate::report::stamp()
    )?;
    ensure!(!plan.sizes.is_empty(), "no history sizes");
    for backend in Backend::ALL {
        sweep_history(backend, &plan, &mut md).await?;
        write_section(&md)?;
    }
    if overrides.sweep_only {
        return Ok(());
    }
    writeln!(md, "\n### Store size over time\n")?;
    writeln!(md, "{} paid deposits with `deposit_ttl_days = 0.0002` (17 s) and `credit_retry_schedule = 1`, then the TTL passes and the sweep runs until `\"more\": false`.\n", plan.expiring)?;
    writeln!(md, "| store | keys before | bytes before | keys after | bytes after | sweep calls | cleaned | sweep time s | left after (by key prefix) |")?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|")?;
    for backend in Backend::ALL {
        store_over_time(backend, &plan, &mut md).await?;
        write_section(&md)?;
    }
    writeln!(md, "\n### Store round trips per request\n")?;
    writeln!(md, "Per request, `default` / `claims`: opens, reads (get/exists), writes (set/delete), increments, set_many. {} requests per route, each route in a host process of its own.\n", plan.trips)?;
    for backend in Backend::ALL {
        round_trips(backend, &plan, &mut md).await?;
        write_section(&md)?;
    }
    scale_out(&plan, &mut md).await?;
    write_section(&md)
}

/// Replaces (or appends) the section in BENCHMARKS.md.
fn write_section(section: &str) -> Result<()> {
    let path = root().join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let kept = match old.find("## Store at volume") {
        Some(at) => old[..at].to_string(),
        None if old.is_empty() => String::new(),
        None => format!("{}\n\n", old.trim_end()),
    };
    std::fs::write(&path, format!("{kept}{section}"))?;
    Ok(())
}

struct NothingDue {
    first_ms: f64,
    times: Vec<f64>,
    reads: (f64, f64),
    writes: f64,
    busy: f64,
    slow: Option<Slow>,
}

async fn nothing_due(
    stack: &Stack,
    rc: &std::path::Path,
    env: &HashMap<String, String>,
) -> Result<NothingDue> {
    let app = start(stack, rc, env).await?;
    let (_, _, _, first) = sweep_until_done(&app.http, 1_000).await?;
    app.stop();
    let base = baseline(stack, rc, env).await?;
    let redis = stack.redis.as_ref().map(|r| r.url(0));
    if let Some(url) = &redis {
        slow_reset(url)?;
    }
    let app = start(stack, rc, env).await?;
    let cpu = machine_snapshot();
    let mut times = Vec::new();
    for _ in 0..SWEEPS {
        let t = Instant::now();
        load::sweep(&app.http, SECRET).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let busy = machine_busy(&cpu);
    let stats = app.stop();
    times.sort_by(f64::total_cmp);
    let n = SWEEPS as u64;
    Ok(NothingDue {
        first_ms: first.as_secs_f64() * 1000.0,
        times,
        reads: (
            delta(&stats, &base, "default", "reads", n),
            delta(&stats, &base, "claims", "reads", n),
        ),
        writes: all_writes(&stats, &base, n),
        busy,
        slow: redis.as_deref().map(slow_report).transpose()?,
    })
}

/// The console's pages against the same histories: a first page, and a filter no deposit
/// matches (it reads until its budget runs out, then hands out a cursor).
fn console_table(rows: &[(u64, Pages, Pages)], label: &str, md: &mut String) -> Result<()> {
    writeln!(md, "\n#### Console pages against history: {label}\n")?;
    writeln!(md, "`GET /admin/deposits?limit=50` (the newest 50) and `?limit=50&userId=nobody` (matches none), {PAGES} times each, on the same stores. Reads are keys read per request (`default` + `claims`).\n")?;
    writeln!(md, "| deposits | page: rows | median ms | p99 ms | reads | matching none: rows, next | median ms | p99 ms | reads |")?;
    writeln!(md, "|---:|---:|---:|---:|---:|---|---:|---:|---:|")?;
    for (size, first, none) in rows {
        writeln!(
            md,
            "| {size} | {} | {:.2} | {:.2} | {:.0} | {}, {} | {:.2} | {:.2} | {:.0} |",
            first.rows,
            first.pick(0.5),
            first.pick(0.99),
            first.reads,
            none.rows,
            if none.next { "cursor" } else { "none" },
            none.pick(0.5),
            none.pick(0.99),
            none.reads
        )?;
    }
    let medians: Vec<f64> = rows.iter().map(|(_, f, _)| f.pick(0.5)).collect();
    let reads: Vec<f64> = rows.iter().map(|(_, f, _)| f.reads).collect();
    let ratio = |v: &[f64]| {
        v.iter().copied().fold(0.0, f64::max)
            / v.iter().copied().fold(f64::MAX, f64::min).max(0.001)
    };
    writeln!(md, "\n- {}: a page flat across sizes (largest median / smallest = {:.2}, reads largest / smallest = {:.2}; flat taken as <= 1.5)",
        mark(ratio(&medians) <= 1.5 && ratio(&reads) <= 1.5), ratio(&medians), ratio(&reads))?;
    Ok(())
}

/// One console request, measured `PAGES` times: times (ms, sorted), rows of the last answer,
/// whether it had a `next` cursor, store reads per request (default + claims).
struct Pages {
    times: Vec<f64>,
    rows: usize,
    next: bool,
    reads: f64,
}

impl Pages {
    fn pick(&self, q: f64) -> f64 {
        self.times[((self.times.len() as f64 * q) as usize).min(self.times.len() - 1)]
    }
}

async fn console_pages(
    stack: &Stack,
    rc: &std::path::Path,
    env: &HashMap<String, String>,
    path: &str,
) -> Result<Pages> {
    let env = with(env, &[("ADMIN_TOKEN", ADMIN)]);
    let base = baseline(stack, rc, &env).await?;
    let app = start(stack, rc, &env).await?;
    let bearer = format!("Bearer {ADMIN}");
    let (mut times, mut last) = (Vec::new(), Value::Null);
    for _ in 0..PAGES {
        let t = Instant::now();
        let reply = load::call(
            &app.http,
            "GET",
            path,
            &[("authorization", &bearer)],
            bytes::Bytes::new(),
        )
        .await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let Some((200, body)) = reply else {
            app.stop();
            anyhow::bail!("{path} failed: {reply:?}");
        };
        last = serde_json::from_slice(&body)?;
    }
    let stats = app.stop();
    times.sort_by(f64::total_cmp);
    let n = PAGES as u64;
    Ok(Pages {
        times,
        rows: last["deposits"].as_array().map_or(0, Vec::len),
        next: last["next"].is_string(),
        reads: delta(&stats, &base, "default", "reads", n)
            + delta(&stats, &base, "claims", "reads", n),
    })
}

async fn sweep_history(backend: Backend, plan: &Plan, md: &mut String) -> Result<()> {
    let label = backend.label();
    let stack = Stack::new(backend).await?;
    let env = with(&stack.env, &[("NONCE_TTL_SECONDS", "2592000")]);
    let rc = stack.runtime_config("history")?;
    let app = start(&stack, &rc, &env).await?;
    let (id, reference) = load::create(&app.http, SECRET, "hist-a", 50_000)
        .await
        .context("create")?;
    ensure!(
        load::pay(&app.http, SECRET, &id, &reference, 50_000, None).await,
        "pay"
    );
    let (id2, ref2) = load::create(&app.http, SECRET, "hist-b", 50_000)
        .await
        .context("create")?;
    ensure!(
        load::pay(&app.http, SECRET, &id2, &ref2, 50_000, Some(NONCE0)).await,
        "pay with nonce"
    );
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    sweep_until_done(&app.http, 100).await?;
    app.stop();
    let raw = raw_of(&stack, "history");
    let dump = raw.dump()?;
    let deposit = Template::new(&dump, &[&reference, &id]);
    let nonce = Template::new(&dump, &[NONCE0]);
    writeln!(md, "\n### Sweep cost against history: {label}\n")?;
    writeln!(md, "History cloned from one real paid+credited flow ({}) and one `X-Nonce` (nonce_ttl_seconds = 30 days: {}); expiry slots spread 4 deposits / 8 nonces per 10 s bucket over the future. {} sweeps with nothing due after one sweep that makes the cursor current.\n",
        deposit.describe(), nonce.describe(), SWEEPS)?;
    writeln!(md, "| deposits | nonces | keys | bytes | clone s | first sweep ms | median ms | p99 ms | max ms | reads/sweep default+claims | writes/sweep | slowest Redis command | LATENCY LATEST | machine busy |")?;
    writeln!(
        md,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|---:|"
    )?;
    let mut cloner = Cloner::new(raw, &dump);
    let t = Instant::now();
    cloner.clone_range(&nonce, 1, plan.nonces + 1, 8, |i| {
        vec![format!("hn-{i:012}")]
    })?;
    let (mut done, mut medians, mut slowest) = (0, Vec::new(), 0);
    let mut console = Vec::new();
    for &size in &plan.sizes {
        cloner.clone_range(&deposit, done, size, 4, |i| {
            vec![
                format!("HREF{i:012}"),
                format!("DEP{:016X}", 0xC0DE_0000_0000_0000u64 + i),
            ]
        })?;
        done = size;
        let cloned = t.elapsed().as_secs_f64();
        let (keys, bytes) = cloner.raw().size()?;
        let m = nothing_due(&stack, &rc, &env).await?;
        let pick = |q: f64| m.times[((m.times.len() as f64 * q) as usize).min(m.times.len() - 1)];
        let (slow_cmd, latency) = match &m.slow {
            Some(s) => {
                slowest = slowest.max(s.max_us);
                (
                    format!("{} µs `{}`", s.max_us, s.command),
                    s.latency.clone(),
                )
            }
            None => ("-".into(), "-".into()),
        };
        println!("{label} history {size}: nothing due median {:.2} ms p99 {:.2} ms reads {:.1}+{:.1} slow {slow_cmd}", pick(0.5), pick(0.99), m.reads.0, m.reads.1);
        writeln!(md, "| {size} | {} | {keys} | {bytes} | {cloned:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} + {:.1} | {:.1} | {slow_cmd} | {latency} | {:.0}% |",
            plan.nonces, m.first_ms, pick(0.5), pick(0.99), pick(1.0), m.reads.0, m.reads.1, m.writes, m.busy)?;
        medians.push((pick(0.5), pick(0.99)));
        let first = console_pages(&stack, &rc, &env, "/admin/deposits?limit=50").await?;
        let none =
            console_pages(&stack, &rc, &env, "/admin/deposits?limit=50&userId=nobody").await?;
        println!("{label} history {size}: console page median {:.2} ms ({} rows, {:.0} reads), filter matching none median {:.2} ms ({:.0} reads)", first.pick(0.5), first.rows, first.reads, none.pick(0.5), none.reads);
        console.push((size, first, none));
    }
    let worst = medians.iter().map(|m| m.1).fold(0.0, f64::max);
    let spread = medians.iter().map(|m| m.0).fold(0.0, f64::max)
        / medians
            .iter()
            .map(|m| m.0)
            .fold(f64::MAX, f64::min)
            .max(0.001);
    writeln!(
        md,
        "\n- {}: nothing due <= {NOTHING_DUE_MS} ms at every size (worst p99 {worst:.2} ms)",
        mark(worst <= NOTHING_DUE_MS)
    )?;
    writeln!(md, "- {}: flat across sizes (largest median / smallest median = {spread:.2}, flat taken as <= 1.5)", mark(spread <= 1.5))?;
    console_table(&console, label, md)?;
    slowest = slowest.max(owed(&stack, &rc, &env, label, md).await?);
    if backend == Backend::Redis {
        writeln!(
            md,
            "- {}: no Redis command over {} ms (slowest seen {slowest} µs)",
            mark(slowest <= REDIS_COMMAND_US),
            REDIS_COMMAND_US / 1000
        )?;
    }
    Ok(())
}

/// 500 deposits paid while the bot answers 500, then the bot is healthy: the sweeps that
/// credit them all, on the history built so far.
async fn owed(
    stack: &Stack,
    rc: &std::path::Path,
    env: &HashMap<String, String>,
    label: &str,
    md: &mut String,
) -> Result<u64> {
    stack.bot.set_mode(BotMode::Status(500));
    let app = start(stack, rc, env).await?;
    let mut owed = Vec::new();
    for i in 0..500 {
        owed.push(
            load::create(&app.http, SECRET, &format!("owed{i}"), 10_000)
                .await
                .context("create")?,
        );
    }
    for chunk in owed.chunks(16) {
        futures::future::join_all(
            chunk
                .iter()
                .map(|(id, r)| load::pay(&app.http, SECRET, id, r, 10_000, None)),
        )
        .await;
    }
    stack.bot.set_mode(BotMode::Accept);
    app.stop();
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let base = baseline(stack, rc, env).await?;
    let redis = stack.redis.as_ref().map(|r| r.url(0));
    if let Some(url) = &redis {
        slow_reset(url)?;
    }
    let app = start(stack, rc, env).await?;
    let (mut calls, mut credited, mut busy_ms) = (0u64, 0u64, Vec::new());
    let wall = Instant::now();
    while credited < owed.len() as u64 && calls < 100 {
        let t = Instant::now();
        let v = load::sweep(&app.http, SECRET).await?;
        busy_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        calls += 1;
        credited += v["credited"].as_u64().unwrap_or(0);
        if v["credited"] == 0 && v["more"] != true {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let wall = wall.elapsed().as_secs_f64();
    let stats = app.stop();
    let once = owed.iter().all(|(id, _)| stack.bot.credits(id) == 1);
    let slow = redis.as_deref().map(slow_report).transpose()?;
    let reads =
        delta(&stats, &base, "default", "reads", 1) + delta(&stats, &base, "claims", "reads", 1);
    let times: Vec<String> = busy_ms.iter().map(|t| format!("{t:.0}")).collect();
    println!(
        "{label}: 500 due: {credited} credited in {calls} sweeps ({} ms)",
        times.join("+")
    );
    let writes = all_writes(&stats, &base, 1);
    let max_us = slow.as_ref().map_or(0, |s| s.max_us);
    writeln!(md, "- 500 due (made through real flows with the bot answering 500): {credited} credited in {calls} sweeps of {} ms ({wall:.2} s wall), {reads:.0} keys read ({:.1} per credit) and {writes:.0} writes in all, each credited exactly once: {once}{}",
        times.join(" + "), reads / credited.max(1) as f64,
        slow.map(|s| format!("; slowest Redis command {} µs `{}`, LATENCY LATEST {}", s.max_us, s.command, s.latency)).unwrap_or_default())?;
    Ok(max_us)
}

async fn store_over_time(backend: Backend, plan: &Plan, md: &mut String) -> Result<()> {
    let stack = Stack::new(backend).await?;
    let env = with(&stack.env, &[("DEPOSIT_TTL_DAYS", "0.0002")]);
    let rc = stack.runtime_config("ttl")?;
    let raw = raw_of(&stack, "ttl");
    let app = start(&stack, &rc, &env).await?;
    let (ok, failed, secs) = flows(
        std::slice::from_ref(&app.http),
        plan.expiring,
        Duration::from_secs(3_600),
        16,
    )
    .await;
    app.stop();
    let (keys, bytes) = raw.size()?;
    // TTL (17.3 s) + one 10 s expiry bucket + the 2 s clock margin.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let app = start(&stack, &rc, &env).await?;
    let (calls, cleaned, _, time) = sweep_until_done(&app.http, 100_000).await?;
    app.stop();
    let (keys_after, bytes_after) = raw.size()?;
    let mut prefixes = BTreeMap::new();
    for (_, key, _) in raw.dump()? {
        let prefix = key.split(':').next().unwrap_or("").to_string();
        *prefixes.entry(prefix).or_insert(0u64) += 1;
    }
    let left: Vec<String> = prefixes.iter().map(|(p, n)| format!("{p}: {n}")).collect();
    println!("{:?} store over time: {ok} paid ({failed} failed, {secs:.1} s); {keys} keys {bytes} B -> {keys_after} keys {bytes_after} B in {calls} sweeps", backend);
    writeln!(md, "| {} | {keys} | {bytes} | {keys_after} | {bytes_after} | {calls} | {cleaned} | {:.1} | {} |",
        backend.label(), time.as_secs_f64(), left.join(", "))?;
    if failed > 0 {
        writeln!(
            md,
            "\n({failed} of the {} flows failed on {})\n",
            plan.expiring,
            backend.label()
        )?;
    }
    Ok(())
}
