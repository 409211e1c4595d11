//! Alerts natively: each event raised once, delivered once to the webhook (signed) and to
//! Telegram, a failing channel retried alone on the credits' schedule until it gives up, a
//! run that dies after sending followed by the next attempt, nothing written while alerts
//! are off, and everything forgotten a lifetime after delivery.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

mod common;

use common::*;

const ALERT_SECRET: &str = "alert-secret-0123456789";
const TG_TOKEN: &str = "123456:ABC-alert_token";

fn alerting(p: &mut TestPlatform) {
    p.variables = p
        .variables
        .clone()
        .with("alert_url", "http://alerts.test/hooks/topup")
        .with("alert_origin", "http://alerts.test")
        .with("alert_secret", ALERT_SECRET)
        .with("alert_telegram_bot_token", TG_TOKEN)
        .with("alert_telegram_chat_id", "-100200300")
        .with("alert_telegram_api_url", "http://tg.test")
        .with("credit_retry_schedule", "10,20")
        .with("credit_max_retries", "3");
}

/// The bot answers `bot`, the webhook `hook`, Telegram `telegram`.
fn answers(p: &TestPlatform, bot: u16, hook: u16, telegram: u16) {
    p.http.set_handler(move |request| {
        let status = if request.url.starts_with("http://bot.test") {
            bot
        } else if request.url.starts_with("http://alerts.test") {
            hook
        } else if request.url.starts_with("http://tg.test") {
            telegram
        } else {
            return happy_upstreams(request);
        };
        let body = if request.url.starts_with("http://tg.test") {
            json!({"ok": status == 200, "result": {"message_id": 1}})
        } else {
            json!({})
        };
        Ok(OutboundResponse {
            status,
            body: body.to_string().into_bytes(),
        })
    });
}

/// One run, once what was just raised is due (a bucket is walked 2 s after its end).
fn run_alerts(p: &TestPlatform) -> Value {
    p.clock.advance(Duration::from_secs(5));
    let response = routes::alerts::handle(&authed("POST", "/internal/alerts"), &p.platform());
    assert_eq!(response.status, 200, "{}", response.json_body());
    response.json_body()
}

fn webhooks(p: &TestPlatform) -> Vec<OutboundRequest> {
    p.http.requests_to("alerts.test")
}

fn telegrams(p: &TestPlatform) -> Vec<OutboundRequest> {
    p.http.requests_to("tg.test")
}

fn header<'r>(request: &'r OutboundRequest, name: &str) -> &'r str {
    request
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// D1 is paid while the bot answers 500, and its three scheduled retries exhaust it.
fn exhaust(p: &TestPlatform, id: &str) {
    new_deposit(p, id, 5000);
    callback(p, &paid_body(id, 5000));
    for step in [13, 23, 23] {
        p.clock.advance(Duration::from_secs(step));
        sweep(p);
    }
    assert_eq!(view(p, id)["creditExhausted"], true);
}

#[test]
fn an_exhausted_credit_is_alerted_once_on_each_channel() {
    let mut p = platform();
    alerting(&mut p);
    answers(&p, 500, 200, 200);
    exhaust(&p, "D1");
    let report = run_alerts(&p);
    assert_eq!(
        (report["sent"].clone(), report["failed"].clone()),
        (json!(1), json!(0))
    );

    let hooks = webhooks(&p);
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook.url, "http://alerts.test/hooks/topup");
    let body: Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(body["kind"], "exhausted");
    assert_eq!(body["depositId"], "D1");
    assert_eq!(body["id"], header(hook, "idempotency-key"));
    assert!(body["text"].as_str().unwrap().contains("D1"));
    // Signed as credits are under the timestamped scheme: {timestamp}.{nonce}.{body}.
    let content = format!(
        "{}.{}.{}",
        header(hook, "x-timestamp"),
        header(hook, "x-nonce"),
        String::from_utf8_lossy(&hook.body)
    );
    assert_eq!(
        header(hook, "x-signature"),
        sign(&Secret::new(ALERT_SECRET), content.as_bytes())
    );

    let sent = telegrams(&p);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].url,
        format!("http://tg.test/bot{TG_TOKEN}/sendMessage")
    );
    assert_eq!(header(&sent[0], "content-type"), "application/json");
    let message: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(message["chat_id"], "-100200300");
    assert_eq!(message["text"], body["text"]);

    // Later runs and sweeps send nothing more: the event was told.
    for _ in 0..3 {
        p.clock.advance(Duration::from_secs(3600));
        sweep(&p);
        assert_eq!(run_alerts(&p)["sent"], 0);
    }
    assert_eq!((webhooks(&p).len(), telegrams(&p).len()), (1, 1));
}

