//! A closed-loop load generator: `concurrency` workers, each sending its next request as soon
//! as the last one answered, for a fixed time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use serde_json::{json, Value};
pub use topup_testkit::Http;
use topup_testkit::{bearer, paid_body, sign};

/// Status and body of a request, `None` when no answer came.
pub async fn call(
    http: &Http,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Option<(u16, Bytes)> {
    http.try_send(method, path, headers, body)
        .await
        .ok()
        .map(|reply| (reply.status, reply.body))
}

/// What one scenario does per operation.
#[derive(Clone)]
pub enum Operation {
    /// `GET /health`.
    Health,
    /// `GET /deposit/status` of one of these deposits, round robin.
    Status(Arc<Vec<String>>),
    /// `POST /deposit/create`.
    Create,
    /// create, then a signed PAID callback (the app credits the bot inline).
    PaidFlow,
}

/// Measured outcome of a scenario.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Operations completed (a paid flow counts once).
    pub operations: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Operations per second.
    pub per_second: f64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// Runs `operation` with `concurrency` workers for `duration`.
pub async fn run(
    http: &Http,
    secret: &str,
    operation: Operation,
    concurrency: usize,
    duration: Duration,
) -> Outcome {
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let workers = (0..concurrency).map(|worker| {
        let http = http.clone();
        let secret = secret.to_string();
        let operation = operation.clone();
        let counter = counter.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let begun = Instant::now();
                let ok = perform(&http, &secret, &operation, worker, n).await;
                latencies.push(begun.elapsed().as_micros() as u32);
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors)
        })
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for (mut l, e) in futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    Outcome {
        operations: latencies.len() as u64,
        errors,
        per_second: latencies.len() as f64 / elapsed,
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        max_ms: latencies.last().map_or(0.0, |us| f64::from(*us) / 1000.0),
    }
}

/// Creates a deposit; returns (depositId, reference).
pub async fn create(
    http: &Http,
    secret: &str,
    user: &str,
    amount: u64,
) -> Option<(String, String)> {
    let body = json!({"userId": user, "amount": amount}).to_string();
    let (status, reply) = call(
        http,
        "POST",
        "/deposit/create",
        &[
            ("authorization", &bearer(secret)),
            ("content-type", "application/json"),
        ],
        Bytes::from(body),
    )
    .await?;
    if status != 200 {
        return None;
    }
    let reply: Value = serde_json::from_slice(&reply).ok()?;
    Some((
        reply["depositId"].as_str()?.to_string(),
        reply["reference"].as_str()?.to_string(),
    ))
}

/// Sends a signed PAID callback; true when answered 200.
pub async fn pay(
    http: &Http,
    secret: &str,
    id: &str,
    reference: &str,
    amount: u64,
    nonce: Option<&str>,
) -> bool {
    let body = paid_body(id, reference, amount);
    let signature = sign(secret, body.as_bytes());
    let bearer = bearer(secret);
    let mut headers = vec![
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
        ("x-signature", signature.as_str()),
    ];
    if let Some(nonce) = nonce {
        headers.push(("x-nonce", nonce));
    }
    matches!(
        call(
            http,
            "POST",
            "/internal/payment-callback",
            &headers,
            Bytes::from(body)
        )
        .await,
        Some((200, _))
    )
}

/// One call of the sweep (`POST /internal/credit-retry`); its JSON answer, an error unless 200.
pub async fn sweep(http: &Http, secret: &str) -> Result<Value> {
    let reply = call(
        http,
        "POST",
        "/internal/credit-retry",
        &[("authorization", &bearer(secret))],
        Bytes::new(),
    )
    .await;
    let Some((200, body)) = reply else {
        bail!("sweep failed: {reply:?}")
    };
    Ok(serde_json::from_slice(&body)?)
}

async fn perform(http: &Http, secret: &str, operation: &Operation, worker: usize, n: u64) -> bool {
    match operation {
        Operation::Health => matches!(
            call(http, "GET", "/health", &[], Bytes::new()).await,
            Some((200, _))
        ),
        Operation::Status(ids) => {
            let id = &ids[n as usize % ids.len()];
            matches!(
                call(
                    http,
                    "GET",
                    &format!("/deposit/status?depositId={id}"),
                    &[("authorization", &bearer(secret))],
                    Bytes::new()
                )
                .await,
                Some((200, _))
            )
        }
        Operation::Create => create(http, secret, &format!("w{worker}"), 50_000)
            .await
            .is_some(),
        Operation::PaidFlow => match create(http, secret, &format!("w{worker}"), 50_000).await {
            Some((id, reference)) => pay(http, secret, &id, &reference, 50_000, None).await,
            None => false,
        },
    }
}
