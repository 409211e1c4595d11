//! `POST /internal/payment-callback`: the state machine, duplicates, refusals, replay guard.

mod common;

use common::*;

#[test]
fn paid_flow_credits_once_with_at_most_five_writes() {
    let p = platform();
    let created = create(&p, json!({"userId": "u1", "amount": 50000})).json_body();
    let id = created["depositId"].as_str().unwrap().to_string();
    let response = callback(&p, &paid_body(&id, 50000));
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"OK"[..])
    );

    let v = view(&p, &id);
    assert_eq!(v["status"], "PAID");
    assert_eq!(v["credited"], true);
    assert_eq!(v["callbackReceived"], true);
    assert_eq!(v["creditResult"], json!({"ok": true}));
    assert_eq!(v["paymentMethod"], "VC");
    assert!(v["creditedAt"].as_u64().is_some());

    let bot = bot_requests(&p);
    assert_eq!(bot.len(), 1);
    let credit = &bot[0];
    assert_eq!(credit.url, "http://bot.test/internal/deposit-callback");
    assert!(credit
        .headers
        .contains(&("idempotency-key".into(), id.clone())));
    let sig = &credit
        .headers
        .iter()
        .find(|(k, _)| k == "x-signature")
        .unwrap()
        .1;
    assert!(verify_signature([&Secret::new(SECRET)], &credit.body, sig));
    let sent: Value = serde_json::from_slice(&credit.body).unwrap();
    assert_eq!(sent["depositId"], id.as_str());
    assert_eq!(sent["amount"], 50000);
    assert_eq!(sent["status"], "PAID");

    // Create: the expiry slot's number, the day and block markers of a new bucket, and one
    // write of the deposit, its invoice and the slot; callback: the payment claim, the
    // payment, its outcome. The markers are written once per bucket (10 s), not per flow.
    let markers = 2;
    let writes = p.records.write_ops() + p.claims.write_ops() - markers;
    assert!(writes <= 5, "a paid flow took {writes} store writes");

    // Duplicates change nothing and credit nothing.
    let snapshot = store_snapshot(&p);
    for _ in 0..3 {
        assert_eq!(callback(&p, &paid_body(&id, 50000)).status, 200);
    }
    assert_eq!(bot_requests(&p).len(), 1);
    assert_eq!(store_snapshot(&p), snapshot);
}

#[test]
fn concurrent_duplicate_callbacks_credit_exactly_once() {
    let p = Arc::new(platform());
    new_deposit(&p, "D1", 50000);
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || callback(&p, &paid_body("D1", 50000)).status)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert_eq!(bot_requests(&p).len(), 1);
    assert_eq!(view(&p, "D1")["credited"], true);
}

#[test]
fn failed_then_paid_is_credited_and_failed_after_paid_is_ignored() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    assert_eq!(callback(&p, &failed_body("D1")).status, 200);
    let v = view(&p, "D1");
    assert_eq!(
        (v["status"].clone(), v["callbackReceived"].clone()),
        (json!("FAILED"), json!(true))
    );
    let writes = p.records.write_ops();
    assert_eq!(callback(&p, &failed_body("D1")).status, 200);
    assert_eq!(
        p.records.write_ops(),
        writes,
        "a repeated FAILED writes nothing"
    );

    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    assert_eq!(view(&p, "D1")["status"], "PAID");
    assert_eq!(bot_requests(&p).len(), 1);

    assert_eq!(callback(&p, &failed_body("D1")).status, 200);
    let v = view(&p, "D1");
    assert_eq!(v["status"], "PAID");
    assert_eq!(v["credited"], true);
    assert_eq!(v["ignoredEvents"][0]["status"], "FAILED");
    assert_eq!(bot_requests(&p).len(), 1);
}

