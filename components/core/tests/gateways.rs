//! Duitku, Midtrans, Xendit and Tripay next to the Central PG: choosing a gateway at create,
//! each gateway's own callback (verified by its adapter, applied by the one money path), and
//! the Central PG's own secret.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use common::*;
use md5::Md5;
use sha2::{Digest, Sha512};
use topup_core::routes::gateway_callback;
use topup_core::testing::test_variables;

const DUITKU_KEY: &str = "duitku-api-key";
const MIDTRANS_KEY: &str = "SB-Mid-server-key";
const XENDIT_TOKEN: &str = "xendit-callback-token";
const TRIPAY_PRIVATE: &str = "tripay-private-key";

/// What each gateway's status query answers, by order id: `paid`, `pending` or `expired`
/// (absent: the gateway does not know the order).
type Statuses = Arc<std::sync::Mutex<std::collections::HashMap<String, &'static str>>>;

/// Every gateway enabled, Duitku with `duitku_signature`.
fn gateways_platform(duitku_signature: &str) -> TestPlatform {
    gateways_platform_with(duitku_signature, Statuses::default())
}

/// Every gateway enabled; status queries answer from `statuses`.
fn gateways_platform_with(duitku_signature: &str, statuses: Statuses) -> TestPlatform {
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
const AMOUNT: u64 = 50_000;

/// A status query's answer, as each gateway gives it; `None` for any other request.
fn status_answer(
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
fn status_queries(p: &TestPlatform) -> usize {
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
fn gateway_upstreams(request: &OutboundRequest) -> Result<OutboundResponse, TransportError> {
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
fn create_at(p: &TestPlatform, gateway: &str, id: &str, amount: u64) -> Value {
    let response = create(
        p,
        json!({"userId": "u1", "amount": amount, "depositId": id, "gateway": gateway}),
    );
    assert_eq!(response.status, 200, "{}", response.json_body());
    response.json_body()
}

/// What a gateway's notification says.
#[derive(Clone, Copy)]
enum Says {
    Paid,
    Expired,
}

/// A notification of `gateway` for deposit `id`, signed as that gateway signs it.
fn notification(gateway: &str, id: &str, amount: u64, says: Says, legacy: bool) -> Request {
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
fn notify(p: &TestPlatform, gateway: &str, request: &Request) -> Response {
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
fn acknowledged(gateway: &str, response: &Response) {
    assert_eq!(response.status, 200, "{}", response.json_body());
    if gateway == "tripay" {
        assert_eq!(response.json_body(), json!({"success": true}));
    } else {
        assert_eq!(response.body, b"OK");
    }
}

const GATEWAYS: [&str; 4] = ["duitku", "midtrans", "xendit", "tripay"];

#[test]
fn each_gateway_creates_its_invoice_and_its_callback_credits_once() {
    for gateway in GATEWAYS {
        let p = gateways_platform("hmac");
        let id = format!("DEP-{gateway}");
        let created = create_at(&p, gateway, &id, 50_000);
        assert!(created["paymentUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://"));
        let outbound = p.http.requests();
        assert_eq!(outbound.len(), 1, "{gateway}: one create call");
        assert!(!outbound[0].url.starts_with("http://pg.test"), "{gateway}");

        let paid = notification(gateway, &id, 50_000, Says::Paid, false);
        acknowledged(gateway, &notify(&p, gateway, &paid));
        let v = view(&p, &id);
        assert_eq!(
            (v["status"].as_str(), v["credited"].as_bool()),
            (Some("PAID"), Some(true)),
            "{gateway}"
        );
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
        assert_eq!(credits_sent(&p, &id)[0]["amount"], 50_000, "{gateway}");

        // The gateway's retry: answered the same, nothing more stored or credited.
        let snapshot = store_snapshot(&p);
        acknowledged(gateway, &notify(&p, gateway, &paid));
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
        assert_eq!(store_snapshot(&p), snapshot, "{gateway}");

        // An expiry after the payment never undoes it.
        let expired = notification(gateway, &id, 50_000, Says::Expired, false);
        acknowledged(gateway, &notify(&p, gateway, &expired));
        assert_eq!(view(&p, &id)["status"], "PAID", "{gateway}");
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
    }
}

#[test]
fn duitku_legacy_signatures_when_configured() {
    let p = gateways_platform("legacy");
    create_at(&p, "duitku", "DEP-L", 20_000);
    // An HMAC-signed callback is refused while the account uses legacy signatures.
    let hmac = notification("duitku", "DEP-L", 20_000, Says::Paid, false);
    assert_eq!(notify(&p, "duitku", &hmac).status, 401);
    let legacy = notification("duitku", "DEP-L", 20_000, Says::Paid, true);
    acknowledged("duitku", &notify(&p, "duitku", &legacy));
    assert_eq!(credits_sent(&p, "DEP-L").len(), 1);
}

/// `request` with its body changed (the amount raised) and its signature kept.
fn tampered(request: &Request) -> Request {
    let body = String::from_utf8(request.body.clone())
        .unwrap()
        .replacen("50000", "5000000", 1);
    let mut forged = request.clone();
    forged.body = body.into_bytes();
    forged
}

/// `request` without the header or field that authenticates it.
fn unsigned(gateway: &str, request: &Request) -> Request {
    let mut stripped = request.clone();
    let header = match gateway {
        "xendit" => "x-callback-token",
        "tripay" => "x-callback-signature",
        _ => "",
    };
    stripped.headers.retain(|(name, _)| name != header);
    if gateway == "duitku" {
        let body = String::from_utf8(request.body.clone()).unwrap();
        let kept: Vec<&str> = body
            .split('&')
            .filter(|f| !f.starts_with("signature="))
            .collect();
        stripped.body = kept.join("&").into_bytes();
    }
    if gateway == "midtrans" {
        let mut body: Value = serde_json::from_slice(&request.body).unwrap();
        body["signature_key"] = json!("00");
        stripped.body = body.to_string().into_bytes();
    }
    stripped
}

#[test]
fn forged_or_unsigned_callbacks_are_refused_and_change_nothing() {
    for gateway in GATEWAYS {
        let p = gateways_platform("hmac");
        let id = format!("DEP-{gateway}");
        create_at(&p, gateway, &id, 50_000);
        let paid = notification(gateway, &id, 50_000, Says::Paid, false);
        let snapshot = store_snapshot(&p);
        // Xendit signs no body: its token is the proof, so a wrong token stands for the forgery.
        let forged = if gateway == "xendit" {
            let mut wrong = unsigned(gateway, &paid);
            wrong
                .headers
                .push(("x-callback-token".into(), Some("guess".into())));
            wrong
        } else {
            tampered(&paid)
        };
        for forged in [forged, unsigned(gateway, &paid)] {
            let response = notify(&p, gateway, &forged);
            assert_eq!(response.status, 401, "{gateway}: {}", response.json_body());
            assert_eq!(response.json_body()["ok"], false, "{gateway}");
            assert_eq!(
                response.json_body()["error"],
                "INVALID_SIGNATURE",
                "{gateway}"
            );
        }
        assert_eq!(store_snapshot(&p), snapshot, "{gateway}");
        assert!(credits_sent(&p, &id).is_empty(), "{gateway}");
        assert_eq!(view(&p, &id)["status"], "PENDING", "{gateway}");
    }
}

#[test]
fn the_money_rules_hold_for_every_gateway() {
    for gateway in GATEWAYS {
        let p = gateways_platform("hmac");
        let id = format!("DEP-{gateway}");
        create_at(&p, gateway, &id, 50_000);
        // An expiry first, then the payment: FAILED → PAID is allowed.
        let expired = notification(gateway, &id, 50_000, Says::Expired, false);
        acknowledged(gateway, &notify(&p, gateway, &expired));
        assert_eq!(view(&p, &id)["status"], "FAILED", "{gateway}");
        // A payment of another amount is not credited.
        let short = notification(gateway, &id, 40_000, Says::Paid, false);
        acknowledged(gateway, &notify(&p, gateway, &short));
        assert!(credits_sent(&p, &id).is_empty(), "{gateway}");
        let paid = notification(gateway, &id, 50_000, Says::Paid, false);
        acknowledged(gateway, &notify(&p, gateway, &paid));
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
        assert_eq!(view(&p, &id)["status"], "PAID", "{gateway}");
    }
}

#[test]
fn a_notice_of_another_gateway_pays_nothing() {
    let p = gateways_platform("hmac");
    create_at(&p, "duitku", "DEP-X", 50_000);
    let snapshot = store_snapshot(&p);
    // A genuine Midtrans notice for the same order id (say, a transaction made by hand there):
    // it carries no reference, so only the deposit's gateway tells it apart.
    let midtrans = notification("midtrans", "DEP-X", 50_000, Says::Paid, false);
    let response = notify(&p, "midtrans", &midtrans);
    assert_eq!(response.status, 409);
    assert_eq!(response.json_body()["error"], "GATEWAY_MISMATCH");
    // Xendit's and the Central PG's carry a reference that is not this deposit's invoice.
    let xendit = notification("xendit", "DEP-X", 50_000, Says::Paid, false);
    assert_eq!(notify(&p, "xendit", &xendit).status, 409);
    assert_eq!(callback(&p, &paid_body("DEP-X", 50_000)).status, 409);
    assert_eq!(store_snapshot(&p), snapshot);
    assert!(credits_sent(&p, "DEP-X").is_empty());
}

#[test]
fn create_refuses_unknown_and_disabled_gateways() {
    let p = platform();
    for (gateway, code) in [
        (json!("paypal"), "INVALID_GATEWAY"),
        (json!(7), "INVALID_GATEWAY"),
        (json!("xendit"), "GATEWAY_DISABLED"),
    ] {
        let response = create(
            &p,
            json!({"userId": "u1", "amount": 5000, "gateway": gateway}),
        );
        assert_eq!(response.status, 400, "{gateway}");
        let body = response.json_body();
        assert_eq!(body["error"], code, "{body}");
        assert_eq!(body["detail"]["field"], "gateway");
    }
    assert!(p.http.requests().is_empty());
    assert_eq!(store_snapshot(&p), Default::default());
    // `central` by name is the default's invoice.
    let response = create(
        &p,
        json!({"userId": "u1", "amount": 5000, "gateway": "central"}),
    );
    assert_eq!(response.status, 200);
    assert!(p.http.requests()[0].url.starts_with("http://pg.test"));
}

#[test]
fn a_repeated_create_must_name_the_same_gateway() {
    let p = gateways_platform("hmac");
    create_at(&p, "midtrans", "DEP-R", 50_000);
    let again = create(
        &p,
        json!({"userId": "u1", "amount": 50_000, "depositId": "DEP-R", "gateway": "midtrans"}),
    );
    assert_eq!(again.json_body()["replayed"], true);
    let other = create(
        &p,
        json!({"userId": "u1", "amount": 50_000, "depositId": "DEP-R", "gateway": "xendit"}),
    );
    assert_eq!(other.status, 409);
    assert_eq!(other.json_body()["error"], "DEPOSIT_CONFLICT");
}

#[test]
fn the_central_pg_may_have_its_own_secret() {
    let mut p = platform();
    p.variables = test_variables().with("pg_shared_secret", "pg-secret");
    let created = create(&p, json!({"userId": "u1", "amount": 5000})).json_body();
    let id = created["depositId"].as_str().unwrap().to_string();
    // The create call is signed with the PG's secret, not the bot's.
    let call = &p.http.requests()[0];
    assert!(call
        .headers
        .contains(&("authorization".into(), "Bearer pg-secret".into())));
    let signature = &call
        .headers
        .iter()
        .find(|(k, _)| k == "x-signature")
        .unwrap()
        .1;
    assert!(verify_signature(
        [&Secret::new("pg-secret")],
        &call.body,
        signature
    ));

    // A callback made with the bot's secret is refused: holding it no longer forges PAID.
    let snapshot = store_snapshot(&p);
    let response = callback(&p, &paid_body(&id, 5000));
    assert_eq!(response.status, 401);
    assert_eq!(store_snapshot(&p), snapshot);
    let body = paid_body(&id, 5000);
    let as_pg = Request::new("POST", "/internal/payment-callback")
        .with_header("authorization", "Bearer pg-secret")
        .with_header("content-type", "application/json")
        .with_header(
            "x-signature",
            &sign(&Secret::new("pg-secret"), body.as_bytes()),
        )
        .with_body(body);
    let response = routes::callback::handle(&as_pg, &p.platform());
    assert_eq!(response.status, 200, "{}", response.json_body());
    assert_eq!(credits_sent(&p, &id).len(), 1);
    // The bot's routes still take the bot's secret only.
    assert_eq!(status(&p, &format!("depositId={id}")).status, 200);
}

/// The default `reconcile_after_seconds`, and a bucket's margin past it.
const FIRST_CHECK: Duration = Duration::from_secs(600 + 15);

#[test]
fn a_lost_callback_is_reconciled_and_credited_once() {
    for gateway in GATEWAYS {
        let statuses = Statuses::default();
        let p = gateways_platform_with("hmac", statuses.clone());
        let id = format!("DEP-{gateway}");
        create_at(&p, gateway, &id, AMOUNT);
        // Too early: nothing is asked.
        let report = sweep(&p);
        assert!(
            report.get("reconciliation").is_none(),
            "{gateway}: {report}"
        );
        assert_eq!(status_queries(&p), 0, "{gateway}");

        // The buyer paid; the callback was lost.
        statuses.lock().unwrap().insert(id.clone(), "paid");
        p.clock.advance(FIRST_CHECK);
        let report = sweep(&p);
        assert_eq!(
            report["reconciliation"],
            json!({"checked": 1, "paid": 1, "failed": 0, "pending": 0, "errors": 0, "skipped": 0}),
            "{gateway}"
        );
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
        assert_eq!(view(&p, &id)["status"], "PAID", "{gateway}");

        // The callback arrives late: acknowledged, nothing more.
        let paid = notification(gateway, &id, AMOUNT, Says::Paid, false);
        acknowledged(gateway, &notify(&p, gateway, &paid));
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
        // And no further check is ever made.
        p.clock.advance(Duration::from_secs(2 * 86_400));
        sweep(&p);
        assert_eq!(status_queries(&p), 1, "{gateway}");
    }
}

#[test]
fn a_paid_callback_ends_the_checks() {
    let p = gateways_platform("hmac");
    create_at(&p, "xendit", "DEP-C", AMOUNT);
    let paid = notification("xendit", "DEP-C", AMOUNT, Says::Paid, false);
    acknowledged("xendit", &notify(&p, "xendit", &paid));
    p.clock.advance(FIRST_CHECK);
    let report = sweep(&p);
    assert!(report.get("reconciliation").is_none(), "{report}");
    assert_eq!(status_queries(&p), 0);
    assert_eq!(credits_sent(&p, "DEP-C").len(), 1);
}

#[test]
fn pending_deposits_are_checked_on_a_backoff_until_they_end() {
    let statuses = Statuses::default();
    let p = gateways_platform_with("hmac", statuses.clone());
    create_at(&p, "midtrans", "DEP-B", AMOUNT);
    statuses.lock().unwrap().insert("DEP-B".into(), "pending");
    p.clock.advance(FIRST_CHECK);
    assert_eq!(sweep(&p)["reconciliation"]["pending"], 1);
    // The next check is 600 s later (the first step of reconcile_schedule), not every sweep.
    for _ in 0..5 {
        p.clock.advance(Duration::from_secs(60));
        sweep(&p);
    }
    assert_eq!(status_queries(&p), 1);
    p.clock.advance(Duration::from_secs(315));
    assert_eq!(sweep(&p)["reconciliation"]["pending"], 1);
    assert_eq!(status_queries(&p), 2);
    // Then 1800 s.
    p.clock.advance(Duration::from_secs(1_000));
    sweep(&p);
    assert_eq!(status_queries(&p), 2);
    // The invoice expires: recorded, and checks stop.
    statuses.lock().unwrap().insert("DEP-B".into(), "expired");
    p.clock.advance(Duration::from_secs(815));
    assert_eq!(sweep(&p)["reconciliation"]["failed"], 1);
    assert_eq!(view(&p, "DEP-B")["status"], "FAILED");
    assert!(credits_sent(&p, "DEP-B").is_empty());
    p.clock.advance(Duration::from_secs(2 * 86_400));
    sweep(&p);
    assert_eq!(status_queries(&p), 3);
}

#[test]
fn an_unknown_order_counts_as_pending_and_a_bad_answer_as_an_error() {
    let statuses = Statuses::default();
    let p = gateways_platform_with("hmac", statuses.clone());
    // Midtrans answers 404 until the buyer picks a method: pending.
    create_at(&p, "midtrans", "DEP-U", AMOUNT);
    // Xendit answers 404 for an invoice it does not know: no usable answer.
    create_at(&p, "xendit", "DEP-E", AMOUNT);
    p.clock.advance(FIRST_CHECK);
    let report = sweep(&p);
    assert_eq!(report["reconciliation"]["checked"], 2, "{report}");
    assert_eq!(report["reconciliation"]["pending"], 1, "{report}");
    assert_eq!(report["reconciliation"]["errors"], 1, "{report}");
    assert_eq!(view(&p, "DEP-U")["status"], "PENDING");
}

#[test]
fn each_sweep_checks_a_bounded_number() {
    let statuses = Statuses::default();
    let mut p = gateways_platform_with("hmac", statuses.clone());
    p.variables = p.variables.clone().with("reconcile_max_per_sweep", "2");
    for n in 0..5 {
        let id = format!("DEP-{n}");
        create_at(&p, "tripay", &id, AMOUNT);
        statuses.lock().unwrap().insert(id, "paid");
    }
    p.clock.advance(FIRST_CHECK);
    let first = sweep(&p);
    assert_eq!(first["reconciliation"]["checked"], 2, "{first}");
    assert_eq!(first["more"], true);
    assert_eq!(sweep(&p)["reconciliation"]["checked"], 2);
    assert_eq!(sweep(&p)["reconciliation"]["checked"], 1);
    for n in 0..5 {
        assert_eq!(credits_sent(&p, &format!("DEP-{n}")).len(), 1);
    }
}

#[test]
fn central_deposits_are_never_queried() {
    let p = gateways_platform("hmac");
    let response = create(&p, json!({"userId": "u1", "amount": AMOUNT}));
    assert_eq!(response.status, 200);
    let writes = p.records.write_ops() + p.claims.write_ops();
    p.clock.advance(FIRST_CHECK);
    let report = sweep(&p);
    assert!(report.get("reconciliation").is_none(), "{report}");
    assert_eq!(status_queries(&p), 0);
    // A Central PG create schedules no check: its writes are as before.
    assert!(writes <= 5, "{writes}");
}

#[test]
fn a_disabled_gateway_is_not_asked() {
    let statuses = Statuses::default();
    let mut p = gateways_platform_with("hmac", statuses.clone());
    create_at(&p, "duitku", "DEP-D", AMOUNT);
    statuses.lock().unwrap().insert("DEP-D".into(), "paid");
    p.variables = p
        .variables
        .clone()
        .with("gateways_enabled", "central,midtrans,xendit,tripay");
    p.clock.advance(FIRST_CHECK);
    let report = sweep(&p);
    assert_eq!(report["reconciliation"]["skipped"], 1, "{report}");
    assert_eq!(status_queries(&p), 0);
}
