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
use std::time::Duration;

use anyhow::Result;

use report::{Fact, Report};
use stack::{root, runner, Backend};

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
    if args.iter().any(|a| a == "--builds") {
        // Only the WASIp2/WASIp3 comparison (its own section of BENCHMARKS.md).
        return runtime.block_on(builds::run(&options));
    }
    if args.iter().any(|a| a == "--history-only") {
        // Only the "Store at volume" section (replaced in BENCHMARKS.md).
        return runtime.block_on(history::run(quick));
    }
    runtime.block_on(bench(&options))
}

/// Every measurement, in the order BENCHMARKS.md lists them; "Store at volume" last.
async fn bench(options: &Options) -> Result<()> {
    let mut report = Report::default();
    report.fact(Fact::Runner(runner()));
    sizes::components(&mut report)?;
    for backend in Backend::ALL {
        backend::run(backend, options, &mut report).await?;
    }
    throughput::native(options, &mut report).await?;
    sizes::store(options.size_deposits, &mut report).await?;
    report.write(&options.out, options.duration)?;
    history::run(options.quick).await
}
