//! What the bench measured, as typed values, and their rendering: one console line each as it
//! is measured, and BENCHMARKS.md at the end.

use std::fmt::{self, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::load::Outcome;
use crate::stack::{root, Backend};
use crate::targets::targets;

/// What served a scenario.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Server {
    /// The app on a store backend.
    App(Backend),
    /// The native baseline (SQLite, no WebAssembly).
    Native,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Server::App(backend) => f.pad(backend.label()),
            Server::Native => f.pad("native"),
        }
    }
}

/// What one operation of a load scenario is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scenario {
    /// `GET /health`.
    Health,
    /// `GET /deposit/status`.
    Status,
    /// `POST /deposit/create`.
    Create,
    /// Create + signed PAID callback.
    PaidFlow,
}

impl Scenario {
    /// Every scenario, in the report's order.
    pub const ALL: [Scenario; 4] = [
        Scenario::Health,
        Scenario::Status,
        Scenario::Create,
        Scenario::PaidFlow,
    ];
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so the console's column widths apply.
        f.pad(match self {
            Scenario::Health => "health",
            Scenario::Status => "status",
            Scenario::Create => "create",
            Scenario::PaidFlow => "paid flow",
        })
    }
}

/// One row of the throughput table.
pub struct Row {
    /// What served it.
    pub server: Server,
    /// What was sent.
    pub scenario: Scenario,
    /// Connections (closed-loop workers).
    pub concurrency: usize,
    /// What was measured.
    pub outcome: Outcome,
}

/// One figure of "Other figures", typed; rendered to text only when printed or written.
pub enum Fact {
    /// What served the app.
    Runner(&'static str),
    /// Size of a built component.
    WasmSize {
        /// Component file stem.
        component: &'static str,
        /// Bytes.
        bytes: u64,
    },
    /// Start to first 200 without the compiled-component cache.
    ColdStart(Duration),
    /// Start to first 200 with the cache, median of 3.
    WarmStart(Backend, Duration),
    /// Store writes per paid flow, with the host's counters per label.
    PaidFlowWrites {
        /// Store.
        backend: Backend,
        /// Whether each callback carried an `X-Nonce`.
        nonce: bool,
        /// Flows that succeeded.
        flows: u64,
        /// All writes over both labels.
        writes: u64,
        /// The host's counters per label, as it wrote them.
        per_label: Value,
    },
    /// Store writes while only reads were served.
    ReadOnlyWrites(Backend, u64),
    /// Peak resident memory of the app process under load, KiB.
    PeakMemory(Backend, u64),
    /// The sweep of 500 credits owed.
    OwedSweep {
        /// Store.
        backend: Backend,
        /// Credits delivered.
        credited: u64,
        /// Sweep calls.
        sweeps: u64,
        /// Wall time of all sweeps.
        elapsed: Duration,
    },
    /// Whether every swept deposit was credited exactly once.
    CreditedOnce(Backend, bool),
    /// Single-key synced writes per second to the host's SQLite store.
    SqliteWriteRate(f64),
    /// Store size after `deposits` paid and credited deposits.
    StoreSize {
        /// Store.
        backend: Backend,
        /// Deposits written.
        deposits: u64,
        /// SQLite file or Redis `used_memory` growth.
        bytes: u64,
    },
}

impl Fact {
    /// What it is, as the report names it.
    pub fn name(&self) -> String {
        match self {
            Fact::Runner(_) => "runner".into(),
            Fact::WasmSize { component, .. } => format!("size of {component}.wasm"),
            Fact::ColdStart(_) => {
                "start to first 200, no compiled cache (compiles every component)".into()
            }
            Fact::WarmStart(b, _) => {
                format!("{}: start to first 200, warm (median of 3)", b.label())
            }
            Fact::PaidFlowWrites { backend, nonce, .. } => format!(
                "{}: store writes per paid flow{}",
                backend.label(),
                if *nonce { " with X-Nonce" } else { "" }
            ),
            Fact::ReadOnlyWrites(b, _) => format!(
                "{}: store writes during 1 s of status reads of paid deposits + 1 s of health",
                b.label()
            ),
            Fact::PeakMemory(b, _) => format!(
                "{}: peak resident memory of the app process under load",
                b.label()
            ),
            Fact::OwedSweep { backend, .. } => {
                format!("{}: sweep of 500 due credits", backend.label())
            }
            Fact::CreditedOnce(b, _) => {
                format!("{}: each swept deposit credited exactly once", b.label())
            }
            Fact::SqliteWriteRate(_) => "SQLite store, one writer, single-key writes".into(),
            Fact::StoreSize {
                backend, deposits, ..
            } => format!("{backend:?} store size after {deposits} paid and credited deposits"),
        }
    }