#[test]
fn amount_mismatch_is_not_credited_and_says_why() {
    let p = platform();
    new_deposit(&p, "D1", 50000);
    assert_eq!(callback(&p, &paid_body("D1", 40000)).status, 200);
    let v = view(&p, "D1");
    assert_eq!(v["status"], "PENDING");
    assert_eq!(v["credited"], false);
    assert_eq!(v["review"]["reason"], "AMOUNT_MISMATCH");
    assert_eq!(v["creditResult"]["error"], "AMOUNT_MISMATCH");
    assert_eq!(v["creditResult"]["detail"]["receivedAmount"], "40000");
    assert!(bot_requests(&p).is_empty());
    assert!(
        !p.claims.keys().contains(&"paid:D1".to_string()),
        "a mismatch must not take the payment claim"
    );

    assert_eq!(callback(&p, &paid_body("D1", 50000)).status, 200);
    let v = view(&p, "D1");
    assert_eq!(
        (v["status"].clone(), v["credited"].clone()),
        (json!("PAID"), json!(true))
    );
}

#[test]
fn callback_refusals_change_nothing() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let body = paid_body("D1", 5000);
    let other_secret = sign(&Secret::new("wrong"), body.as_bytes());
    let over_other_bytes = sign(&Secret::new(SECRET), paid_body("D1", 5001).as_bytes());
    let cases: Vec<(Request, u16, &str)> = vec![
        (
            signed_callback(&body).with_header("x-signature", "00"),
            400,
            "INVALID_HEADER",
        ),
        (
            {
                let mut r = signed_callback(&body);
                r.headers.retain(|(k, _)| k != "x-signature");
                r
            },
            401,
            "INVALID_SIGNATURE",
        ),
        (
            {
                let mut r = signed_callback(&body);
                r.headers.retain(|(k, _)| k != "x-signature");
                r.with_header("x-signature", &other_secret)
            },
            401,
            "INVALID_SIGNATURE",
        ),
        (
            {
                let mut r = signed_callback(&body);
                r.headers.retain(|(k, _)| k != "x-signature");
                r.with_header("x-signature", &over_other_bytes)
            },
            401,
            "INVALID_SIGNATURE",
        ),
        (signed_callback("{not json"), 400, "INVALID_JSON"),
        (
            signed_callback(r#"{"orderId":"D1","status":"PAID"}"#),
            400,
            "INVALID_CALLBACK",
        ),
        (
            signed_callback(&paid_body("NOPE", 5000)),
            404,
            "DEPOSIT_NOT_FOUND",
        ),
        (
            signed_callback(
                &json!({"orderId":"D1","reference":"REF-OTHER","status":"FAILED"}).to_string(),
            ),
            409,
            "REFERENCE_MISMATCH",
        ),
        (
            signed_callback(&body).with_header("x-nonce", "bad nonce"),
            400,
            "INVALID_NONCE",
        ),
    ];
    let before = store_snapshot(&p);
    for (request, code, error) in cases {
        let response = routes::callback::handle(&request, &p.platform());
        assert_eq!(response.status, code, "{error}: {}", response.json_body());
        assert_eq!(response.json_body()["error"], error);
        assert_eq!(store_snapshot(&p), before, "{error} changed the store");
    }
    assert!(bot_requests(&p).is_empty());
}

#[test]
fn nonce_is_single_use_and_not_burned_by_refused_requests() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let unknown = signed_callback(&failed_body("NOPE")).with_header("x-nonce", "n-1");
    assert_eq!(
        routes::callback::handle(&unknown, &p.platform()).status,
        404
    );
    let first = signed_callback(&failed_body("D1")).with_header("x-nonce", "n-1");
    assert_eq!(routes::callback::handle(&first, &p.platform()).status, 200);
    let replay = routes::callback::handle(&first, &p.platform());
    assert_eq!(
        (replay.status, replay.json_body()["error"].clone()),
        (409, json!("NONCE_REUSED"))
    );
}

