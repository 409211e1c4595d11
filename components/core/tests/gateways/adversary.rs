//! An adversary who holds every genuine notice, edits what a gateway does not sign and
//! replays it at any time, to any era of an id; creates overtaken in their last instant; ids
//! used again. Each test is one way the direct gateways or reconciliation could forge, lose
//! or misdirect money.

use std::sync::mpsc;

use topup_core::platform::Clock;

use crate::common::*;
use crate::ledger::*;
use crate::support::{acknowledged, notify};

/// A create of `id` at `gateway` for `user`.
fn create_for(p: &TestPlatform, gateway: &str, id: &str, user: &str, amount: u64) -> Response {
    create(
        p,
        json!({"userId": user, "amount": amount, "depositId": id, "gateway": gateway,
               "email": "buyer@example.com"}),
    )
}

/// The gateway behind `reference`, as the ledger has it.
fn txn(ledger: &Shared, reference: &str) -> Txn {
    ledger
        .lock()
        .unwrap()
        .by_reference(reference)
        .unwrap()
        .clone()
}

/// The gateway's genuine notice of `reference` in its current state.
fn genuine(ledger: &Shared, reference: &str) -> Request {
    let fee = ledger.lock().unwrap().tripay_fee;
    notice_of(&txn(ledger, reference), fee)
}

/// The buyer pays `reference` (or the payment is denied, or the invoice expires).
fn settle(ledger: &Shared, reference: &str, state: State) {
    ledger.lock().unwrap().set(reference, state);
}

/// Advances the clock in `step`s, sweeping after each.
fn sweeps(p: &TestPlatform, step: Duration, rounds: usize) {
    for _ in 0..rounds {
        p.clock.advance(step);
        let _ = sweep_on(&p.platform());
    }
}

/// Lets deposit `id`'s life end and the sweep remove it, then creates it again for `user`.
fn reuse(p: &TestPlatform, gateway: &str, id: &str, user: &str, amount: u64) -> Value {
    for _ in 0..200 {
        p.clock.advance(Duration::from_secs(60));
        let _ = sweep_on(&p.platform());
        let again = create_for(p, gateway, id, user, amount);
        if again.status == 200 && again.json_body()["replayed"].is_null() {
            return again.json_body();
        }
    }
    panic!("{id} was never free for a new deposit");
}

/// A deposit lifetime of 21.6 minutes (Midtrans, enabled, needs 20), checks every minute.
fn short_lived(p: &mut TestPlatform) {
    p.variables = p
        .variables
        .clone()
        .with("deposit_ttl_days", "0.015")
        .with("credit_retry_schedule", "60")
        .with("reconcile_after_seconds", "60")
        .with("reconcile_schedule", "60");
}

/// Two creates of deposit `id` at `gateway`, both for `user`: the first stalls past its hold
/// on the id and the second takes over; the first writes its invoice in its last instant,
/// after the second read the id as free and before the second's first write. Both answers.
fn overtaken(
    p: &TestPlatform,
    gateway: &str,
    id: &str,
    user: &str,
    amount: u64,
) -> (Response, Response) {
    overtaken_then(p, (gateway, id, user, amount), || {})
}

/// [`overtaken`], with `between` run once the first create has answered and before the
/// second goes on to the gateway.
fn overtaken_then(
    p: &TestPlatform,
    (gateway, id, user, amount): (&str, &str, &str, u64),
    between: impl FnOnce() + Send,
) -> (Response, Response) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (at_tx, at_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let body = json!({"userId": user, "amount": amount, "depositId": id, "gateway": gateway,
        "email": "buyer@example.com"});
    let (first_body, second_body) = (body.clone(), body);
    std::thread::scope(|scope| {
        let first = scope.spawn(move || {
            // Its second write of the record is the invoice: it stalls there, past its hold,
            // and the second create runs up to its own first write.
            let records = Interleaved::new(&p.records, ("set", "deposit:"), move || {
                p.clock.advance(Duration::from_secs(60));
                go_tx.send(()).unwrap();
                at_rx.recv().unwrap();
            })
            .at_nth(2);
            let platform = Platform {
                records: &records,
                ..p.platform()
            };
            let answer = routes::create::handle(&create_request(first_body), &platform);
            done_tx.send(()).unwrap();
            answer
        });
        let second = scope.spawn(move || {
            go_rx.recv().unwrap();
            let between = std::sync::Mutex::new(Some(between));
            let records = Interleaved::new(&p.records, ("set", "deposit:"), move || {
                at_tx.send(()).unwrap();
                done_rx.recv().unwrap();
                if let Some(between) = between.lock().unwrap().take() {
                    between();
                }
            });
            let platform = Platform {
                records: &records,
                ..p.platform()
            };
            routes::create::handle(&create_request(second_body), &platform)
        });
        (first.join().unwrap(), second.join().unwrap())
    })
}