    /// Store writes per paid flow, for [`Fact::PaidFlowWrites`].
    pub fn per_flow(flows: u64, writes: u64) -> f64 {
        writes as f64 / flows.max(1) as f64
    }
}

impl fmt::Display for Fact {
    /// The value, as BENCHMARKS.md writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fact::Runner(runner) => f.write_str(runner),
            Fact::WasmSize { bytes, .. } => {
                write!(f, "{bytes} bytes ({:.1} KiB)", *bytes as f64 / 1024.0)
            }
            Fact::ColdStart(time) | Fact::WarmStart(_, time) => {
                write!(f, "{} ms", time.as_millis())
            }
            Fact::PaidFlowWrites {
                flows,
                writes,
                per_label,
                ..
            } => write!(
                f,
                "{:.2} ({flows} flows; per label: {per_label})",
                Fact::per_flow(*flows, *writes)
            ),
            Fact::ReadOnlyWrites(_, writes) => write!(f, "{writes}"),
            Fact::PeakMemory(_, kib) => write!(f, "{} MiB", kib / 1024),
            Fact::OwedSweep {
                credited,
                sweeps,
                elapsed,
                ..
            } => {
                let secs = elapsed.as_secs_f64();
                write!(
                    f,
                    "{credited} credited in {sweeps} sweeps, {secs:.2} s ({:.0} credits/s)",
                    *credited as f64 / secs
                )
            }
            Fact::CreditedOnce(_, once) => write!(f, "{once}"),
            Fact::SqliteWriteRate(rate) => write!(
                f,
                "{rate:.0}/s (each a synced transaction; 5 per paid flow)"
            ),
            Fact::StoreSize {
                backend,
                deposits,
                bytes,
            } => write!(
                f,
                "{:.1} MiB ({} bytes per deposit; deposit, invoice, credit and success records){}",
                *bytes as f64 / 1048576.0,
                bytes / deposits.max(&1),
                match backend {
                    Backend::Redis => ", Redis used_memory",
                    Backend::Sqlite => ", SQLite file",
                }
            ),
        }
    }
}

/// Everything measured, in the order it was measured.
#[derive(Default)]
pub struct Report {
    /// The throughput table.
    pub rows: Vec<Row>,
    /// "Other figures".
    pub facts: Vec<Fact>,
}

impl Report {
    /// Records a figure and prints it.
    pub fn fact(&mut self, fact: Fact) {
        println!("{}: {fact}", fact.name());
        self.facts.push(fact);
    }

    /// Records a row of the throughput table and prints it.
    pub fn row(&mut self, row: Row) {
        let o = &row.outcome;
        println!(
            "{:<8} {:<12} c={:<3} ops={:<7} err={:<4} {:>9.1}/s p50={:>7.2}ms p99={:>7.2}ms max={:>8.2}ms",
            row.server, row.scenario, row.concurrency, o.operations, o.errors, o.per_second, o.p50_ms, o.p99_ms, o.max_ms
        );
        self.rows.push(row);
    }

    /// The outcome of one scenario, if it was measured.
    pub fn outcome(
        &self,
        server: Server,
        scenario: Scenario,
        concurrency: usize,
    ) -> Option<&Outcome> {
        self.rows
            .iter()
            .find(|r| r.server == server && r.scenario == scenario && r.concurrency == concurrency)
            .map(|r| &r.outcome)
    }

