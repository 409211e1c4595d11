//! The gateways' upstreams as the core sees them, and notices signed as each gateway signs.

use crate::common::*;
use md5::Md5;
use sha2::{Digest, Sha512};
use topup_core::routes::gateway_callback;
use topup_core::testing::test_variables;

pub const DUITKU_KEY: &str = "duitku-api-key";
pub const MIDTRANS_KEY: &str = "SB-Mid-server-key";
pub const XENDIT_TOKEN: &str = "xendit-callback-token";
pub const TRIPAY_PRIVATE: &str = "tripay-private-key";

/// What each gateway's status query answers, by order id: `paid`, `pending` or `expired`
/// (absent: the gateway does not know the order).
pub type Statuses = Arc<std::sync::Mutex<std::collections::HashMap<String, &'static str>>>;

/// Every gateway enabled, Duitku with `duitku_signature`.
pub fn gateways_platform(duitku_signature: &str) -> TestPlatform {
    gateways_platform_with(duitku_signature, Statuses::default())
}

/// Every gateway enabled; status queries answer from `statuses`.
pub fn gateways_platform_with(duitku_signature: &str, statuses: Statuses) -> TestPlatform {
    let mut p = TestPlatform::new();
    p.variables = test_variables()
        .with("gateways_enabled", "central,duitku,midtrans,xendit,tripay")
        .with("public_base_url", "https://topup.example")
        .with("duitku_merchant_code", "DXXXX")
        .with("duitku_api_key", DUITKU_KEY)
        .with("duitku_signature", duitku_signature)
        .with("midtrans_server_key", MIDTRANS_KEY)
        .with("xendit_secret_key", "xnd_development_key")
        .with("xendit_callback_token", XENDIT_TOKEN)
        .with("tripay_merchant_code", "T0001")
        .with("tripay_api_key", "DEV-key")
        .with("tripay_private_key", TRIPAY_PRIVATE);
    p.http.set_handler(move |request| {
        status_answer(request, &statuses).unwrap_or_else(|| gateway_upstreams(request))
    });
    p
}

/// The amount every reconciliation test pays.
pub const AMOUNT: u64 = 50_000;

