//! Issue 5's targets and the original worker's figures, checked against the typed
//! measurements.

use crate::report::{Fact, Report, Scenario, Server};
use crate::stack::Backend;

/// "met" or "NOT met".
pub fn mark(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// One line per target: whether it was met, and the figure it was judged on.
pub fn targets(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for backend in Backend::ALL {
        throughput(report, backend, &mut lines);
    }
    for fact in &report.facts {
        if let Some(line) = fact_target(fact) {
            lines.push(line);
        }
    }
    for scenario in Scenario::ALL {
        if let (Some(native), Some(wasm)) = (
            report.outcome(Server::Native, scenario, 16),
            report.outcome(Server::App(Backend::Sqlite), scenario, 16),
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

/// Rates at 16 connections on one backend.
fn throughput(report: &Report, backend: Backend, lines: &mut Vec<String>) {
    let server = Server::App(backend);
    let name = backend.label();
    if let Some(o) = report.outcome(server, Scenario::Status, 16) {
        lines.push(format!(
            "{}: {name} status reads at 16 connections >= 4,400/s with p99 <= 10 ms: {:.0}/s, p99 {:.2} ms",
            mark(o.per_second >= 4400.0 && o.p99_ms <= 10.0), o.per_second, o.p99_ms
        ));
    }
    let (floor, worker) = match backend {
        Backend::Redis => (400.0, 200.0),
        Backend::Sqlite => (200.0, 200.0),
    };
    if let Some(o) = report.outcome(server, Scenario::PaidFlow, 16) {
        lines.push(format!(
            "{}: {name} paid flows at 16 connections >= {floor:.0}/s: {:.0}/s ({:.1}x the worker's ~{worker:.0})",
            mark(o.per_second >= floor), o.per_second, o.per_second / worker
        ));
    }
    for (scenario, worker) in [
        (Scenario::Health, 6200.0),
        (Scenario::Status, 2200.0),
        (Scenario::Create, 570.0),
    ] {
        if let Some(o) = report.outcome(server, scenario, 16) {
            lines.push(format!(
                "{}: {name} {scenario} at least twice the original worker (~{worker:.0}/s): {:.0}/s = {:.1}x",
                mark(o.per_second >= 2.0 * worker), o.per_second, o.per_second / worker
            ));
        }
    }
}

/// The target a figure is held to, if any.
fn fact_target(fact: &Fact) -> Option<String> {
    let name = fact.name();
    match fact {
        Fact::PaidFlowWrites {
            nonce: false,
            flows,
            writes,
            ..
        } => {
            let per_flow = Fact::per_flow(*flows, *writes);
            Some(format!(
                "{}: at most 5 store writes per paid flow ({name}): {per_flow:.2}",
                mark(per_flow <= 5.0)
            ))
        }
        Fact::WasmSize { bytes, .. } => Some(format!(
            "{}: {name} <= 300 KiB: {:.1} KiB",
            mark(*bytes <= 300 * 1024),
            *bytes as f64 / 1024.0
        )),
        Fact::WarmStart(_, time) => {
            let ms = time.as_millis();
            Some(format!("{}: {name} <= 500 ms: {ms} ms", mark(ms <= 500)))
        }
        _ => None,
    }
}
