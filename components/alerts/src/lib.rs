//! Spin component serving `POST /internal/alerts`.
#![allow(
    unsafe_code,
    reason = "http_component! expands to the unsafe export glue"
)]

use topup_spin::{CounterStore, SpinHttp};

topup_spin::http_component!(
    CounterStore,
    CounterStore,
    SpinHttp,
    topup_core::routes::alerts::handle
);
