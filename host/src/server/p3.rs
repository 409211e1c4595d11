//! Serving WASIp3 components (`wasi:http/handler@0.3.0`) as Spin 4 does: an instance serves
//! up to [`MAX_REUSE`] requests in turn, at most [`MAX_CONCURRENT`] at once, and is dropped
//! after [`IDLE_TIMEOUT`] without one (Spin's defaults, `crates/trigger-http`). Each instance
//! has its own store and host state; the state holds nothing of a request (buckets and
//! outbound bodies are resources the guest drops), so what a reused instance can carry over
//! is only what the guest itself keeps, and the glue keeps nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::WasiHttpView;

use super::{HostState, StateFactory};

/// Requests one instance serves before it is dropped (Spin 4's default).
pub const MAX_REUSE: usize = 128;
/// Requests one instance serves at once (Spin 4's default).
pub const MAX_CONCURRENT: usize = 16;
/// How long an instance without a request is kept for the next one (Spin 4's default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// Creates the instances of one WASIp3 component.
pub struct Instances {
    pre: ServicePre<HostState>,
    factory: StateFactory,
    idle_timeout: Duration,
    concurrency: usize,
    created: AtomicU64,
}

impl Instances {
    /// Instances of `pre`, each with host state from `factory`, kept `idle_timeout` unused and
    /// serving at most `concurrency` requests at once.
    pub fn new(
        pre: ServicePre<HostState>,
        factory: StateFactory,
        idle_timeout: Duration,
        concurrency: usize,
    ) -> Self {
        Self {
            pre,
            factory,
            idle_timeout,
            concurrency,
            created: AtomicU64::new(0),
        }
    }

    /// How many instances were created so far.
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}

impl HandlerState for Instances {
    type StoreData = HostState;
    type WorkerExpiration = Expiry;
    type WorkerState = Reuse;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiry, Reuse>> {
        let mut store = Store::new(self.pre.engine(), self.factory.state());
        let service = self.pre.instantiate_async(&mut store).await?;
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: |state: &mut HostState| state.http(),
            expiration: Expiry {
                idle_timeout: self.idle_timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
            },
            state: Reuse {
                concurrency: self.concurrency,
            },
        })
    }
}

/// Drops an instance idle for its idle timeout; a request has no time limit, as in Spin.
pub struct Expiry {
    idle_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        if status != WorkerStatus::Idle {
            return Poll::Pending;
        }
        let Some(deadline) = start.checked_add(self.idle_timeout) else {
            return Poll::Pending;
        };
        let me = self.get_mut();
        let deadline = tokio::time::Instant::from_std(deadline);
        if me.sleep.deadline() != deadline {
            me.sleep.as_mut().reset(deadline);
        }
        me.sleep.as_mut().poll(cx)
    }
}

/// Spin's reuse limits.
pub struct Reuse {
    concurrency: usize,
}

impl WorkerState for Reuse {
    type StoreData = HostState;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= MAX_REUSE {
            ShouldAccept::Never
        } else if concurrent >= self.concurrency {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _: StoreContextMut<'_, HostState>,
        _: (),
        _: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>> {
        // No request timeout (Spin's default is none either).
        Box::pin(std::future::pending())
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        match result {
            Ok(()) => {}
            // The worker's task was dropped (the runtime shutting down); a panic is reported
            // by tokio itself.
            Err(error) if error.to_string() == "worker panicked" => {}
            Err(error) => eprintln!("ERROR host: a WASIp3 instance ended with an error: {error:#}"),
        }
        drop(store);
    }
}
