//! Create at each gateway, its callback, forged callbacks, the money rules, the PG's own secret.

use crate::common::*;
use crate::ledger::*;
use crate::support::*;
use topup_core::testing::test_variables;

/// The reference of a create's answer.
fn reference_of(created: &Value) -> String {
    created["reference"].as_str().unwrap().to_string()
}

/// The gateway's genuine notice of `reference` in its current state.
fn genuine(ledger: &Shared, reference: &str) -> Request {
    let ledger = ledger.lock().unwrap();
    notice_of(ledger.by_reference(reference).unwrap(), ledger.tripay_fee)
}

#[test]
fn each_gateway_creates_its_invoice_and_its_callback_credits_once() {
    for gateway in GATEWAYS {
        let ledger = Shared::default();
        let p = ledger_platform(&ledger);
        let id = format!("DEP-{gateway}");
        let created = create_at(&p, gateway, &id, 50_000);
        assert!(created["paymentUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://"));
        let outbound = p.http.requests();
        assert_eq!(outbound.len(), 1, "{gateway}: one create call");
        assert!(!outbound[0].url.starts_with("http://pg.test"), "{gateway}");

        let reference = reference_of(&created);
        ledger.lock().unwrap().set(&reference, State::Paid);
        let paid = genuine(&ledger, &reference);
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

        // A late, out-of-order expiry notice never undoes the payment.
        let mut expired = ledger
            .lock()
            .unwrap()
            .by_reference(&reference)
            .unwrap()
            .clone();
        expired.state = State::Expired;
        acknowledged(gateway, &notify(&p, gateway, &notice_of(&expired, 0)));
        assert_eq!(view(&p, &id)["status"], "PAID", "{gateway}");
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
    }
}

#[test]
fn a_notice_is_applied_only_as_its_gateway_confirms_it() {
    // Duitku, Midtrans and Xendit sign too little of a notice: each is answered by asking the
    // gateway, Tripay's (signed whole) is applied as it is.
    for gateway in GATEWAYS {
        let ledger = Shared::default();
        let p = ledger_platform(&ledger);
        let id = format!("DEP-{gateway}");
        let reference = reference_of(&create_at(&p, gateway, &id, 50_000));
        ledger.lock().unwrap().set(&reference, State::Paid);
        let before = status_queries(&p);
        acknowledged(gateway, &notify(&p, gateway, &genuine(&ledger, &reference)));
        let asked = status_queries(&p) - before;
        assert_eq!(asked, usize::from(gateway != "tripay"), "{gateway}");
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
    }
}

#[test]
fn a_notice_the_status_api_cannot_confirm_is_refused_until_it_can() {
    for gateway in ["duitku", "midtrans", "xendit"] {
        let ledger = Shared::default();
        let p = ledger_platform(&ledger);
        let id = format!("DEP-{gateway}");
        let reference = reference_of(&create_at(&p, gateway, &id, 50_000));
        ledger.lock().unwrap().set(&reference, State::Paid);
        let paid = genuine(&ledger, &reference);
        p.http.set_handler(|request| {
            if request.url.contains("bot.test") {
                ok_json(json!({"ok": true}))
            } else {
                Err(TransportError::Timeout)
            }
        });
        let answer = notify(&p, gateway, &paid);
        assert_eq!(answer.status, 502, "{gateway}: {}", answer.json_body());
        assert_eq!(answer.json_body()["error"], "GATEWAY_UNCONFIRMED");
        assert!(credits_sent(&p, &id).is_empty(), "{gateway}");
        // The sweep asks at once; once the gateway answers, the payment is credited.
        p.http.set_handler(upstreams(&ledger));
        p.clock.advance(Duration::from_secs(5));
        let report = sweep(&p);
        assert_eq!(report["reconciliation"]["paid"], 1, "{gateway}: {report}");
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
    }
}

#[test]
fn duitku_legacy_signatures_when_configured() {
    let ledger = Shared::default();
    let p = ledger_platform_signing(&ledger, "legacy");
    let reference = reference_of(&create_at(&p, "duitku", "DEP-L", 20_000));
    ledger.lock().unwrap().set(&reference, State::Paid);
    let txn = ledger
        .lock()
        .unwrap()
        .by_reference(&reference)
        .unwrap()
        .clone();
    // An HMAC-signed callback is refused while the account uses legacy signatures.
    let hmac = signed_notice(&txn, 0, false);
    assert_eq!(notify(&p, "duitku", &hmac).status, 401);
    let legacy = signed_notice(&txn, 0, true);
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
        let ledger = Shared::default();
        let p = ledger_platform(&ledger);
        let id = format!("DEP-{gateway}");
        let reference = reference_of(&create_at(&p, gateway, &id, 50_000));
        ledger.lock().unwrap().set(&reference, State::Paid);
        let paid = genuine(&ledger, &reference);
        let snapshot = store_snapshot(&p);
        let before = status_queries(&p);
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
        assert_eq!(
            status_queries(&p),
            before,
            "{gateway}: a forgery asks nothing"
        );
        assert!(credits_sent(&p, &id).is_empty(), "{gateway}");
        assert_eq!(view(&p, &id)["status"], "PENDING", "{gateway}");
    }
}

