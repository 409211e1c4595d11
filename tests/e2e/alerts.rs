//! The operator's alerts end to end: the real components raise them where money needs a hand
//! (a credit exhausted, a refund due, a review, a record quarantined, a gateway's payment
//! found by reconciliation) and `POST /internal/alerts` delivers each once to a strict signed
//! webhook receiver and to a strict Telegram `sendMessage`, retrying a channel that failed
//! alone; with the alert variables unset nothing is raised and nothing reaches either mock.
//! The app's clock is moved, never waited for: an alert is due 2 s after the end of its 1 s
//! bucket, as credits are ([`crate::support::TestClock::until_sweepable`]).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use topup_testkit::mocks::gateways::{MockGateway, Protocol};
use topup_testkit::mocks::{
    timestamped_authentic, BotMode, MockAlertReceiver, MockTelegram, Received, ALERT_HOOK_PATH,
    TELEGRAM_MAX_TEXT,
};

use crate::on_both_backends;
use crate::support::{bearer, paid_body, report, sign, Backend, Http, TestApp};

const ALERT_SECRET: &str = "e2e-alert-secret-0123456789";
const TG_TOKEN: &str = "123456:ABC-test_token";
const TG_CHAT: &str = "-1001234";
/// Scheduled credit retries before a credit is exhausted (each 1 s after the last).
const MAX_RETRIES: u32 = 2;

/// The two channels the operator is told on.
struct Channels {
    hook: MockAlertReceiver,
    telegram: MockTelegram,
}

impl Channels {
    async fn start() -> Self {
        Self {
            hook: MockAlertReceiver::start("127.0.0.1:0", ALERT_SECRET)
                .await
                .expect("mock alert receiver"),
            telegram: MockTelegram::start("127.0.0.1:0", TG_TOKEN, TG_CHAT)
                .await
                .expect("mock telegram"),
        }
    }

    /// The app's variables pointing alerts at both, with credits that exhaust fast.
    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("alert_url", self.hook.hook_url()),
            ("alert_origin", self.hook.url()),
            ("alert_secret", ALERT_SECRET.into()),
            ("alert_telegram_bot_token", TG_TOKEN.into()),
            ("alert_telegram_chat_id", TG_CHAT.into()),
            ("alert_telegram_api_url", self.telegram.url()),
            ("credit_retry_schedule", "1".into()),
            ("credit_max_retries", MAX_RETRIES.to_string()),
        ]
    }

    /// What reached either mock, as (webhook requests, Telegram requests).
    fn counts(&self) -> (usize, usize) {
        (self.hook.received().len(), self.telegram.received().len())
    }
}

