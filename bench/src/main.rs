//! `topup-bench`: throughput, latency, size, start time, memory, store writes and store size of
//! every route, on SQLite and Redis, plus a native baseline. Prints figures and writes
//! BENCHMARKS.md; it never fails on speed.
//!
//! This file reads the arguments and runs the measurements in order; each has a file of its own.

mod backend;
mod builds;
mod clone;
mod costs;
mod history;
mod load;
mod native;
mod report;
mod sizes;
mod stack;
mod targets;
mod throughput;
mod versus;
mod writes;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

use report::{Fact, Report, RunContext};
use stack::{root, runner, Backend};

/// Benchmarks every route on SQLite and Redis, plus a native baseline, the original worker
/// side by side, synced transactions per route and both builds, and writes BENCHMARKS.md
/// (scripts/bench.sh builds the app and runs this). Figures only: it never fails on speed.
/// The "--…-only" options run one part and replace its section of BENCHMARKS.md.
#[derive(Parser)]
#[command(name = "topup-bench", version, propagate_version = true)]
struct Cli {
    /// A short smoke run: 1 s per load scenario, 10,000 deposits for the store size, fewer
    /// requests and storm rounds, smaller histories.
    #[arg(long)]
    quick: bool,
    /// Only the side by side with the original worker (health, status, create, paid flow,
    /// the 50-callback storm).
    #[arg(long, conflicts_with_all = ["costs_only", "builds", "history_only"])]
    versus_only: bool,
    /// Only the synced transactions per route on SQLite.
    #[arg(long, conflicts_with_all = ["builds", "history_only"])]
    costs_only: bool,
    /// Only the WASIp2/WASIp3 builds side by side, with both builds' sizes.
    #[arg(long, visible_alias = "builds-only", conflicts_with = "history_only")]
    builds: bool,
    /// Only the "Store at volume" section (15–30 minutes at full size).
    #[arg(long)]
    history_only: bool,
    /// Also run "Store at volume" at the end of the default run (else the file keeps the
    /// section of an earlier run, with its own date).
    #[arg(long, conflicts_with_all = ["versus_only", "costs_only", "builds", "history_only"])]
    history: bool,
    /// A line for the report's header, e.g. what else ran on the machine.
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
    #[command(flatten)]
    history_overrides: history::Overrides,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The native baseline server the benchmark starts in a process of its own (serves until
    /// killed; variables resolve as the host resolves them).
    #[command(name = native::SUBCOMMAND)]
    ServeNative {
        /// Address to listen on.
        listen: String,
        /// spin.toml (for the variables' defaults).
        manifest: PathBuf,
        /// SQLite file of the `default` label.
        records: PathBuf,
        /// SQLite file of the `claims` label.
        claims: PathBuf,
    },
}

/// What the arguments ask for.
pub struct Options {
    /// How long each load scenario runs.
    pub duration: Duration,
    /// Where BENCHMARKS.md goes.
    out: PathBuf,
    /// Deposits written for the store-size figures.
    size_deposits: usize,
}

fn main() -> ExitCode {
    let cli: Cli = topup_host::cli::parse();
    topup_host::cli::exit_code("topup-bench", run(cli))
}

fn run(cli: Cli) -> Result<()> {
    if let Some(Command::ServeNative {
        listen,
        manifest,
        records,
        claims,
    }) = cli.command
    {
        return native::serve_process(&listen, &manifest, &records, &claims);
    }
    let quick = cli.quick;
    let options = Options {
        duration: Duration::from_secs(if quick { 1 } else { 5 }),
        out: root().join("BENCHMARKS.md"),
        size_deposits: if quick { 10_000 } else { 100_000 },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (requests, rounds) = if quick { (20, 1) } else { (100, 3) };
    let stamped = |section: String| format!("{section}- {}\n\n", report::stamp());
    if cli.builds {
        let section = runtime.block_on(builds::run(options.duration))?;
        return report::replace_section(builds::TITLE, &stamped(section));
    }
    if cli.versus_only {
        let section = runtime.block_on(versus::run(options.duration, rounds))?;
        return report::replace_section(versus::TITLE, &stamped(section));
    }
    if cli.costs_only {
        let section = runtime.block_on(costs::run(requests))?;
        return report::replace_section(costs::TITLE, &stamped(section));
    }
    if cli.history_only {
        // Only the "Store at volume" section (replaced in BENCHMARKS.md).
        return runtime.block_on(history::run(quick, &cli.history_overrides));
    }
    let context = RunContext {
        args: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        duration: options.duration,
        note: cli.note,
        load_before: report::load_average(),
    };
    runtime.block_on(async {
        bench(&options, &context, requests, rounds).await?;
        if cli.history {
            history::run(quick, &cli.history_overrides).await?;
        }
        Ok(())
    })
}

/// Every measurement of the default run, in the order BENCHMARKS.md lists them.
async fn bench(
    options: &Options,
    context: &RunContext,
    requests: usize,
    rounds: usize,
) -> Result<()> {
    let started = std::time::Instant::now();
    let mut report = Report::default();
    report.fact(Fact::Runner(runner()));
    sizes::components(&mut report)?;
    for backend in Backend::ALL {
        backend::run(backend, options, &mut report).await?;
    }
    throughput::native(options, &mut report).await?;
    sizes::store(options.size_deposits, &mut report).await?;
    let sections = [
        versus::run(options.duration, rounds).await?,
        costs::run(requests).await?,
        builds::run(options.duration).await?,
    ];
    report.write(&options.out, context, &sections)?;
    println!("default run took {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