#[test]
fn a_duitku_notice_whose_unsigned_result_code_was_edited_credits_nothing() {
    // Defect 1: Duitku signs merchantCode + amount + merchantOrderId, not resultCode.
    let ledger = Shared::default();
    let p = ledger_platform(&ledger);
    let created = create_for(&p, "duitku", "D1", "u1", 50_000).json_body();
    let reference = created["reference"].as_str().unwrap().to_string();
    settle(&ledger, &reference, State::Expired);
    let expired = genuine(&ledger, &reference);
    let forged = edit_form(&expired, "resultCode", Some("00"));
    let answer = notify(&p, "duitku", &forged);
    assert!(answer.status < 500, "{}", answer.json_body());
    assert!(
        credits_sent(&p, "D1").is_empty(),
        "an expired invoice was credited"
    );
    assert_ne!(view(&p, "D1")["status"], "PAID");
}

#[test]
fn digits_moved_between_duitkus_unseparated_signed_fields_credit_nothing() {
    // Defect 2: "DXXXX" + "50000" + "12" and "DXXXX" + "500001" + "2" sign alike.
    let ledger = Shared::default();
    let p = ledger_platform(&ledger);
    let twelve = create_for(&p, "duitku", "12", "u1", 50_000).json_body();
    create_for(&p, "duitku", "2", "u2", 500_001);
    let reference = twelve["reference"].as_str().unwrap().to_string();
    settle(&ledger, &reference, State::Paid);
    let paid = genuine(&ledger, &reference);
    acknowledged("duitku", &notify(&p, "duitku", &paid));
    assert_eq!(credits_sent(&p, "12").len(), 1);
    let moved = edit_form(
        &edit_form(
            &edit_form(&paid, "merchantOrderId", Some("2")),
            "amount",
            Some("500001"),
        ),
        "reference",
        None,
    );
    let answer = notify(&p, "duitku", &moved);
    assert!(answer.status < 500, "{}", answer.json_body());
    assert!(credits_sent(&p, "2").is_empty(), "deposit 2 was credited");
    assert_ne!(view(&p, "2")["status"], "PAID");
}

#[test]
fn an_old_duitku_notice_does_not_pay_the_next_deposit_of_its_id() {
    // Defect 3: the paid notice of the id's first deposit, resent without its (unsigned,
    // optional) reference once the id is used again by the same user for the same amount.
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    short_lived(&mut p);
    let first = create_for(&p, "duitku", "D1", "u1", 50_000).json_body();
    let reference = first["reference"].as_str().unwrap().to_string();
    settle(&ledger, &reference, State::Paid);
    let paid = genuine(&ledger, &reference);
    acknowledged("duitku", &notify(&p, "duitku", &paid));
    assert_eq!(credits_sent(&p, "D1").len(), 1);

    let second = reuse(&p, "duitku", "D1", "u1", 50_000);
    assert_ne!(second["reference"], first["reference"]);
    let replayed = edit_form(&paid, "reference", None);
    let answer = notify(&p, "duitku", &replayed);
    assert!(answer.status < 500, "{}", answer.json_body());
    assert_eq!(
        credits_sent(&p, "D1").len(),
        1,
        "the old payment paid the new deposit"
    );
    assert_eq!(view(&p, "D1")["status"], "PENDING");
}

