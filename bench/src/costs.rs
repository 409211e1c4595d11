//! What each route costs on SQLite in synced transactions, per label. Spin's SQLite store runs
//! each `set`, `delete` and `increment` as its own transaction with a disk sync, and each
//! `set_many` or `delete_many` as one: on SQLite a route's cost is the transactions it makes.
//!
//! One topup-host serves spin.toml over SQLite with `TOPUP_SQLITE_COUNTS=1` (each label counts,
//! from SQLite's `total_changes`, the calls that changed rows and the rows they changed) and
//! its `--metrics` listener, read between steps; SQLite's own file change counter (header bytes
//! 24..28 of each label's file, bumped by every transaction that modified the file) is read
//! beside it as a check. The inline credit is told apart from the callback that makes it by
//! holding the mock bot's answer: counters are read when the credit request reaches the bot,
//! and again when the callback has been answered.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde_json::json;
use topup_testkit::bearer;
use topup_testkit::mocks::gateways::{MockGateway, Protocol};
use topup_testkit::mocks::BotMode;

use crate::load::{self, Http};
use crate::stack::{AppProcess, Backend, Stack, SECRET};

/// The section's title in BENCHMARKS.md.
pub const TITLE: &str = "## Synced transactions per route (SQLite)";
/// Routes that issue 21 sets a limit for.
const GENERATED_CREATE: &str = "POST /deposit/create (generated id)";
const PAID_FLOW_WITH_NONCE: &str =
    "paid flow with X-Nonce (create + PAID callback + inline credit)";
/// The labels, as spin.toml names them.
const LABELS: [&str; 2] = ["default", "claims"];

/// Per label: synced transactions, rows changed, write calls (set, delete, increment,
/// set_many, delete_many).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Counts {
    transactions: u64,
    rows: u64,
    calls: u64,
    /// SQLite's file change counter.
    file: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            transactions: self.transactions.saturating_sub(o.transactions),
            rows: self.rows.saturating_sub(o.rows),
            calls: self.calls.saturating_sub(o.calls),
            file: self.file.saturating_sub(o.file),
        }
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.transactions += o.transactions;
        self.rows += o.rows;
        self.calls += o.calls;
        self.file += o.file;
    }
}

type Snapshot = BTreeMap<&'static str, Counts>;

fn minus(a: &Snapshot, b: &Snapshot) -> Snapshot {
    LABELS
        .iter()
        .map(|l| {
            let (x, y) = (
                a.get(l).copied().unwrap_or_default(),
                b.get(l).copied().unwrap_or_default(),
            );
            (*l, x - y)
        })
        .collect()
}

fn add(total: &mut Snapshot, d: &Snapshot) {
    for (label, counts) in d {
        *total.entry(*label).or_default() += *counts;
    }
}

/// The running host, its metrics address and its SQLite files.
struct Probe {
    metrics: Http,
    dir: std::path::PathBuf,
}

impl Probe {
    async fn snapshot(&self) -> Result<Snapshot> {
        let reply = self
            .metrics
            .try_send("GET", "/metrics", &[], Bytes::new())
            .await
            .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        let mut snapshot = Snapshot::new();
        for label in LABELS {
            let value = |kind: &str| metric(&text, label, kind);
            let counts = Counts {
                transactions: value("sqlite_synced_transactions")
                    .context("no sqlite_synced_transactions: is TOPUP_SQLITE_COUNTS=1 honoured?")?,
                rows: value("sqlite_rows_changed").unwrap_or(0),
                calls: ["writes", "increments", "batch_writes"]
                    .iter()
                    .filter_map(|k| value(k))
                    .sum(),
                file: file_changes(&self.dir.join(format!("{label}.db")))?,
            };
            snapshot.insert(label, counts);
        }
        Ok(snapshot)
    }
}

