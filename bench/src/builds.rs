//! `topup-bench --builds`: the WASIp2 build (spin.toml, an instance per request) and the
//! WASIp3 build (spin.p3.toml, reused instances) side by side on topup-host: health, status,
//! create and the paid flow at 16 connections on each store, and each component's size in
//! both builds. Part of the default run; `scripts/bench.sh --builds` runs it alone and
//! replaces its section of BENCHMARKS.md.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::load::{self, Http, Operation, Outcome};
use crate::report::load_average;
use crate::report::Scenario;
use crate::stack::{root, AppProcess, Backend, Stack, SECRET};

/// Connections of every scenario (the figure the spec's Spin measurements use).
const CONNECTIONS: usize = 16;

/// One build: its manifest, where its components are, and the host's flags.
struct Build {
    name: &'static str,
    manifest: &'static str,
    dir: &'static str,
    args: &'static [&'static str],
}

const BUILDS: [Build; 3] = [
    Build {
        name: "p2",
        manifest: "spin.toml",
        dir: "target/wasm32-wasip2/release",
        args: &[],
    },
    Build {
        name: "p3",
        manifest: "spin.p3.toml",
        dir: "target/wasm32-wasip2/release-p3",
        args: &[],
    },
    // Spin's `--max-instance-concurrent-reuse-count 1`: reused, but one request at a time.
    Build {
        name: "p3 c1",
        manifest: "spin.p3.toml",
        dir: "target/wasm32-wasip2/release-p3",
        args: &["--max-instance-concurrent-reuse-count", "1"],
    },
];

/// The shipped components, as their `.wasm` files are named.
const COMPONENTS: [&str; 15] = [
    "health",
    "deposit_create",
    "payment_callback",
    "deposit_status",
    "sweep",
    "manual_retry",
    "openapi",
    "admin",
    "admin_action",
    "console",
    "alerts",
    "callback_duitku",
    "callback_midtrans",
    "callback_xendit",
    "callback_tripay",
];

/// `topup-host serve` on one build's manifest, in a process of its own.
fn start_host(
    build: &Build,
    runtime_config: &Path,
    env: &HashMap<String, String>,
) -> Result<AppProcess> {
    let listen = format!("127.0.0.1:{}", topup_testkit::free_port()?);
    let mut command = Command::new(root().join("target/host/topup-host"));
    command
        .arg("serve")
        .arg("--manifest")
        .arg(root().join(build.manifest))
        .args(build.args)
        .arg("--runtime-config-file")
        .arg(runtime_config)
        .args(["--listen", &listen]);
    AppProcess::spawn(command, &listen, env, None)
}

/// One measured scenario.
struct Row {
    backend: Backend,
    build: &'static str,
    scenario: Scenario,
    outcome: Outcome,
}

/// The section's title in BENCHMARKS.md.
pub const TITLE: &str = "## WASIp2 and WASIp3 builds";

/// Runs both builds on both stores; returns the section.
pub async fn run(duration: Duration) -> Result<String> {
    let load_before = load_average();
    let mut rows = Vec::new();
    for backend in Backend::ALL {
        let stack = Stack::new(backend).await?;
        for build in &BUILDS {
            let config =
                stack.runtime_config(&format!("builds{}", build.name.replace(' ', "-")))?;
            let host = start_host(build, &config, &stack.env)?;
            host.ready().await?;
            let ids = seed(&host.http).await;
            for scenario in Scenario::ALL {
                let operation = match scenario {
                    Scenario::Health => Operation::Health,
                    Scenario::Status => Operation::Status(ids.clone()),
                    Scenario::Create => Operation::Create,
                    Scenario::PaidFlow => Operation::PaidFlow,
                };
                let outcome = load::run(&host.http, SECRET, operation, CONNECTIONS, duration).await;
                println!(
                    "{} {} {scenario}: {:.0}/s, p99 {:.2} ms, {} errors",
                    backend.label(),
                    build.name,
                    outcome.per_second,
                    outcome.p99_ms,
                    outcome.errors
                );
                rows.push(Row {
                    backend,
                    build: build.name,
                    scenario,
                    outcome,
                });
            }
            let _ = host.stop();
        }
    }
    let load = format!("{load_before} at the start, {} at the end", load_average());
    let section = render(&rows, duration, &load)?;
    print!("{section}");
    Ok(section)
}

/// 1,000 created deposits for the status scenario to read.
async fn seed(http: &Http) -> Arc<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..1000 {
        if let Some((id, _)) = load::create(http, SECRET, &format!("seed{i}"), 50_000).await {
            ids.push(id);
        }
    }
    Arc::new(ids)
}

fn render(rows: &[Row], duration: Duration, load: &str) -> Result<String> {
    let mut md = String::new();
    writeln!(md, "{TITLE}\n")?;
    writeln!(
        md,
        "Produced by `topup-bench --builds` (also part of the default run) on topup-host: each build in its own host process, \
         {CONNECTIONS} connections, {} s a scenario, closed loop over loopback. p2 = spin.toml \
         (spin-sdk 5.2, an instance per request); p3 = spin.p3.toml (spin-sdk 7, \
         `wasi:http/handler@0.3.0`, instances reused as Spin 4 does: up to 128 requests, 16 at \
         once, dropped after 1 s idle).\n",
        duration.as_secs()
    )?;
    writeln!(
        md,
        "p3 c1 = the p3 build with `--max-instance-concurrent-reuse-count 1` (Spin's flag): \
         instances still reused, one request at a time each. Ratios are to p2. The builds run \
         one after another, so a change in the machine's other load shows as a difference \
         between them: 1-minute load average {load} (2 cores).\n"
    )?;
    writeln!(
        md,
        "| store | scenario | p2 ops/s | p3 ops/s | p3 c1 ops/s | p3/p2 | p3 c1/p2 | p2 p99 ms | p3 p99 ms | p3 c1 p99 ms | errors |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for backend in Backend::ALL {
        for scenario in Scenario::ALL {
            let find = |build: &str| {
                rows.iter()
                    .find(|r| r.backend == backend && r.build == build && r.scenario == scenario)
                    .map(|r| &r.outcome)
            };
            let (Some(p2), Some(p3), Some(c1)) = (find("p2"), find("p3"), find("p3 c1")) else {
                continue;
            };
            let ratio = |o: &Outcome| o.per_second / p2.per_second.max(f64::MIN_POSITIVE);
            writeln!(
                md,
                "| {} | {scenario} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                backend.label(),
                p2.per_second,
                p3.per_second,
                c1.per_second,
                ratio(p3),
                ratio(c1),
                p2.p99_ms,
                p3.p99_ms,
                c1.p99_ms,
                p2.errors + p3.errors + c1.errors
            )?;
        }
    }
    writeln!(
        md,
        "\n| component | p2 bytes | p2 KiB | p3 bytes | p3 KiB |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|")?;
    for component in COMPONENTS {
        let size = |dir: &str| {
            let path = root().join(dir).join(format!("{component}.wasm"));
            std::fs::metadata(&path)
                .map(|m| m.len())
                .with_context(|| format!("{} missing: run scripts/bench.sh", path.display()))
        };
        let (p2, p3) = (size(BUILDS[0].dir)?, size(BUILDS[1].dir)?);
        writeln!(
            md,
            "| {component} | {p2} | {:.1} | {p3} | {:.1} |",
            p2 as f64 / 1024.0,
            p3 as f64 / 1024.0
        )?;
    }
    writeln!(md)?;
    Ok(md)
}
