//! The app on SQLite, the app on Redis and the original worker (`shared/peer-worker` on
//! workerd, through Miniflare) side by side: same machine, same minute, same load generator,
//! same mock PG and mock bot. Every system runs at once; each scenario is measured on the three
//! back to back, so a change in the machine's other load hits all three alike. Then the
//! 50-callback storm: 50 concurrent duplicate PAID callbacks for one deposit.
//!
//! The worker speaks the app's API (bearer, `X-Signature` = hex HMAC-SHA256 of the raw body,
//! optional `X-Nonce`), so the same requests go to all three. Two differences are bridged, and
//! said so in the report: the worker reads `reference`/`paymentUrl` at the top level of the
//! PG's answer, so the mock PG answers that way to all three (the app reads both forms); and
//! the worker's credit call carries no `Idempotency-Key`, which the mock bot requires, so the
//! worker's credits go through [`LegacyBot`], which gives each request a key of its own: the
//! mock bot still checks bearer and signature, and applies every authentic credit, as a bot
//! of the worker's era (no idempotency key) would.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use topup_testkit::mocks::{MockBot, PgMode};
use topup_testkit::{bearer, free_port, paid_body, sign, Http};

use crate::load::{self, Operation, Outcome};
use crate::report::{load_average, Scenario};
use crate::stack::{root, AppProcess, Backend, Stack, SECRET};

/// Connections of every scenario (as in the spec's measurements).
pub const CONNECTIONS: usize = 16;
/// Callbacks in a storm.
pub const STORM: usize = 50;
/// The section's title in BENCHMARKS.md.
pub const TITLE: &str = "## Side by side with the original worker";

/// What serves a column of the table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum System {
    /// The app on topup-host over this store.
    App(Backend),
    /// The worker as the seed runs it (`ctx.waitUntil`: the PG is answered before the credit).
    Worker,
    /// The worker with `--credit-mode inline` (the credit before the answer, as the app does).
    WorkerInline,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::App(Backend::Sqlite) => "app sqlite",
            System::App(Backend::Redis) => "app redis",
            System::Worker => "worker",
            System::WorkerInline => "worker inline",
        }
    }
}

/// Where the runnable copy of the worker is (scripts/bench.sh copies `shared/peer-worker`
/// there and installs its node_modules: shared/ is never written).
pub fn peer_dir() -> PathBuf {
    std::env::var_os("TOPUP_PEER_WORKER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/peer-worker"))
}

/// The worker in a process of its own: `run.sh --engine miniflare` (one workerd). It stops
/// like the app: run.sh execs node, whose SIGTERM handler disposes of workerd.
fn start_worker(dir: &Path, state: &Path, pg: &str, bot: &str, mode: &str) -> Result<AppProcess> {
    let port = free_port()?;
    let mut command = Command::new(dir.join("run.sh"));
    command
        .args(["--engine", "miniflare", "--port", &port.to_string()])
        .args(["--secret", SECRET, "--pg", pg, "--bot", bot])
        .args(["--credit-mode", mode])
        .arg("--state")
        .arg(state);
    AppProcess::spawn(command, &format!("127.0.0.1:{port}"), &HashMap::new(), None)
        .with_context(|| format!("start {}/run.sh", dir.display()))
}

/// The mock bot as a bot of the worker's era sees it: every authentic credit request is
/// applied. It forwards each request unchanged (bearer, signature, body) and adds an
/// `Idempotency-Key` of its own, so the mock bot, which checks bearer and signature itself,
/// applies each one.
struct LegacyBot {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl LegacyBot {
    async fn start(bot: &MockBot) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let upstream = Http::new(&bot.url());
        let counter = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstream, counter) = (upstream.clone(), counter.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let (upstream, counter) = (upstream.clone(), counter.clone());
                            async move {
                                Ok::<_, Infallible>(forward(&upstream, &counter, request).await)
                            }
                        },
                    );
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { url, task })
    }
}

impl Drop for LegacyBot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    upstream: &Http,
    counter: &AtomicU64,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let reply = |status: u16, body: Bytes| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap_or_default()
    };
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return reply(400, Bytes::from_static(b"{\"ok\":false}"));
    };
    let key = format!("legacy-{}", counter.fetch_add(1, Ordering::Relaxed));
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "host" | "content-length" | "connection" | "idempotency-key"
            )
        })
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    headers.push(("idempotency-key".into(), key));
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    match upstream
        .try_send(parts.method.as_str(), path, &headers, body)
        .await
    {
        Ok(answer) => reply(answer.status, answer.body),
        Err(_) => reply(502, Bytes::from_static(b"{\"ok\":false}")),
    }
}