#[test]
fn a_failing_channel_is_retried_alone_until_its_attempts_run_out() {
    let mut p = platform();
    alerting(&mut p);
    answers(&p, 500, 503, 200);
    exhaust(&p, "D1");
    let first = run_alerts(&p);
    assert_eq!(first["failed"], 1, "{first}");
    assert_eq!((webhooks(&p).len(), telegrams(&p).len()), (1, 1));
    // Not due yet (10 s after the first): nothing is sent.
    run_alerts(&p);
    assert_eq!(webhooks(&p).len(), 1);
    // Attempts 2, 3 and 4 (credit_max_retries + 1 in all) go to the webhook only.
    for _ in 0..3 {
        p.clock.advance(Duration::from_secs(25));
        run_alerts(&p);
    }
    assert_eq!((webhooks(&p).len(), telegrams(&p).len()), (4, 1));
    let key = p
        .records
        .keys()
        .into_iter()
        .find(|k| k.starts_with("alertlog:exhausted:D1."))
        .unwrap();
    let log = p.records.get(&key).unwrap().unwrap();
    let log: Value = serde_json::from_slice(&log).unwrap();
    assert_eq!(log["v"]["state"], "gaveUp", "{log}");
    assert_eq!(log["v"]["telegram"], true);
    assert!(log["v"]["lastResult"]
        .as_str()
        .unwrap()
        .starts_with("webhook:"));
    p.clock.advance(Duration::from_secs(3600));
    run_alerts(&p);
    assert_eq!(webhooks(&p).len(), 4, "given up: no more attempts");
}

#[test]
fn a_run_that_dies_after_sending_is_followed_by_the_next_attempt() {
    let mut p = platform();
    alerting(&mut p);
    p.variables = p
        .variables
        .clone()
        .with("alert_telegram_chat_id", "")
        .with("alert_telegram_bot_token", "");
    answers(&p, 500, 200, 200);
    exhaust(&p, "D1");
    // The store goes away once the webhook answered, before the run records it.
    let switch = p.records.failure_switch();
    let hooked = HookedCall::after(&p.http, "alerts.test", || switch.fail("disk gone"));
    let platform = Platform {
        http: &hooked,
        ..p.platform()
    };
    p.clock.advance(Duration::from_secs(5));
    let response = routes::alerts::handle(&authed("POST", "/internal/alerts"), &platform);
    assert_eq!(response.status, 503, "{}", response.json_body());
    p.records.failure_switch().heal();
    p.clock.advance(Duration::from_secs(15));
    assert_eq!(run_alerts(&p)["sent"], 1);
    let hooks = webhooks(&p);
    assert_eq!(hooks.len(), 2, "sent again: the first was never recorded");
    assert_eq!(
        header(&hooks[0], "idempotency-key"),
        header(&hooks[1], "idempotency-key")
    );
}

