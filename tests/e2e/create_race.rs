//! Two creates of one caller-chosen `depositId` by different users while the PG takes 2 s:
//! the id is claimed before the PG is called, so exactly one gets the invoice.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use topup_testkit::mocks::PgMode;

use crate::support::{paid_body, report, Backend, Reply, TestApp};

/// How the second create is timed against the first.
#[derive(Debug, Clone, Copy)]
enum Timing {
    /// Both sent at once.
    Together,
    /// The second once the first is waiting for the PG.
    WhileAtPg,
}

/// Invoice requests the PG received for `id`.
fn invoices_for(app: &TestApp, id: &str) -> usize {
    app.pg
        .received()
        .iter()
        .filter(|r| r.json()["orderId"] == id)
        .count()
}

async fn race(app: &TestApp, id: &str, timing: Timing) -> (Value, Value, Reply, Reply) {
    let alice = json!({"userId": "alice", "amount": 5000, "depositId": id});
    let bob = json!({"userId": "bob", "amount": 7000, "depositId": id});
    let (a, b) = tokio::join!(app.create(&alice), async {
        if let Timing::WhileAtPg = timing {
            let deadline = Instant::now() + Duration::from_secs(2);
            while invoices_for(app, id) == 0 {
                assert!(
                    Instant::now() < deadline,
                    "the first create never reached the PG"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        app.create(&bob).await
    });
    (alice, bob, a, b)
}

async fn two_users_create_one_id_over_a_slow_pg(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    app.pg.set_mode(PgMode::Slow(Duration::from_millis(2_000)));
    let rounds = [
        ("RACE-0", Timing::Together),
        ("RACE-1", Timing::Together),
        ("RACE-2", Timing::WhileAtPg),
        ("RACE-3", Timing::WhileAtPg),
    ];
    let results =
        futures::future::join_all(rounds.iter().map(|(id, timing)| race(&app, id, *timing))).await;
    app.pg.set_mode(PgMode::Nested);

    let mut observed = Vec::new();
    for ((id, timing), (alice, bob, a, b)) in rounds.iter().zip(results) {
        let (winner, loser, won, lost) = match (a.status, b.status) {
            (200, 409) => (alice, bob, a, b),
            (409, 200) => (bob, alice, b, a),
            other => panic!(
                "{id} ({timing:?}): want one 200 and one 409, got {other:?}: {} / {}",
                a.json(),
                b.json()
            ),
        };
        let code = lost.json()["error"].as_str().unwrap_or("?").to_string();
        match timing {
            // Both may reach the claim together: the loser may be told to wait instead.
            Timing::Together => assert!(
                code == "DEPOSIT_CONFLICT" || code == "CREATE_IN_PROGRESS",
                "{id}: {}",
                lost.json()
            ),
            Timing::WhileAtPg => assert_eq!(code, "DEPOSIT_CONFLICT", "{id}: {}", lost.json()),
        }
        assert_eq!(invoices_for(&app, id), 1, "{id}: one invoice");

        // The deposit is the winner's; the loser asking again is refused for good.
        let view = app.view(id).await;
        assert_eq!(
            (view["userId"].clone(), view["amount"].clone()),
            (winner["userId"].clone(), winner["amount"].clone()),
            "{id}"
        );
        let again = app.create(&loser).await;
        assert_eq!(
            (again.status, again.json()["error"].clone()),
            (409, json!("DEPOSIT_CONFLICT")),
            "{id}: {}",
            again.json()
        );

        // Paying the invoice credits the winner's user and amount, once.
        let amount = winner["amount"].as_u64().unwrap();
        let reference = won.json()["reference"].as_str().unwrap().to_string();
        let paid = app.callback(&paid_body(id, &reference, amount)).await;
        assert_eq!(paid.status, 200, "{}", paid.json());
        assert_eq!(app.bot.credits(id), 1, "{id}");
        let credit = app.bot.deliveries(id)[0].json();
        assert_eq!(
            (credit["userId"].clone(), credit["amount"].clone()),
            (winner["userId"].clone(), winner["amount"].clone()),
            "{id}"
        );
        observed.push(format!("{timing:?}: 200+409 {code}"));
    }
    report(
        "2 users create one depositId over a 2 s PG (x4)",
        backend,
        "one 200 + one 409 each; 1 invoice; the winner credited",
        &observed.join(", "),
    );
}

crate::on_both_backends!(two_users_create_one_id_over_a_slow_pg);