#[test]
fn the_money_rules_hold_for_every_gateway() {
    for gateway in GATEWAYS {
        let ledger = Shared::default();
        let p = ledger_platform(&ledger);
        let id = format!("DEP-{gateway}");
        let reference = reference_of(&create_at(&p, gateway, &id, 50_000));
        // A payment denied first, then made: FAILED → PAID is allowed.
        ledger.lock().unwrap().set(&reference, State::Denied);
        acknowledged(gateway, &notify(&p, gateway, &genuine(&ledger, &reference)));
        if gateway != "xendit" {
            // (Xendit has no failed state for an invoice: it stays pending.)
            assert_eq!(view(&p, &id)["status"], "FAILED", "{gateway}");
        }
        ledger.lock().unwrap().set(&reference, State::Paid);
        acknowledged(gateway, &notify(&p, gateway, &genuine(&ledger, &reference)));
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
        assert_eq!(view(&p, &id)["status"], "PAID", "{gateway}");

        // A payment of another amount is not credited, and waits for a human.
        let other = format!("DEP-{gateway}-2");
        let reference = reference_of(&create_at(&p, gateway, &other, 50_000));
        ledger.lock().unwrap().pay_with(&reference, 40_000);
        acknowledged(gateway, &notify(&p, gateway, &genuine(&ledger, &reference)));
        assert!(credits_sent(&p, &other).is_empty(), "{gateway}");
        let view = view(&p, &other);
        assert_eq!(
            view["review"]["receivedAmount"]
                .as_str()
                .map(|a| a.starts_with("40000")),
            Some(true),
            "{gateway}: {view}"
        );
    }
}

#[test]
fn a_notice_of_another_gateway_pays_nothing() {
    let ledger = Shared::default();
    let p = ledger_platform(&ledger);
    create_at(&p, "duitku", "DEP-X", 50_000);
    let snapshot = store_snapshot(&p);
    let other = |gateway: &'static str| Txn {
        gateway,
        order: "DEP-X".into(),
        reference: format!("{gateway}-elsewhere"),
        amount: 50_000,
        state: State::Paid,
    };
    // A genuine notice of another gateway for the same order id (say, a transaction made by
    // hand there): only the deposit's gateway tells it apart (Tripay's names a reference that
    // is not the deposit's, which is refused first).
    for (gateway, code) in [
        ("midtrans", "GATEWAY_MISMATCH"),
        ("xendit", "GATEWAY_MISMATCH"),
        ("tripay", "REFERENCE_MISMATCH"),
    ] {
        let response = notify(&p, gateway, &notice_of(&other(gateway), 0));
        assert_eq!(response.status, 409, "{gateway}");
        assert_eq!(response.json_body()["error"], code, "{gateway}");
    }
    // The Central PG's carries a reference that is not this deposit's invoice.
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
    let p = ledger_platform(&Shared::default());
    create_at(&p, "midtrans", "DEP-R", 50_000);
    let again = create(
        &p,
        json!({"userId": "u1", "amount": 50_000, "depositId": "DEP-R", "gateway": "midtrans",
               "email": "buyer@example.com"}),
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

#[test]
fn a_create_at_a_gateway_that_is_asked_writes_its_deposit_and_both_tasks_at_once() {
    // Each task's slot number is an `increment`; the deposit, its invoice index and both
    // tasks' slots (its expiry, its first status check) are one write.
    for gateway in GATEWAYS {
        let ledger = Shared::default();
        let p = ledger_platform(&ledger);
        let generated = |p: &TestPlatform| {
            let body = json!({"userId": "u1", "amount": 50_000, "gateway": gateway,
                              "email": "buyer@example.com"});
            assert_eq!(create(p, body).status, 200, "{gateway}");
        };
        // The first create of a bucket also sets its markers; the second pays only its own.
        generated(&p);
        let before = (p.records.write_ops(), p.claims.write_ops());
        generated(&p);
        let writes = (
            p.records.write_ops() - before.0,
            p.claims.write_ops() - before.1,
        );
        assert_eq!(
            writes,
            (1, 2),
            "{gateway}: (records, claims) writes of a create"
        );

        let chosen = (p.records.write_ops(), p.claims.write_ops());
        create_at(&p, gateway, "DEP-chosen", 50_000);
        let writes = (
            p.records.write_ops() - chosen.0,
            p.claims.write_ops() - chosen.1,
        );
        // The hold with its expiry task, the first check (before the record that hands the
        // invoice out, which a retry shows again), the deposit with its invoice; claims: the
        // create claim and the two slots.
        assert_eq!(
            writes,
            (3, 3),
            "{gateway}: (records, claims) writes of a chosen create"
        );
    }
}
