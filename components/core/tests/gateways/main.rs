//! Duitku, Midtrans, Xendit and Tripay next to the Central PG: choosing a gateway at create,
//! each gateway's own callback (verified by its adapter, applied by the one money path), and
//! the Central PG's own secret.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod adversary;
mod callbacks;
#[path = "../common/mod.rs"]
mod common;
mod ledger;
mod reconciliation;
mod support;
