//! Delivering credits: inline attempts, the sweep, retries, the manual retry, recovery.

mod common;

use common::*;

#[test]
fn bot_down_keeps_paid_and_the_sweep_credits_later() {
    let p = platform();
    set_bot(&p, 503);
    new_deposit(&p, "D1", 5000);
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    let v = view(&p, "D1");
    assert_eq!(
        (v["status"].clone(), v["credited"].clone()),
        (json!("PAID"), json!(false))
    );
    assert_eq!(v["creditResult"]["error"], "BOT_HTTP_ERROR");
    assert_eq!(v["creditResult"]["detail"]["status"], 503);
    let inline = bot_requests(&p).len();
    assert!((1..=3).contains(&inline), "{inline} inline attempts");

    // Not due yet: nothing is sent (and the sweep does not even look at it).
    let report = sweep(&p);
    assert_eq!(report["attempted"], json!(0));

    // Due 60 s after the inline attempts; its bucket is swept once safely past.
    set_bot(&p, 200);
    p.clock.advance(Duration::from_secs(64));
    let report = sweep(&p);
    assert_eq!(report["attempted"], 1);
    assert_eq!(report["credited"], 1);
    assert_eq!(report["remaining"], 0);
    assert_eq!(view(&p, "D1")["credited"], true);
    let bot = bot_requests(&p);
    assert_eq!(bot.len(), inline + 1);
    assert!(
        bot.iter().all(|r| r.body == bot[0].body),
        "every resend carries the same body"
    );

    // A late duplicate credits nothing.
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    sweep(&p);
    assert_eq!(bot_requests(&p).len(), inline + 1);
}

#[test]
fn retries_back_off_and_exhaust() {
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("credit_retry_schedule", "10,20")
        .with("credit_max_retries", "3");
    set_bot(&p, 500);
    new_deposit(&p, "D1", 5000);
    callback(&p, &paid_body("D1", 5000));
    let (mut attempts, mut exhausted) = (0, 0);
    // Each retry runs once its second is safely past (the bucket's end plus 2 s).
    for step in [13, 23, 23] {
        p.clock.advance(Duration::from_secs(step));
        let report = sweep(&p);
        attempts += report["attempted"].as_u64().unwrap();
        exhausted += report["exhausted"].as_u64().unwrap();
    }
    assert_eq!((attempts, exhausted), (3, 1));
    let v = view(&p, "D1");
    assert_eq!(v["creditExhausted"], true);
    p.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        sweep(&p)["attempted"],
        json!(0),
        "automatic retries gave up"
    );

    // An operator retries by hand once the bot is back.
    set_bot(&p, 200);
    let manual = routes::manual_retry::handle(
        &authed("POST", "/deposit/retry-credit?depositId=D1"),
        &p.platform(),
    );
    assert_eq!(manual.status, 200, "{}", manual.json_body());
    assert_eq!(manual.json_body()["credited"], true);
    assert_eq!(view(&p, "D1")["credited"], true);
}

#[test]
fn manual_retry_answers() {
    let p = platform();
    let retry = |id: &str| {
        routes::manual_retry::handle(
            &authed("POST", &format!("/deposit/retry-credit?depositId={id}")),
            &p.platform(),
        )
    };
    assert_eq!(retry("NOPE").status, 404);
    assert_eq!(retry("bad id").status, 400);
    new_deposit(&p, "D1", 5000);
    let response = retry("D1");
    assert_eq!(
        (response.status, response.json_body()["error"].clone()),
        (409, json!("NOT_PAID"))
    );

    set_bot(&p, 502);
    callback(&p, &paid_body("D1", 5000));
    let response = retry("D1");
    assert_eq!(
        (response.status, response.json_body()["error"].clone()),
        (502, json!("CREDIT_FAILED"))
    );
    set_bot(&p, 200);
    assert_eq!(retry("D1").json_body()["credited"], true);
    let again = retry("D1").json_body();
    assert_eq!(again["alreadyCredited"], true);
}

#[test]
fn a_credit_whose_result_was_never_stored_is_resent_after_its_lease() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    // The bot accepts, then the store dies before the result is written (a crash stand-in).
    let switch = p.records.failure_switch();
    p.http.set_handler(move |request| {
        if request.url.starts_with("http://bot.test") {
            switch.fail("disk gone");
        }
        happy_upstreams(request)
    });
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 503);
    p.records.failure_switch().heal();
    p.http.set_handler(happy_upstreams);
    assert_eq!(view(&p, "D1")["credited"], false);
    // The gateway, answered 503, retries: the payment is recorded, the credit in flight;
    // the retry makes sure a sweep looks when its lease ends.
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    assert_eq!(bot_requests(&p).len(), 1, "no resend while the lease holds");

    assert_eq!(sweep(&p)["attempted"], 0, "lease still held");
    p.clock.advance(Duration::from_secs(33));
    assert_eq!(sweep(&p)["credited"], 1);
    let bot = bot_requests(&p);
    assert_eq!(bot.len(), 2);
    assert_eq!(bot[0].body, bot[1].body);
    assert!(bot[1]
        .headers
        .contains(&("idempotency-key".into(), "D1".into())));
}

