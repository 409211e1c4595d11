//! The host's own metrics, written in Prometheus' text exposition format (version 0.0.4) and
//! served only on the opt-in `--metrics` listener, never on the app's port.
//!
//! The exposition is written here rather than with a metrics crate: five families with
//! plain labels need a few dozen lines, and the host keeps its dependency tree small.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Upper bounds (seconds) of the request latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default, Clone)]
struct Histogram {
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`].
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Families {
    /// (route, status) → requests.
    requests: BTreeMap<(String, String), Histogram>,
    /// (host, outcome) → outbound calls.
    outbound: BTreeMap<(String, String), u64>,
    /// outcome → sweeps run by the host's schedule.
    sweeps: BTreeMap<String, u64>,
    /// Credits the bot accepted in host-run sweeps.
    sweep_credits: u64,
}

/// Counters of one running app.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, Families> {
        // A panic while holding the lock leaves plain counters: still usable.
        self.families
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One answered (or dropped) request: `route` is the manifest route (or a fixed word for
    /// requests no route serves), `status` the status code or `none` for a closed connection.
    pub fn request(&self, route: &str, status: &str, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut families = self.lock();
        let histogram = families
            .requests
            .entry((route.to_string(), status.to_string()))
            .or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// One outbound call of a component: `host` is `scheme://authority`, `outcome` the
    /// answer's status class (`2xx`…) or why there was none (`denied`, `refused`, …).
    pub fn outbound(&self, host: &str, outcome: &str) {
        *self
            .lock()
            .outbound
            .entry((host.to_string(), outcome.to_string()))
            .or_default() += 1;
    }

    /// One sweep run by the host's schedule, and the credits it delivered.
    pub fn sweep(&self, outcome: &str, credited: u64) {
        let mut families = self.lock();
        *families.sweeps.entry(outcome.to_string()).or_default() += 1;
        families.sweep_credits += credited;
    }

    /// The exposition text; `stores` is [`crate::kv::Stores::stats`] (label → kind → count).
    pub fn render(&self, stores: &serde_json::Value) -> String {
        let families = self.lock();
        let mut out = String::new();

        out.push_str("# HELP topup_http_requests_total HTTP requests answered, by manifest route and status.\n");
        out.push_str("# TYPE topup_http_requests_total counter\n");
        for ((route, status), histogram) in &families.requests {
            let labels = format!("route=\"{}\",status=\"{}\"", escape(route), escape(status));
            let _ = writeln!(
                out,
                "topup_http_requests_total{{{labels}}} {}",
                histogram.count
            );
        }

        out.push_str("# HELP topup_http_request_duration_seconds Time from reading a request to sending the last byte of its answer.\n");
        out.push_str("# TYPE topup_http_request_duration_seconds histogram\n");
        for ((route, status), histogram) in &families.requests {
            let labels = format!("route=\"{}\",status=\"{}\"", escape(route), escape(status));
            for (count, bound) in histogram.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "topup_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "topup_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "topup_http_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "topup_http_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }

        out.push_str(
            "# HELP topup_store_operations_total Key-value operations, by store label and kind.\n",
        );
        out.push_str("# TYPE topup_store_operations_total counter\n");
        if let Some(labels) = stores.as_object() {
            for (label, kinds) in labels {
                let Some(kinds) = kinds.as_object() else {
                    continue;
                };
                for (kind, count) in kinds {
                    let _ = writeln!(
                        out,
                        "topup_store_operations_total{{label=\"{}\",kind=\"{}\"}} {}",
                        escape(label),
                        escape(&snake_case(kind)),
                        count.as_u64().unwrap_or(0)
                    );
                }
            }
        }

        out.push_str("# HELP topup_outbound_requests_total Outbound HTTP calls of components, by destination and outcome.\n");
        out.push_str("# TYPE topup_outbound_requests_total counter\n");
        for ((host, outcome), count) in &families.outbound {
            let _ = writeln!(
                out,
                "topup_outbound_requests_total{{host=\"{}\",outcome=\"{}\"}} {count}",
                escape(host),
                escape(outcome)
            );
        }

        out.push_str(
            "# HELP topup_sweep_runs_total Sweeps run by the host's --sweep-every schedule.\n",
        );
        out.push_str("# TYPE topup_sweep_runs_total counter\n");
        for (outcome, count) in &families.sweeps {
            let _ = writeln!(
                out,
                "topup_sweep_runs_total{{outcome=\"{}\"}} {count}",
                escape(outcome)
            );
        }

        out.push_str("# HELP topup_sweep_credits_delivered_total Credits the bot accepted in sweeps run by the host's schedule.\n");
        out.push_str("# TYPE topup_sweep_credits_delivered_total counter\n");
        let _ = writeln!(
            out,
            "topup_sweep_credits_delivered_total {}",
            families.sweep_credits
        );
        out
    }
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `batchWrites` → `batch_writes`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Serves `GET /metrics` on its own listener until the task is dropped.
pub async fn serve(app: Arc<crate::App>, listener: TcpListener) -> Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                let app = app.clone();
                async move {
                    let response = if request.uri().path() == "/metrics"
                        && request.method() == http::Method::GET
                    {
                        let text = app.metrics_text();
                        hyper::Response::builder()
                            .status(200)
                            .header(
                                http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(text)))
                    } else {
                        hyper::Response::builder()
                            .status(404)
                            .body(Full::new(Bytes::new()))
                    };
                    response
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds the metrics listener.
pub async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for metrics"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_shape() {
        let metrics = Metrics::default();
        metrics.request("/health", "200", Duration::from_millis(7));
        metrics.request("/health", "200", Duration::from_millis(300));
        metrics.outbound("http://127.0.0.1:9", "refused");
        metrics.sweep("ok", 2);
        let stores = serde_json::json!({"default": {"reads": 3, "batchWrites": 1}});
        let text = metrics.render(&stores);
        for line in [
            "topup_http_requests_total{route=\"/health\",status=\"200\"} 2",
            "topup_http_request_duration_seconds_bucket{route=\"/health\",status=\"200\",le=\"0.005\"} 0",
            "topup_http_request_duration_seconds_bucket{route=\"/health\",status=\"200\",le=\"0.01\"} 1",
            "topup_http_request_duration_seconds_bucket{route=\"/health\",status=\"200\",le=\"0.5\"} 2",
            "topup_http_request_duration_seconds_bucket{route=\"/health\",status=\"200\",le=\"+Inf\"} 2",
            "topup_http_request_duration_seconds_count{route=\"/health\",status=\"200\"} 2",
            "topup_store_operations_total{label=\"default\",kind=\"batch_writes\"} 1",
            "topup_store_operations_total{label=\"default\",kind=\"reads\"} 3",
            "topup_outbound_requests_total{host=\"http://127.0.0.1:9\",outcome=\"refused\"} 1",
            "topup_sweep_runs_total{outcome=\"ok\"} 1",
            "topup_sweep_credits_delivered_total 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
