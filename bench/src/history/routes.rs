//! Store round trips per request per route, and paid flows with several hosts over one Redis.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use serde_json::Value;

use super::measure::{cpu_ticks, machine_busy, machine_snapshot, per_request};
use super::{baseline, flows, start, Plan};
use crate::load::{self, Http};
use crate::stack::{Backend, Stack, SECRET};

pub async fn round_trips(backend: Backend, plan: &Plan, md: &mut String) -> Result<()> {
    let label = backend.label();
    let stack = Stack::new(backend).await?;
    let env = stack.env.clone();
    let rc = stack.runtime_config("trips")?;
    let k = plan.trips;
    let base = baseline(&stack, &rc, &env).await?;
    let bearer = topup_testkit::bearer(SECRET);
    let mut rows: Vec<(String, Option<Value>, usize)> = Vec::new();

    let app = start(&stack, &rc, &env).await?;
    let mut ids = Vec::new();
    for i in 0..2 * k {
        ids.push(
            load::create(&app.http, SECRET, &format!("rt{i}"), 50_000)
                .await
                .context("create")?,
        );
    }
    rows.push(("POST /deposit/create".into(), app.stop(), 2 * k));
    for nonce in [false, true] {
        let app = start(&stack, &rc, &env).await?;
        let part = if nonce { &ids[k..] } else { &ids[..k] };
        for (i, (id, r)) in part.iter().enumerate() {
            let n = format!("rt-nonce-{i}");
            ensure!(
                load::pay(
                    &app.http,
                    SECRET,
                    id,
                    r,
                    50_000,
                    nonce.then_some(n.as_str())
                )
                .await,
                "pay"
            );
        }
        let route = if nonce {
            "PAID callback with X-Nonce"
        } else {
            "PAID callback"
        };
        rows.push((
            format!("POST /internal/payment-callback ({route})"),
            app.stop(),
            k,
        ));
    }
    let app = start(&stack, &rc, &env).await?;
    for (id, _) in &ids {
        load::call(
            &app.http,
            "GET",
            &format!("/deposit/status?depositId={id}"),
            &[("authorization", &bearer)],
            Bytes::new(),
        )
        .await;
    }
    rows.push(("GET /deposit/status (paid)".into(), app.stop(), ids.len()));
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let app = start(&stack, &rc, &env).await?;
    load::sweep(&app.http, SECRET).await?;
    rows.push((
        "POST /internal/credit-retry (first after the flows)".into(),
        app.stop(),
        1,
    ));
    let app = start(&stack, &rc, &env).await?;
    for _ in 0..k {
        load::sweep(&app.http, SECRET).await?;
    }
    rows.push((
        "POST /internal/credit-retry (nothing due)".into(),
        app.stop(),
        k,
    ));
    let app = start(&stack, &rc, &env).await?;
    for _ in 0..k {
        load::call(&app.http, "GET", "/health", &[], Bytes::new()).await;
    }
    rows.push(("GET /health".into(), app.stop(), k));

    writeln!(md, "#### {label}\n")?;
    writeln!(
        md,
        "| route | requests | opens | reads | writes | increments | set_many | all writes |"
    )?;
    writeln!(md, "|---|---:|---|---|---|---|---|---:|")?;
    let mut all = Vec::new();
    for (route, stats, n) in &rows {
        let (line, writes) = per_request(stats, &base, *n as u64);
        all.push(writes);
        writeln!(md, "| {route} | {n} | {line} | {writes:.2} |")?;
    }
    writeln!(md, "\n- {label}: writes per paid flow (create + PAID callback) {:.2}; with X-Nonce {:.2} (docs/storage.md: 5 with a generated id, +2 marker increments per new 10 s bucket; this run's flows fell in few buckets)\n",
        all[0] + all[1], all[0] + all[2])?;
    Ok(())
}

pub async fn scale_out(plan: &Plan, md: &mut String) -> Result<()> {
    let stack = Stack::new(Backend::Redis).await?;
    let rc = stack.runtime_config("scale")?;
    writeln!(md, "\n### Paid flows with several hosts over one Redis\n")?;
    writeln!(md, "24 closed-loop workers for {} s, spread round robin over the hosts; load generator, hosts, mocks and Redis share the machine's cores. CPU in % of one core.\n", plan.scale.as_secs())?;
    writeln!(md, "| hosts | paid flows/s | failed | hosts CPU | bench process CPU (load + mocks) | machine busy |")?;
    writeln!(md, "|---:|---:|---:|---:|---:|---:|")?;
    for hosts in 1..=3 {
        let mut apps = Vec::new();
        for _ in 0..hosts {
            apps.push(start(&stack, &rc, &stack.env).await?);
        }
        let https: Vec<Http> = apps.iter().map(|a| a.http.clone()).collect();
        let pids: Vec<u32> = apps.iter().map(|a| a.child.id()).collect();
        let before: u64 = pids.iter().map(|p| cpu_ticks(&p.to_string())).sum();
        let me = cpu_ticks("self");
        let busy = machine_snapshot();
        let (ok, failed, secs) = flows(&https, u64::MAX, plan.scale, 24).await;
        let busy = machine_busy(&busy);
        let hosts_cpu =
            (pids.iter().map(|p| cpu_ticks(&p.to_string())).sum::<u64>() - before) as f64 / secs;
        let me = (cpu_ticks("self") - me) as f64 / secs;
        println!(
            "scale-out {hosts} hosts: {:.0} flows/s ({failed} failed)",
            ok as f64 / secs
        );
        writeln!(
            md,
            "| {hosts} | {:.0} | {failed} | {hosts_cpu:.0}% | {me:.0}% | {busy:.0}% |",
            ok as f64 / secs
        )?;
        for app in apps {
            app.stop();
        }
    }
    writeln!(md, "\nRedis CPU is not sampled separately (it is in \"machine busy\"). When machine busy is near 100% (both cores), the machine, not the store design, is the limit.")?;
    Ok(())
}
