//! The throughput table: every scenario at 1, 16 and 64 connections on the app, and at 16 on
//! the native baseline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::load::{self, Http, Operation};
use crate::report::{Fact, Report, Row, Scenario, Server};
use crate::stack::{rss_kib, AppProcess, Backend, Stack, SECRET};
use crate::{writes, Options};

const CONCURRENCY: [usize; 3] = [1, 16, 64];

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

/// What each scenario sends; status reads `ids`.
fn operation(scenario: Scenario, ids: &Arc<Vec<String>>) -> Operation {
    match scenario {
        Scenario::Health => Operation::Health,
        Scenario::Status => Operation::Status(ids.clone()),
        Scenario::Create => Operation::Create,
        Scenario::PaidFlow => Operation::PaidFlow,
    }
}

/// Every scenario at every concurrency on the running app, and its peak resident memory.
pub async fn app(app: &AppProcess, backend: Backend, options: &Options, report: &mut Report) {
    let ids = seed(&app.http).await;
    let pid = app.child.id();
    let mut peak_rss = rss_kib(pid);
    for scenario in Scenario::ALL {
        for concurrency in CONCURRENCY {
            let peak = Arc::new(AtomicU64::new(0));
            let sampler = {
                let peak = peak.clone();
                tokio::spawn(async move {
                    loop {
                        peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                })
            };
            let operation = operation(scenario, &ids);
            let outcome =
                load::run(&app.http, SECRET, operation, concurrency, options.duration).await;
            sampler.abort();
            peak_rss = peak_rss.max(peak.load(Ordering::Relaxed));
            report.row(Row {
                server: Server::App(backend),
                scenario,
                concurrency,
                outcome,
            });
        }
    }
    report.fact(Fact::PeakMemory(backend, peak_rss));
}

/// The native baseline at 16 connections, after the SQLite store's write rate.
pub async fn native(options: &Options, report: &mut Report) -> Result<()> {
    let stack = Stack::new(Backend::Sqlite).await?;
    let dir = stack.dir.join("native");
    std::fs::create_dir_all(&dir)?;
    writes::sqlite_rate(&dir, options.duration, report).await?;
    let server = AppProcess::start_native(&dir, &stack.env)?;
    server.ready().await?;
    let ids = seed(&server.http).await;
    for scenario in Scenario::ALL {
        let operation = operation(scenario, &ids);
        let outcome = load::run(&server.http, SECRET, operation, 16, options.duration).await;
        report.row(Row {
            server: Server::Native,
            scenario,
            concurrency: 16,
            outcome,
        });
    }
    server.stop();
    Ok(())
}
