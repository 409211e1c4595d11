//! A small wasmtime host that runs this app's Spin components with Spin's interfaces and
//! behaviour (`wasi:http`, `wasi:keyvalue` on Spin's SQLite layout or Redis, Spin variables).
//! It is the app's second runtime (next to `spin up`): `scripts/run.sh`, the end-to-end suite
//! and the benchmark use it, and it serves the app on a machine without Spin.

pub mod access_log;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod cloud_manifest;
pub mod duration;
pub mod kv;
pub mod manifest;
pub mod manifest_edit;
pub mod metrics;
pub mod outbound;
pub mod p3_manifest;
pub mod routing;
pub mod runtime_config;
pub mod server;
pub mod single_label_manifest;
pub mod tls;
pub mod variables;

pub use server::{App, AppOptions, Stopped};
