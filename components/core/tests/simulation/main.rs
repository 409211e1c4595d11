//! Deterministic simulation of the money path (in the spirit of FoundationDB's simulation
//! testing and TigerBeetle's VOPR).
//!
//! Each seed builds a workload — bots creating deposits (concurrently, repeatedly, the same id
//! for another user), users paying or failing, the gateway calling back (duplicates, storms,
//! late FAILED, with and without `X-Nonce`) and retrying, overlapping sweeps, manual retries,
//! status readers — and runs it through the real route handlers over in-memory stores. One
//! seeded scheduler interleaves the requests at every store operation and outbound call and
//! injects faults there: a store error, the request's process dying, the clock jumping past
//! leases, retry times and TTLs, a bot or gateway that fails, hangs, trickles or accepts. Then
//! the faults stop, the bot heals, sweeps run until nothing is due, and the invariants in
//! `invariants.rs` must hold.
//!
//! `SIM_SEEDS=n` runs n seeds (default 10,000), from `SIM_FIRST` (default 0), and the seeds that
//! once found a defect (`REGRESSION_SEEDS`);
//! `SIM_SUMMARY=file` also writes the summary line there.
//! `SIM_SEED=s` replays one seed and prints its trace (with `-- --nocapture`).

mod gateways;
mod invariants;
mod platform;
mod rng;
mod scheduler;
mod world;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use scheduler::Sim;
use world::Counters;

/// Seeds that once found a defect, run in every run besides the range asked for: each is a
/// replayable scenario (see the commit that fixed it).
const REGRESSION_SEEDS: &[u64] = &[
    332, 6307, 63504, 89863, 118040, 123705, 145814, 1155179, 1465915, 1723848, 1047124, 1071636,
];

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs one seed; returns its counters, or why it failed (with the trace when asked).
fn run_seed(seed: u64, tracing: bool) -> Result<Counters, (String, String)> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Sim::new(seed, tracing);
        sim.run();
        let result = invariants::check(&sim).and_then(|checks| {
            // Garbage stays bounded: no nonce key outlives both its lifetime and its deposit.
            match sim.leftover_nonces() {
                left if left.is_empty() => Ok(checks + 1),
                left => Err(vec![format!("nonce keys nothing will remove: {left:?}")]),
            }
        });
        if tracing && result.is_ok() {
            println!("{}", describe(&sim));
        }
        (sim, result)
    }));
    match outcome {
        Ok((sim, Ok(checks))) => {
            let mut counters = sim.world.counters.get();
            counters.checks = checks;
            Ok(counters)
        }
        Ok((sim, Err(broken))) => Err((broken.join("\n"), describe(&sim))),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err((format!("panicked: {message}"), String::new()))
        }
    }
}

fn describe(sim: &Sim) -> String {
    format!(
        "config: {:?}\nfaults: {:?}\n{}",
        sim.world.config.variables,
        sim.world.faults,
        sim.world.trace()
    )
}

#[test]
fn money_path_survives_every_fault() {
    if let Some(seed) = env("SIM_SEED") {
        match run_seed(seed, true) {
            Ok(counters) => println!("seed {seed} holds: {counters:?}"),
            Err((broken, trace)) => {
                println!("{trace}");
                panic!("seed {seed} breaks:\n{broken}");
            }
        }
        return;
    }
    let seeds = env("SIM_SEEDS").unwrap_or(10_000);
    let first = env("SIM_FIRST").unwrap_or(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let started = Instant::now();
    let results: Vec<(Counters, Vec<(u64, String)>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut total = Counters::default();
                    let mut failures = Vec::new();
                    let range = (first + t..first + seeds).step_by(threads as usize);
                    let known = REGRESSION_SEEDS
                        .iter()
                        .copied()
                        .filter(|s| *s % threads == t && !(first..first + seeds).contains(s));
                    for seed in range.chain(known) {
                        match run_seed(seed, false) {
                            Ok(c) => {
                                if std::env::var("SIM_HEAVY").is_ok() && c.store_ops > 20_000 {
                                    println!("heavy seed {seed}: {} store operations", c.store_ops);
                                }
                                add(&mut total, &c)
                            }
                            Err((broken, _)) => failures.push((seed, broken)),
                        }
                    }
                    (total, failures)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("simulation worker"))
            .collect()
    });
    let mut total = Counters::default();
    let mut failures: Vec<(u64, String)> = Vec::new();
    for (counters, fails) in results {
        add(&mut total, &counters);
        failures.extend(fails);
    }
    failures.sort();
    let summary = format!(
        "simulation: {seeds} seeds from {first} (and {} known ones) in {:.1} s on {threads} \
         threads; {} requests, \
         {} store operations; injected {} store errors, {} crashes, {} clock jumps, {} upstream \
         faults; {} adversary notices; {} invariant checks; {} failing seeds",
        REGRESSION_SEEDS
            .iter()
            .filter(|s| !(first..first + seeds).contains(s))
            .count(),
        started.elapsed().as_secs_f64(),
        total.requests,
        total.store_ops,
        total.store_errors,
        total.crashes,
        total.clock_jumps,
        total.upstream_faults,
        total.adversary,
        total.checks,
        failures.len()
    );
    println!("{summary}");
    // The routes log to stderr; a long run's summary is easier to keep in a file.
    if let Ok(path) = std::env::var("SIM_SUMMARY") {
        let _ = std::fs::write(path, format!("{summary}\n"));
    }
    if let Some((seed, broken)) = failures.first() {
        for (seed, broken) in failures.iter().take(usize::MAX) {
            println!("seed {seed}: {}", broken.lines().next().unwrap_or_default());
        }
        panic!(
            "{} of {seeds} seeds break the money path; first: seed {seed}:\n{broken}\n\
             replay with SIM_SEED={seed}",
            failures.len()
        );
    }
}

fn add(total: &mut Counters, c: &Counters) {
    total.store_ops += c.store_ops;
    total.store_errors += c.store_errors;
    total.crashes += c.crashes;
    total.clock_jumps += c.clock_jumps;
    total.upstream_faults += c.upstream_faults;
    total.requests += c.requests;
    total.checks += c.checks;
    total.adversary += c.adversary;
}