/// One measured scenario.
pub struct Row {
    system: System,
    scenario: Scenario,
    outcome: Outcome,
}

/// How the storm's callbacks carry `X-Nonce`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Nonces {
    /// None: the PG's plain retry.
    None,
    /// All 50 the same: one callback delivered 50 times.
    Same,
    /// Each its own: 50 retries, each signed afresh.
    Fresh,
}

impl Nonces {
    const ALL: [Nonces; 3] = [Nonces::None, Nonces::Same, Nonces::Fresh];

    fn name(self) -> &'static str {
        match self {
            Nonces::None => "no X-Nonce",
            Nonces::Same => "one X-Nonce for all 50",
            Nonces::Fresh => "a fresh X-Nonce each",
        }
    }
}

/// One storm round's outcome.
struct Storm {
    system: System,
    nonces: Nonces,
    /// Time until every callback was answered.
    elapsed: Duration,
    /// Answers by status (0: no answer).
    statuses: BTreeMap<u16, u32>,
    /// Authentic credit requests the mock bot received for the deposit.
    requests: u32,
    /// Credits the mock bot applied for the deposit.
    credits: u32,
}

/// Runs everything and returns the section, or a note when the worker cannot run here.
pub async fn run(duration: Duration, rounds: usize) -> Result<String> {
    let dir = peer_dir();
    if !dir.join("node_modules/.bin/wrangler").exists() {
        let note = format!(
            "{TITLE}\n\nNot measured: no runnable worker at {} (scripts/bench.sh copies \
             shared/peer-worker there and runs `npm ci`).\n\n",
            dir.display()
        );
        println!("{note}");
        return Ok(note);
    }
    let load_before = load_average();
    // One stack for the mocks (and the Redis); SQLite files in their own subdirectory.
    let stack = Stack::new(Backend::Redis).await?;
    stack.pg.set_mode(PgMode::TopLevel);
    let legacy = LegacyBot::start(&stack.bot).await?;
    let sqlite = stack.app(&stack.sqlite_runtime_config("versus-sqlite")?)?;
    let redis = stack.app(&stack.runtime_config("versus-redis")?)?;
    let state = stack.dir.join("worker-state");
    let pg = stack.pg.url();
    let worker = start_worker(&dir, &state.join("seed"), &pg, &legacy.url, "waitUntil")?;
    let inline = start_worker(&dir, &state.join("inline"), &pg, &legacy.url, "inline")?;
    let started = async {
        sqlite.ready().await?;
        redis.ready().await?;
        worker.ready().await?;
        inline.ready().await.map(|_| ())
    };
    let result = match started.await {
        Ok(()) => {
            let systems = [
                (System::App(Backend::Sqlite), sqlite.http.clone()),
                (System::App(Backend::Redis), redis.http.clone()),
                (System::Worker, worker.http.clone()),
                (System::WorkerInline, inline.http.clone()),
            ];
            measure(&systems, &stack, duration, rounds).await
        }
        Err(error) => Err(error),
    };
    let _ = worker.stop();
    let _ = inline.stop();
    let _ = sqlite.stop();
    let _ = redis.stop();
    let (rows, storms) = result?;
    let load = format!("{load_before} at the start, {} at the end", load_average());
    let section = render(&rows, &storms, duration, rounds, &load)?;
    print!("{section}");
    Ok(section)
}

type Measured = (Vec<Row>, Vec<Storm>);

async fn measure(
    systems: &[(System, Http)],
    stack: &Stack,
    duration: Duration,
    rounds: usize,
) -> Result<Measured> {
    let mut seeds = HashMap::new();
    for (system, http) in systems {
        seeds.insert(system.name(), seed(http).await);
    }
    let mut rows = Vec::new();
    for scenario in Scenario::ALL {
        for (system, http) in systems {
            // The inline worker differs from the seed's only in the paid flow.
            if *system == System::WorkerInline && scenario != Scenario::PaidFlow {
                continue;
            }
            let operation = match scenario {
                Scenario::Health => Operation::Health,
                Scenario::Status => Operation::Status(seeds[system.name()].clone()),
                Scenario::Create => Operation::Create,
                Scenario::PaidFlow => Operation::PaidFlow,
            };
            let outcome = load::run(http, SECRET, operation, CONNECTIONS, duration).await;
            println!(
                "versus {:<13} {scenario:<9}: {:>7.0}/s p50 {:>6.2} ms p99 {:>7.2} ms, {} errors",
                system.name(),
                outcome.per_second,
                outcome.p50_ms,
                outcome.p99_ms,
                outcome.errors
            );
            rows.push(Row {
                system: *system,
                scenario,
                outcome,
            });
        }
    }
    let mut storms = Vec::new();
    for nonces in Nonces::ALL {
        for round in 0..rounds {
            for (system, http) in systems {
                if *system == System::WorkerInline {
                    continue;
                }
                let storm = storm(http, stack, *system, nonces, round).await?;
                println!(
                    "storm {:<10} {:<22}: all answered in {:.1} ms, {:?}, {} credit requests, {} credits",
                    system.name(),
                    nonces.name(),
                    storm.elapsed.as_secs_f64() * 1000.0,
                    storm.statuses,
                    storm.requests,
                    storm.credits
                );
                storms.push(storm);
            }
        }
    }
    Ok((rows, storms))
}