async fn start(backend: Backend, vars: &[(&'static str, String)]) -> TestApp {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::start(backend, &vars).await
}

/// `POST /internal/alerts` with the shared secret, which must answer 200; its report.
async fn run_alerts(app: &TestApp) -> Value {
    let reply = app
        .http
        .send(
            "POST",
            "/internal/alerts",
            &[("authorization", &TestApp::bearer())],
            "",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    reply.json()
}

/// Moves the app's clock until whatever was raised by now is due, then runs the alerts. A
/// task is never put in the bucket of the moment it is written (a sweep may have read that
/// one already: components/core/src/store/schedule.rs), so one raised now is in the next
/// 1 s bucket, visited 2 s after that one's end: at most 4 s of the app's time, not waited.
async fn run_alerts_due(app: &TestApp) -> Value {
    app.clock.until_sweepable(app.clock.now_ms() + 1_000);
    run_alerts(app).await
}

/// A report's (sent, failed, gaveUp).
fn tally(report: &Value) -> (Value, Value, Value) {
    (
        report["sent"].clone(),
        report["failed"].clone(),
        report["gaveUp"].clone(),
    )
}

/// Pays a deposit while the bot answers 500 and sweeps each retry as it falls due until the
/// credit gives up; returns its id. The bot is left answering 500.
async fn exhaust(app: &TestApp, user: &str, amount: u64) -> String {
    app.bot.set_mode(BotMode::Status(500));
    let (id, reference) = app.new_deposit(user, amount).await;
    let paid = app.callback(&paid_body(&id, &reference, amount)).await;
    assert_eq!(paid.status, 200, "{}", paid.json());
    // The callback's own attempt (it may try the bot more than once): no retry yet.
    let inline = app.bot.deliveries(&id).len();
    assert!(inline >= 1);
    for _ in 0..MAX_RETRIES {
        let view = app.view(&id).await;
        assert_ne!(view["creditExhausted"], true, "{view}");
        let due = view["nextCreditAttemptAt"]
            .as_u64()
            .expect("a retry is due");
        app.clock.until_sweepable(due);
        app.sweep().await;
    }
    let view = app.view(&id).await;
    assert_eq!(
        (view["creditExhausted"].clone(), view["credited"].clone()),
        (json!(true), json!(false)),
        "{view}"
    );
    assert_eq!(
        app.bot.deliveries(&id).len(),
        inline + MAX_RETRIES as usize,
        "the callback's attempt and each scheduled retry, once"
    );
    id
}

/// A second invoice of `reference`'s deposit, `second`, written as a create that was
/// overtaken leaves one (that race cannot be timed over HTTP; components/core/tests/alerts.rs
/// makes the same record natively): paying it too makes a refund due.
fn plant_second_invoice(app: &TestApp, reference: &str, second: &str) {
    let snapshot = app.stores.snapshot();
    let record = snapshot
        .get(&("default".to_string(), format!("ref:{reference}")))
        .expect("the invoice's record");
    let mut record: Value = serde_json::from_slice(record).expect("an envelope");
    record["v"]["reference"] = json!(second);
    app.stores.put(
        "default",
        &format!("ref:{second}"),
        record.to_string().as_bytes(),
    );
}

fn header<'r>(received: &'r Received, name: &str) -> &'r str {
    received.header(name).unwrap_or_default()
}

/// The (kind, depositId or subject) of each alert the receiver took, sorted.
fn taken(hook: &MockAlertReceiver) -> Vec<(String, String)> {
    let mut kinds: Vec<(String, String)> = hook
        .accepted()
        .iter()
        .map(Received::json)
        .map(|b| {
            let about = b["depositId"].as_str().or(b["subject"].as_str());
            (
                b["kind"].as_str().unwrap_or_default().to_string(),
                about.unwrap_or_default().to_string(),
            )
        })
        .collect();
    kinds.sort();
    kinds
}

/// Every alert the receiver took came signed, and Telegram was sent the same texts.
fn same_texts_on_both(channels: &Channels) {
    assert!(channels.hook.received().iter().all(|r| r.authentic));
    let hooked: BTreeSet<String> = channels
        .hook
        .accepted()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap_or_default().to_string())
        .collect();
    let told: BTreeSet<String> = channels
        .telegram
        .messages()
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(hooked, told);
    for message in channels.telegram.messages() {
        assert_eq!(
            (
                message["chat_id"].clone(),
                message["disable_web_page_preview"].clone()
            ),
            (json!(TG_CHAT), json!(true)),
            "{message}"
        );
    }
}

