//! Faults on the money path, each pinned as a scenario: the exact interleaving or failure
//! that once lost, stuck or misdirected a payment. They talk to the routes only (plus store
//! and upstream hooks), so they hold whatever the storage layout is.

mod common;

use common::*;

/// Pays `id` with the bot down, so the credit is owed and scheduled.
fn paid_with_bot_down(p: &TestPlatform, id: &str) {
    new_deposit(p, id, 5000);
    set_bot(p, 503);
    assert_eq!(callback(p, &paid_body(id, 5000)).status, 200);
    assert_eq!(view(p, id)["credited"], false);
}

/// Sweeps (with the bot up) until the deposit is credited or `rounds` run out, moving the
/// clock by `step` before each sweep; also tries the manual retry, as an operator would.
fn settle(p: &TestPlatform, id: &str, step: Duration, rounds: usize) -> Value {
    set_bot(p, 200);
    for _ in 0..rounds {
        p.clock.advance(step);
        let _ = sweep_on(&p.platform());
        if status(p, &format!("depositId={id}")).json_body()["credited"] == true {
            break;
        }
        let _ = manual_retry(p, id);
    }
    status(p, &format!("depositId={id}")).json_body()
}

#[test]
fn an_interrupted_take_over_does_not_stick_the_credit() {
    // Defect 1: the sweep claims the next delivery generation, then its write of the new
    // owner fails (a locked SQLite file, a Redis blip). Later sweeps and manual retries must
    // still be able to deliver.
    let p = platform();
    paid_with_bot_down(&p, "D1");
    set_bot(&p, 200);
    p.clock.advance(Duration::from_secs(3600));
    let records = Flaky::new(&p.records, "credit:", 1);
    let flaky = Platform {
        records: &records,
        ..p.platform()
    };
    let _ = sweep_on(&flaky);
    let view = settle(&p, "D1", Duration::from_secs(3600), 5);
    assert_eq!(view["credited"], true, "{view}");
    assert!(!credits_sent(&p, "D1").is_empty());
}

#[test]
fn a_stale_owner_never_overwrites_a_newer_delivery() {
    // Defect 2: sweep A owns the credit; its bot call outlives the lease (the process stalls),
    // sweep B takes over and the bot accepts; then A's late failure must not undo B's credit.
    let p = platform();
    paid_with_bot_down(&p, "D1");
    p.clock.advance(Duration::from_secs(3600));
    // First call answered (B's), second one (A's) times out.
    let http = topup_core::testing::ScriptedHttp::new(vec![
        ok_json(json!({"ok": true})),
        Err(TransportError::Timeout),
    ]);
    let b_platform = Platform {
        http: &http,
        ..p.platform()
    };
    let during = HookedCall::during(&http, "bot.test", || {
        p.clock.advance(Duration::from_secs(3600));
        assert_eq!(sweep_on(&b_platform).status, 200);
        assert_eq!(view(&p, "D1")["credited"], true);
    });
    let a_platform = Platform {
        http: &during,
        ..p.platform()
    };
    let _ = sweep_on(&a_platform);
    let after = view(&p, "D1");
    assert_eq!(
        after["credited"], true,
        "a stale owner's failure replaced the newer credit: {after}"
    );
}

#[test]
fn an_owed_credit_outlives_its_records_ttl() {
    // Defect 3: the deposit's TTL ends while its credit is still owed (the bot and the sweep's
    // scheduler were down for longer than the TTL). The credit must still be delivered.
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("deposit_ttl_days", "0.01")
        .with("credit_retry_schedule", "600");
    paid_with_bot_down(&p, "D1");
    p.clock.advance(Duration::from_secs(2_000));
    let _ = status(&p, "depositId=D1");
    let view = settle(&p, "D1", Duration::from_secs(700), 4);
    assert_eq!(view["credited"], true, "{view}");
}

