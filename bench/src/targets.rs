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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::load::Outcome;
    use crate::report::Row;

    fn outcome(per_second: f64, p99_ms: f64) -> Outcome {
        Outcome {
            operations: 1,
            errors: 0,
            per_second,
            p50_ms: 1.0,
            p99_ms,
            max_ms: 1.0,
        }
    }

    fn row(server: Server, scenario: Scenario, per_second: f64) -> Row {
        Row {
            server,
            scenario,
            concurrency: 16,
            outcome: outcome(per_second, 3.51),
        }
    }

    /// Facts render exactly as the string-based report wrote them before the split.
    #[test]
    fn facts_render_as_before() {
        let per_label =
            json!({"claims": {"batchWrites": 0, "increments": 100, "reads": 0, "writes": 0}});
        let cases = [
            (
                Fact::WasmSize {
                    component: "health",
                    bytes: 160836,
                },
                "size of health.wasm: 160836 bytes (157.1 KiB)",
            ),
            (
                Fact::WarmStart(Backend::Sqlite, Duration::from_millis(12)),
                "sqlite: start to first 200, warm (median of 3): 12 ms",
            ),
            (
                Fact::PaidFlowWrites {
                    backend: Backend::Redis,
                    nonce: true,
                    flows: 100,
                    writes: 600,
                    per_label,
                },
                "redis: store writes per paid flow with X-Nonce: 6.00 (100 flows; per label: {\"claims\":{\"batchWrites\":0,\"increments\":100,\"reads\":0,\"writes\":0}})",
            ),
            (
                Fact::PeakMemory(Backend::Sqlite, 52 * 1024 + 100),
                "sqlite: peak resident memory of the app process under load: 52 MiB",
            ),
            (
                Fact::StoreSize {
                    backend: Backend::Sqlite,
                    deposits: 100_000,
                    bytes: 97_700_000,
                },
                "Sqlite store size after 100000 paid and credited deposits: 93.2 MiB (977 bytes per deposit; deposit, invoice, credit and success records), SQLite file",
            ),
        ];
        for (fact, line) in cases {
            assert_eq!(format!("{}: {fact}", fact.name()), line);
        }
    }

    /// Targets read the typed figures: rates, writes per flow, sizes, start times, overhead.
    #[test]
    fn targets_read_typed_figures() {
        let mut report = Report::default();
        report
            .rows
            .push(row(Server::App(Backend::Sqlite), Scenario::Status, 13894.0));
        report
            .rows
            .push(row(Server::Native, Scenario::Status, 37941.0));
        report.facts.push(Fact::PaidFlowWrites {
            backend: Backend::Sqlite,
            nonce: false,
            flows: 100,
            writes: 600,
            per_label: json!({}),
        });
        report.facts.push(Fact::WasmSize {
            component: "health",
            bytes: 160836,
        });
        report
            .facts
            .push(Fact::WarmStart(Backend::Redis, Duration::from_millis(10)));
        assert_eq!(
            targets(&report),
            [
                "met: sqlite status reads at 16 connections >= 4,400/s with p99 <= 10 ms: 13894/s, p99 3.51 ms",
                "met: sqlite status at least twice the original worker (~2200/s): 13894/s = 6.3x",
                "NOT met: at most 5 store writes per paid flow (sqlite: store writes per paid flow): 6.00",
                "met: size of health.wasm <= 300 KiB: 157.1 KiB",
                "met: redis: start to first 200, warm (median of 3) <= 500 ms: 10 ms",
                "NOT met: wasm overhead vs native on SQLite <= 2x (status): x2.73",
            ]
        );
    }
}