#[test]
fn timestamps_are_checked_when_enforced() {
    let mut p = platform();
    p.variables = p.variables.clone().with("enforce_timestamp", "true");
    new_deposit(&p, "D1", 5000);
    let now = 1_700_000_000_000u64;
    for (ts, expected) in [
        (None, 401),
        (Some(now - 301_000), 401),
        (Some(now + 301_000), 401),
        (Some(now - 1_000), 200),
    ] {
        let mut request = signed_callback(&failed_body("D1"));
        if let Some(ts) = ts {
            request = request.with_header("x-timestamp", &ts.to_string());
        }
        let response = routes::callback::handle(&request, &p.platform());
        assert_eq!(
            response.status,
            expected,
            "{ts:?}: {}",
            response.json_body()
        );
    }
}

#[test]
fn the_payment_claim_alone_stops_a_second_credit() {
    // Callback B arrives after A re-read the deposit but before A recorded the payment:
    // both pass every read; only the claim can stop B.
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let records = Interleaved::new(&p.records, ("set", "credit:D1"), || {
        assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    });
    let platform_a = Platform {
        records: &records,
        ..p.platform()
    };
    let response = routes::callback::handle(&signed_callback(&paid_body("D1", 5000)), &platform_a);
    assert_eq!(response.status, 200);
    assert_eq!(bot_requests(&p).len(), 1);
    // B's note makes a sweep look one lease later: the payment is credited, nothing is sent.
    p.clock.advance(Duration::from_secs(120));
    sweep(&p);
    assert_eq!(bot_requests(&p).len(), 1);
}

#[test]
fn a_late_duplicate_that_loses_the_claim_leaves_no_refund_and_no_second_credit() {
    // Callback B checked the deposit before A paid it; A is credited and a sweep runs; only
    // then does B reach the payment claim, and loses it. B leaves a note for the sweep, which
    // finds the payment credited; nothing is sent twice and no refund is invented.
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let claims = Interleaved::new(&p.claims, ("increment", "paid:"), || {
        assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
        sweep(&p);
    });
    let platform_b = Platform {
        claims: &claims,
        ..p.platform()
    };
    let response = routes::callback::handle(&signed_callback(&paid_body("D1", 5000)), &platform_b);
    assert_eq!(response.status, 200);
    p.clock.advance(Duration::from_secs(120));
    sweep(&p);
    assert_eq!(bot_requests(&p).len(), 1);
    let v = view(&p, "D1");
    assert_eq!(v["credited"], true);
    assert!(v.get("refundsDue").is_none(), "{v}");
}

#[test]
fn a_stalled_create_can_leave_two_invoices_and_the_paid_one_is_credited_once() {
    // Create A holds D1 and gets invoice INV1, then stalls right before storing it, past its
    // hold; create B (the bot retrying) takes over and gets INV2. A's late write still lands,
    // so both invoices were shown. Whichever is paid is credited; the other, paid too, is a
    // refund due, never a second credit.
    let p = TestPlatform::new();
    let minted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    p.http.set_handler(move |request| {
        if request.url.starts_with("http://pg.test") {
            let n = minted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            ok_json(json!({"reference": format!("INV{n}"), "paymentUrl": format!("https://pay.test/{n}")}))
        } else {
            happy_upstreams(request)
        }
    });
    let body = json!({"userId": "u1", "amount": 5000, "depositId": "D1"});
    let records = Interleaved::new(&p.records, ("set", "deposit:"), || {
        p.clock.advance(Duration::from_secs(60));
        let b = create(&p, body.clone()).json_body();
        assert_eq!(b["reference"], "INV2", "{b}");
    })
    .at_nth(2);
    let platform_a = Platform {
        records: &records,
        ..p.platform()
    };
    let a = routes::create::handle(&create_request(body.clone()), &platform_a).json_body();
    assert_eq!(a["reference"], "INV1", "{a}");
    for invoice in ["INV1", "INV2"] {
        assert_eq!(
            view_by(&p, &format!("reference={invoice}"))["depositId"],
            "D1"
        );
    }

    let paid = |reference: &str| {
        json!({"orderId": "D1", "reference": reference, "status": "PAID", "resultCode": "00",
               "duitkuData": {"merchantOrderId": "D1", "amount": "5000"}})
        .to_string()
    };
    assert_eq!(callback(&p, &paid("INV2")).status, 200);
    let sent = bot_requests(&p);
    assert_eq!(sent.len(), 1);
    let credit: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(
        credit["reference"], "INV2",
        "the bot is told the invoice that was paid"
    );
    let after = view(&p, "D1");
    assert_eq!(
        (after["credited"].as_bool(), after["reference"].as_str()),
        (Some(true), Some("INV2"))
    );

    for _ in 0..2 {
        assert_eq!(callback(&p, &paid("INV1")).status, 200);
    }
    assert_eq!(bot_requests(&p).len(), 1);
    let refunds = view(&p, "D1")["refundsDue"].clone();
    assert_eq!(
        refunds,
        json!([{"reference": "INV1", "creditedReference": "INV2", "at": refunds[0]["at"]}]),
        "one refund due however often its callback is repeated"
    );

    // However many ignored callbacks follow, the refund due stays on the record.
    let failed =
        json!({"orderId": "D1", "reference": "INV2", "status": "FAILED", "resultCode": "01"})
            .to_string();
    for _ in 0..15 {
        assert_eq!(callback(&p, &failed).status, 200);
    }
    let after = view(&p, "D1");
    assert_eq!(after["refundsDue"], refunds);
    assert_eq!(
        after["ignoredEvents"].as_array().map(Vec::len),
        Some(1),
        "{after}"
    );

    // An invoice that is not this deposit's is still refused.
    let response = callback(&p, &paid("INV-OTHER"));
    assert_eq!(response.json_body()["error"], "REFERENCE_MISMATCH");
}

