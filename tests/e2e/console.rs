//! The operator console end to end: its page and API on the real components, and (with
//! `CONSOLE_BROWSER=1`, as scripts/test.sh runs it) the page driven in a real headless
//! Chromium by tests/browser/console.mjs: log in, list, filter, open a deposit, resend its
//! credit, mark a refund handled.

use serde_json::{json, Value};
use topup_testkit::mocks::BotMode;

use crate::support::{paid_body, report, Backend, TestApp};

const ADMIN: &str = "operator-token-e2e-0123456789";

/// The deposits of one run, one in each state the browser test needs.
struct Seeded {
    pending: String,
    credited: String,
    owed: String,
    refund: String,
    refund_reference: String,
    review: String,
    review_reference: String,
}

async fn admin_get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let reply = app
        .http
        .send(
            "GET",
            path,
            &[("authorization", &format!("Bearer {token}"))],
            "",
        )
        .await;
    (reply.status, reply.json())
}

async fn admin_post(app: &TestApp, path: &str, body: Option<Value>) -> (u16, Value) {
    let bearer = format!("Bearer {ADMIN}");
    let mut headers = vec![("authorization", bearer.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let reply = app
        .http
        .send(
            "POST",
            path,
            &headers,
            body.map(|b| b.to_string()).unwrap_or_default(),
        )
        .await;
    (reply.status, reply.json())
}

/// A second payment of a credited deposit, written as the callback records one it does not
/// credit (the race that makes one, an overtaken create's invoice paid too, cannot be timed
/// over HTTP; components/core/tests/callback.rs makes it natively).
fn plant_second_payment(app: &TestApp, id: &str, reference: &str) {
    let snapshot = app.stores.snapshot();
    let record = snapshot
        .get(&("default".to_string(), format!("deposit:{id}")))
        .expect("the deposit's record");
    let record: Value = serde_json::from_slice(record).expect("an envelope");
    let note = json!({"exp": u64::MAX, "v": {
        "epoch": record["v"]["epoch"], "reference": reference, "at": app.clock.now_ms(),
        "kind": {"paid": {"paymentMethod": "VC", "resultCode": "00"}},
    }});
    app.stores.put(
        "default",
        &format!("note:{id}:1"),
        note.to_string().as_bytes(),
    );
    // The note counter as each store's `increment` writes it (Spin's SQLite store traps on
    // any other form).
    let counter = match app.stores.redis() {
        Some(_) => b"1".to_vec(),
        None => 1i64.to_le_bytes().to_vec(),
    };
    app.stores.put("default", &format!("notes:{id}"), &counter);
}

async fn seed(app: &TestApp) -> Seeded {
    app.bot.set_mode(BotMode::Accept);
    let (pending, _) = app.new_deposit("u-pending", 10_000).await;
    let (credited, reference) = app.new_deposit("u-credited", 20_000).await;
    assert_eq!(
        app.callback(&paid_body(&credited, &reference, 20_000))
            .await
            .status,
        200
    );
    let (refund, reference) = app.new_deposit("u-refund", 30_000).await;
    assert_eq!(
        app.callback(&paid_body(&refund, &reference, 30_000))
            .await
            .status,
        200
    );
    let refund_reference = format!("{reference}-SECOND");
    plant_second_payment(app, &refund, &refund_reference);
    // Paid with the wrong amount: under review, never credited.
    let (review, review_reference) = app.new_deposit("u-review", 50_000).await;
    let wrong = paid_body(&review, &review_reference, 49_000);
    assert_eq!(app.callback(&wrong).await.status, 200);
    let (owed, _) = app.owed_credits(&[&app.api], 1, 40_000).await;
    // The bot is back: a resend now succeeds.
    app.bot.set_mode(BotMode::Accept);
    Seeded {
        pending,
        credited,
        owed: owed[0].0.clone(),
        refund,
        refund_reference,
        review,
        review_reference,
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["deposits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["depositId"].as_str().map(str::to_string))
        .collect()
}

async fn the_console_lists_shows_and_acts(backend: Backend) {
    let app = TestApp::start(backend, &[("admin_token", ADMIN)]).await;
    let s = seed(&app).await;

    // The page: static, its own policy, an exact length, no cookie.
    let page = app.http.send("GET", "/console", &[], "").await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(page
        .header("content-security-policy")
        .is_some_and(|p| p.contains("connect-src 'self'")));
    assert_eq!(
        page.header("content-length"),
        Some(page.body.len().to_string().as_str())
    );
    assert!(page.header("set-cookie").is_none());

    // Only the operator's token opens it.
    for token in [crate::support::SECRET, "not-the-token-0123456789"] {
        assert_eq!(admin_get(&app, "/admin/deposits", token).await.0, 401);
    }
    let (status, all) = admin_get(&app, "/admin/deposits", ADMIN).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        ids(&all),
        [
            s.owed.clone(),
            s.review.clone(),
            s.refund.clone(),
            s.credited.clone(),
            s.pending.clone()
        ],
        "newest first: {all}"
    );
    let (_, pending) = admin_get(&app, "/admin/deposits?status=pending", ADMIN).await;
    // Not paid yet, the one under review too (it was paid the wrong amount, never credited).
    assert_eq!(ids(&pending), [s.review.clone(), s.pending.clone()]);
    let (_, refunds) = admin_get(&app, "/admin/deposits?status=refund_due", ADMIN).await;
    assert_eq!(ids(&refunds), std::slice::from_ref(&s.refund));
    let (status, bad) = admin_get(&app, "/admin/deposits?limit=1000", ADMIN).await;
    assert_eq!(
        (status, bad["error"].as_str()),
        (400, Some("INVALID_FILTER"))
    );

    let (status, detail) = admin_get(&app, &format!("/admin/deposits/{}", s.owed), ADMIN).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["deposit"]["state"], "OWED");

    // Resend: the same credit again, once, recorded with the operator's name.
    let before = app.bot.deliveries(&s.owed).len();
    let (status, resent) = admin_post(
        &app,
        &format!("/admin/action/resend?depositId={}", s.owed),
        None,
    )
    .await;
    assert_eq!(
        (status, resent["credited"].as_bool()),
        (200, Some(true)),
        "{resent}"
    );
    assert_eq!(app.bot.deliveries(&s.owed).len(), before + 1);
    assert!(
        app.resends_identical(&s.owed),
        "same body, same Idempotency-Key"
    );
    let (status, again) = admin_post(
        &app,
        &format!("/admin/action/resend?depositId={}", s.owed),
        None,
    )
    .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (409, Some("WRONG_STATE"))
    );
    assert_eq!(app.bot.deliveries(&s.owed).len(), before + 1);

    // A refund marked handled, once.
    let path = format!("/admin/action/refund-handled?depositId={}", s.refund);
    let body = json!({"reference": s.refund_reference, "reason": "refunded by transfer"});
    let (status, first) = admin_post(&app, &path, Some(body.clone())).await;
    assert_eq!(
        (status, first["alreadyHandled"].as_bool()),
        (200, Some(false)),
        "{first}"
    );
    let (_, second) = admin_post(&app, &path, Some(body)).await;
    assert_eq!(second["alreadyHandled"], true);
    let (_, refunds) = admin_get(&app, "/admin/deposits?status=refund_due", ADMIN).await;
    assert!(ids(&refunds).is_empty(), "{refunds}");
    let (_, detail) = admin_get(&app, &format!("/admin/deposits/{}", s.refund), ADMIN).await;
    assert_eq!(detail["deposit"]["refundsDue"][0]["handled"]["by"], "admin");

    // A review closed by hand; the CSV of the list; the quarantine, empty.
    let (_, reviews) = admin_get(&app, "/admin/deposits?status=review", ADMIN).await;
    assert_eq!(ids(&reviews), std::slice::from_ref(&s.review));
    let path = format!("/admin/action/review-closed?depositId={}", s.review);
    let body = json!({"reference": s.review_reference, "reason": "topped up by hand"});
    let (status, closed) = admin_post(&app, &path, Some(body)).await;
    assert_eq!(
        (status, closed["alreadyHandled"].as_bool()),
        (200, Some(false)),
        "{closed}"
    );
    let (_, reviews) = admin_get(&app, "/admin/deposits?status=review", ADMIN).await;
    assert!(ids(&reviews).is_empty(), "{reviews}");
    let csv = app
        .http
        .send(
            "GET",
            "/admin/deposits.csv?limit=2",
            &[("authorization", &format!("Bearer {ADMIN}"))],
            "",
        )
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(
        csv.header("x-next-cursor").is_some(),
        "two rows of five: a next page"
    );
    let text = String::from_utf8_lossy(&csv.body).to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().nth(1).is_some_and(|l| l.starts_with(&s.owed)),
        "{text}"
    );
    let (status, quarantine) = admin_get(&app, "/admin/quarantine", ADMIN).await;
    assert_eq!(
        (status, quarantine["quarantined"].clone()),
        (200, json!([]))
    );
    report(
        "console: list, filter, detail, resend, refund handled",
        backend,
        "newest first; filters; one resend; one mark",
        &format!("{} deposits listed", ids(&all).len()),
    );

    if std::env::var("CONSOLE_BROWSER").as_deref() == Ok("1") {
        let s = seed(&app).await;
        in_a_real_browser(&app, &s, backend);
    }
}

/// Runs tests/browser/console.mjs against the app (scripts/browser-setup.sh installs
/// Chromium and playwright-core).
fn in_a_real_browser(app: &TestApp, s: &Seeded, backend: Backend) {
    // The e2e suite is a test of the host crate: the repository is its parent.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let screenshot = std::env::var("CONSOLE_SCREENSHOT").unwrap_or_default();
    let output = std::process::Command::new("node")
        .arg(root.join("tests/browser/console.mjs"))
        .env("CONSOLE_URL", format!("http://{}", app.addr))
        .env("ADMIN_TOKEN", ADMIN)
        .env("PENDING_ID", &s.pending)
        .env("OWED_ID", &s.owed)
        .env("CREDITED_ID", &s.credited)
        .env("REFUND_ID", &s.refund)
        .env("REFUND_REF", &s.refund_reference)
        .env("REVIEW_ID", &s.review)
        .env("REVIEW_REF", &s.review_reference)
        .env("SCREENSHOT", screenshot)
        .output()
        .expect("node runs (scripts/browser-setup.sh installs what the browser test needs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser test failed on {backend:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

crate::on_both_backends!(the_console_lists_shows_and_acts);