/// `topup_store_operations_total{label="…",kind="…"} N` out of the exposition text.
fn metric(text: &str, label: &str, kind: &str) -> Option<u64> {
    let prefix = format!("topup_store_operations_total{{label=\"{label}\",kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// SQLite's file change counter (big-endian u32 at byte 24 of the header).
fn file_changes(path: &Path) -> Result<u64> {
    use std::io::Read as _;
    let mut header = [0u8; 28];
    match std::fs::File::open(path) {
        Ok(mut file) => {
            file.read_exact(&mut header)
                .with_context(|| format!("read {}", path.display()))?;
            Ok(u64::from(u32::from_be_bytes([
                header[24], header[25], header[26], header[27],
            ])))
        }
        // Not created yet: nothing committed.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// One row group of the table: a route and what it cost over `requests`.
struct Measured {
    route: &'static str,
    requests: u64,
    cost: Snapshot,
}

/// Runs every measurement on a fresh SQLite store and returns the section.
pub async fn run(requests: usize) -> Result<String> {
    let stack = Stack::new(Backend::Sqlite).await?;
    let config = stack.sqlite_runtime_config("costs")?;
    let dir = config
        .parent()
        .context("runtime config has a directory")?
        .to_path_buf();
    let metrics_addr = format!("127.0.0.1:{}", topup_testkit::free_port()?);
    let mut env = stack.env.clone();
    env.insert(topup_host::kv::SQLITE_COUNTS_VAR.into(), "1".into());
    // A gateway the sweep asks about its deposits: its creates also schedule a status check.
    let duitku = MockGateway::start(Protocol::Duitku).await?;
    let variables = duitku.app_variables().into_iter().chain([
        ("gateways_enabled", "central,duitku".to_string()),
        // Only written into the invoice (the mock never calls back).
        ("public_base_url", "https://topup.example".to_string()),
    ]);
    for (name, value) in variables {
        env.insert(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
    }
    let app = AppProcess::start_host(
        &config,
        &env,
        &stack.dir,
        &["--metrics".to_string(), metrics_addr.clone()],
    )?;
    app.ready().await?;
    let probe = Probe {
        metrics: Http::new(&format!("http://{metrics_addr}")),
        dir,
    };
    let result = measure(&app.http, &stack, &probe, requests).await;
    stack.bot.set_mode(BotMode::Accept);
    stack.bot.release();
    let _ = app.stop();
    let measured = result?;
    let section = render(&measured, requests)?;
    print!("{section}");
    Ok(section)
}

async fn measure(
    http: &Http,
    stack: &Stack,
    probe: &Probe,
    requests: usize,
) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    let n = requests as u64;

    // Creates with a generated id (kept for the callbacks below).
    let before = probe.snapshot().await?;
    let mut plain = Vec::new();
    for i in 0..requests {
        plain.push(
            create(
                http,
                json!({"userId": format!("cost{i}"), "amount": 50_000}),
            )
            .await?,
        );
    }
    out.push(Measured {
        route: GENERATED_CREATE,
        requests: n,
        cost: minus(&probe.snapshot().await?, &before),
    });

    let before = probe.snapshot().await?;
    for i in 0..requests {
        let body = json!({"userId": format!("cost{i}"), "amount": 50_000, "gateway": "duitku",
                          "email": "buyer@example.com"});
        create(http, body).await?;
    }
    out.push(Measured {
        route: "POST /deposit/create at Duitku (generated id; its first status check too)",
        requests: n,
        cost: minus(&probe.snapshot().await?, &before),
    });

    let before = probe.snapshot().await?;
    let mut chosen = Vec::new();
    for i in 0..requests {
        let body = json!({"userId": format!("cost{i}"), "amount": 50_000,
                          "depositId": format!("chosen-{i}-{}", std::process::id())});
        chosen.push(create(http, body).await?);
    }
    out.push(Measured {
        route: "POST /deposit/create (chosen id)",
        requests: n,
        cost: minus(&probe.snapshot().await?, &before),
    });

    // PAID callbacks, the credit held at the bot to tell it apart.
    for (deposits, nonce, route, credit_route) in [
        (
            &plain,
            false,
            "↳ of which before the credit request reaches the bot",
            "↳ of which the inline credit (its outcome, written after the bot's answer)",
        ),
        (
            &chosen,
            true,
            "↳ of which before the credit request reaches the bot",
            "↳ of which after the bot's answer: the credit's outcome, then the nonce (claimed last)",
        ),
    ] {
        let (callback, credit) = callbacks(http, stack, probe, deposits, nonce).await?;
        let mut whole = callback.clone();
        add(&mut whole, &credit);
        out.push(Measured {
            route: if nonce {
                "PAID callback with X-Nonce (credit included)"
            } else {
                "PAID callback without X-Nonce (credit included)"
            },
            requests: n,
            cost: whole,
        });
        out.push(Measured {
            route,
            requests: n,
            cost: callback,
        });
        out.push(Measured {
            route: credit_route,
            requests: n,
            cost: credit,
        });
    }

    // Whole paid flows with a nonce: create (generated id) + PAID callback + credit.
    stack.bot.set_mode(BotMode::Accept);
    let before = probe.snapshot().await?;
    for i in 0..requests {
        let (id, reference) = create(
            http,
            json!({"userId": format!("flow{i}"), "amount": 50_000}),
        )
        .await?;
        let nonce = format!("flow-nonce-{i}-{}", std::process::id());
        if !load::pay(http, SECRET, &id, &reference, 50_000, Some(&nonce)).await {
            bail!("paid flow {i}: the callback was not answered 200");
        }
    }
    out.push(Measured {
        route: PAID_FLOW_WITH_NONCE,
        requests: n,
        cost: minus(&probe.snapshot().await?, &before),
    });
    Ok(out)
}

/// A create that must succeed: (depositId, reference).
async fn create(http: &Http, body: serde_json::Value) -> Result<(String, String)> {
    let reply = http
        .try_send(
            "POST",
            "/deposit/create",
            &[
                ("authorization", &bearer(SECRET)),
                ("content-type", "application/json"),
            ],
            Bytes::from(body.to_string()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("create: {e}"))?;
    let json = reply.json();
    match (
        reply.status,
        json["depositId"].as_str(),
        json["reference"].as_str(),
    ) {
        (200, Some(id), Some(reference)) => Ok((id.to_string(), reference.to_string())),
        _ => bail!("create answered {}: {json}", reply.status),
    }
}

/// One PAID callback per deposit, one at a time, the bot holding each credit: what was
/// written until the credit request reached the bot, and what after.
async fn callbacks(
    http: &Http,
    stack: &Stack,
    probe: &Probe,
    deposits: &[(String, String)],
    nonce: bool,
) -> Result<(Snapshot, Snapshot)> {
    stack.bot.set_mode(BotMode::Hang);
    let (mut callback, mut credit) = (Snapshot::new(), Snapshot::new());
    for (i, (id, reference)) in deposits.iter().enumerate() {
        let heard = stack.bot.received().len();
        let start = probe.snapshot().await?;
        let (http2, id2, reference2) = (http.clone(), id.clone(), reference.clone());
        let value = format!("cost-nonce-{i}-{}", std::process::id());
        let pay = tokio::spawn(async move {
            let nonce = nonce.then_some(value.as_str());
            load::pay(&http2, SECRET, &id2, &reference2, 50_000, nonce).await
        });
        let waited = Instant::now();
        while stack.bot.received().len() == heard {
            if waited.elapsed() > Duration::from_secs(10) || pay.is_finished() {
                bail!("callback for {id}: the credit request never reached the bot");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // The app now waits for the bot's answer: nothing more is written until it comes.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let reached = probe.snapshot().await?;
        add(&mut callback, &minus(&reached, &start));
        // Release until the held request goes (a release sent before it began to wait is
        // not seen by it).
        let waited = Instant::now();
        while !pay.is_finished() {
            if waited.elapsed() > Duration::from_secs(10) {
                bail!("callback for {id} was not answered");
            }
            stack.bot.release();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !pay.await.unwrap_or(false) {
            bail!("callback for {id}: not answered 200");
        }
        add(&mut credit, &minus(&probe.snapshot().await?, &reached));
    }
    stack.bot.set_mode(BotMode::Accept);
    stack.bot.release();
    Ok((callback, credit))
}

fn render(measured: &[Measured], requests: usize) -> Result<String> {
    let mut md = String::new();
    writeln!(md, "{TITLE}\n")?;
    writeln!(
        md,
        "Produced by `topup-bench --costs-only` (also part of the default run). One topup-host \
         on SQLite with `TOPUP_SQLITE_COUNTS=1`, {requests} requests per route one at a time, \
         averaged. **synced tx** = store calls that changed rows: each is one committed SQLite \
         transaction (rollback journal, `synchronous=FULL`: a disk sync), counted from SQLite's \
         `total_changes` by the host; **keys written** = rows inserted, updated or deleted; \
         **write calls** = set + delete + increment + set_many + delete_many calls. \
         **file counter** = the change counter in each SQLite file's header (bumped by every \
         transaction that modified the file), the check: it must equal synced tx. The inline \
         credit is told apart by holding the mock bot's answer (counters read when the credit \
         request reaches the bot, then after the callback's answer). New 10 s schedule buckets \
         add marker increments for their first deposit, so averages depend a little on how many \
         buckets a run spans.\n"
    )?;
    writeln!(
        md,
        "| route | label | synced tx per request | keys written per request | write calls per request | file counter per request |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|")?;
    let mut agree = true;
    for m in measured {
        let per = |v: u64| v as f64 / m.requests.max(1) as f64;
        let mut total = Counts::default();
        for label in LABELS {
            let c = m.cost.get(label).copied().unwrap_or_default();
            agree &= c.file == c.transactions;
            total += c;
            writeln!(
                md,
                "| {} | {label} | {:.2} | {:.2} | {:.2} | {:.2} |",
                m.route,
                per(c.transactions),
                per(c.rows),
                per(c.calls),
                per(c.file)
            )?;
        }
        writeln!(
            md,
            "| {} | **both** | **{:.2}** | **{:.2}** | {:.2} | {:.2} |",
            m.route,
            per(total.transactions),
            per(total.rows),
            per(total.calls),
            per(total.file)
        )?;
    }
    writeln!(
        md,
        "\n- the file change counters {} the host's synced-transaction counts",
        if agree {
            "equal"
        } else {
            "do NOT equal (see the table)"
        }
    )?;
    targets(&mut md, measured)?;
    writeln!(md)?;
    Ok(md)
}

/// Issue 21's limits on synced transactions, and why the paid flow's is missed.
fn targets(md: &mut String, measured: &[Measured]) -> Result<()> {
    for (route, limit) in [(GENERATED_CREATE, 2.0), (PAID_FLOW_WITH_NONCE, 4.0)] {
        let Some(m) = measured.iter().find(|m| m.route == route) else {
            continue;
        };
        let total: u64 = m.cost.values().map(|c| c.transactions).sum();
        let per = total as f64 / m.requests.max(1) as f64;
        // New buckets' marker increments (a few hundredths) are not the route's own.
        let ok = per <= limit + 0.05;
        let mark = if ok { "met" } else { "NOT met" };
        writeln!(
            md,
            "- {mark}: {route} at most {limit:.0} synced transactions: {per:.2}"
        )?;
    }
    writeln!(
        md,
        "- why a paid flow with X-Nonce makes 6 and not 4: each transaction is one the money \
         proof needs. The create: an `increment` for its expiry task's slot (the sweep finds \
         work without listing) and one `set_many` (deposit, invoice index, slot). The PAID \
         callback: the payment claim's `increment` (the only thing that decides which callback \
         records the payment); one `set_many` before the bot is called, with the credit's facts \
         (`paidAt`, `paymentMethod`), so that a resend after a crash carries the same bytes (a \
         receiver may refuse a changed body under the same `Idempotency-Key`, as Stripe's \
         idempotency does); one `set_many` after it, with the outcome (status says credited, \
         nothing is resent); and the nonce's `increment` (of concurrent requests with one \
         `X-Nonce`, exactly one is accepted). Without the first write, a crash between the \
         bot's answer and the second resends another `paidAt`; with the nonce recorded by a \
         `set` in the outcome write, concurrent requests with one nonce could all be accepted. \
         Without X-Nonce a paid flow makes 5."
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_store_counters_out_of_the_metrics_text() {
        let text = "topup_store_operations_total{label=\"claims\",kind=\"increments\"} 7\n\
                    topup_store_operations_total{label=\"default\",kind=\"sqlite_synced_transactions\"} 12\n";
        assert_eq!(
            metric(text, "default", "sqlite_synced_transactions"),
            Some(12)
        );
        assert_eq!(metric(text, "claims", "increments"), Some(7));
        assert_eq!(metric(text, "default", "increments"), None);
    }

    #[test]
    fn a_step_costs_what_the_counters_grew_by() {
        let at = |t, r| Counts {
            transactions: t,
            rows: r,
            calls: t,
            file: t,
        };
        let before: Snapshot = [("default", at(3, 5)), ("claims", at(1, 1))].into();
        let after: Snapshot = [("default", at(5, 9)), ("claims", at(1, 1))].into();
        let step = minus(&after, &before);
        assert_eq!(step["default"], at(2, 4));
        assert_eq!(step["claims"], at(0, 0));
        let mut total = step.clone();
        add(&mut total, &step);
        assert_eq!(total["default"], at(4, 8));
    }
}
