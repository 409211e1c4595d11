//! The service's use cases, one per file: create a deposit, apply a payment callback, sweep
//! (deliver due credits, recover orphaned payments, expire), retry one credit by hand; and
//! what they share (taking a delivery over, a deposit's life).

pub mod alerts;
pub mod create;
pub mod delivery;
pub mod expiry;
pub mod life;
pub mod payment;
pub mod reconcile;
pub mod retry;
pub mod sweep;
pub mod walk;
