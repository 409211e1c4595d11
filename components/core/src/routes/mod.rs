//! The HTTP routes. Each route module exposes `handle(request, platform) -> Response`; the
//! shared checks (CORS, preflight, method, auth, body size, content type) live in
//! [`route::serve`].

pub mod admin;
pub mod admin_action;
pub mod callback;
pub mod console;
pub mod create;
pub mod gateway_callback;
pub mod health;
pub mod manual_retry;
pub mod openapi;
pub mod route;
pub mod status;
pub mod sweep;

pub use route::Route;

/// Every route: its path (as in spin.toml) and its declaration. Not yet here, nor in
/// openapi.json: the console's CSV, quarantine, bulk resend, review closed and reconcile
/// (served by the same components).
pub const ALL: &[(&str, &Route)] = &[
    ("/health", &health::ROUTE),
    ("/deposit/create", &create::ROUTE),
    ("/internal/payment-callback", &callback::ROUTE),
    ("/deposit/status", &status::ROUTE),
    ("/internal/credit-retry", &sweep::ROUTE),
    ("/deposit/retry-credit", &manual_retry::ROUTE),
    ("/callback/duitku", &gateway_callback::DUITKU),
    ("/callback/midtrans", &gateway_callback::MIDTRANS),
    ("/callback/xendit", &gateway_callback::XENDIT),
    ("/callback/tripay", &gateway_callback::TRIPAY),
    ("/admin/deposits", &admin::ROUTE),
    ("/admin/action/resend", &admin_action::RESEND),
    (
        "/admin/action/refund-handled",
        &admin_action::REFUND_HANDLED,
    ),
    ("/console", &console::ROUTE),
];
