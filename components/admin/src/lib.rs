//! Spin component serving `GET /admin/deposits` and `GET /admin/deposits/{id}`.
#![allow(
    unsafe_code,
    reason = "http_component! expands to the unsafe export glue"
)]

use topup_spin::{NoHttp, ReadStore};

topup_spin::http_component!(
    ReadStore,
    ReadStore,
    NoHttp,
    topup_core::routes::admin::handle
);