#[test]
fn an_old_central_notice_with_fresh_headers_does_not_pay_the_next_deposit_of_its_id() {
    // Defect 3 at the Central PG, whose test double hands the same reference to every create
    // of an order id: with the timestamped signature the PG signs `X-Timestamp` and `X-Nonce`
    // too, so an old notice cannot be sent again with new ones.
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("pg_signature", "timestamped")
        .with("deposit_ttl_days", "0.01")
        .with("credit_retry_schedule", "60");
    new_deposit(&p, "D1", 5000);
    let body = paid_body("D1", 5000);
    let signed_at = p.clock.now_ms().to_string();
    let sign_v2 = |timestamp: &str, nonce: &str| {
        sign(
            &Secret::new(SECRET),
            format!("{timestamp}.{nonce}.{body}").as_bytes(),
        )
    };
    let send = |timestamp: &str, nonce: &str, signature: &str| {
        routes::callback::handle(
            &authed("POST", "/internal/payment-callback")
                .with_header("content-type", "application/json")
                .with_header("x-timestamp", timestamp)
                .with_header("x-nonce", nonce)
                .with_header("x-signature", signature)
                .with_body(body.clone()),
            &p.platform(),
        )
    };
    let genuine = sign_v2(&signed_at, "n-1");
    assert_eq!(send(&signed_at, "n-1", &genuine).status, 200);
    assert_eq!(credits_sent(&p, "D1").len(), 1);

    for _ in 0..200 {
        p.clock.advance(Duration::from_secs(60));
        let _ = sweep_on(&p.platform());
        if create(
            &p,
            json!({"userId": "u1", "amount": 5000, "depositId": "D1"}),
        )
        .status
            == 200
            && view(&p, "D1")["status"] == "PENDING"
        {
            break;
        }
    }
    assert_eq!(view(&p, "D1")["status"], "PENDING");
    let now = p.clock.now_ms().to_string();
    for (timestamp, nonce) in [(now.as_str(), "n-2"), (signed_at.as_str(), "n-1")] {
        assert_eq!(send(timestamp, nonce, &genuine).status, 401);
    }
    assert_eq!(credits_sent(&p, "D1").len(), 1);
}

#[test]
fn an_overtaken_creates_midtrans_payment_is_credited() {
    // Defect 4: Midtrans takes an order id once, so the create that took over fails, and the
    // record is left without the invoice the first create handed out in its last instant.
    let ledger = Shared::default();
    let p = ledger_platform(&ledger);
    let (first, second) = overtaken(&p, "midtrans", "D1", "u1", 50_000);
    assert_eq!(first.status, 200, "{}", first.json_body());
    assert_eq!(second.status, 502, "{}", second.json_body());
    let token = first.json_body()["reference"].as_str().unwrap().to_string();
    settle(&ledger, &token, State::Paid);
    let settlement = genuine(&ledger, &token);
    acknowledged("midtrans", &notify(&p, "midtrans", &settlement));
    assert_eq!(credits_sent(&p, "D1").len(), 1);
    assert_eq!(view(&p, "D1")["credited"], true);
}

#[test]
fn an_overtaken_creates_midtrans_payment_is_reconciled_when_its_notices_are_lost() {
    // Defect 4, the callback lost: reconciliation must ask about the invoice handed out.
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    short_lived(&mut p);
    let (first, _) = overtaken(&p, "midtrans", "D1", "u1", 50_000);
    let token = first.json_body()["reference"].as_str().unwrap().to_string();
    settle(&ledger, &token, State::Paid);
    sweeps(&p, Duration::from_secs(30), 10);
    assert_eq!(credits_sent(&p, "D1").len(), 1);
}

/// An overtaken create at Duitku whose invoice the buyer paid before the create that took
/// over called Duitku (which then makes a new transaction, not the paid one).
fn overtaken_at_duitku_and_paid(ledger: &Shared, p: &TestPlatform) -> (String, Response) {
    let paid_first = || {
        let mut ledger = ledger.lock().unwrap();
        let first = ledger.latest("duitku", "D1").unwrap().reference.clone();
        ledger.set(&first, State::Paid);
    };
    let (first, second) = overtaken_then(p, ("duitku", "D1", "u1", 50_000), paid_first);
    assert_eq!(first.status, 200, "{}", first.json_body());
    let reference = first.json_body()["reference"].as_str().unwrap().to_string();
    assert_eq!(txn(ledger, &reference).state, State::Paid);
    (reference, second)
}

#[test]
fn an_overtaken_creates_duitku_payment_is_credited() {
    // Simulation seed 1155179: Duitku's status API is asked by order id and answers about
    // the order's last transaction; the create that took over made a new one under the same
    // order id, so the paid invoice's notices were never confirmed.
    let ledger = Shared::default();
    let p = ledger_platform(&ledger);
    let (paid, second) = overtaken_at_duitku_and_paid(&ledger, &p);
    assert_eq!(second.status, 200, "{}", second.json_body());
    assert_ne!(second.json_body()["reference"], paid.as_str());
    acknowledged("duitku", &notify(&p, "duitku", &genuine(&ledger, &paid)));
    let sent = credits_sent(&p, "D1");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["reference"], paid.as_str());
}