#[test]
fn a_payment_whose_recorder_died_is_recovered_from_the_gateways_retry() {
    // The callback that wins the payment claim dies before recording the payment (here its
    // write fails). The gateway, answered 503, retries: the retry loses the claim and leaves
    // the payment in a note; one lease later the sweep records and delivers it.
    let p = platform();
    new_deposit(&p, "D1", 5000);
    let records = Flaky::new(&p.records, "credit:", 1);
    let dying = Platform {
        records: &records,
        ..p.platform()
    };
    let first = routes::callback::handle(&signed_callback(&paid_body("D1", 5000)), &dying);
    assert_eq!(first.status, 503);
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    assert!(bot_requests(&p).is_empty());

    p.clock.advance(Duration::from_secs(10));
    assert_eq!(
        sweep(&p)["attempted"],
        0,
        "not before a lease: the recorder may be at work"
    );
    p.clock.advance(Duration::from_secs(25));
    let report = sweep(&p);
    assert_eq!(
        (report["recovered"].clone(), report["credited"].clone()),
        (json!(1), json!(1)),
        "{report}"
    );
    let v = view(&p, "D1");
    assert_eq!(
        (v["status"].clone(), v["credited"].clone()),
        (json!("PAID"), json!(true))
    );
    let sent: Value = serde_json::from_slice(&bot_requests(&p)[0].body).unwrap();
    assert_eq!(
        sent["paymentMethod"], "VC",
        "the facts come from the gateway's callback"
    );

    // Later resends of the callback are duplicates.
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    p.clock.advance(Duration::from_secs(120));
    sweep(&p);
    assert_eq!(bot_requests(&p).len(), 1);
}

#[test]
fn a_payment_claim_without_a_callback_is_never_credited() {
    // A claim alone proves nothing about who paid what (it may be left from an earlier
    // deposit of the id): without a gateway callback nothing is credited.
    let p = platform();
    new_deposit(&p, "D1", 5000);
    p.claims.increment("paid:D1", 1).unwrap();
    for _ in 0..5 {
        p.clock.advance(Duration::from_secs(120));
        sweep(&p);
    }
    assert!(bot_requests(&p).is_empty());
    assert_eq!(view(&p, "D1")["status"], "PENDING");
}

#[test]
fn a_sweep_costs_what_is_due_not_the_history() {
    let p = platform();
    for i in 0..2_000 {
        let id = format!("H{i}");
        new_deposit(&p, &id, 5000);
        assert_eq!(callback(&p, &paid_body(&id, 5000)).status, 200);
    }
    p.clock.advance(Duration::from_secs(60));
    sweep(&p);
    // History: 2,000 credited deposits. Nothing due: a sweep reads a handful of keys.
    let cost = |p: &TestPlatform| {
        let records = Counting::new(&p.records);
        let claims = Counting::new(&p.claims);
        let platform = Platform {
            records: &records,
            claims: &claims,
            ..p.platform()
        };
        assert_eq!(sweep_on(&platform).status, 200);
        records.reads.get() + claims.reads.get()
    };
    p.clock.advance(Duration::from_secs(60));
    let idle = cost(&p);
    assert!(idle <= 20, "a sweep with nothing due read {idle} keys");

    // 50 credits due: the cost follows them, not the 2,000 before.
    set_bot(&p, 503);
    for i in 0..50 {
        let id = format!("O{i}");
        new_deposit(&p, &id, 5000);
        assert_eq!(callback(&p, &paid_body(&id, 5000)).status, 200);
    }
    set_bot(&p, 200);
    p.clock.advance(Duration::from_secs(120));
    let due = cost(&p);
    assert!(due <= 50 * 12 + 20, "a sweep with 50 due read {due} keys");
    assert!(due > idle);
}

#[test]
fn a_sweep_that_finds_nothing_new_writes_nothing() {
    let p = platform();
    new_deposit(&p, "D1", 5000);
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);
    p.clock.advance(Duration::from_secs(60));
    sweep(&p);
    // Same instant: neither cursor moves, so neither is written again.
    let records = Counting::new(&p.records);
    let claims = Counting::new(&p.claims);
    let platform = Platform {
        records: &records,
        claims: &claims,
        ..p.platform()
    };
    assert_eq!(sweep_on(&platform).status, 200);
    assert_eq!(records.writes.get() + claims.writes.get(), 0);
}

#[test]
fn a_backlog_of_due_credits_is_worked_off_over_bounded_sweeps() {
    let p = platform();
    set_bot(&p, 503);
    for i in 0..600 {
        let id = format!("B{i}");
        new_deposit(&p, &id, 5000);
        assert_eq!(callback(&p, &paid_body(&id, 5000)).status, 200);
    }
    set_bot(&p, 200);
    let inline = bot_requests(&p).len();
    p.clock.advance(Duration::from_secs(120));
    let first = sweep(&p);
    assert_eq!(first["more"], true, "{first}");
    assert!(first["attempted"].as_u64().unwrap() <= 256);
    let mut sweeps = 1;
    while sweep(&p)["more"] == true {
        sweeps += 1;
        assert!(sweeps < 10);
    }
    for i in 0..600 {
        assert_eq!(view(&p, &format!("B{i}"))["credited"], true, "B{i}");
    }
    assert_eq!(
        bot_requests(&p).len() - inline,
        600,
        "each delivered once by the sweeps"
    );
}
