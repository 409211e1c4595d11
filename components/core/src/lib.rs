//! Domain core of bot-topup-backend.
//!
//! Every rule of the service lives here: request validation, bearer auth, HMAC signatures,
//! the replay guard, the TTL envelope, the deposit state machine, the payment-gateway and bot
//! protocols and the mapping of errors to HTTP. The core reaches the outside world only through
//! the small traits in [`platform`], so it runs natively in tests and inside Spin components.
//!
//! Layers, outside in: [`routes`] (HTTP shape: method, auth, body, errors) → [`flow`] (one use
//! case per file) → [`store`] (key layout, typed reads and writes, schedules) over the records
//! in [`deposit`] and [`credit`]; [`gateway`] and [`bot`] speak the two upstream protocols.

pub mod alert;
pub mod bot;
pub mod config;
pub mod console;
pub mod credit;
pub mod deposit;
pub mod envelope;
pub mod error;
pub mod flow;
pub mod gateway;
pub mod http;
pub mod ids;
pub mod platform;
pub mod replay;
pub mod routes;
pub mod schema;
pub mod signature;
pub mod store;
pub mod view;

#[cfg(feature = "testing")]
pub mod testing;

/// Service name reported by `/health`.
pub const SERVICE_NAME: &str = "bot-topup-backend";

/// Version reported by `/health` (the core crate's version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
