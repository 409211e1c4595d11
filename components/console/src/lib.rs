//! Spin component serving `GET /console`, the operator console's page.
#![allow(
    unsafe_code,
    reason = "http_component! expands to the unsafe export glue"
)]

use topup_spin::{NoHttp, NoStore};

topup_spin::http_component!(
    NoStore,
    NoStore,
    NoHttp,
    topup_core::routes::console::handle
);
