//! Several bots behind one deployment, natively: who a key names, who sees a deposit, where
//! its credit goes, and what happens to a credit whose bot is gone.

mod common;

use common::*;

const SHOP_SECRET: &str = "shop-secret";
const SHOP_KEY: &str = "shop-api-key";

fn bots(extra: &str) -> String {
    format!(
        r#"[{{"id":"shop","secret":"{SHOP_SECRET}","apiKeys":["{SHOP_KEY}"],"creditUrl":"http://shop.test/credit"}}{extra}]"#
    )
}

/// The default bot at `http://bot.test`, and `shop` at `http://shop.test` (in slot 2).
fn two_bots() -> TestPlatform {
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("bots", &bots(""))
        .with("bot_origin_2", "http://shop.test");
    p
}

fn as_bot(request: Request, token: &str) -> Request {
    let mut request = request;
    request.headers.retain(|(name, _)| name != "authorization");
    request.with_header("authorization", &format!("Bearer {token}"))
}

fn create_as(p: &TestPlatform, token: &str, body: Value) -> Response {
    routes::create::handle(&as_bot(create_request(body), token), &p.platform())
}

fn status_as(p: &TestPlatform, token: &str, query: &str) -> Response {
    let request = authed("GET", &format!("/deposit/status?{query}"));
    routes::status::handle(&as_bot(request, token), &p.platform())
}

fn retry_as(p: &TestPlatform, token: &str, id: &str) -> Response {
    let request = authed("POST", &format!("/deposit/retry-credit?depositId={id}"));
    routes::manual_retry::handle(&as_bot(request, token), &p.platform())
}

#[test]
fn a_deposit_is_its_creators_and_its_credit_goes_to_its_bot_only() {
    let p = two_bots();
    let made = create_as(
        &p,
        SHOP_KEY,
        json!({"userId": "s1", "amount": 5000, "depositId": "S1"}),
    );
    assert_eq!(made.status, 200, "{}", made.json_body());
    new_deposit(&p, "D1", 5000);
    assert_eq!(callback(&p, &paid_body("S1", 5000)).status, 200);
    assert_eq!(callback(&p, &paid_body("D1", 5000)).status, 200);

    let shop_calls = p.http.requests_to("shop.test");
    assert_eq!(shop_calls.len(), 1);
    let call = &shop_calls[0];
    assert_eq!(call.url, "http://shop.test/credit");
    let header = |n: &str| {
        call.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("authorization"),
        Some(format!("Bearer {SHOP_SECRET}"))
    );
    assert!(verify_signature(
        [&Secret::new(SHOP_SECRET)],
        &call.body,
        &header("x-signature").unwrap_or_default()
    ));
    let body: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(
        (body["depositId"].clone(), body["botId"].clone()),
        (json!("S1"), json!("shop"))
    );
    // `default`'s credit keeps the original body: no botId.
    assert_eq!(credits_sent(&p, "S1").len(), 0, "never to another bot");
    let default_credit = &credits_sent(&p, "D1")[0];
    assert!(default_credit.get("botId").is_none(), "{default_credit}");

    // Each bot sees its own deposit only; another's is not found, by id or by reference.
    for (token, own, foreign) in [(SHOP_KEY, "S1", "D1"), (SECRET, "D1", "S1")] {
        assert_eq!(
            status_as(&p, token, &format!("depositId={own}")).status,
            200
        );
        for query in [
            format!("depositId={foreign}"),
            format!("reference=REF-{foreign}"),
        ] {
            let reply = status_as(&p, token, &query);
            assert_eq!(
                (reply.status, reply.json_body()["error"].clone()),
                (404, json!("DEPOSIT_NOT_FOUND")),
                "{token} {query}"
            );
        }
        assert_eq!(retry_as(&p, token, foreign).status, 404);
    }
    // A chosen id another bot holds is taken, and nothing of its deposit is shown.
    let before = store_snapshot(&p);
    let taken = create_as(
        &p,
        SECRET,
        json!({"userId": "s1", "amount": 5000, "depositId": "S1"}),
    );
    assert_eq!(taken.status, 409, "{}", taken.json_body());
    assert!(taken.json_body().get("paymentUrl").is_none());
    assert_eq!(store_snapshot(&p), before);
    // The sweep is the deployment's: a bot's key is refused.
    let sweep = routes::sweep::handle(
        &as_bot(authed("POST", "/internal/credit-retry"), SHOP_KEY),
        &p.platform(),
    );
    assert_eq!(sweep.status, 401);
}