/// Sweeps every minute for `minutes`.
fn sweep_for(p: &TestPlatform, minutes: u32) {
    for _ in 0..minutes {
        p.clock.advance(Duration::from_secs(60));
        sweep(p);
    }
}

fn nonce_keys(p: &TestPlatform) -> Vec<String> {
    let (records, claims) = store_snapshot(p);
    claims
        .keys()
        .chain(records.keys())
        .filter(|k| k.contains("nonce"))
        .cloned()
        .collect()
}

const DEPOSIT_TTL: Duration = Duration::from_secs(30 * 86_400);

#[test]
fn a_nonce_a_paid_callback_used_costs_one_write_and_leaves_with_its_deposit() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    new_deposit(&p, "D2", 5000);
    let writes = |request: &Request| {
        let records = Counting::new(&p.records);
        let claims = Counting::new(&p.claims);
        let platform = Platform {
            records: &records,
            claims: &claims,
            ..p.platform()
        };
        let response = routes::callback::handle(request, &platform);
        assert_eq!(response.status, 200, "{}", response.json_body());
        records.writes.get() + claims.writes.get()
    };
    let plain = writes(&signed_callback(&paid_body("D1", 5000)));
    let with_nonce = writes(&signed_callback(&paid_body("D2", 5000)).with_header("x-nonce", "n-2"));
    assert_eq!(with_nonce, plain + 1, "a nonce costs its increment only");
    assert_eq!(view(&p, "D2")["credited"], true);
    let replay = signed_callback(&paid_body("D2", 5000)).with_header("x-nonce", "n-2");
    assert_eq!(routes::callback::handle(&replay, &p.platform()).status, 409);

    // Its deposit's life ends: the nonce key goes with it, no task of its own needed.
    p.clock.advance(DEPOSIT_TTL);
    sweep_for(&p, 15);
    assert_eq!(status(&p, "depositId=D2").status, 404);
    assert_eq!(nonce_keys(&p), Vec::<String>::new());
    let (records, claims) = store_snapshot(&p);
    assert!(
        !records
            .keys()
            .chain(claims.keys())
            .any(|k| k.contains("D2")),
        "{records:?} {claims:?}"
    );
}

