//! End-to-end suite: the real `.wasm` components on the test host, over real HTTP, against
//! Spin's SQLite store and a real Redis, with the Central PG and the bot mocked over HTTP.
//! Every scenario runs once per backend (`sqlite::` and `redis::` test names), except the
//! several-process ones, which need one shared Redis. The suite runs the default WASIp2 build;
//! `E2E_BUILD=p3` runs the same scenarios on the WASIp3 build (spin.p3.toml), and
//! `E2E_LABELS=single` with everything in the `default` label (spin.single-label.toml).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

mod alerts;
mod api;
mod bots;
mod console;
mod create_race;
mod faults;
mod gateways;
mod host_behaviour;
mod instances;
mod labels;
mod local_mode;
mod operations;
mod outbound;
mod receivers;
mod refusals;
mod responses;
mod retention;
mod reuse;
mod store_timeout;
mod support;
mod sweep_faults;
mod tls;