    /// Native against wasm on SQLite at 16 connections, one line per native scenario.
    fn overhead(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.server == Server::Native)
            .filter_map(|native| {
                let wasm = self
                    .outcome(Server::App(Backend::Sqlite), native.scenario, 16)?
                    .per_second;
                let per_second = native.outcome.per_second;
                Some(format!(
                    "{}: native {per_second:.0}/s vs wasm {wasm:.0}/s on SQLite at 16 connections: wasm overhead ×{:.2}",
                    native.scenario,
                    per_second / wasm.max(0.001)
                ))
            })
            .collect()
    }

    /// Writes BENCHMARKS.md at `out`: the throughput table, then `sections` (side by side,
    /// synced transactions, builds), the other figures and targets. The "Store at volume"
    /// section of the file it replaces is kept at the end (a full `--history` run rewrites it).
    pub fn write(&self, out: &Path, context: &RunContext, sections: &[String]) -> Result<()> {
        let old = std::fs::read_to_string(out).unwrap_or_default();
        let mut md = String::new();
        writeln!(md, "# Benchmarks\n")?;
        writeln!(md, "Generated by `scripts/bench.sh` (`target/host/topup-bench {}`); do not edit by hand, re-run it. Figures only; nothing here is asserted by tests. How to run: [docs/benchmarks.md](docs/benchmarks.md).\n", context.args)?;
        let machine = Machine::read();
        writeln!(md, "- date: {}; commit: {}", machine.date, machine.commit)?;
        writeln!(
            md,
            "- machine: {} cores ({}), {:.1} GiB memory; 1-minute load average {} at the start, {} at the end",
            machine.cores,
            machine.cpu,
            machine.mem_kib as f64 / 1048576.0,
            context.load_before,
            load_average()
        )?;
        if let Some(note) = &context.note {
            writeln!(md, "- {note}")?;
        }
        writeln!(md, "- each scenario runs {} s, closed loop over loopback; load generator, app, mocks and stores share the machine", context.duration.as_secs())?;
        writeln!(md, "- native: the same core routes served by hyper without WebAssembly, in a process of its own like the app, over the same SQLite store code")?;
        writeln!(md, "- SQLite keeps SQLite's defaults (rollback journal, synchronous=FULL, one transaction per write), as Spin does\n")?;
        writeln!(md, "## Throughput per store\n")?;
        writeln!(
            md,
            "| store | scenario | conns | ops | errors | ops/s | p50 ms | p99 ms | max ms |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for row in &self.rows {
            let o = &row.outcome;
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
                row.server,
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
        for section in sections {
            md.push_str(section);
        }
        writeln!(md, "## Other figures\n")?;
        for fact in &self.facts {
            writeln!(md, "- {}: {fact}", fact.name())?;
        }
        writeln!(md, "\n## Against the targets\n")?;
        for line in targets(self) {
            writeln!(md, "- {line}")?;
        }
        let overhead = self.overhead();
        if !overhead.is_empty() {
            writeln!(md, "\n## WebAssembly overhead\n")?;
            for note in &overhead {
                writeln!(md, "- {note}")?;
            }
        }
        if let Some(at) = old.find(HISTORY_TITLE) {
            writeln!(md)?;
            md.push_str(&old[at..]);
        }
        std::fs::write(out, md)?;
        println!("wrote {}", out.display());
        Ok(())
    }
}

/// The last section of BENCHMARKS.md, written by `history.rs`.
pub const HISTORY_TITLE: &str = "## Store at volume";

/// What the header of BENCHMARKS.md says about the run.
pub struct RunContext {
    /// The command line, as given.
    pub args: String,
    /// How long each load scenario ran.
    pub duration: Duration,
    /// `--note`: e.g. what else ran on the machine.
    pub note: Option<String>,
    /// The 1-minute load average when the run began.
    pub load_before: String,
}

/// "date: …; commit: …" of now, for sections written on their own.
pub fn stamp() -> String {
    let machine = Machine::read();
    format!("date: {}; commit: {}", machine.date, machine.commit)
}

/// The 1-minute load average (`/proc/loadavg`): other work on the machine skews the figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Puts `section` (which starts with `title`) into BENCHMARKS.md in place of an earlier one,
/// else before "Store at volume", else at the end.
pub fn replace_section(title: &str, section: &str) -> Result<()> {
    let path = root().join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let text = match old.find(title) {
        Some(start) => {
            let end = old[start + title.len()..]
                .find("\n## ")
                .map_or(old.len(), |at| start + title.len() + at + 1);
            format!("{}{section}{}", &old[..start], &old[end..])
        }
        None => match old.find(HISTORY_TITLE) {
            Some(at) => format!("{}{section}{}", &old[..at], &old[at..]),
            None => format!("{}\n\n{section}", old.trim_end()),
        },
    };
    std::fs::write(&path, text)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// When and where the figures were taken.
struct Machine {
    date: String,
    commit: String,
    cores: usize,
    cpu: String,
    mem_kib: u64,
}

impl Machine {
    fn read() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Self {
            date: output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
            commit: output(
                Command::new("git")
                    .args(["rev-parse", "--short", "HEAD"])
                    .current_dir(root()),
            ),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            mem_kib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0),
        }
    }
}

/// A command's trimmed standard output, empty when it could not run.
fn output(command: &mut Command) -> String {
    command
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