#[test]
fn an_overtaken_creates_duitku_payment_is_reconciled_when_its_notices_are_lost() {
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    short_lived(&mut p);
    let (paid, _) = overtaken_at_duitku_and_paid(&ledger, &p);
    sweeps(&p, Duration::from_secs(30), 10);
    let sent = credits_sent(&p, "D1");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["reference"], paid.as_str());
}

/// Deposit `D1` at `gateway`, its invoice in `state`, and a sweep whose status answer comes
/// while the invoice can still be paid but is read only after that time is over (the sweep
/// stalled), while the buyer pays meanwhile. Then the gateway's genuine notice and a few more
/// sweeps; returns the credits sent.
fn answer_read_after_the_close(gateway: &str, state: State) -> Vec<Value> {
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    short_lived(&mut p);
    let created = create_for(&p, gateway, "D1", "u1", 50_000).json_body();
    let reference = created["reference"].as_str().unwrap().to_string();
    settle(&ledger, &reference, state);
    let query = if gateway == "duitku" {
        "transactionStatus"
    } else {
        "/status"
    };
    let stalled = HookedCall::after(&p.http, query, || {
        settle(&ledger, &reference, State::Paid);
        p.clock.advance(Duration::from_secs(900));
    });
    let platform = Platform {
        http: &stalled,
        ..p.platform()
    };
    // Until the first check is due and sent.
    for _ in 0..10 {
        if stalled.hook.borrow().is_none() {
            break;
        }
        p.clock.advance(Duration::from_secs(30));
        let _ = sweep_on(&platform);
    }
    assert!(stalled.hook.borrow().is_none(), "no status query was sent");
    let answer = notify(&p, gateway, &genuine(&ledger, &reference));
    assert!(answer.status < 500, "{}", answer.json_body());
    sweeps(&p, Duration::from_secs(60), 10);
    credits_sent(&p, "D1")
}

#[test]
fn a_pending_answer_read_after_the_invoice_closed_does_not_close_it() {
    // Simulation seed 1465915: the sweep asked Duitku while the invoice could still be paid
    // (pending), stalled, and applied the answer once that time was over as "closed unpaid";
    // the buyer had paid meanwhile, and the confirmed payment was refused from then on.
    let sent = answer_read_after_the_close("duitku", State::Pending);
    assert_eq!(sent.len(), 1, "{sent:?}");
}

#[test]
fn a_deny_read_after_the_invoice_closed_does_not_close_it() {
    // Simulation seed 1723848: the same with a Midtrans deny, which the buyer may follow with
    // another try in the same page.
    let sent = answer_read_after_the_close("midtrans", State::Denied);
    assert_eq!(sent.len(), 1, "{sent:?}");
}

