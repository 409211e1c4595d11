//! Spin component serving `POST /callback/xendit`.
#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the unsafe export glue"
)]

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use topup_spin::{CounterStore, SpinHttp};

#[http_component]
fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    topup_spin::serve::<CounterStore, CounterStore, SpinHttp>(
        request,
        response_out,
        topup_core::routes::gateway_callback::xendit,
    );
}