/// (a) A credit that gives up is told once on each channel, however often the alerts and the
/// sweep run afterwards.
async fn an_exhausted_credit_is_alerted_once_on_each_channel(backend: Backend) {
    let channels = Channels::start().await;
    let app = start(backend, &channels.vars()).await;
    let id = exhaust(&app, "u-exhausted", 40_000).await;
    let raised_by = app.clock.now_ms();
    assert_eq!(channels.counts(), (0, 0), "raised, not yet delivered");

    let first = run_alerts_due(&app).await;
    assert_eq!(tally(&first), (json!(1), json!(0), json!(0)), "{first}");
    let hooks = channels.hook.received();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert!(hook.authentic, "bearer and timestamped signature");
    assert_eq!(
        (hook.method.as_str(), hook.path.as_str()),
        ("POST", ALERT_HOOK_PATH)
    );
    assert_eq!(header(hook, "content-type"), "application/json");
    let body = hook.json();
    assert_eq!(
        (body["kind"].clone(), body["depositId"].clone()),
        (json!("exhausted"), json!(id)),
        "{body}"
    );
    let alert_id = body["id"].as_str().expect("an id").to_string();
    assert!(
        alert_id.starts_with(&format!("exhausted:{id}.")),
        "{alert_id}"
    );
    assert_eq!(
        alert_id,
        format!("exhausted:{}", body["subject"].as_str().unwrap())
    );
    assert_eq!(header(hook, "idempotency-key"), alert_id);
    assert_eq!(header(hook, "x-nonce"), alert_id);
    let stamped: u64 = header(hook, "x-timestamp").parse().expect("ms timestamp");
    assert!(
        (raised_by..=app.clock.now_ms()).contains(&stamped),
        "stamped with the app's clock: {stamped}"
    );
    let paid_at = app.view(&id).await["paidAt"].as_u64().expect("paidAt");
    let at = body["at"].as_u64().expect("at");
    assert!((paid_at..=stamped).contains(&at), "{body}");
    let text = body["text"].as_str().expect("a text");
    assert!(text.contains(&id) && text.contains("40000"), "{text}");

    let messages = channels.telegram.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["text"], body["text"]);
    assert!(channels.telegram.received()[0]
        .path
        .ends_with("/sendMessage"));
    same_texts_on_both(&channels);

    // Later runs, and sweeps, send nothing more: the event was told.
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(60));
        app.sweep().await;
        let again = run_alerts(&app).await;
        assert_eq!(tally(&again), (json!(0), json!(0), json!(0)), "{again}");
    }
    assert_eq!(channels.counts(), (1, 1));
    assert_eq!(
        (channels.hook.accepted().len(), channels.hook.duplicates()),
        (1, 0)
    );
    report(
        "alerts: credit exhausted",
        backend,
        "1 webhook, 1 Telegram message",
        &format!("{:?}", channels.counts()),
    );
}

/// (b) A refund due (a second invoice of a paid deposit paid, reported twice), a review (a
/// PAID of the wrong amount, sent twice) and a record the sweep sets aside are each told once.
async fn refund_review_and_quarantine_are_alerted_once_each(backend: Backend) {
    let channels = Channels::start().await;
    let app = start(backend, &channels.vars()).await;

    app.bot.set_mode(BotMode::Accept);
    let (refund, reference) = app.new_deposit("u-refund", 30_000).await;
    let paid = app.callback(&paid_body(&refund, &reference, 30_000)).await;
    assert_eq!(paid.status, 200, "{}", paid.json());
    let second = format!("{reference}-SECOND");
    plant_second_invoice(&app, &reference, &second);
    for _ in 0..2 {
        let twice = app.callback(&paid_body(&refund, &second, 30_000)).await;
        assert_eq!(twice.status, 200, "{}", twice.json());
    }
    let view = app.view(&refund).await;
    assert_eq!(
        view["refundsDue"].as_array().map(Vec::len),
        Some(1),
        "{view}"
    );
    assert_eq!(app.bot.credits(&refund), 1);

    let (review, review_reference) = app.new_deposit("u-review", 50_000).await;
    for _ in 0..2 {
        let wrong = app
            .callback(&paid_body(&review, &review_reference, 49_000))
            .await;
        assert_eq!(wrong.status, 200, "{}", wrong.json());
    }
    assert_eq!(app.bot.credits(&review), 0);

    // An owed credit whose record breaks before its retry: the sweep quarantines it.
    let (owed, due) = app.owed_credits(&[&app.api], 1, 20_000).await;
    let broken = owed[0].0.clone();
    app.stores
        .put("default", &format!("credit:{broken}"), b"{broken");
    app.clock.until_sweepable(due);
    let swept = app.sweep().await;
    assert_eq!(swept["quarantined"], 1, "{swept}");

    let first = run_alerts_due(&app).await;
    assert_eq!(tally(&first), (json!(3), json!(0), json!(0)), "{first}");
    let quarantined = format!("deposit {broken}");
    let mut expected = vec![
        ("quarantined".to_string(), quarantined),
        ("refundDue".to_string(), refund.clone()),
        ("review".to_string(), review.clone()),
    ];
    expected.sort();
    assert_eq!(taken(&channels.hook), expected);
    assert_eq!(channels.counts(), (3, 3));
    same_texts_on_both(&channels);

    // Reported again, swept again, run again: nothing more.
    let again = app.callback(&paid_body(&refund, &second, 30_000)).await;
    assert_eq!(again.status, 200);
    let again = app
        .callback(&paid_body(&review, &review_reference, 49_000))
        .await;
    assert_eq!(again.status, 200);
    app.clock.advance(Duration::from_secs(60));
    app.sweep().await;
    let later = run_alerts_due(&app).await;
    assert_eq!(tally(&later), (json!(0), json!(0), json!(0)), "{later}");
    assert_eq!(channels.counts(), (3, 3));
    report(
        "alerts: refund due, review, quarantine",
        backend,
        "each told once on each channel",
        &format!("{:?}", channels.counts()),
    );
}

