//! `topup-bench`: throughput, latency, size, start time, memory, store writes and store size of
//! every route, on SQLite and Redis, plus a native baseline. Prints figures and writes
//! BENCHMARKS.md; it never fails on speed.
//!
//! This file reads the arguments and runs the measurements in order; each has a file of its own.

mod backend;
mod builds;
mod clone;
mod history;
mod load;
mod native;
mod report;
mod sizes;
mod stack;
mod targets;
mod throughput;
mod writes;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

use report::{Fact, Report};
use stack::{root, runner, Backend};

/// Benchmarks every route on SQLite and Redis, plus a native baseline, and writes
/// BENCHMARKS.md (scripts/bench.sh builds the app and runs this). Figures only: it never
/// fails on speed.
#[derive(Parser)]
#[command(name = "topup-bench", version, propagate_version = true)]
struct Cli {
    /// A short smoke run: 1 s per load scenario, 10,000 deposits for the store size, smaller
    /// histories.
    #[arg(long)]
    quick: bool,
    /// Only the "Store at volume" section (replaced in BENCHMARKS.md).
    #[arg(long)]
    history_only: bool,
    /// Only the WASIp2/WASIp3 builds side by side (its own section of BENCHMARKS.md).
    #[arg(long)]
    builds: bool,
    #[command(flatten)]
    history: history::Overrides,
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
    /// `--quick`: a short smoke run.
    quick: bool,
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
        quick,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if cli.builds {
        // Only the WASIp2/WASIp3 comparison (its own section of BENCHMARKS.md).
        return runtime.block_on(builds::run(&options));
    }
    if cli.history_only {
        // Only the "Store at volume" section (replaced in BENCHMARKS.md).
        return runtime.block_on(history::run(quick, &cli.history));
    }
    runtime.block_on(bench(&options, &cli.history))
}

/// Every measurement, in the order BENCHMARKS.md lists them; "Store at volume" last.
async fn bench(options: &Options, history: &history::Overrides) -> Result<()> {
    let mut report = Report::default();
    report.fact(Fact::Runner(runner()));
    sizes::components(&mut report)?;
    for backend in Backend::ALL {
        backend::run(backend, options, &mut report).await?;
    }
    throughput::native(options, &mut report).await?;
    sizes::store(options.size_deposits, &mut report).await?;
    report.write(&options.out, options.duration)?;
    history::run(options.quick, history).await
}
