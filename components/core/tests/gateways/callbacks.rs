//! Create at each gateway, its callback, forged callbacks, the money rules, the PG's own secret.

use crate::common::*;
use crate::support::*;
use topup_core::testing::test_variables;

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