/// (c) The webhook answers 500: the next attempt, once due, sends it again with the same
/// key and body and it is taken once; Telegram, which took it the first time, is not resent.
async fn a_failing_webhook_is_retried_alone(backend: Backend) {
    let channels = Channels::start().await;
    let app = start(backend, &channels.vars()).await;
    channels.hook.fail_with(500);
    let (id, reference) = app.new_deposit("u-retry", 50_000).await;
    let wrong = app.callback(&paid_body(&id, &reference, 45_000)).await;
    assert_eq!(wrong.status, 200, "{}", wrong.json());

    let first = run_alerts_due(&app).await;
    let first_at = app.clock.now_ms();
    assert_eq!(tally(&first), (json!(0), json!(1), json!(0)), "{first}");
    assert_eq!(channels.counts(), (1, 1));
    assert!(channels.hook.accepted().is_empty());
    assert_eq!(channels.telegram.messages().len(), 1);

    // Its next attempt is 1 s later (credit_retry_schedule): not due yet, nothing is sent.
    let early = run_alerts(&app).await;
    assert_eq!(tally(&early), (json!(0), json!(0), json!(0)), "{early}");
    assert_eq!(channels.counts(), (1, 1));

    channels.hook.recover();
    app.clock.until_sweepable(first_at + 1_000);
    let second = run_alerts(&app).await;
    assert_eq!(tally(&second), (json!(1), json!(0), json!(0)), "{second}");
    let hooks = channels.hook.received();
    assert_eq!(hooks.len(), 2);
    assert!(hooks.iter().all(|h| h.authentic));
    assert_eq!(
        header(&hooks[0], "idempotency-key"),
        header(&hooks[1], "idempotency-key")
    );
    assert_eq!(
        hooks[0].body, hooks[1].body,
        "the same alert, byte for byte"
    );
    assert_eq!(taken(&channels.hook), [("review".to_string(), id.clone())]);
    assert_eq!(
        channels.telegram.received().len(),
        1,
        "Telegram took it the first time"
    );
    same_texts_on_both(&channels);

    // Its delivery as recorded: two attempts, both channels took it.
    let log = app
        .stores
        .snapshot()
        .into_iter()
        .find(|((_, key), _)| key.starts_with(&format!("alertlog:review:{id}.")))
        .map(|(_, value)| serde_json::from_slice::<Value>(&value).expect("an envelope"))
        .expect("the alert's delivery log");
    assert_eq!(
        (
            log["v"]["state"].clone(),
            log["v"]["attempts"].clone(),
            log["v"]["webhook"].clone(),
            log["v"]["telegram"].clone()
        ),
        (json!("sent"), json!(2), json!(true), json!(true)),
        "{log}"
    );

    app.clock.advance(Duration::from_secs(60));
    let later = run_alerts(&app).await;
    assert_eq!(tally(&later), (json!(0), json!(0), json!(0)), "{later}");
    assert_eq!(channels.counts(), (2, 1));
    report(
        "alerts: webhook answers 500 once",
        backend,
        "webhook retried alone, taken once; Telegram once",
        &format!("{:?}", channels.counts()),
    );
}

