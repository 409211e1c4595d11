//! Several bots behind one deployment: `default` (the single-bot variables) and two bots of
//! `bots`, each with its own keys, credit URL and signing secret, on real stores and real
//! HTTP to three mock bots.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use topup_testkit::mocks::{BotMode, MockBot};

use crate::support::{bearer, paid_body, total, Backend, Reply, TestApp, SECRET};

const SHOP_SECRET: &str = "shop-signing-secret-0123456789";
const SHOP_KEY: &str = "shop-api-key-0123456789";
const WA_SECRET: &str = "wa-signing-secret-0123456789";

/// The app with `default` (its own mock bot) and the bots `shop` and `wa`, each at a mock bot
/// of its own whose origin is in a slot.
struct ThreeBots {
    app: TestApp,
    shop: MockBot,
    wa: MockBot,
}

fn bots_json(
    shop: &MockBot,
    shop_secret: &str,
    shop_previous: &str,
    wa: Option<&MockBot>,
) -> String {
    let mut bots = vec![json!({
        "id": "shop", "secret": shop_secret, "previousSecret": shop_previous,
        "apiKeys": [SHOP_KEY], "creditUrl": format!("{}/shop/credit", shop.url()),
    })];
    if let Some(wa) = wa {
        bots.push(
            json!({"id": "wa", "secret": WA_SECRET, "creditUrl": format!("{}/wa/topup", wa.url())}),
        );
    }
    Value::Array(bots).to_string()
}

impl ThreeBots {
    async fn start(backend: Backend) -> Self {
        let shop = MockBot::start("127.0.0.1:0", SHOP_SECRET)
            .await
            .expect("shop bot");
        let wa = MockBot::start("127.0.0.1:0", WA_SECRET)
            .await
            .expect("wa bot");
        let bots = bots_json(&shop, SHOP_SECRET, "", Some(&wa));
        let app = TestApp::start(
            backend,
            &[
                ("bots", &bots),
                ("bot_origin_1", &shop.url()),
                ("bot_origin_3", &wa.url()),
            ],
        )
        .await;
        Self { app, shop, wa }
    }
}