#[test]
fn a_nonce_used_near_its_deposits_end_is_remembered_its_full_lifetime() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    // Five minutes before the deposit's end, with a ten-minute nonce lifetime.
    p.clock.advance(DEPOSIT_TTL - Duration::from_secs(300));
    let failed = signed_callback(&failed_body("D1")).with_header("x-nonce", "n-late");
    assert_eq!(routes::callback::handle(&failed, &p.platform()).status, 200);
    sweep_for(&p, 9);
    assert_eq!(
        status(&p, "depositId=D1").status,
        404,
        "the deposit is gone"
    );
    let replay = routes::callback::handle(&failed, &p.platform());
    assert_eq!(
        (replay.status, replay.json_body()["error"].clone()),
        (409, json!("NONCE_REUSED")),
        "nine minutes after its use, with its deposit gone"
    );
    sweep_for(&p, 3);
    assert_eq!(nonce_keys(&p), Vec::<String>::new());
}

#[test]
fn a_nonce_whose_callback_paused_past_its_deposits_removal_is_not_left_behind() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    // Named in its note (the deposit has more than the nonce's lifetime left)...
    p.clock.advance(DEPOSIT_TTL - Duration::from_secs(700));
    // ...then the process pauses between writing the note and using the nonce, long enough
    // for the deposit to end and be removed.
    let claims = Interleaved::new(&p.claims, ("increment", "nonce:"), || {
        p.clock.advance(Duration::from_secs(720));
        sweep_for(&p, 3);
        assert_eq!(status(&p, "depositId=D1").status, 404, "removed meanwhile");
    });
    let platform = Platform {
        claims: &claims,
        ..p.platform()
    };
    let failed = signed_callback(&failed_body("D1")).with_header("x-nonce", "n-paused");
    assert_eq!(routes::callback::handle(&failed, &platform).status, 200);
    assert_eq!(nonce_keys(&p), vec!["nonce:n-paused".to_string()]);
    sweep_for(&p, 12);
    assert_eq!(
        nonce_keys(&p),
        Vec::<String>::new(),
        "forgotten by its own task"
    );
}

#[test]
fn a_paid_notice_racing_its_deposits_removal_sends_no_second_credit() {
    // Simulation seed 1047124: a replayed PAID read the credited deposit's record before the
    // sweep removed it and its credit after; the payment claim, deleted last by the removal,
    // was then free again, and a second credit body (a new paidAt) reached the bot.
    let p = platform();
    new_deposit(&p, "D1", 5000);
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    assert_eq!(credits_sent(&p, "D1").len(), 1);
    p.clock.advance(DEPOSIT_TTL + Duration::from_secs(60));

    // The removal deletes the records and stops before the claims ...
    let half_removed = || {
        let claims = Flaky::new(&p.claims, "paid:", 1).with_deletes();
        let platform = Platform {
            claims: &claims,
            ..p.platform()
        };
        for _ in 0..20 {
            if claims.failures.get() == 0 {
                break;
            }
            let _ = sweep_on(&platform);
            p.clock.advance(Duration::from_secs(1));
        }
        assert_eq!(claims.failures.get(), 0, "the removal never ran");
    };
    // ... and is finished just before the replay claims the payment.
    let finished = || {
        let _ = sweep_on(&p.platform());
    };
    let records = Interleaved::new(&p.records, ("get", "credit:D1"), half_removed);
    let claims = Interleaved::new(&p.claims, ("increment", "paid:D1"), finished);
    let platform = Platform {
        records: &records,
        claims: &claims,
        ..p.platform()
    };
    let replay = routes::callback::handle(&signed_callback(&paid_body("D1", 5000)), &platform);
    assert!(records.hook.borrow().is_none() && claims.hook.borrow().is_none());
    let sent = credits_sent(&p, "D1");
    assert_eq!(sent.len(), 1, "{} {sent:?}", replay.json_body());

    // Whatever the replay left behind goes with the next sweeps.
    sweep_for(&p, 15);
    let (records, claims) = store_snapshot(&p);
    assert!(
        !records
            .keys()
            .chain(claims.keys())
            .any(|k| k.contains("D1")),
        "{records:?} {claims:?}"
    );
}