#[test]
fn a_key_two_bots_share_names_neither() {
    let mut p = two_bots();
    let shared = r#",{"id":"wa","secret":"wa-secret","apiKeys":["shop-api-key"],"creditUrl":"http://shop.test/wa"}"#;
    p.variables = p.variables.clone().with("bots", &bots(shared));
    let before = store_snapshot(&p);
    let reply = create_as(&p, SHOP_KEY, json!({"userId": "s1", "amount": 5000}));
    assert_eq!(reply.status, 500, "{}", reply.json_body());
    let body = reply.json_body();
    assert_eq!(
        (body["error"].clone(), body["detail"]["variable"].clone()),
        (json!("CONFIG_ERROR"), json!("bots"))
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`shop`") && message.contains("`wa`"),
        "{message}"
    );
    assert!(!message.contains(SHOP_KEY), "{message}");
    assert_eq!(store_snapshot(&p), before);
    // Keys of their own still work.
    assert_eq!(
        create_as(&p, "wa-secret", json!({"userId": "w1", "amount": 5000})).status,
        200
    );
    assert_eq!(
        create_as(&p, SHOP_SECRET, json!({"userId": "s2", "amount": 5000})).status,
        200
    );
}

#[test]
fn a_bot_whose_origin_no_slot_holds_gets_no_invoice() {
    // The slot back at its default (or, against the advice, empty).
    for unused in ["https://bot-origin-2.invalid", ""] {
        let mut p = two_bots();
        p.variables = p.variables.clone().with("bot_origin_2", unused);
        let before = store_snapshot(&p);
        let reply = create_as(&p, SHOP_SECRET, json!({"userId": "s1", "amount": 5000}));
        assert_eq!(reply.status, 500, "{}", reply.json_body());
        assert_eq!(reply.json_body()["detail"]["variable"], "bots");
        assert_eq!(store_snapshot(&p), before, "nothing written");
        assert!(
            p.http.requests_to("pg.test").is_empty(),
            "the gateway is not asked"
        );
    }
}

#[test]
fn a_removed_bots_credit_stays_owed_is_sent_nowhere_and_reaches_it_once_it_is_back() {
    let mut p = two_bots();
    // Fewer waits than sweeps: a credit that counted them would end exhausted.
    p.variables = p
        .variables
        .clone()
        .with("credit_retry_schedule", "10")
        .with("credit_max_retries", "2");
    let made = create_as(
        &p,
        SHOP_KEY,
        json!({"userId": "s1", "amount": 5000, "depositId": "S1"}),
    );
    assert_eq!(made.status, 200);
    let configured = p.variables.clone();
    // The bot is taken out of `bots` before its deposit is paid.
    p.variables = p.variables.clone().with("bots", "[]");
    assert_eq!(callback(&p, &paid_body("S1", 5000)).status, 200);
    let sent = p.http.requests().len();
    for _ in 0..3 {
        p.clock.advance(Duration::from_secs(20));
        let report = sweep(&p);
        assert_eq!(
            (report["notSent"].clone(), report["attempted"].clone()),
            (json!(1), json!(0)),
            "{report}"
        );
        assert!(report["remaining"].as_u64() >= Some(1));
    }
    assert_eq!(p.http.requests().len(), sent, "nothing is sent, to any bot");
    // Its credit is owed and says why; no attempt or retry is counted.
    p.variables = configured;
    let view = status_as(&p, SHOP_KEY, "depositId=S1").json_body();
    assert_eq!(
        (view["status"].clone(), view["credited"].clone()),
        (json!("PAID"), json!(false)),
        "{view}"
    );
    assert_eq!(
        view["creditResult"]["error"], "BOT_NOT_CONFIGURED",
        "{view}"
    );
    assert_eq!(view["creditAttempts"], 0, "{view}");
    // Back in `bots`: the next due sweep delivers it, once.
    p.clock.advance(Duration::from_secs(20));
    assert_eq!(sweep(&p)["credited"], 1);
    assert_eq!(p.http.requests_to("shop.test").len(), 1);
    assert_eq!(
        status_as(&p, SHOP_KEY, "depositId=S1").json_body()["credited"],
        true
    );
}