async fn send(app: &TestApp, method: &str, path: &str, token: &str, body: Option<&Value>) -> Reply {
    let authorization = bearer(token);
    let mut headers = vec![("authorization", authorization.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    app.http.send(method, path, &headers, body).await
}

/// Creates a deposit as the bot of `token`; returns (depositId, reference).
async fn create_as(app: &TestApp, token: &str, user: &str, amount: u64) -> (String, String) {
    let reply = send(
        app,
        "POST",
        "/deposit/create",
        token,
        Some(&json!({"userId": user, "amount": amount})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    let body = reply.json();
    (
        body["depositId"].as_str().unwrap().into(),
        body["reference"].as_str().unwrap().into(),
    )
}

async fn status_as(app: &TestApp, token: &str, query: &str) -> Reply {
    send(app, "GET", &format!("/deposit/status?{query}"), token, None).await
}

async fn three_bots_each_get_only_their_own_credits(backend: Backend) {
    let ThreeBots { app, shop, wa } = ThreeBots::start(backend).await;
    // Each bot creates with its own key (shop with its API key, wa with its secret).
    let (own, own_ref) = create_as(&app, SECRET, "d1", 10_000).await;
    let (sh, sh_ref) = create_as(&app, SHOP_KEY, "s1", 20_000).await;
    let (w, w_ref) = create_as(&app, WA_SECRET, "w1", 30_000).await;
    for (id, reference, amount) in [
        (&own, &own_ref, 10_000),
        (&sh, &sh_ref, 20_000),
        (&w, &w_ref, 30_000),
    ] {
        assert_eq!(
            app.callback(&paid_body(id, reference, amount)).await.status,
            200
        );
    }
    // Each credit reached its own bot only, at its credit URL, signed with its secret.
    for (bot, id, others, path, bot_id) in [
        (
            &app.bot,
            &own,
            [&sh, &w],
            "/internal/deposit-callback",
            None,
        ),
        (&shop, &sh, [&own, &w], "/shop/credit", Some("shop")),
        (&wa, &w, [&own, &sh], "/wa/topup", Some("wa")),
    ] {
        let deliveries = bot.deliveries(id);
        assert_eq!(deliveries.len(), 1, "{id}");
        assert!(
            deliveries[0].authentic,
            "{id} is signed with its bot's secret"
        );
        assert_eq!(deliveries[0].path, path);
        assert_eq!(deliveries[0].json()["botId"].as_str(), bot_id, "{id}");
        assert_eq!(bot.credits(id), 1);
        for other in others {
            assert!(
                bot.deliveries(other).is_empty(),
                "{other} reached the wrong bot"
            );
        }
    }
    // Status and retry of another bot's deposit are 404, by id and by reference.
    for (token, foreign, foreign_ref) in [
        (SHOP_KEY, &w, &w_ref),
        (WA_SECRET, &own, &own_ref),
        (SECRET, &sh, &sh_ref),
    ] {
        for query in [
            format!("depositId={foreign}"),
            format!("reference={foreign_ref}"),
        ] {
            let reply = status_as(&app, token, &query).await;
            assert_eq!(reply.status, 404, "{query}: {}", reply.json());
            assert_eq!(reply.json()["error"], "DEPOSIT_NOT_FOUND");
        }
        let reply = send(
            &app,
            "POST",
            &format!("/deposit/retry-credit?depositId={foreign}"),
            token,
            None,
        )
        .await;
        assert_eq!(reply.status, 404, "{}", reply.json());
    }
    // Its own bot sees it credited.
    let view = status_as(&app, SHOP_KEY, &format!("depositId={sh}")).await;
    assert_eq!(
        (view.status, view.json()["credited"].clone()),
        (200, json!(true))
    );
    // A chosen id another bot holds is taken, its deposit never shown.
    let chosen = json!({"userId": "s2", "amount": 20_000, "depositId": "order-7"});
    assert_eq!(
        send(&app, "POST", "/deposit/create", SHOP_KEY, Some(&chosen))
            .await
            .status,
        200
    );
    let reply = send(&app, "POST", "/deposit/create", WA_SECRET, Some(&chosen)).await;
    assert_eq!(reply.status, 409, "{}", reply.json());
    assert!(reply.json().get("paymentUrl").is_none());
    // The sweep is the deployment's: a bot's key is refused.
    for token in [SHOP_KEY, WA_SECRET, "wrong"] {
        assert_eq!(
            send(&app, "POST", "/internal/credit-retry", token, None)
                .await
                .status,
            401
        );
    }
}

async fn a_storm_over_three_bots_credits_each_once_at_its_owner(backend: Backend) {
    let ThreeBots { app, shop, wa } = ThreeBots::start(backend).await;
    let tokens = [SECRET, SHOP_KEY, WA_SECRET];
    let mut deposits = Vec::new();
    for i in 0..9 {
        let token = tokens[i % 3];
        let (id, reference) = create_as(&app, token, &format!("u{i}"), 15_000).await;
        deposits.push((i % 3, id, reference));
    }
    // Every deposit's PAID callback, sent 6 times at once: 54 callbacks.
    let storm = deposits.iter().flat_map(|(_, id, reference)| {
        let body = paid_body(id, reference, 15_000);
        (0..6).map(move |_| body.clone())
    });
    let answers = futures::future::join_all(storm.map(|body| {
        let api = app.api.clone();
        async move { api.callback(&body).await.status }
    }))
    .await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    app.sweep_until(Duration::from_secs(30), |_| {
        deposits
            .iter()
            .all(|(owner, id, _)| [&app.bot, &shop, &wa][*owner].credits(id) == 1)
    })
    .await;
    for (owner, id, _) in &deposits {
        for (n, bot) in [&app.bot, &shop, &wa].into_iter().enumerate() {
            let expected = u32::from(n == *owner);
            assert_eq!(bot.credits(id), expected, "{id} at bot {n}");
            assert!(bot.deliveries(id).iter().all(|d| d.authentic));
        }
    }
}

async fn a_bot_down_is_swept_and_a_removed_bot_stays_owed(backend: Backend) {
    let ThreeBots { mut app, shop, wa } = ThreeBots::start(backend).await;
    wa.set_mode(BotMode::Status(503));
    let (w, w_ref) = create_as(&app, WA_SECRET, "w1", 30_000).await;
    let (sh, sh_ref) = create_as(&app, SHOP_KEY, "s1", 20_000).await;
    assert_eq!(
        app.callback(&paid_body(&w, &w_ref, 30_000)).await.status,
        200
    );
    assert_eq!(
        app.callback(&paid_body(&sh, &sh_ref, 20_000)).await.status,
        200
    );
    assert_eq!(shop.credits(&sh), 1, "one bot down does not hold another");
    let view = status_as(&app, WA_SECRET, &format!("depositId={w}"))
        .await
        .json();
    assert_eq!(
        (view["status"].clone(), view["credited"].clone()),
        (json!("PAID"), json!(false))
    );

    // wa is taken out of `bots`: its credit is owed, reported, and sent nowhere.
    let sent_before = wa.received().len();
    let bots = bots_json(&shop, SHOP_SECRET, "", None);
    app.restart_with(&[("bots", &bots)]).await;
    app.clock.advance(Duration::from_secs(2));
    let answers = app
        .sweep_until(Duration::from_secs(5), |a| total(a, "notSent") >= 1)
        .await;
    assert_eq!(total(&answers, "credited"), 0);
    assert_eq!(
        wa.received().len(),
        sent_before,
        "a removed bot is not called"
    );
    assert!(
        app.bot.deliveries(&w).is_empty() && shop.deliveries(&w).is_empty(),
        "never sent elsewhere"
    );
    // Its key no longer opens anything.
    assert_eq!(
        status_as(&app, WA_SECRET, &format!("depositId={w}"))
            .await
            .status,
        401
    );

    // wa comes back, up again: the owed credit reaches it, once.
    wa.set_mode(BotMode::Accept);
    let bots = bots_json(&shop, SHOP_SECRET, "", Some(&wa));
    app.restart_with(&[("bots", &bots)]).await;
    app.sweep_until(Duration::from_secs(10), |_| wa.credits(&w) == 1)
        .await;
    let view = status_as(&app, WA_SECRET, &format!("depositId={w}"))
        .await
        .json();
    assert_eq!(view["credited"], true, "{view}");
    let deliveries = wa.deliveries(&w);
    assert!(
        deliveries.iter().all(|d| d.body == deliveries[0].body),
        "every resend has the same bytes"
    );
}

async fn a_bot_rotates_its_secret(backend: Backend) {
    let ThreeBots { mut app, shop, .. } = ThreeBots::start(backend).await;
    const NEW: &str = "shop-signing-secret-rotated-42";
    let bots = bots_json(&shop, NEW, SHOP_SECRET, None);
    app.restart_with(&[("bots", &bots)]).await;
    // The new secret signs from the moment it is set; the old one still opens the API.
    shop.set_secret(NEW);
    let (sh, sh_ref) = create_as(&app, SHOP_SECRET, "s1", 20_000).await;
    assert_eq!(
        app.callback(&paid_body(&sh, &sh_ref, 20_000)).await.status,
        200
    );
    let deliveries = shop.deliveries(&sh);
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].authentic, "signed with the new secret");
    assert_eq!(
        status_as(&app, NEW, &format!("depositId={sh}"))
            .await
            .status,
        200
    );
    assert_eq!(
        status_as(&app, SHOP_KEY, &format!("depositId={sh}"))
            .await
            .status,
        200
    );
    // The rotation ends: the old secret is refused.
    let bots = bots_json(&shop, NEW, "", None);
    app.restart_with(&[("bots", &bots)]).await;
    assert_eq!(
        status_as(&app, SHOP_SECRET, &format!("depositId={sh}"))
            .await
            .status,
        401
    );
}

async fn a_bot_whose_origin_the_manifest_does_not_allow_is_refused(backend: Backend) {
    let ThreeBots { mut app, .. } = ThreeBots::start(backend).await;
    // wa's slot goes back to its default: its origin is no longer in allowed_outbound_hosts.
    app.restart_with(&[("bot_origin_3", "https://bot-origin-3.invalid")])
        .await;
    let before = app.stores.snapshot();
    let reply = send(
        &app,
        "POST",
        "/deposit/create",
        WA_SECRET,
        Some(&json!({"userId": "w", "amount": 30_000})),
    )
    .await;
    assert_eq!(reply.status, 500, "{}", reply.json());
    assert_eq!(reply.json()["error"], "CONFIG_ERROR");
    let message = reply.json()["message"].to_string();
    assert!(
        message.contains("bots") && message.contains("`wa`") && message.contains("bot_origin"),
        "{message}"
    );
    assert!(!message.contains(WA_SECRET));
    assert_eq!(app.stores.snapshot(), before, "nothing written");
    assert!(
        app.pg.received().is_empty(),
        "no invoice for a bot its credit could not reach"
    );
    // The other bots go on.
    create_as(&app, SHOP_KEY, "s", 20_000).await;
}

crate::on_both_backends!(
    three_bots_each_get_only_their_own_credits,
    a_storm_over_three_bots_credits_each_once_at_its_owner,
    a_bot_down_is_swept_and_a_removed_bot_stays_owed,
    a_bot_rotates_its_secret,
    a_bot_whose_origin_the_manifest_does_not_allow_is_refused,
);