/// Created deposits for the status scenario to read, round robin.
const SEEDED: usize = 300;

/// [`SEEDED`] created deposits for the status scenario to read.
async fn seed(http: &Http) -> Arc<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..SEEDED {
        if let Some((id, _)) = load::create(http, SECRET, &format!("seed{i}"), 50_000).await {
            ids.push(id);
        }
    }
    Arc::new(ids)
}

/// One deposit, then 50 concurrent PAID callbacks for it; waits until the bot has heard
/// everything it is going to hear (the seed worker credits after answering).
async fn storm(
    http: &Http,
    stack: &Stack,
    system: System,
    nonces: Nonces,
    round: usize,
) -> Result<Storm> {
    let user = format!("storm-{}-{round}", nonces.name().len());
    let (id, reference) = load::create(http, SECRET, &user, 50_000)
        .await
        .context("storm: create failed")?;
    let body = Bytes::from(paid_body(&id, &reference, 50_000));
    let signature = sign(SECRET, &body);
    let gate = Arc::new(tokio::sync::Barrier::new(STORM + 1));
    let tasks: Vec<_> = (0..STORM)
        .map(|n| {
            let (http, body, signature, gate) =
                (http.clone(), body.clone(), signature.clone(), gate.clone());
            let nonce = match nonces {
                Nonces::None => None,
                Nonces::Same => Some(format!("storm-{id}")),
                Nonces::Fresh => Some(format!("storm-{id}-{n}")),
            };
            tokio::spawn(async move {
                let bearer = bearer(SECRET);
                let mut headers = vec![
                    ("authorization", bearer.as_str()),
                    ("content-type", "application/json"),
                    ("x-signature", signature.as_str()),
                ];
                if let Some(nonce) = &nonce {
                    headers.push(("x-nonce", nonce.as_str()));
                }
                gate.wait().await;
                load::call(&http, "POST", "/internal/payment-callback", &headers, body)
                    .await
                    .map_or(0, |(status, _)| status)
            })
        })
        .collect();
    gate.wait().await;
    let started = Instant::now();
    let mut statuses = BTreeMap::new();
    for status in futures::future::join_all(tasks).await {
        *statuses.entry(status.unwrap_or(0)).or_insert(0) += 1;
    }
    let elapsed = started.elapsed();
    // Settled: no new credit request for 1 s (at most 15 s).
    let (mut seen, mut quiet) = (stack.bot.deliveries(&id).len(), Instant::now());
    let settle = Instant::now();
    while quiet.elapsed() < Duration::from_secs(1) && settle.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = stack.bot.deliveries(&id).len();
        if now != seen {
            (seen, quiet) = (now, Instant::now());
        }
    }
    let requests = stack
        .bot
        .deliveries(&id)
        .iter()
        .filter(|r| r.authentic)
        .count() as u32;
    Ok(Storm {
        system,
        nonces,
        elapsed,
        statuses,
        requests,
        credits: stack.bot.credits(&id),
    })
}

