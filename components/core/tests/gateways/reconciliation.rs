//! The sweep asks a deposit's gateway when its callback is late.

use crate::common::*;
use crate::ledger::*;
use crate::support::*;

/// The default `reconcile_after_seconds`, and a bucket's margin past it.
const FIRST_CHECK: Duration = Duration::from_secs(600 + 15);

/// The amount every reconciliation test pays.
const AMOUNT: u64 = 50_000;

fn reference_of(created: &Value) -> String {
    created["reference"].as_str().unwrap().to_string()
}

#[test]
fn a_lost_callback_is_reconciled_and_credited_once() {
    for gateway in GATEWAYS {
        let ledger = Shared::default();
        let p = ledger_platform(&ledger);
        let id = format!("DEP-{gateway}");
        let reference = reference_of(&create_at(&p, gateway, &id, AMOUNT));
        // Too early: nothing is asked.
        let report = sweep(&p);
        assert!(
            report.get("reconciliation").is_none(),
            "{gateway}: {report}"
        );
        assert_eq!(status_queries(&p), 0, "{gateway}");

        // The buyer paid; the callback was lost.
        ledger.lock().unwrap().set(&reference, State::Paid);
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
        let notice = {
            let ledger = ledger.lock().unwrap();
            notice_of(ledger.by_reference(&reference).unwrap(), 0)
        };
        acknowledged(gateway, &notify(&p, gateway, &notice));
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
        // And no further check is ever made.
        let asked = status_queries(&p);
        p.clock.advance(Duration::from_secs(2 * 86_400));
        sweep(&p);
        assert_eq!(status_queries(&p), asked, "{gateway}");
    }
}

#[test]
fn a_paid_callback_ends_the_checks() {
    let ledger = Shared::default();
    let p = ledger_platform(&ledger);
    let reference = reference_of(&create_at(&p, "xendit", "DEP-C", AMOUNT));
    ledger.lock().unwrap().set(&reference, State::Paid);
    let notice = {
        let ledger = ledger.lock().unwrap();
        notice_of(ledger.by_reference(&reference).unwrap(), 0)
    };
    acknowledged("xendit", &notify(&p, "xendit", &notice));
    // The notice was confirmed with one query; the sweep asks nothing more.
    assert_eq!(status_queries(&p), 1);
    p.clock.advance(FIRST_CHECK);
    let report = sweep(&p);
    assert!(report.get("reconciliation").is_none(), "{report}");
    assert_eq!(status_queries(&p), 1);
    assert_eq!(credits_sent(&p, "DEP-C").len(), 1);
}

#[test]
fn pending_deposits_are_checked_on_a_backoff_until_they_end() {
    let ledger = Shared::default();
    let p = ledger_platform(&ledger);
    let reference = reference_of(&create_at(&p, "midtrans", "DEP-B", AMOUNT));
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
    ledger.lock().unwrap().set(&reference, State::Expired);
    p.clock.advance(Duration::from_secs(815));
    assert_eq!(sweep(&p)["reconciliation"]["failed"], 1);
    assert_eq!(view(&p, "DEP-B")["status"], "FAILED");
    assert!(credits_sent(&p, "DEP-B").is_empty());
    p.clock.advance(Duration::from_secs(2 * 86_400));
    sweep(&p);
    assert_eq!(status_queries(&p), 3);
}

#[test]
fn an_invoice_is_asked_about_once_more_when_it_can_no_longer_be_paid() {
    // A day after its create (the invoice's time to be paid at the gateway), a deposit still
    // pending gets a last check, whatever the backoff: an unpaid answer then closes it.
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    p.variables = p.variables.clone().with("reconcile_schedule", "86400");
    create_at(&p, "midtrans", "DEP-F", AMOUNT);
    p.clock.advance(FIRST_CHECK);
    assert_eq!(sweep(&p)["reconciliation"]["pending"], 1);
    p.clock
        .advance(Duration::from_secs(86_400 + 60 + 15) - FIRST_CHECK);
    let report = sweep(&p);
    assert_eq!(report["reconciliation"]["failed"], 1, "{report}");
    assert_eq!(status_queries(&p), 2);
    p.clock.advance(Duration::from_secs(3 * 86_400));
    sweep(&p);
    assert_eq!(
        status_queries(&p),
        2,
        "a closed invoice is not asked about again"
    );
}

