//! Scale-out: three `topup-host` processes over one Redis database (both labels in db 0), as
//! several `spin up` behind a balancer. Callbacks and sweeps spread across them must still
//! credit each deposit exactly once.

use std::time::Duration;

use topup_testkit::mocks::BotMode;

use crate::support::{paid_body, report, total, Api, Backend, Process, TestApp};

/// The app as three processes on one Redis: the test app's own, and two more.
async fn three_processes() -> (TestApp, Vec<Process>) {
    let mut app = TestApp::start(Backend::Redis, &[]).await;
    app.restart_as_process().await;
    let others = app.spawn_processes(2).await;
    (app, others)
}

async fn a_callback_storm_across_three_processes_credits_once() {
    let (app, others) = three_processes().await;
    let apis: [&Api; 3] = [&app.api, &others[0].api, &others[1].api];
    let (id, reference) = apis[1].new_deposit("u1", 5000).await;
    let body = paid_body(&id, &reference, 5000);
    let replies = futures::future::join_all((0..60).map(|i| apis[i % 3].callback(&body))).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "every callback is answered 200: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(app.bot.credits(&id), 1);
    assert_eq!(
        app.bot.deliveries(&id).len(),
        1,
        "no second delivery either"
    );
    for api in apis {
        assert_eq!(api.view(&id).await["credited"], true);
    }
    report(
        "60 identical PAID spread over 3 processes, one Redis db",
        Backend::Redis,
        "1 credit",
        &format!(
            "{} credit(s), {} delivery(ies)",
            app.bot.credits(&id),
            app.bot.deliveries(&id).len()
        ),
    );
}

async fn three_concurrent_sweeps_credit_thirty_owed_once_each() {
    let (app, others) = three_processes().await;
    let apis: [&Api; 3] = [&app.api, &others[0].api, &others[1].api];
    let (deposits, due) = app.owed_credits(&apis, 30, 5000).await;
    let inline: Vec<usize> = deposits
        .iter()
        .map(|(id, _)| app.bot.deliveries(id).len())
        .collect();
    app.bot.set_mode(BotMode::Accept);
    app.clock.until_sweepable(due);

    // Rounds of three sweeps at once, one per process, until every credit is recorded (the
    // app's clock moves 1 s between rounds, past the leases of generations left to owners).
    let mut answers = Vec::new();
    for rounds in 0.. {
        let round = futures::future::join_all(apis.iter().map(|api| api.sweep())).await;
        answers.extend(round);
        let views =
            futures::future::join_all(deposits.iter().map(|(id, _)| apis[2].view(id))).await;
        if views.iter().all(|view| view["credited"] == true) {
            break;
        }
        assert!(rounds < 10, "not all credited: {answers:?}");
        app.clock.advance(Duration::from_secs(1));
    }
    let mut sent = 0;
    for ((id, _), inline) in deposits.iter().zip(&inline) {
        assert_eq!(app.bot.credits(id), 1, "{id}");
        assert!(app.resends_identical(id), "{id}");
        sent += app.bot.deliveries(id).len() - inline;
    }
    // A sweep leaves a generation it cannot see yet to its owner: no credit is sent twice.
    assert_eq!(
        sent,
        deposits.len(),
        "overlapping sweeps sent a credit twice"
    );
    report(
        "3 concurrent sweeps (one per process) over 30 owed",
        Backend::Redis,
        "each credited exactly once",
        &format!(
            "30 credited once each; {sent} deliveries, {} recorded credited by {} sweeps",
            total(&answers, "credited"),
            answers.len()
        ),
    );
}

mod redis {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_callback_storm_across_three_processes_credits_once() {
        super::a_callback_storm_across_three_processes_credits_once().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn three_concurrent_sweeps_credit_thirty_owed_once_each() {
        super::three_concurrent_sweeps_credit_thirty_owed_once_each().await
    }
}