fn render(
    rows: &[Row],
    storms: &[Storm],
    duration: Duration,
    rounds: usize,
    load: &str,
) -> Result<String> {
    let find = |system: System, scenario: Scenario| {
        rows.iter()
            .find(|r| r.system == system && r.scenario == scenario)
            .map(|r| &r.outcome)
    };
    let mut md = String::new();
    writeln!(md, "{TITLE}\n")?;
    writeln!(
        md,
        "Produced by `topup-bench --versus-only` (also part of the default run). The app on \
         topup-host (the real WASIp2 components of spin.toml) on SQLite and on Redis, and the \
         original worker (`shared/peer-worker`, `run.sh --engine miniflare`: one workerd, its KV \
         simulated by Miniflare on local disk), all running at once beside one mock PG and one \
         mock bot; each scenario runs {} s at {CONNECTIONS} connections on the three back to \
         back, with the same closed-loop load generator (status reads {SEEDED} deposits round \
         robin). 1-minute load average {load} \
         (2 cores, shared with other jobs).\n",
        duration.as_secs()
    )?;
    writeln!(
        md,
        "The worker as the seed runs it answers the PG before it credits the bot \
         (`ctx.waitUntil`); its paid flow is also measured with `--credit-mode inline` (the \
         credit before the answer, as the app does). The mock PG answers `reference` and \
         `paymentUrl` at the top level (the worker reads only that form; the app reads both). \
         The worker sends no `Idempotency-Key`, which the mock bot requires, so its credits pass \
         a relay that adds a key of its own to each request: the mock bot still checks bearer \
         and signature, and applies every authentic credit, as a bot of the worker's era would.\n"
    )?;
    writeln!(
        md,
        "| scenario | app sqlite ops/s | app redis ops/s | worker ops/s | sqlite/worker | redis/worker | p50 ms sqlite / redis / worker | p99 ms sqlite / redis / worker | errors |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---|---|---:|")?;
    let workers: [(System, &str); 2] = [
        (System::Worker, ""),
        (System::WorkerInline, " (worker inline)"),
    ];
    for scenario in Scenario::ALL {
        for (worker_system, suffix) in workers {
            let (Some(s), Some(r), Some(w)) = (
                find(System::App(Backend::Sqlite), scenario),
                find(System::App(Backend::Redis), scenario),
                find(worker_system, scenario),
            ) else {
                continue;
            };
            let ratio = |o: &Outcome| o.per_second / w.per_second.max(f64::MIN_POSITIVE);
            writeln!(
                md,
                "| {scenario}{suffix} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} / {:.2} | {} |",
                s.per_second,
                r.per_second,
                w.per_second,
                ratio(s),
                ratio(r),
                s.p50_ms,
                r.p50_ms,
                w.p50_ms,
                s.p99_ms,
                r.p99_ms,
                w.p99_ms,
                s.errors + r.errors + w.errors
            )?;
        }
    }
    writeln!(
        md,
        "\nRatios are ops/s of the app over ops/s of the worker (above 1: the app is faster). \
         A paid flow is create + signed PAID callback + the credit to the mock bot, one \
         operation.\n"
    )?;
    writeln!(md, "### The 50-callback storm\n")?;
    writeln!(
        md,
        "{STORM} concurrent duplicates of one signed PAID callback for one fresh deposit, \
         released together; {rounds} round(s) per system and kind, each on a deposit of its own. \
         \"all answered\" = from the release to the last answer (median of the rounds; the worker \
         as the seed runs it, credits after answering). Credit requests and credits are counted \
         at the mock bot once it has been quiet for 1 s. The app must credit exactly once; the \
         worker has no such guarantee (its nonce check and its \"already credited\" check are a \
         read then a write on KV).\n"
    )?;
    writeln!(
        md,
        "| callbacks carry | system | all answered ms | answers (status × count) | credit requests to the bot | credits applied | exactly once |"
    )?;
    writeln!(md, "|---|---|---:|---|---|---|---|")?;
    for nonces in Nonces::ALL {
        for system in [
            System::App(Backend::Sqlite),
            System::App(Backend::Redis),
            System::Worker,
        ] {
            let runs: Vec<&Storm> = storms
                .iter()
                .filter(|s| s.system == system && s.nonces == nonces)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let mut times: Vec<f64> = runs
                .iter()
                .map(|s| s.elapsed.as_secs_f64() * 1000.0)
                .collect();
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let mut statuses: BTreeMap<u16, u32> = BTreeMap::new();
            for run in &runs {
                for (status, n) in &run.statuses {
                    *statuses.entry(*status).or_insert(0) += n;
                }
            }
            let statuses = statuses
                .iter()
                .map(|(status, n)| {
                    let status = if *status == 0 {
                        "none".to_string()
                    } else {
                        status.to_string()
                    };
                    format!("{status} × {n}")
                })
                .collect::<Vec<_>>()
                .join(", ");
            let list = |f: fn(&Storm) -> u32| {
                runs.iter()
                    .map(|s| f(s).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let once = runs.iter().all(|s| s.credits == 1);
            writeln!(
                md,
                "| {} | {} | {median:.1} | {statuses} | {} | {} | {} |",
                nonces.name(),
                system.name(),
                list(|s| s.requests),
                list(|s| s.credits),
                if once { "yes" } else { "no" }
            )?;
        }
    }
    writeln!(
        md,
        "\nAnswers are summed over the rounds; credit requests and credits are listed per round.\n"
    )?;
    Ok(md)
}