#[test]
fn an_unknown_order_counts_as_pending_and_a_bad_answer_as_an_error() {
    let ledger = Shared::default();
    let p = ledger_platform(&ledger);
    // Midtrans answers 404 until the buyer picks a method: pending.
    create_at(&p, "midtrans", "DEP-U", AMOUNT);
    // Xendit answers 404 for an invoice it does not know: no usable answer.
    let lost = reference_of(&create_at(&p, "xendit", "DEP-E", AMOUNT));
    ledger.lock().unwrap().forget(&lost);
    p.clock.advance(FIRST_CHECK);
    let report = sweep(&p);
    assert_eq!(report["reconciliation"]["checked"], 2, "{report}");
    assert_eq!(report["reconciliation"]["pending"], 1, "{report}");
    assert_eq!(report["reconciliation"]["errors"], 1, "{report}");
    assert_eq!(view(&p, "DEP-U")["status"], "PENDING");
}

#[test]
fn each_sweep_checks_a_bounded_number() {
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    p.variables = p.variables.clone().with("reconcile_max_per_sweep", "2");
    for n in 0..5 {
        let reference = reference_of(&create_at(&p, "tripay", &format!("DEP-{n}"), AMOUNT));
        ledger.lock().unwrap().set(&reference, State::Paid);
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
    let p = ledger_platform(&Shared::default());
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
fn a_gateway_without_credentials_is_asked_again_once_they_are_back() {
    let ledger = Shared::default();
    let mut p = ledger_platform(&ledger);
    let reference = reference_of(&create_at(&p, "duitku", "DEP-D", AMOUNT));
    ledger.lock().unwrap().set(&reference, State::Paid);
    let configured = p.variables.clone();
    p.variables = configured
        .clone()
        .with("gateways_enabled", "central,midtrans,xendit,tripay")
        .with("duitku_api_key", "");
    p.clock.advance(FIRST_CHECK);
    let report = sweep(&p);
    assert_eq!(report["reconciliation"]["skipped"], 1, "{report}");
    assert_eq!(status_queries(&p), 0);
    // The key is back (Duitku still out of gateways_enabled): the next check credits it.
    p.variables = configured.with("gateways_enabled", "central,midtrans,xendit,tripay");
    p.clock.advance(Duration::from_secs(615));
    let report = sweep(&p);
    assert_eq!(report["reconciliation"]["paid"], 1, "{report}");
    assert_eq!(credits_sent(&p, "DEP-D").len(), 1);
}

#[test]
fn an_operator_asks_the_gateway_now_and_the_next_sweep_credits_the_lost_callback() {
    for gateway in GATEWAYS {
        let ledger = Shared::default();
        let mut p = ledger_platform(&ledger);
        p.variables = p
            .variables
            .clone()
            .with("admin_token", "operator-token-0123456789");
        let id = format!("DEP-{gateway}");
        let reference = reference_of(&create_at(&p, gateway, &id, AMOUNT));
        ledger.lock().unwrap().set(&reference, State::Paid);
        let reconcile = |id: &str| {
            routes::admin_action::handle(
                &Request::new("POST", &format!("/admin/action/reconcile?depositId={id}"))
                    .with_header("authorization", "Bearer operator-token-0123456789"),
                &p.platform(),
            )
        };
        let asked = reconcile(&id);
        assert_eq!(asked.status, 200, "{gateway}: {}", asked.json_body());
        // Well before its first scheduled check, the next sweep asks and credits it.
        p.clock.advance(Duration::from_secs(5));
        let report = sweep(&p);
        assert_eq!(report["reconciliation"]["paid"], 1, "{gateway}: {report}");
        assert_eq!(credits_sent(&p, &id).len(), 1, "{gateway}");
        // Paid now: asking again is refused and schedules nothing.
        let again = reconcile(&id);
        assert_eq!(again.status, 409, "{gateway}");
        assert_eq!(again.json_body()["error"], "WRONG_STATE");
    }
    // The Central PG cannot be asked.
    let p = platform();
    let mut p = p;
    p.variables = p
        .variables
        .clone()
        .with("admin_token", "operator-token-0123456789");
    new_deposit(&p, "C1", 5000);
    let before = store_snapshot(&p);
    let refused = routes::admin_action::handle(
        &Request::new("POST", "/admin/action/reconcile?depositId=C1")
            .with_header("authorization", "Bearer operator-token-0123456789"),
        &p.platform(),
    );
    assert_eq!(refused.status, 409);
    assert_eq!(store_snapshot(&p), before);
}