/// A status query's answer, as each gateway gives it; `None` for any other request.
pub fn status_answer(
    request: &OutboundRequest,
    statuses: &Statuses,
) -> Option<Result<OutboundResponse, TransportError>> {
    let url = request.url.as_str();
    let status_of = |order: &str| statuses.lock().unwrap().get(order).copied();
    let not_found = || {
        Ok(OutboundResponse {
            status: 404,
            body: b"{}".to_vec(),
        })
    };
    if url == "https://api-sandbox.duitku.com/api/merchant/transactionStatus" {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let order = body["merchantOrderId"].as_str().unwrap_or("").to_string();
        let code = match status_of(&order)? {
            "paid" => "00",
            "pending" => "01",
            _ => "02",
        };
        return Some(ok_json(
            json!({"merchantOrderId": order, "reference": format!("DK-{order}"),
            "amount": AMOUNT.to_string(), "fee": "0", "statusCode": code, "statusMessage": "x"}),
        ));
    }
    if let Some(order) = url
        .strip_prefix("https://api.sandbox.midtrans.com/v2/")
        .and_then(|rest| rest.strip_suffix("/status"))
    {
        let Some(status) = status_of(order) else {
            return Some(not_found());
        };
        let (transaction, code) = match status {
            "paid" => ("settlement", "200"),
            "pending" => ("pending", "201"),
            _ => ("expire", "407"),
        };
        return Some(ok_json(json!({"order_id": order, "status_code": code,
            "transaction_status": transaction, "gross_amount": format!("{AMOUNT}.00"),
            "fraud_status": "accept", "payment_type": "qris"})));
    }
    if let Some(order) = url.strip_prefix("https://api.xendit.co/v2/invoices/XI-") {
        let Some(status) = status_of(order) else {
            return Some(not_found());
        };
        let status = match status {
            "paid" => "PAID",
            "pending" => "PENDING",
            _ => "EXPIRED",
        };
        return Some(ok_json(
            json!({"id": format!("XI-{order}"), "external_id": order,
            "status": status, "amount": AMOUNT}),
        ));
    }
    if let Some(order) =
        url.strip_prefix("https://tripay.co.id/api-sandbox/transaction/detail?reference=TP-")
    {
        let Some(status) = status_of(order) else {
            return Some(not_found());
        };
        let status = match status {
            "paid" => "PAID",
            "pending" => "UNPAID",
            _ => "EXPIRED",
        };
        return Some(ok_json(json!({"success": true, "message": "", "data": {
            "reference": format!("TP-{order}"), "merchant_ref": order, "status": status,
            "amount": AMOUNT, "total_amount": AMOUNT + 750, "fee_customer": 750}})));
    }
    None
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

/// Each gateway's create answer, with a reference derived from the order id; the bot and the
/// Central PG as in [`happy_upstreams`].
pub fn gateway_upstreams(request: &OutboundRequest) -> Result<OutboundResponse, TransportError> {
    let json_body = || serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
    let url = request.url.as_str();
    if url == "https://api-sandbox.duitku.com/api/merchant/createInvoice" {
        let order = json_body()["merchantOrderId"]
            .as_str()
            .unwrap_or("")
            .to_string();
        ok_json(
            json!({"merchantCode": "DXXXX", "reference": format!("DK-{order}"),
            "paymentUrl": format!("https://pay.duitku.test/{order}"), "statusCode": "00",
            "statusMessage": "SUCCESS"}),
        )
    } else if url == "https://app.sandbox.midtrans.com/snap/v1/transactions" {
        let order = json_body()["transaction_details"]["order_id"]
            .as_str()
            .unwrap_or("")
            .to_string();
        Ok(OutboundResponse {
            status: 201,
            body: json!({"token": format!("MT-{order}"),
                "redirect_url": format!("https://app.sandbox.midtrans.com/snap/v2/vtweb/MT-{order}")})
            .to_string()
            .into_bytes(),
        })
    } else if url == "https://api.xendit.co/v2/invoices" {
        let order = json_body()["external_id"]
            .as_str()
            .unwrap_or("")
            .to_string();
        ok_json(
            json!({"id": format!("XI-{order}"), "external_id": order, "status": "PENDING",
            "invoice_url": format!("https://checkout.xendit.test/XI-{order}")}),
        )
    } else if url == "https://tripay.co.id/api-sandbox/transaction/create" {
        let form: Vec<(String, String)> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        let order = form
            .iter()
            .find(|(k, _)| k == "merchant_ref")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        ok_json(
            json!({"success": true, "message": "", "data": {"reference": format!("TP-{order}"),
            "merchant_ref": order, "checkout_url": format!("https://tripay.test/checkout/TP-{order}"),
            "status": "UNPAID"}}),
        )
    } else {
        happy_upstreams(request)
    }
}

/// Creates deposit `id` at `gateway` (asserts 200).
pub fn create_at(p: &TestPlatform, gateway: &str, id: &str, amount: u64) -> Value {
    let response = create(
        p,
        json!({"userId": "u1", "amount": amount, "depositId": id, "gateway": gateway}),
    );
    assert_eq!(response.status, 200, "{}", response.json_body());
    response.json_body()
}

/// What a gateway's notification says.
#[derive(Clone, Copy)]
pub enum Says {
    Paid,
    Expired,
}

/// A notification of `gateway` for deposit `id`, signed as that gateway signs it.
pub fn notification(gateway: &str, id: &str, amount: u64, says: Says, legacy: bool) -> Request {
    let request = |path: &str, content_type: &str, body: String| {
        Request::new("POST", path)
            .with_header("content-type", content_type)
            .with_body(body)
    };
    match gateway {
        "duitku" => {
            let amount = amount.to_string();
            let message = format!("DXXXX{amount}{id}");
            let signature = if legacy {
                hex::encode(Md5::digest(format!("{message}{DUITKU_KEY}")))
            } else {
                sign(&Secret::new(DUITKU_KEY), message.as_bytes())
            };
            let code = match says {
                Says::Paid => "00",
                Says::Expired => "02",
            };
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("merchantCode", "DXXXX")
                .append_pair("amount", &amount)
                .append_pair("merchantOrderId", id)
                .append_pair("productDetail", "Top up")
                .append_pair("paymentCode", "VC")
                .append_pair("resultCode", code)
                .append_pair("reference", &format!("DK-{id}"))
                .append_pair("signature", &signature)
                .finish();
            request(
                "/callback/duitku",
                "application/x-www-form-urlencoded",
                body,
            )
        }
        "midtrans" => {
            let (status, code) = match says {
                Says::Paid => ("settlement", "200"),
                Says::Expired => ("expire", "407"),
            };
            let gross = format!("{amount}.00");
            let signature = hex::encode(Sha512::digest(format!("{id}{code}{gross}{MIDTRANS_KEY}")));
            let body = json!({"transaction_status": status, "status_code": code,
                "signature_key": signature, "payment_type": "qris", "order_id": id,
                "gross_amount": gross, "fraud_status": "accept", "currency": "IDR",
                "transaction_id": "t-1"});
            request("/callback/midtrans", "application/json", body.to_string())
        }
        "xendit" => {
            let status = match says {
                Says::Paid => "PAID",
                Says::Expired => "EXPIRED",
            };
            let body = json!({"id": format!("XI-{id}"), "external_id": id, "status": status,
                "amount": amount, "paid_amount": amount, "payment_channel": "BCA"});
            request("/callback/xendit", "application/json", body.to_string())
                .with_header("x-callback-token", XENDIT_TOKEN)
        }
        "tripay" => {
            let status = match says {
                Says::Paid => "PAID",
                Says::Expired => "EXPIRED",
            };
            let body = json!({"reference": format!("TP-{id}"), "merchant_ref": id,
                "payment_method_code": "QRIS", "total_amount": amount + 750,
                "fee_merchant": 0, "fee_customer": 750, "amount_received": amount,
                "is_closed_payment": 1, "status": status, "paid_at": 1_700_000_000})
            .to_string();
            let signature = sign(&Secret::new(TRIPAY_PRIVATE), body.as_bytes());
            request("/callback/tripay", "application/json", body)
                .with_header("x-callback-event", "payment_status")
                .with_header("x-callback-signature", &signature)
        }
        other => panic!("no gateway {other}"),
    }
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

pub const GATEWAYS: [&str; 4] = ["duitku", "midtrans", "xendit", "tripay"];