#[test]
fn a_reused_id_does_not_inherit_an_old_payment() {
    // Defect 4: D1 is paid and credited; its TTL passes before any sweep; the bot then uses
    // the id again for another user, who never pays. Nothing may be credited to them.
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("deposit_ttl_days", "0.01")
        .with("credit_retry_schedule", "60");
    new_deposit(&p, "D1", 5000);
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    assert_eq!(credits_sent(&p, "D1").len(), 1);
    p.clock.advance(Duration::from_secs(3 * 864));
    for _ in 0..20 {
        let again = create(
            &p,
            json!({"userId": "u2", "amount": 7000, "depositId": "D1"}),
        );
        if again.status == 200 {
            break;
        }
        // Refused while the old deposit is still being cleaned up: sweep and try again.
        assert_eq!(again.status, 409, "{}", again.json_body());
        p.clock.advance(Duration::from_secs(60));
        let _ = sweep_on(&p.platform());
    }
    for _ in 0..5 {
        p.clock.advance(Duration::from_secs(120));
        let _ = sweep_on(&p.platform());
    }
    let sent: Vec<Value> = credits_sent(&p, "D1");
    assert!(
        sent.iter().all(|c| c["userId"] == "u1"),
        "an unpaid deposit was credited: {sent:?}"
    );
}

#[test]
fn a_removal_that_stopped_half_way_does_not_poison_the_next_deposit_of_its_id() {
    // Found by the simulation (seed 413434 of the 1,000,000-seed run): D1's removal deletes
    // its record, then fails before deleting its payment claim. A new deposit of D1 made
    // before the sweep finishes the removal inherited the claim, so its own payment lost the
    // claim to a payment long credited and was never delivered.
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("deposit_ttl_days", "0.01")
        .with("credit_retry_schedule", "60");
    new_deposit(&p, "D1", 5000);
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    p.clock.advance(Duration::from_secs(4 * 864));
    let claims = Flaky::new(&p.claims, "paid:", 1).with_deletes();
    let flaky = Platform {
        claims: &claims,
        ..p.platform()
    };
    let _ = sweep_on(&flaky);
    assert_eq!(status(&p, "depositId=D1").status, 404);
    let mut created = false;
    for _ in 0..5 {
        let again = create(
            &p,
            json!({"userId": "u2", "amount": 7000, "depositId": "D1"}),
        );
        if again.status == 200 {
            created = true;
            break;
        }
        // The bot retries past any create hold; the scheduled sweep runs only when the id
        // is reported as still being removed.
        assert_eq!(again.status, 409, "{}", again.json_body());
        p.clock.advance(Duration::from_secs(20));
        if again.json_body()["error"] == "DEPOSIT_EXPIRED" {
            let _ = sweep_on(&p.platform());
        }
    }
    assert!(created, "the id never became free again");
    let second = view(&p, "D1");
    let paid = json!({
        "orderId": "D1", "reference": second["reference"], "status": "PAID", "resultCode": "00",
        "duitkuData": {"merchantOrderId": "D1", "amount": 7000, "paymentMethod": "VC"}
    });
    assert_eq!(callback(&p, &paid.to_string()).status, 200);
    let view = view(&p, "D1");
    assert_eq!(
        (view["userId"].clone(), view["credited"].clone()),
        (json!("u2"), json!(true)),
        "{view}"
    );
    let sent = credits_sent(&p, "D1");
    assert_eq!(
        sent.last().map(|c| c["userId"].clone()),
        Some(json!("u2")),
        "{sent:?}"
    );
}

#[test]
fn overlapping_sweeps_never_deliver_one_credit_together() {
    // Found by the three-process e2e test: sweep B read the credit log after sweep A took
    // generation 1 but before A wrote it, saw the old due record, and took generation 2 at
    // once; both delivered. B must leave a generation it cannot see yet to its owner.
    let p = platform();
    paid_with_bot_down(&p, "D1");
    let inline = credits_sent(&p, "D1").len();
    set_bot(&p, 200);
    p.clock.advance(Duration::from_secs(3600));
    let records = Interleaved::new(&p.records, ("increment", "gen:"), || {
        let _ = sweep_on(&p.platform());
    });
    let sweep_a = Platform {
        records: &records,
        ..p.platform()
    };
    assert_eq!(sweep_on(&sweep_a).status, 200);
    assert_eq!(view(&p, "D1")["credited"], true);
    // The inline attempts with the bot down, then one delivery by the two sweeps.
    let sent = credits_sent(&p, "D1");
    assert_eq!(sent.len(), inline + 1, "{sent:?}");
    // B's deferred look, a lease later, finds the credit done and sends nothing.
    for _ in 0..3 {
        p.clock.advance(Duration::from_secs(60));
        let _ = sweep_on(&p.platform());
    }
    assert_eq!(credits_sent(&p, "D1").len(), inline + 1);
}

