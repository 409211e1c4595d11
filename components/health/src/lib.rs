//! Spin component serving `GET /health`.
#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the unsafe export glue"
)]

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use topup_spin::{NoHttp, ReadStore};

#[http_component]
fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    topup_spin::serve::<ReadStore, ReadStore, NoHttp>(
        request,
        response_out,
        topup_core::routes::health::handle,
    );
}
