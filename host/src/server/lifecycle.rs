//! Operating the host: every request observed (one access-log line, the request metrics),
//! serving until told to stop and then draining in-flight requests, and the sweep schedule
//! (`POST /internal/credit-retry` run through the app itself).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::App;
use crate::access_log;

/// The route word for requests no manifest route serves.
pub const UNROUTED: &str = "unrouted";

/// The route of the scheduled sweep.
pub const SWEEP_ROUTE: &str = "/internal/credit-retry";

/// The route of the alerts' run, scheduled after each round of sweeps.
pub const ALERTS_ROUTE: &str = "/internal/alerts";

/// Requests (and guest instances) still running.
#[derive(Clone, Default)]
pub struct InFlight(Arc<InFlightState>);

#[derive(Default)]
struct InFlightState {
    count: AtomicUsize,
    idle: Notify,
}

/// One running request or instance; counted until dropped.
pub struct Running(Arc<InFlightState>);

impl InFlight {
    /// Counts one more until the returned guard is dropped.
    pub fn enter(&self) -> Running {
        self.0.count.fetch_add(1, Ordering::SeqCst);
        Running(self.0.clone())
    }

    /// How many are running.
    pub fn count(&self) -> usize {
        self.0.count.load(Ordering::SeqCst)
    }

    /// Resolves once none is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.0.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Requests or instances still running when the drain timeout ran out (0: all finished).
    pub unfinished: usize,
}

/// What is logged and counted when a request's answer has been sent (or given up).
struct Done {
    app: Arc<App>,
    id: String,
    method: String,
    route: String,
    status: Option<u16>,
    start: SystemTime,
    started: Instant,
    _running: Running,
}

impl Drop for Done {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        access_log::write(&access_log::Entry {
            start: self.start,
            id: &self.id,
            method: &self.method,
            route: &self.route,
            status: self.status,
            elapsed,
        });
        let status = self
            .status
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        self.app.metrics.request(&self.route, &status, elapsed);
    }
}

/// An answer's body that finishes its request's [`Done`] after its last frame (or when
/// hyper drops it: a client gone mid-answer).
struct Observed {
    inner: HyperOutgoingBody,
    done: Option<Done>,
}

impl Body for Observed {
    type Data = Bytes;
    type Error = <HyperOutgoingBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl App {
    /// [`App::handle`], logged and counted.
    async fn observed<B>(
        self: &Arc<Self>,
        request: hyper::Request<B>,
        client: SocketAddr,
    ) -> Result<hyper::Response<HyperOutgoingBody>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let mut done = Done {
            app: self.clone(),
            id: access_log::request_id(),
            method: request.method().as_str().to_string(),
            route: String::new(),
            status: None,
            start: SystemTime::now(),
            started: Instant::now(),
            _running: self.in_flight.enter(),
        };
        let mut route = None;
        let result = self.handle(request, client, &mut route).await;
        done.route = route.unwrap_or_else(|| UNROUTED.to_string());
        // An error closes the connection without an answer: `done` logs status null.
        let response = result?;
        done.status = Some(response.status().as_u16());
        let (parts, body) = response.into_parts();
        let body = Observed {
            inner: body,
            done: Some(done),
        };
        Ok(hyper::Response::from_parts(parts, body.boxed_unsync()))
    }

    /// The metrics exposition text.
    pub fn metrics_text(&self) -> String {
        self.metrics.render(&self.stores.stats())
    }

    /// Serves until `stop` resolves, then stops accepting, lets requests in flight finish for
    /// at most `drain` (idle keep-alive connections are closed at once) and returns.
    pub async fn serve_until(
        self: Arc<Self>,
        listener: TcpListener,
        stop: impl std::future::Future<Output = ()>,
        drain: Duration,
    ) -> Result<Stopped> {
        let graceful = GracefulShutdown::new();
        tokio::pin!(stop);
        loop {
            let (stream, client) = tokio::select! {
                biased;
                () = &mut stop => break,
                accepted = listener.accept() => accepted?,
            };
            let _ = stream.set_nodelay(true);
            let app = self.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let app = app.clone();
                async move { app.observed(request, client).await }
            });
            let connection = graceful.watch(
                http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service),
            );
            // Errors here are closed connections; Spin logs nothing for them either.
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
        drop(listener);
        let drained = tokio::time::timeout(drain, async {
            graceful.shutdown().await;
            self.in_flight.idle().await;
        })
        .await;
        Ok(Stopped {
            unfinished: if drained.is_ok() {
                0
            } else {
                self.in_flight.count()
            },
        })
    }

    /// Runs `POST /internal/credit-retry` through the app (routing, a fresh instance, the
    /// access log and metrics, as for an external request), then `POST /internal/alerts`,
    /// every `every`, with the resolved
    /// `shared_secret` as bearer token, until `stop` turns true. One sweep at a time: a tick
    /// that comes while one runs is skipped; a sweep answering `"more": true` is followed by
    /// the next at once. `host` is the `Host` the request carries (the listen address).
    pub async fn sweep_on_schedule(
        self: Arc<Self>,
        every: Duration,
        host: String,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => return,
                _ = ticks.tick() => {}
            }
            // Checked before each sweep, so that none starts once stopping has begun.
            while !*stop.borrow() {
                if !self.sweep_once(&host).await {
                    break;
                }
            }
            while !*stop.borrow() {
                if !self.alerts_once(&host).await {
                    break;
                }
            }
        }
    }

    /// One scheduled sweep; whether it asked to be run again at once.
    async fn sweep_once(self: &Arc<Self>, host: &str) -> bool {
        match self.call_internal(host, SWEEP_ROUTE).await {
            Ok(answer) => {
                let credited = answer["credited"].as_u64().unwrap_or(0);
                self.metrics.sweep("ok", credited);
                answer["more"].as_bool().unwrap_or(false)
            }
            Err((outcome, why)) => {
                eprintln!("ERROR host: scheduled sweep {why}");
                self.metrics.sweep(outcome, 0);
                false
            }
        }
    }

    /// One scheduled run of the alerts after the sweeps (again at once while it answers
    /// `"more": true`).
    async fn alerts_once(self: &Arc<Self>, host: &str) -> bool {
        match self.call_internal(host, ALERTS_ROUTE).await {
            Ok(answer) => answer["more"].as_bool().unwrap_or(false),
            Err((_, why)) => {
                eprintln!("ERROR host: scheduled alerts run {why}");
                false
            }
        }
    }

    /// `POST route` through the app with the resolved `shared_secret` as bearer token: its
    /// JSON answer, or the metric outcome (`error`, `failed`) and why.
    async fn call_internal(
        self: &Arc<Self>,
        host: &str,
        route: &str,
    ) -> Result<serde_json::Value, (&'static str, String)> {
        let mut request = hyper::Request::builder()
            .method(http::Method::POST)
            .uri(route)
            .header(http::header::HOST, host);
        if let Some(secret) = self.variable("shared_secret") {
            let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {secret}")) else {
                // Never print the value itself.
                return Err((
                    "error",
                    ": shared_secret is not a valid header value".into(),
                ));
            };
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|error| ("error", format!(": cannot build the request: {error}")))?;
        let client = SocketAddr::from(([127, 0, 0, 1], 0));
        let response = self
            .observed(request, client)
            .await
            .map_err(|error| ("error", format!("failed: {error}")))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| ("error", format!(": answer not read: {error:?}")))?
            .to_bytes();
        if status != 200 {
            return Err(("failed", format!("answered {status}")));
        }
        Ok(serde_json::from_slice(&body).unwrap_or_default())
    }
}