#[test]
fn a_callback_that_failed_early_does_not_burn_its_nonce() {
    // Defect 5: a store error before the payment is recorded answers 503; the PG's retry
    // with the same X-Nonce must be processed, not refused as a replay.
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let claims = Flaky::new(&p.claims, "paid:", 1);
    let flaky = Platform {
        claims: &claims,
        ..p.platform()
    };
    let request = signed_callback(&paid_body("D1", 5000)).with_header("x-nonce", "pg-nonce-1");
    assert_eq!(routes::callback::handle(&request, &flaky).status, 503);
    let retry = routes::callback::handle(&request, &p.platform());
    assert_eq!(retry.status, 200, "{}", retry.json_body());
    assert_eq!(view(&p, "D1")["credited"], true);
    // A replay after success is still refused.
    let replay = routes::callback::handle(&request, &p.platform());
    assert_eq!(replay.json_body()["error"], "NONCE_REUSED");
}

#[test]
fn a_create_racing_the_pg_call_of_another_user_is_refused() {
    // Defect 6: create A waits for the PG; meanwhile another user's create of the same id
    // runs. It must get 409 at once, and the stored deposit stays A's.
    let p = platform();
    let during = HookedCall::during(&p.http, "pg.test", || {
        let other = create(
            &p,
            json!({"userId": "u2", "amount": 9000, "depositId": "D1"}),
        );
        assert_eq!(other.status, 409, "{}", other.json_body());
    });
    let a_platform = Platform {
        http: &during,
        ..p.platform()
    };
    let a = routes::create::handle(
        &create_request(json!({"userId": "u1", "amount": 5000, "depositId": "D1"})),
        &a_platform,
    );
    assert_eq!(a.status, 200, "{}", a.json_body());
    assert_eq!(view(&p, "D1")["userId"], "u1");
}

#[test]
fn a_stalled_create_is_not_taken_over_by_another_user() {
    // Found by the simulation (seeds 88203, 202524 of 300,000): create A stalls in the PG call
    // past its hold; another user's create of the id took the hold over with A's epoch, so A's
    // invoice (paid and credited to A's user) and the other user's later invoice shared one
    // deposit: the other user's payment was never credited and the status showed it credited.
    // Only the same user's retry may take over a create; anyone else gets 409 at once.
    let p = platform();
    let during = HookedCall::during(&p.http, "pg.test", || {
        p.clock.advance(Duration::from_secs(3_600));
        let other = create(
            &p,
            json!({"userId": "u2", "amount": 9000, "depositId": "D1"}),
        );
        assert_eq!(other.status, 409, "{}", other.json_body());
        assert_eq!(other.json_body()["error"], "DEPOSIT_CONFLICT");
    });
    let a_platform = Platform {
        http: &during,
        ..p.platform()
    };
    let _ = routes::create::handle(
        &create_request(json!({"userId": "u1", "amount": 5000, "depositId": "D1"})),
        &a_platform,
    );
    assert_eq!(p.http.requests_to("pg.test").len(), 1, "no second invoice");
}

