//! Store writes: per paid flow (with and without `X-Nonce`), none while serving reads, and the
//! SQLite store's own ceiling for single-key writes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::load::{self, Operation};
use crate::report::{Fact, Report};
use crate::stack::{writes, Backend, Stack, SECRET};

/// 100 paid flows without and 100 with `X-Nonce`, each set on fresh stores; returns the ids
/// paid with a nonce (their stores are kept for [`during_reads`]).
pub async fn per_paid_flow(
    stack: &Stack,
    backend: Backend,
    report: &mut Report,
) -> Result<Vec<String>> {
    let mut paid_ids = Vec::new();
    for nonce in [false, true] {
        let app = stack.app(&stack.runtime_config(&format!("writes{nonce}"))?)?;
        app.ready().await?;
        let mut flows = 0u64;
        for i in 0..100 {
            let Some((id, reference)) =
                load::create(&app.http, SECRET, &format!("w{i}"), 50_000).await
            else {
                continue;
            };
            if nonce {
                paid_ids.push(id.clone());
            }
            let nonce_value = format!("nonce-{i}");
            let header = nonce.then_some(nonce_value.as_str());
            if load::pay(&app.http, SECRET, &id, &reference, 50_000, header).await {
                flows += 1;
            }
        }
        if let Some(stats) = app.stop() {
            report.fact(Fact::PaidFlowWrites {
                backend,
                nonce,
                flows,
                writes: writes(&stats),
                per_label: stats,
            });
        }
    }
    Ok(paid_ids)
}

/// 1 s of status reads of the paid deposits, then 1 s of health: proof that reads do not write.
pub async fn during_reads(
    stack: &Stack,
    backend: Backend,
    paid_ids: Vec<String>,
    report: &mut Report,
) -> Result<()> {
    let reader = stack.app(&stack.runtime_config_keeping("writestrue", true)?)?;
    reader.ready().await?;
    let second = Duration::from_secs(1);
    let status = Operation::Status(Arc::new(paid_ids));
    load::run(&reader.http, SECRET, status, 16, second).await;
    load::run(&reader.http, SECRET, Operation::Health, 16, second).await;
    if let Some(stats) = reader.stop() {
        report.fact(Fact::ReadOnlyWrites(backend, writes(&stats)));
    }
    Ok(())
}

/// One writer's rate of single-key writes to the host's SQLite store (each its own synced
/// transaction, as in Spin): the disk's ceiling for SQLite paid flows on this machine.
pub async fn sqlite_rate(dir: &Path, budget: Duration, report: &mut Report) -> Result<()> {
    let store = topup_host::kv::open_sqlite(&dir.join("write-rate.db"), "default")?;
    let value = vec![b'x'; 700];
    let start = Instant::now();
    let budget = budget.min(Duration::from_secs(3));
    let mut writes = 0u64;
    while start.elapsed() < budget {
        store
            .set(&format!("k{writes}"), &value)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        writes += 1;
    }
    report.fact(Fact::SqliteWriteRate(
        writes as f64 / start.elapsed().as_secs_f64(),
    ));
    Ok(())
}
