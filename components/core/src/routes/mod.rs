//! The HTTP routes. Each route module exposes `handle(request, platform) -> Response`; the
//! shared checks (CORS, preflight, method, auth, body size, content type) live in
//! [`route::serve`].

pub mod admin;
pub mod admin_action;
pub mod alerts;
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

/// Every route: its path (as in spin.toml, or under one of the console's wildcards there)
/// and its declaration; openapi.json documents each. A declaration may serve several paths:
/// `admin::ROUTE` serves the console's list, its CSV and the quarantine (and one deposit,
/// `/admin/deposits/{id}`, under the list's path).
pub const ALL: &[(&str, &Route)] = &[
    ("/health", &health::ROUTE),
    ("/deposit/create", &create::ROUTE),
    ("/internal/payment-callback", &callback::ROUTE),
    ("/deposit/status", &status::ROUTE),
    ("/internal/credit-retry", &sweep::ROUTE),
    ("/deposit/retry-credit", &manual_retry::ROUTE),
    ("/internal/alerts", &alerts::ROUTE),
    ("/callback/duitku", &gateway_callback::DUITKU),
    ("/callback/midtrans", &gateway_callback::MIDTRANS),
    ("/callback/xendit", &gateway_callback::XENDIT),
    ("/callback/tripay", &gateway_callback::TRIPAY),
    ("/admin/deposits", &admin::ROUTE),
    ("/admin/deposits.csv", &admin::ROUTE),
    ("/admin/quarantine", &admin::ROUTE),
    ("/admin/action/resend", &admin_action::RESEND),
    ("/admin/action/bulk-resend", &admin_action::BULK_RESEND),
    (
        "/admin/action/refund-handled",
        &admin_action::REFUND_HANDLED,
    ),
    ("/admin/action/review-closed", &admin_action::REVIEW_CLOSED),
    ("/admin/action/reconcile", &admin_action::RECONCILE),
    ("/console", &console::ROUTE),
];
