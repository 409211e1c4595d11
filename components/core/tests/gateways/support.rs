//! What the gateway tests share: the gateways' credentials, a create at a gateway, sending a
//! notification to its route, and what each gateway takes as "received".

use crate::common::*;
use topup_core::routes::gateway_callback;

pub const DUITKU_KEY: &str = "duitku-api-key";
pub const MIDTRANS_KEY: &str = "SB-Mid-server-key";
pub const XENDIT_TOKEN: &str = "xendit-callback-token";
pub const TRIPAY_PRIVATE: &str = "tripay-private-key";

/// The gateways with their own callback route.
pub const GATEWAYS: [&str; 4] = ["duitku", "midtrans", "xendit", "tripay"];

/// Creates deposit `id` for user `u1` at `gateway` (asserts 200).
pub fn create_at(p: &TestPlatform, gateway: &str, id: &str, amount: u64) -> Value {
    let response = create(
        p,
        json!({"userId": "u1", "amount": amount, "depositId": id, "gateway": gateway,
               "email": "buyer@example.com"}),
    );
    assert_eq!(response.status, 200, "{}", response.json_body());
    response.json_body()
}

/// Sends a notification to its gateway's route.
pub fn notify(p: &TestPlatform, gateway: &str, request: &Request) -> Response {
    let handle = match gateway {
        "duitku" => gateway_callback::duitku,
        "midtrans" => gateway_callback::midtrans,
        "xendit" => gateway_callback::xendit,
        "tripay" => gateway_callback::tripay,
        other => panic!("no gateway {other}"),
    };
    handle(request, &p.platform())
}

/// The answer each gateway takes as "received".
pub fn acknowledged(gateway: &str, response: &Response) {
    assert_eq!(response.status, 200, "{}", response.json_body());
    if gateway == "tripay" {
        assert_eq!(response.json_body(), json!({"success": true}));
    } else {
        assert_eq!(response.body, b"OK");
    }
}

/// Status queries sent so far.
pub fn status_queries(p: &TestPlatform) -> usize {
    p.http
        .requests()
        .iter()
        .filter(|r| {
            r.url.contains("transactionStatus")
                || r.url.ends_with("/status")
                || r.url.contains("/v2/invoices/")
                || r.url.contains("/transaction/detail")
        })
        .count()
}
