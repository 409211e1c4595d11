//! Everything measured with the app on one store backend, in order: start times, store writes,
//! the throughput table, and a sweep of many owed credits.

use std::time::{Duration, Instant};

use anyhow::Result;
use topup_testkit::mocks::BotMode;

use crate::load;
use crate::report::{Fact, Report};
use crate::stack::{root, runner, Backend, Stack, SECRET};
use crate::{throughput, writes, Options};

/// Runs every per-backend measurement on a fresh stack.
pub async fn run(backend: Backend, options: &Options, report: &mut Report) -> Result<()> {
    let stack = Stack::new(backend).await?;
    start_times(&stack, backend, report).await?;
    let paid_ids = writes::per_paid_flow(&stack, backend, report).await?;
    writes::during_reads(&stack, backend, paid_ids, report).await?;

    let app = stack.app(&stack.runtime_config("load")?)?;
    app.ready().await?;
    throughput::app(&app, backend, options, report).await;
    owed_sweep(&stack, &app.http, backend, report).await?;
    app.stop();
    Ok(())
}

/// Start to first 200: once without the compiled-component cache, then warm (median of 3).
async fn start_times(stack: &Stack, backend: Backend, report: &mut Report) -> Result<()> {
    if backend == Backend::Sqlite && runner() == "topup-host" {
        let _ = std::fs::remove_dir_all(root().join(".spin/host-cache"));
        let cold = stack.app(&stack.runtime_config("cold")?)?;
        let time = cold.ready().await?;
        cold.stop();
        report.fact(Fact::ColdStart(time));
    }
    let mut warm = Vec::new();
    for i in 0..3 {
        let app = stack.app(&stack.runtime_config(&format!("warm{i}"))?)?;
        warm.push(app.ready().await?);
        app.stop();
    }
    warm.sort_unstable();
    report.fact(Fact::WarmStart(backend, warm[1]));
    Ok(())
}

/// The bot is down while 500 deposits are paid, then back: the sweeps that credit them.
async fn owed_sweep(
    stack: &Stack,
    http: &load::Http,
    backend: Backend,
    report: &mut Report,
) -> Result<()> {
    stack.bot.set_mode(BotMode::Status(503));
    let mut owed = Vec::new();
    for i in 0..500 {
        if let Some(created) = load::create(http, SECRET, &format!("sweep{i}"), 10_000).await {
            owed.push(created);
        }
    }
    let pays = owed
        .iter()
        .map(|(id, reference)| load::pay(http, SECRET, id, reference, 10_000, None));
    futures::future::join_all(pays).await;
    stack.bot.set_mode(BotMode::Accept);
    // Retries are due 1 s after the failed attempts, in 1 s buckets a sweep visits once their
    // end is 2 s past: wait that out, then sweep until every owed credit is delivered.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let started = Instant::now();
    let (mut sweeps, mut credited) = (0, 0);
    while credited < owed.len() as u64 && sweeps < 100 {
        let body = load::sweep(http, SECRET).await?;
        sweeps += 1;
        let now = body["credited"].as_u64().unwrap_or(0);
        credited += now;
        if now == 0 && body["more"] != true {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    report.fact(Fact::OwedSweep {
        backend,
        credited,
        sweeps,
        elapsed: started.elapsed(),
    });
    let once = owed.iter().all(|(id, _)| stack.bot.credits(id) == 1);
    report.fact(Fact::CreditedOnce(backend, once));
    Ok(())
}
