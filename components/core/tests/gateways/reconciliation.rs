//! The sweep asks a deposit's gateway when its callback is late.

use crate::common::*;
use crate::support::*;

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
