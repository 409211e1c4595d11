//! Spin glue shared by every component: turns a Spin request into a core [`Request`], lends
//! the core a [`Platform`] built on Spin's interfaces, and writes the core's [`Response`].
//! Each component is one line naming what it may touch and its route, e.g.
//! `topup_spin::http_component!(ReadStore, ReadStore, NoHttp, routes::health::handle);`;
//! the grants are types, so a component links (and imports) only what it is granted.
//!
//! Two builds come from the same code. The default (WASIp2, spin-sdk 5.2) exports
//! `wasi:http/incoming-handler@0.2.0` and runs on every Spin and wasmtime host. With the `p3`
//! feature (spin-sdk 7) the component exports `wasi:http/handler@0.3.0` instead, which Spin
//! 4.1+ serves from reused instances; only the export and the request and response bodies
//! differ (`p2.rs`, `p3.rs`). The store, variables, outbound HTTP, clocks and randomness are
//! the same WASIp2-style imports in both, and nothing of a request outlives it: each request
//! opens its own buckets and reads its own variables.

mod http_client;
#[cfg(not(feature = "p3"))]
mod p2;
#[cfg(feature = "p3")]
mod p3;
mod store;

use topup_core::config::StoreLabels;
use topup_core::http::{Request, Response};
use topup_core::platform::{Clock, HttpClient, Platform, Random, VariableError, Variables};
use topup_core::routes::route::refuse_config;

pub use http_client::{NoHttp, SpinHttp};
#[cfg(not(feature = "p3"))]
pub use p2::serve;
#[cfg(feature = "p3")]
pub use p3::serve;
pub use store::{CounterStore, Grant, NoStore, ReadStore, Store, StoreGrant};

/// What the `http_component!` expansion needs from this crate's dependencies.
#[cfg(feature = "p3")]
#[doc(hidden)]
pub mod __private {
    pub use spin_sdk_p3::wasip3;
}

/// A core route: `topup_core::routes::<route>::handle`.
pub type Route = fn(&Request, &Platform) -> Response;

/// The component's HTTP export: serves every request with `$route`, granting `$records` on
/// label `default`, `$claims` on label `claims` (`default` when `kv_labels` is `single`) and
/// outbound HTTP `$http`. Expands to spin-sdk 5.2's `#[http_component]` (the component
/// depends on `spin-sdk`), or with the `p3` feature to the `wasi:http/handler@0.3.0` export.
#[cfg(not(feature = "p3"))]
#[macro_export]
macro_rules! http_component {
    ($records:ty, $claims:ty, $http:ty, $route:path $(,)?) => {
        #[::spin_sdk::http_component]
        fn handle(
            request: ::spin_sdk::http::IncomingRequest,
            response_out: ::spin_sdk::http::ResponseOutparam,
        ) {
            $crate::serve::<$records, $claims, $http>(request, response_out, $route);
        }
    };
}

/// The component's HTTP export: serves every request with `$route`, granting `$records` on
/// label `default`, `$claims` on label `claims` (`default` when `kv_labels` is `single`) and
/// outbound HTTP `$http`. Expands to spin-sdk 5.2's `#[http_component]` (the component
/// depends on `spin-sdk`), or with the `p3` feature to the `wasi:http/handler@0.3.0` export.
#[cfg(feature = "p3")]
#[macro_export]
macro_rules! http_component {
    ($records:ty, $claims:ty, $http:ty, $route:path $(,)?) => {
        struct TopupComponent;

        $crate::__private::wasip3::http::service::export!(TopupComponent);

        impl $crate::__private::wasip3::exports::http::handler::Guest for TopupComponent {
            async fn handle(
                request: $crate::__private::wasip3::http::types::Request,
            ) -> ::std::result::Result<
                $crate::__private::wasip3::http::types::Response,
                $crate::__private::wasip3::http::types::ErrorCode,
            > {
                $crate::serve::<$records, $claims, $http>(request, $route).await
            }
        }
    };
}

/// Runs `route` on `request` with the granted platform. Everything it opens is dropped
/// before it returns, so a reused instance starts the next request with nothing of this one.
fn run<Records, Claims, Http>(request: &Request, route: Route) -> Response
where
    Records: StoreGrant,
    Claims: StoreGrant,
    Http: HttpClient + Default,
{
    // `kv_labels` may put the claims in `default`; a component with no store reads nothing.
    let claims_label = if Claims::OPENS {
        match StoreLabels::load(&SpinVariables) {
            Ok(labels) => labels.claims(),
            Err(error) => return refuse_config(request, error),
        }
    } else {
        "claims"
    };
    let records = Records::open("default");
    let claims = Claims::open(claims_label);
    let http = Http::default();
    let platform = Platform {
        records: &records,
        claims: &claims,
        http: &http,
        clock: &SpinClock,
        random: &SpinRandom,
        variables: &SpinVariables,
    };
    route(request, &platform)
}

/// Queues `bytes` on an outgoing body stream, waiting only when the host has no room.
///
/// Not `blocking_write_and_flush`: that also waits until the host has taken the data out of
/// its buffer, a hand-off to the host's sending task on every body.
pub(crate) fn write_all(
    stream: &wasi::io::streams::OutputStream,
    mut bytes: &[u8],
) -> Result<(), wasi::io::streams::StreamError> {
    while !bytes.is_empty() {
        let room = match stream.check_write()? {
            0 => {
                stream.subscribe().block();
                continue;
            }
            room => usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len()),
        };
        stream.write(&bytes[..room])?;
        bytes = &bytes[room..];
    }
    Ok(())
}

/// Wall clock and sleeping through `wasi:clocks`.
struct SpinClock;

impl Clock for SpinClock {
    fn now_ms(&self) -> u64 {
        let now = wasi::clocks::wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
    }

    fn sleep(&self, duration: std::time::Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        wasi::clocks::monotonic_clock::subscribe_duration(nanos).block();
    }
}

/// Randomness through `wasi:random`.
struct SpinRandom;

impl Random for SpinRandom {
    fn fill(&self, buf: &mut [u8]) {
        let bytes = wasi::random::random::get_random_bytes(buf.len() as u64);
        for (slot, byte) in buf.iter_mut().zip(bytes) {
            *slot = byte;
        }
    }
}

/// Application variables through `fermyon:spin/variables`, read on every call: nothing is
/// cached, so a reused instance sees a changed value at its next read.
struct SpinVariables;

#[cfg(not(feature = "p3"))]
impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Result<String, VariableError> {
        spin_sdk::variables::get(name).map_err(|error| match error {
            spin_sdk::variables::Error::Undefined(_) => VariableError::Undefined,
            other => VariableError::Other(other.to_string()),
        })
    }
}

#[cfg(feature = "p3")]
impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Result<String, VariableError> {
        use p3::variables::{get, Error};
        get(name).map_err(|error| match error {
            Error::Undefined(_) => VariableError::Undefined,
            Error::InvalidName(m) | Error::Provider(m) | Error::Other(m) => VariableError::Other(m),
        })
    }
}
