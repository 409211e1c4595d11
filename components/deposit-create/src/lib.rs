//! Spin component serving `POST /deposit/create`.
#![allow(
    unsafe_code,
    reason = "http_component! expands to the unsafe export glue"
)]

use topup_spin::{CounterStore, SpinHttp, Store};

topup_spin::http_component!(
    Store,
    CounterStore,
    SpinHttp,
    topup_core::routes::create::handle
);
