//! A small wasmtime host that runs this app's Spin components with Spin's interfaces and
//! behaviour (`wasi:http`, `wasi:keyvalue` on Spin's SQLite layout or Redis, Spin variables).
//! It exists because the Spin CLI is not installable from the package registries our machines
//! reach: tests, benchmarks and `scripts/run.sh` use it when `spin` is absent.

pub mod cache;
pub mod kv;
pub mod manifest;
pub mod mocks;
pub mod outbound;
pub mod routing;
pub mod runtime_config;
pub mod server;
pub mod testkit;
pub mod variables;

pub use server::{App, AppOptions};