/// A gateway's payments found by the sweep asking it, its callbacks lost: told once for the
/// gateway and day, however many.
async fn payments_found_by_reconciliation_are_alerted_once(backend: Backend) {
    let channels = Channels::start().await;
    let protocol = Protocol::Midtrans;
    let gateway = MockGateway::start(protocol).await.expect("mock gateway");
    let mut vars = channels.vars();
    vars.extend([
        ("gateways_enabled", format!("central,{}", protocol.name())),
        ("public_base_url", "https://topup.example".into()),
        ("reconcile_after_seconds", "1".into()),
        ("reconcile_schedule", "1".into()),
    ]);
    vars.extend(gateway.app_variables());
    let app = start(backend, &vars).await;
    app.bot.set_mode(BotMode::Accept);
    let ids = ["e2e-alert-lost-1", "e2e-alert-lost-2"];
    for id in ids {
        let reply = app
            .create(&json!({"userId": "u1", "amount": 50_000, "depositId": id,
                "email": "buyer@example.com", "gateway": protocol.name()}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json());
        // Paid; the gateway's callback never arrives.
        gateway.pay(id);
    }
    app.clock.advance(Duration::from_secs(5));
    let swept = app.sweep().await;
    assert_eq!(swept["reconciliation"]["paid"], 2, "{swept}");

    let first = run_alerts_due(&app).await;
    assert_eq!(tally(&first), (json!(1), json!(0), json!(0)), "{first}");
    let accepted = channels.hook.accepted();
    assert_eq!(accepted.len(), 1);
    let body = accepted[0].json();
    assert_eq!(
        (body["kind"].clone(), body["gateway"].clone()),
        (json!("callbacksMissing"), json!(protocol.name())),
        "{body}"
    );
    assert!(ids.contains(&body["depositId"].as_str().unwrap_or_default()));
    assert_eq!(channels.counts(), (1, 1));
    same_texts_on_both(&channels);
}

/// (d) With no alert variables set (their origins pointing at the mocks, so that nothing but
/// the switches holds them back) nothing is raised and nothing reaches either mock.
async fn with_alerts_off_nothing_reaches_either_channel(backend: Backend) {
    let channels = Channels::start().await;
    let app = start(
        backend,
        &[
            ("alert_origin", channels.hook.url()),
            ("alert_telegram_api_url", channels.telegram.url()),
            ("credit_retry_schedule", "1".into()),
            ("credit_max_retries", MAX_RETRIES.to_string()),
        ],
    )
    .await;
    exhaust(&app, "u-exhausted", 40_000).await;
    let (review, reference) = app.new_deposit("u-review", 50_000).await;
    let wrong = app.callback(&paid_body(&review, &reference, 49_000)).await;
    assert_eq!(wrong.status, 200, "{}", wrong.json());

    let unauthorized = app
        .http
        .send(
            "POST",
            "/internal/alerts",
            &[("authorization", &bearer("not-the-secret-0123456789"))],
            "",
        )
        .await;
    assert_eq!(unauthorized.status, 401, "{}", unauthorized.json());
    let run = run_alerts_due(&app).await;
    assert_eq!(tally(&run), (json!(0), json!(0), json!(0)), "{run}");
    app.clock.advance(Duration::from_secs(60));
    run_alerts(&app).await;
    assert_eq!(channels.counts(), (0, 0));
    let alert_keys: Vec<String> = app
        .stores
        .snapshot()
        .into_keys()
        .map(|(_, key)| key)
        .filter(|key| key.starts_with("alert"))
        .collect();
    assert!(alert_keys.is_empty(), "{alert_keys:?}");
    report(
        "alerts: off",
        backend,
        "nothing raised, nothing sent",
        &format!("{:?}", channels.counts()),
    );
}

on_both_backends!(
    an_exhausted_credit_is_alerted_once_on_each_channel,
    refund_review_and_quarantine_are_alerted_once_each,
    a_failing_webhook_is_retried_alone,
    payments_found_by_reconciliation_are_alerted_once,
    with_alerts_off_nothing_reaches_either_channel,
);

/// The mocks refuse what the real parties refuse, so that the scenarios above prove the app
/// speaks both protocols (no app involved).
#[tokio::test]
async fn the_alert_mocks_are_as_strict_as_the_real_parties() {
    let channels = Channels::start().await;
    let hook = Http::new(&channels.hook.url());
    let body = json!({"id": "review:D1.1", "kind": "review", "subject": "D1.1",
        "depositId": "D1", "at": 1, "text": "t"})
    .to_string();
    let timestamp = "1700000000000";
    let signature = sign(
        ALERT_SECRET,
        format!("{timestamp}.review:D1.1.{body}").as_bytes(),
    );
    let auth = bearer(ALERT_SECRET);
    let signed = |content_type: &'static str, signature: String, nonce: &'static str| {
        vec![
            ("authorization", auth.clone()),
            ("content-type", content_type.to_string()),
            ("x-timestamp", timestamp.to_string()),
            ("x-nonce", nonce.to_string()),
            ("x-signature", signature),
            ("idempotency-key", "review:D1.1".to_string()),
        ]
    };
    let post = |path: &'static str, headers: Vec<(&'static str, String)>, body: String| {
        let hook = hook.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            hook.send("POST", path, &headers, body).await.status
        }
    };
    // Signed over the body alone (the credits' original scheme): not authentic.
    let body_only = sign(ALERT_SECRET, body.as_bytes());
    let cases = [
        (
            signed("application/json", body_only, "review:D1.1"),
            ALERT_HOOK_PATH,
            401,
        ),
        (
            signed("text/plain", signature.clone(), "review:D1.1"),
            ALERT_HOOK_PATH,
            415,
        ),
        (
            signed("application/json", signature.clone(), "review:D1.1"),
            "/other",
            404,
        ),
        (
            signed("application/json", signature.clone(), "other-nonce"),
            ALERT_HOOK_PATH,
            401,
        ),
    ];
    for (headers, path, status) in cases {
        assert_eq!(post(path, headers, body.clone()).await, status, "{path}");
    }
    channels.hook.fail_next(1, 500);
    let good = signed("application/json", signature.clone(), "review:D1.1");
    assert_eq!(post(ALERT_HOOK_PATH, good.clone(), body.clone()).await, 500);
    assert_eq!(post(ALERT_HOOK_PATH, good.clone(), body.clone()).await, 200);
    assert_eq!(post(ALERT_HOOK_PATH, good, body.clone()).await, 200);
    assert_eq!(
        (channels.hook.accepted().len(), channels.hook.duplicates()),
        (1, 1)
    );
    assert!(timestamped_authentic(
        ALERT_SECRET,
        &channels.hook.accepted()[0]
    ));

    let telegram = Http::new(&channels.telegram.url());
    let send = |path: String, content_type: &'static str, body: Value| {
        let telegram = telegram.clone();
        async move {
            let reply = telegram
                .send(
                    "POST",
                    &path,
                    &[("content-type", content_type)],
                    body.to_string(),
                )
                .await;
            (reply.status, reply.json())
        }
    };
    let method = format!("/bot{TG_TOKEN}/sendMessage");
    let message = json!({"chat_id": TG_CHAT, "text": "hello", "disable_web_page_preview": true});
    let refusals = [
        (
            "/bot123456:wrong/sendMessage".to_string(),
            "application/json",
            message.clone(),
            401,
        ),
        (
            format!("/bot{TG_TOKEN}/getMe"),
            "application/json",
            message.clone(),
            404,
        ),
        (
            "/sendMessage".to_string(),
            "application/json",
            message.clone(),
            404,
        ),
        (method.clone(), "text/plain", message.clone(), 400),
        (
            method.clone(),
            "application/json",
            json!({"chat_id": "-1009", "text": "hi"}),
            400,
        ),
        (
            method.clone(),
            "application/json",
            json!({"chat_id": TG_CHAT, "text": ""}),
            400,
        ),
        (
            method.clone(),
            "application/json",
            json!({"chat_id": TG_CHAT}),
            400,
        ),
        (
            method.clone(),
            "application/json",
            json!({"chat_id": TG_CHAT, "text": "x".repeat(TELEGRAM_MAX_TEXT + 1)}),
            400,
        ),
    ];
    for (path, content_type, body, status) in refusals {
        let (got, answer) = send(path.clone(), content_type, body).await;
        assert_eq!(got, status, "{path}: {answer}");
        assert_eq!(
            (answer["ok"].clone(), answer["error_code"].clone()),
            (json!(false), json!(status)),
            "{answer}"
        );
        assert!(answer["description"].is_string(), "{answer}");
    }
    let get = telegram
        .send("GET", &method, &[], message.to_string())
        .await;
    assert_eq!(get.status, 404);
    let (status, answer) = send(method, "application/json", message).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["ok"].clone(),
            answer["result"]["message_id"].clone(),
            answer["result"]["chat"]["id"].clone(),
            answer["result"]["text"].clone()
        ),
        (json!(true), json!(1), json!(-1001234), json!("hello"))
    );
    assert_eq!(channels.telegram.messages().len(), 1);
}