#[test]
fn refunds_due_and_reviews_are_alerted_once_each() {
    let mut p = platform();
    alerting(&mut p);
    answers(&p, 200, 200, 200);
    new_deposit(&p, "D1", 5000);
    callback(&p, &paid_body("D1", 5000));
    // A second invoice of D1 paid: a refund due, told once however often it is reported.
    let second =
        json!({"orderId": "D1", "reference": "REF-OTHER", "status": "PAID", "resultCode": "00",
        "duitkuData": {"merchantOrderId": "D1", "amount": "5000", "paymentMethod": "VC"}})
        .to_string();
    let store = p.platform();
    let lifetime = topup_core::testing::test_config();
    let deposits = topup_core::store::DepositStore::new(&store, lifetime.lifetime().unwrap());
    let invoice = topup_core::deposit::Invoice {
        reference: topup_core::ids::Reference::parse("REF-OTHER").unwrap(),
        ..deposits
            .invoice(&topup_core::ids::Reference::parse("REF-D1").unwrap())
            .unwrap()
            .unwrap()
    };
    p.records
        .set(
            "ref:REF-OTHER",
            &topup_core::envelope::Envelope::new(&invoice, u64::MAX).encode(),
        )
        .unwrap();
    for _ in 0..3 {
        assert_eq!(callback(&p, &second).status, 200);
    }
    // A payment of the wrong amount on D2: a review.
    new_deposit(&p, "D2", 7000);
    for _ in 0..2 {
        callback(&p, &paid_body("D2", 6500));
    }
    let report = run_alerts(&p);
    assert_eq!(report["sent"], 2, "{report}");
    let kinds: Vec<(String, String)> = webhooks(&p)
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .map(|b| {
            (
                b["kind"].as_str().unwrap().into(),
                b["depositId"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("refundDue".into(), "D1".into())),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("review".into(), "D2".into())), "{kinds:?}");
}

#[test]
fn a_quarantined_record_is_alerted() {
    let mut p = platform();
    alerting(&mut p);
    answers(&p, 500, 200, 200);
    new_deposit(&p, "D1", 5000);
    callback(&p, &paid_body("D1", 5000));
    p.records.set("credit:D1", b"{broken").unwrap();
    p.clock.advance(Duration::from_secs(3600));
    assert_eq!(sweep(&p)["quarantined"], 1);
    run_alerts(&p);
    let hooks = webhooks(&p);
    assert_eq!(hooks.len(), 1);
    let body: Value = serde_json::from_slice(&hooks[0].body).unwrap();
    assert_eq!(body["kind"], "quarantined");
    assert_eq!(body["subject"], "deposit D1");
}

#[test]
fn with_alerts_off_nothing_is_written_or_sent() {
    let mut p = platform();
    p.variables = p
        .variables
        .clone()
        .with("credit_retry_schedule", "10,20")
        .with("credit_max_retries", "3");
    answers(&p, 500, 200, 200);
    exhaust(&p, "D1");
    assert!(
        p.records.keys().iter().all(|k| !k.starts_with("alert")),
        "{:?}",
        p.records.keys()
    );
    assert_eq!(run_alerts(&p)["sent"], 0);
    assert!(webhooks(&p).is_empty() && telegrams(&p).is_empty());
}

#[test]
fn a_delivered_alert_is_forgotten_a_lifetime_later() {
    let mut p = platform();
    alerting(&mut p);
    answers(&p, 500, 200, 200);
    exhaust(&p, "D1");
    run_alerts(&p);
    assert!(p.records.keys().iter().any(|k| k.starts_with("alert:")));
    p.clock.advance(Duration::from_secs(31 * 86_400));
    let report = run_alerts(&p);
    assert_eq!(report["forgotten"], 1, "{report}");
    assert!(
        !p.records.keys().iter().any(|k| k.starts_with("alert")),
        "{:?}",
        p.records.keys()
    );
    assert!(
        !p.claims.keys().iter().any(|k| k.starts_with("alerting:")),
        "{:?}",
        p.claims.keys()
    );
}

#[test]
fn alert_configuration_errors_name_the_variable() {
    let cases = [
        ("alert_url", "http://elsewhere.test/hook", "alert_url"),
        ("alert_secret", "short", "alert_secret"),
        ("alert_telegram_bot_token", "", "alert_telegram_bot_token"),
        ("alert_telegram_chat_id", "chat", "alert_telegram_chat_id"),
        ("alert_telegram_chat_id", "-", "alert_telegram_chat_id"),
        (
            "alert_telegram_api_url",
            "http://tg.test/api",
            "alert_telegram_api_url",
        ),
    ];
    for (name, value, named) in cases {
        let mut p = platform();
        alerting(&mut p);
        p.variables = p.variables.clone().with(name, value);
        let response = routes::alerts::handle(&authed("POST", "/internal/alerts"), &p.platform());
        assert_eq!(response.status, 500, "{name}");
        let body = response.json_body();
        assert_eq!(body["error"], "CONFIG_ERROR", "{body}");
        assert!(body.to_string().contains(named), "{name}: {body}");
        assert!(!body.to_string().contains(TG_TOKEN) && !body.to_string().contains(ALERT_SECRET));
    }
}