#[test]
fn reconciliation_asks_about_every_invoice_a_deposit_handed_out() {
    // Defect 5: Xendit made an invoice for each create; the buyer paid the one the record no
    // longer names, and its callback was lost.
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    short_lived(&mut p);
    let (first, second) = overtaken(&p, "xendit", "D1", "u1", 50_000);
    assert_eq!((first.status, second.status), (200, 200));
    let (a, b) = (
        first.json_body()["reference"].as_str().unwrap().to_string(),
        second.json_body()["reference"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert_ne!(a, b);
    assert_eq!(view(&p, "D1")["reference"], b.as_str());
    settle(&ledger, &a, State::Paid);
    sweeps(&p, Duration::from_secs(30), 10);
    let sent = credits_sent(&p, "D1");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["reference"], a.as_str());
}

#[test]
fn a_leftover_invoice_does_not_capture_the_next_deposit_of_its_id() {
    // Defect 6: two invoices handed out; the record's is paid; removal forgot the other's
    // reference; the id is used again by another user; a late PAID of the other invoice
    // credited the old user under the new deposit.
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    short_lived(&mut p);
    let (first, second) = overtaken(&p, "xendit", "D1", "u1", 50_000);
    let (a, b) = (
        first.json_body()["reference"].as_str().unwrap().to_string(),
        second.json_body()["reference"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    settle(&ledger, &b, State::Paid);
    acknowledged("xendit", &notify(&p, "xendit", &genuine(&ledger, &b)));
    assert_eq!(credits_sent(&p, "D1").len(), 1);

    let next = reuse(&p, "xendit", "D1", "u2", 7_000);
    settle(&ledger, &a, State::Paid);
    let late = notify(&p, "xendit", &genuine(&ledger, &a));
    assert!(late.status < 500, "{}", late.json_body());
    let to_u2: Vec<Value> = credits_sent(&p, "D1")
        .into_iter()
        .filter(|c| c["userId"] != "u1" || c["reference"] != b.as_str())
        .collect();
    assert!(to_u2.is_empty(), "{to_u2:?}");

    // The new user's own payment is theirs.
    let c = next["reference"].as_str().unwrap().to_string();
    settle(&ledger, &c, State::Paid);
    acknowledged("xendit", &notify(&p, "xendit", &genuine(&ledger, &c)));
    let view = view(&p, "D1");
    assert_eq!(
        (view["userId"].clone(), view["credited"].clone()),
        (json!("u2"), json!(true))
    );
    assert!(view.get("refundsDue").is_none(), "{view}");
    let last = credits_sent(&p, "D1").pop().unwrap();
    assert_eq!(
        (last["userId"].clone(), last["amount"].clone()),
        (json!("u2"), json!(7000))
    );
}

#[test]
fn tripays_status_answer_carries_the_buyers_fee() {
    // Suspicion: Tripay's transaction detail gives `amount` with the buyer's fee included.
    let ledger = Shared::default();
    ledger.lock().unwrap().tripay_fee = 750;
    let mut p = ledger_platform(&ledger);
    short_lived(&mut p);
    let created = create_for(&p, "tripay", "D1", "u1", 50_000).json_body();
    settle(&ledger, created["reference"].as_str().unwrap(), State::Paid);
    sweeps(&p, Duration::from_secs(30), 6);
    let view = view(&p, "D1");
    assert_eq!(view["credited"], true, "{view}");
    assert!(view.get("review").is_none(), "{view}");
}

#[test]
fn a_denied_midtrans_payment_tried_again_is_still_found() {
    // Suspicion: reconciliation stopped at the first failed answer; Midtrans lets the buyer
    // try again in the same Snap page after a deny.
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    short_lived(&mut p);
    let created = create_for(&p, "midtrans", "D1", "u1", 50_000).json_body();
    let token = created["reference"].as_str().unwrap().to_string();
    settle(&ledger, &token, State::Denied);
    sweeps(&p, Duration::from_secs(30), 4);
    assert_eq!(view(&p, "D1")["status"], "FAILED");
    settle(&ledger, &token, State::Paid);
    sweeps(&p, Duration::from_secs(30), 6);
    assert_eq!(credits_sent(&p, "D1").len(), 1);
    assert_eq!(view(&p, "D1")["credited"], true);
}

#[test]
fn a_gateway_taken_out_of_gateways_enabled_still_serves_its_open_deposits() {
    // Suspicion: disabling a gateway stranded its open deposits.
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    short_lived(&mut p);
    let d1 = create_for(&p, "duitku", "D1", "u1", 50_000).json_body();
    let d2 = create_for(&p, "duitku", "D2", "u1", 50_000).json_body();
    p.variables = p.variables.clone().with("gateways_enabled", "central");
    let refused = create_for(&p, "duitku", "D3", "u1", 50_000);
    assert_eq!(refused.json_body()["error"], "GATEWAY_DISABLED");

    // Its callback is still verified and credited.
    let r1 = d1["reference"].as_str().unwrap();
    settle(&ledger, r1, State::Paid);
    acknowledged("duitku", &notify(&p, "duitku", &genuine(&ledger, r1)));
    assert_eq!(credits_sent(&p, "D1").len(), 1);
    // Its pending deposits are still reconciled.
    settle(&ledger, d2["reference"].as_str().unwrap(), State::Paid);
    sweeps(&p, Duration::from_secs(30), 6);
    assert_eq!(credits_sent(&p, "D2").len(), 1);

    // Without its credentials, its callback is a clear 4xx.
    p.variables = p.variables.clone().with("duitku_api_key", "");
    let answer = notify(&p, "duitku", &genuine(&ledger, r1));
    assert!(
        (400..500).contains(&answer.status),
        "{} {}",
        answer.status,
        answer.json_body()
    );
}
