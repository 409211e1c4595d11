//! Spin component serving `POST /admin/action/resend` and `POST /admin/action/refund-handled`.
#![allow(
    unsafe_code,
    reason = "http_component! expands to the unsafe export glue"
)]

use topup_spin::{CounterStore, SpinHttp};

topup_spin::http_component!(
    CounterStore,
    CounterStore,
    SpinHttp,
    topup_core::routes::admin_action::handle
);