#[test]
fn a_create_between_anothers_claim_and_its_hold_does_not_take_the_id() {
    // Found by the simulation (seed 9320): create A took claim 1 on D1 and has not written
    // its hold yet when create B, for another user, reads the claim counter (1) and no
    // record. B must not count that as a dead claim to take over.
    let p = platform();
    let records = Interleaved::new(&p.records, ("set", "deposit:"), || {
        let other = create(
            &p,
            json!({"userId": "u2", "amount": 9000, "depositId": "D1"}),
        );
        assert_eq!(other.status, 409, "{}", other.json_body());
        assert_eq!(other.json_body()["error"], "CREATE_IN_PROGRESS");
    });
    let a_platform = Platform {
        records: &records,
        ..p.platform()
    };
    let a = routes::create::handle(
        &create_request(json!({"userId": "u1", "amount": 5000, "depositId": "D1"})),
        &a_platform,
    );
    assert_eq!(a.status, 200, "{}", a.json_body());
    assert_eq!(p.http.requests_to("pg.test").len(), 1, "one invoice");
    let other = create(
        &p,
        json!({"userId": "u2", "amount": 9000, "depositId": "D1"}),
    );
    assert_eq!(other.json_body()["error"], "DEPOSIT_CONFLICT");
}

#[test]
fn an_honest_create_retry_during_the_pg_call_gets_the_same_invoice_or_a_clear_409() {
    // Defect 6, the bot's own retry: it gets the invoice of the first create, or 409
    // CREATE_IN_PROGRESS with Retry-After; never a second invoice.
    let p = platform();
    let minted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = minted.clone();
    p.http.set_handler(move |request| {
        if request.url.starts_with("http://pg.test") {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            ok_json(json!({"reference": format!("INV{n}"), "paymentUrl": format!("https://pay.test/{n}")}))
        } else {
            happy_upstreams(request)
        }
    });
    let body = json!({"userId": "u1", "amount": 5000, "depositId": "D1"});
    let during = HookedCall::during(&p.http, "pg.test", || {
        let retry = create(&p, body.clone());
        assert_eq!(retry.status, 409, "{}", retry.json_body());
        assert_eq!(retry.json_body()["error"], "CREATE_IN_PROGRESS");
        assert!(retry.header("retry-after").is_some());
    });
    let a_platform = Platform {
        http: &during,
        ..p.platform()
    };
    let a = routes::create::handle(&create_request(body.clone()), &a_platform);
    assert_eq!(a.json_body()["reference"], "INV1");
    let again = create(&p, body.clone());
    assert_eq!(again.json_body()["reference"], "INV1");
    assert_eq!(minted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn one_corrupt_record_does_not_stop_the_sweep() {
    // Defect 7: one undecodable record among three owed credits. The sweep reports it and
    // delivers the other two.
    let p = platform();
    for id in ["D1", "D2", "D3"] {
        paid_with_bot_down(&p, id);
    }
    p.records.set("credit:D2", b"{broken").unwrap();
    set_bot(&p, 200);
    p.clock.advance(Duration::from_secs(3600));
    let response = sweep_on(&p.platform());
    assert_eq!(response.status, 200, "{}", response.json_body());
    assert_eq!(response.json_body()["quarantined"], 1);
    for id in ["D1", "D3"] {
        assert_eq!(view(&p, id)["credited"], true, "{id}");
    }
    // The operator finds it by id in every later sweep's answer until it is dealt with.
    let later = sweep(&p);
    assert_eq!(later["quarantined"], 0);
    assert_eq!(later["quarantine"][0]["what"], "deposit D2", "{later}");
}

#[test]
fn a_long_backlog_does_not_starve_a_due_credit() {
    // Defect 7: more than 20,000 owed credits that are not due sort before one that is; every
    // sweep must still reach it.
    let mut p = platform();
    set_bot(&p, 503);
    p.variables = p.variables.clone().with("credit_max_retries", "0");
    for i in 0..20_005 {
        let id = format!("A{i:05}");
        let created = create(&p, json!({"userId": "u", "amount": 5000, "depositId": id}));
        assert_eq!(created.status, 200);
        assert_eq!(callback(&p, &paid_body(&id, 5000)).status, 200);
    }
    p.variables = p.variables.clone().with("credit_max_retries", "30");
    paid_with_bot_down(&p, "Z1");
    set_bot(&p, 200);
    for _ in 0..3 {
        p.clock.advance(Duration::from_secs(3600));
        let _ = sweep_on(&p.platform());
    }
    assert_eq!(view(&p, "Z1")["credited"], true);
}
