//! The operator console natively: who may read it, what its pages list and in which order,
//! what a page costs, one deposit's story, and the operator's actions (each recorded, each a
//! 409 that changes nothing on a deposit it does not apply to).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

mod common;

use common::*;
use topup_core::deposit::note::{Note, NoteKind};
use topup_core::ids::{DepositId, Reference};
use topup_core::platform::Clock;
use topup_core::store::DepositStore;

const ADMIN: &str = "operator-token-0123456789";

fn console_platform() -> TestPlatform {
    let mut p = platform();
    p.variables = p.variables.clone().with("admin_token", ADMIN);
    p
}

fn admin(method: &str, path: &str, token: &str) -> Request {
    Request::new(method, path).with_header("authorization", &format!("Bearer {token}"))
}

fn list_as(p: &TestPlatform, query: &str, token: &str) -> Response {
    routes::admin::handle(
        &admin("GET", &format!("/admin/deposits?{query}"), token),
        &p.platform(),
    )
}

fn list(p: &TestPlatform, query: &str) -> Value {
    let response = list_as(p, query, ADMIN);
    assert_eq!(response.status, 200, "{}", response.json_body());
    response.json_body()
}

fn ids(page: &Value) -> Vec<String> {
    page["deposits"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["depositId"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn detail(p: &TestPlatform, id: &str) -> Value {
    let response = routes::admin::handle(
        &admin("GET", &format!("/admin/deposits/{id}"), ADMIN),
        &p.platform(),
    );
    assert_eq!(response.status, 200, "{}", response.json_body());
    response.json_body()
}

fn resend(p: &TestPlatform, id: &str) -> Response {
    routes::admin_action::handle(
        &admin(
            "POST",
            &format!("/admin/action/resend?depositId={id}"),
            ADMIN,
        ),
        &p.platform(),
    )
}

fn refund_handled(p: &TestPlatform, id: &str, body: Value) -> Response {
    routes::admin_action::handle(
        &admin(
            "POST",
            &format!("/admin/action/refund-handled?depositId={id}"),
            ADMIN,
        )
        .with_header("content-type", "application/json")
        .with_body(body.to_string()),
        &p.platform(),
    )
}

/// Deposit `id` for `user`, a minute after the last one.
fn deposit_for(p: &TestPlatform, id: &str, user: &str) {
    p.clock.advance(Duration::from_secs(60));
    let response = create(p, json!({"userId": user, "amount": 5000, "depositId": id}));
    assert_eq!(response.status, 200, "{}", response.json_body());
}

/// A second payment of a credited deposit, as the callback records one it does not credit
/// (the race that makes it, an overtaken create's invoice paid too, is in callback.rs).
fn second_payment(p: &TestPlatform, id: &str, reference: &str) {
    let platform = p.platform();
    let lifetime = topup_core::testing::test_config();
    let store = DepositStore::new(&platform, lifetime.lifetime().unwrap());
    let deposit_id = DepositId::parse(id).unwrap();
    let epoch = store.deposit(&deposit_id).unwrap().unwrap().v.epoch;
    let note = Note {
        epoch,
        reference: Reference::parse(reference).unwrap(),
        at: p.clock.now_ms(),
        kind: NoteKind::Paid {
            payment_method: Some("VC".into()),
            result_code: Some("00".into()),
        },
        nonce: None,
    };
    let notes = store.notes(&deposit_id).unwrap();
    assert!(store.add_note(&deposit_id, &note, &notes, None).unwrap());
}

/// Five deposits, oldest first: pending, credited, owed (bot down), failed, credited with a
/// refund due.
fn five(p: &TestPlatform) {
    deposit_for(p, "PEND", "u1");
    deposit_for(p, "CRED", "u2");
    assert_eq!(callback(p, &paid_body("CRED", 5000)).status, 200);
    deposit_for(p, "OWED", "u1");
    set_bot(p, 500);
    assert_eq!(callback(p, &paid_body("OWED", 5000)).status, 200);
    p.http.set_handler(happy_upstreams);
    deposit_for(p, "FAIL", "u3");
    assert_eq!(callback(p, &failed_body("FAIL")).status, 200);
    deposit_for(p, "REFD", "u2");
    assert_eq!(callback(p, &paid_body("REFD", 5000)).status, 200);
    second_payment(p, "REFD", "REF-OTHER");
}

#[test]
fn only_an_operator_token_reads_the_console() {
    let p = console_platform();
    five(&p);
    for token in [SECRET, "wrong-token-0123456789"] {
        let response = list_as(&p, "", token);
        assert_eq!(response.status, 401, "{}", response.json_body());
    }
    let unauthed = routes::admin::handle(&Request::new("GET", "/admin/deposits"), &p.platform());
    assert_eq!(unauthed.status, 401);

    // No admin_token: the console is off, and says which variable turns it on.
    let off = platform();
    let response = list_as(&off, "", ADMIN);
    assert_eq!(response.status, 500);
    assert_eq!(response.json_body()["error"], "CONFIG_ERROR");
    assert!(response.json_body()["message"]
        .as_str()
        .unwrap()
        .contains("admin_token"));

    // An operator token that is also the bot's secret opens nothing.
    let mut same = platform();
    same.variables = same
        .variables
        .clone()
        .with("admin_token", "test-secret-long-enough")
        .with("shared_secret", "test-secret-long-enough");
    let response = list_as(&same, "", "test-secret-long-enough");
    assert_eq!(response.status, 500, "{}", response.json_body());
    let message = response.json_body()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("admin_token"), "{message}");
    assert!(!message.contains("test-secret-long-enough"), "{message}");

    // Named operators; a short token is refused by name of the variable, not shown.
    let mut named = platform();
    named.variables = named.variables.clone().with(
        "admin_token",
        r#"[{"name":"ana","token":"ana-token-0123456789"},{"name":"budi","token":"short"}]"#,
    );
    let response = list_as(&named, "", "ana-token-0123456789");
    assert_eq!(response.status, 500);
    let message = response.json_body()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("budi") && !message.contains("short\""),
        "{message}"
    );
}

#[test]
fn a_page_lists_deposits_newest_first_with_their_state_and_follows_its_cursor() {
    let p = console_platform();
    five(&p);
    let page = list(&p, "");
    assert_eq!(ids(&page), ["REFD", "FAIL", "OWED", "CRED", "PEND"]);
    assert_eq!(page["next"], Value::Null, "{page}");
    let states: Vec<&str> = page["deposits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["CREDITED", "FAILED", "OWED", "CREDITED", "PENDING"]
    );
    let refd = &page["deposits"][0];
    assert_eq!(
        (
            refd["refundsDue"].as_u64(),
            refd["gateway"].as_str(),
            refd["bot"].as_str()
        ),
        (Some(1), Some("central"), Some("default"))
    );

    // Two at a time: the same deposits, in the same order, each once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let query = if cursor.is_empty() {
            "limit=2".to_string()
        } else {
            format!("limit=2&cursor={cursor}")
        };
        let page = list(&p, &query);
        assert!(ids(&page).len() <= 2);
        seen.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, ["REFD", "FAIL", "OWED", "CRED", "PEND"]);
}

#[test]
fn filters_select_by_state_gateway_user_and_time() {
    let p = console_platform();
    let start = p.clock.now_ms();
    five(&p);
    let by = |query: &str| ids(&list(&p, query));
    assert_eq!(by("status=pending"), ["PEND"]);
    assert_eq!(by("status=paid"), ["REFD", "OWED", "CRED"]);
    assert_eq!(by("status=credited"), ["REFD", "CRED"]);
    assert_eq!(by("status=owed"), ["OWED"]);
    assert_eq!(by("status=failed"), ["FAIL"]);
    assert_eq!(by("status=refund_due"), ["REFD"]);
    assert_eq!(by("status=attention"), ["REFD"]);
    assert_eq!(by("status=exhausted"), Vec::<String>::new());
    assert_eq!(by("userId=u2"), ["REFD", "CRED"]);
    assert_eq!(by("userId=u2&status=refund_due"), ["REFD"]);
    assert_eq!(by("gateway=central&userId=u1"), ["OWED", "PEND"]);
    assert_eq!(by("gateway=duitku"), Vec::<String>::new());
    assert_eq!(by("bot=default&userId=u3"), ["FAIL"]);
    // The deposits were made a minute apart from start + 1 min.
    let minute = 60_000;
    assert_eq!(
        by(&format!(
            "from={}&to={}",
            start + 2 * minute,
            start + 3 * minute
        )),
        ["OWED", "CRED"]
    );
    assert_eq!(
        by(&format!("from={}", start + 4 * minute)),
        ["REFD", "FAIL"]
    );
    assert_eq!(by(&format!("to={}", start + minute)), ["PEND"]);
}

#[test]
fn bad_filters_are_refused_by_name_and_change_nothing() {
    let p = console_platform();
    five(&p);
    let before = store_snapshot(&p);
    for (query, field) in [
        ("status=lost", "status"),
        ("gateway=paypal", "gateway"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("from=yesterday", "from"),
        ("from=10&to=5", "from"),
        ("cursor=abc", "cursor"),
        ("cursor=1.2.3", "cursor"),
        ("bot=no%20such", "bot"),
    ] {
        let response = list_as(&p, query, ADMIN);
        assert_eq!(response.status, 400, "{query}: {}", response.json_body());
        let body = response.json_body();
        assert_eq!(body["error"], "INVALID_FILTER", "{query}: {body}");
        assert!(
            body.to_string().contains(field),
            "{query} names {field}: {body}"
        );
    }
    let unknown = routes::admin::handle(&admin("GET", "/admin/elsewhere", ADMIN), &p.platform());
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json_body()["error"], "NOT_FOUND");
    let bad_id =
        routes::admin::handle(&admin("GET", "/admin/deposits/a%20b", ADMIN), &p.platform());
    assert_eq!(bad_id.json_body()["error"], "INVALID_DEPOSIT_ID");
    let missing =
        routes::admin::handle(&admin("GET", "/admin/deposits/NOPE", ADMIN), &p.platform());
    assert_eq!(missing.status, 404);
    assert_eq!(store_snapshot(&p), before);
}

/// Store reads and rows of the first page of `query` after `n` deposits made a second apart.
fn page_reads(n: usize, query: &str) -> (u64, usize) {
    let p = console_platform();
    p.http.set_handler(happy_upstreams);
    for i in 0..n {
        p.clock.advance(Duration::from_secs(1));
        let response = create(&p, json!({"userId": format!("u{}", i % 7), "amount": 5000}));
        assert_eq!(response.status, 200);
    }
    let records = Counting::new(&p.records);
    let claims = Counting::new(&p.claims);
    let platform = Platform {
        records: &records,
        claims: &claims,
        ..p.platform()
    };
    let response = routes::admin::handle(
        &admin("GET", &format!("/admin/deposits?{query}"), ADMIN),
        &platform,
    );
    assert_eq!(response.status, 200, "{}", response.json_body());
    assert_eq!(
        records.writes.get() + claims.writes.get(),
        0,
        "a page only reads"
    );
    let rows = ids(&response.json_body()).len();
    (records.reads.get() + claims.reads.get(), rows)
}

#[test]
fn a_page_costs_the_same_whatever_the_store_holds() {
    // A filter that admits one deposit in seven may end a page early, when its reads run
    // out: then at the same point at any size.
    for query in ["limit=50", "limit=50&userId=u3"] {
        let small = page_reads(400, query);
        let large = page_reads(4_000, query);
        assert_eq!(
            small, large,
            "{query}: (reads, rows) at 400 deposits and at 4,000"
        );
        assert!(small.1 > 0, "{query}: {small:?}");
    }
    assert_eq!(page_reads(4_000, "limit=50").1, 50);
}

#[test]
fn a_deposit_tells_its_story() {
    let p = console_platform();
    five(&p);
    let d = detail(&p, "OWED");
    assert_eq!(d["deposit"]["state"], "OWED");
    assert_eq!(d["deposit"]["userId"], "u1");
    assert_eq!(d["deposit"]["gateway"], "central");
    let kinds: Vec<&str> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "paid", "credit"]);
    assert!(d["timeline"][2]["detail"]["result"]["ok"] == false, "{d}");

    let f = detail(&p, "FAIL");
    assert_eq!(f["timeline"][1]["kind"], "notice");
    assert_eq!(f["timeline"][1]["detail"]["verdict"], "FAILED");
    let r = detail(&p, "REFD");
    assert_eq!(r["deposit"]["refundsDue"][0]["reference"], "REF-OTHER");
    assert!(
        r["deposit"]["refundsDue"][0].get("handled").is_none(),
        "{r}"
    );
}

#[test]
fn resend_delivers_an_owed_credit_once_and_is_on_the_timeline() {
    let p = console_platform();
    five(&p);
    let sent = credits_sent(&p, "OWED").len();
    let response = resend(&p, "OWED");
    assert_eq!(response.status, 200, "{}", response.json_body());
    assert_eq!(response.json_body()["credited"], true);
    let credits = credits_sent(&p, "OWED");
    assert_eq!(credits.len(), sent + 1);
    // The same credit as before: same body, and the bot dedupes it by its Idempotency-Key.
    assert_eq!(credits[0], credits[credits.len() - 1]);
    let d = detail(&p, "OWED");
    assert_eq!(d["deposit"]["state"], "CREDITED");
    let action = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "action")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        (
            action["detail"]["action"].as_str(),
            action["detail"]["by"].as_str()
        ),
        (Some("resend"), Some("admin")),
        "{d}"
    );

    // Credited now: a second resend is a 409 that sends and writes nothing.
    let before = store_snapshot(&p);
    for id in ["OWED", "PEND", "FAIL"] {
        let response = resend(&p, id);
        assert_eq!(response.status, 409, "{id}: {}", response.json_body());
        assert_eq!(response.json_body()["error"], "WRONG_STATE");
    }
    assert_eq!(store_snapshot(&p), before);
    assert_eq!(credits_sent(&p, "OWED").len(), sent + 1);
}

#[test]
fn a_refund_marked_handled_is_recorded_once_and_releases_the_deposit() {
    let p = console_platform();
    five(&p);
    let before = store_snapshot(&p);
    for (id, body, status, code) in [
        (
            "REFD",
            json!({"reference": "REF-REFD", "reason": "x"}),
            409,
            "WRONG_STATE",
        ),
        (
            "CRED",
            json!({"reference": "REF-OTHER", "reason": "x"}),
            409,
            "WRONG_STATE",
        ),
        (
            "REFD",
            json!({"reference": "REF-OTHER", "reason": "  "}),
            400,
            "INVALID_REASON",
        ),
        (
            "REFD",
            json!({"reference": "REF-OTHER"}),
            400,
            "INVALID_JSON",
        ),
        (
            "REFD",
            json!({"reference": "", "reason": "x"}),
            400,
            "INVALID_REFERENCE",
        ),
        (
            "NOPE",
            json!({"reference": "REF-OTHER", "reason": "x"}),
            404,
            "DEPOSIT_NOT_FOUND",
        ),
    ] {
        let response = refund_handled(&p, id, body.clone());
        assert_eq!(response.status, status, "{body}: {}", response.json_body());
        assert_eq!(response.json_body()["error"], code, "{body}");
    }
    assert_eq!(store_snapshot(&p), before, "refused actions change nothing");

    let body = json!({"reference": "REF-OTHER", "reason": "refunded by bank transfer"});
    let first = refund_handled(&p, "REFD", body.clone());
    assert_eq!(first.status, 200, "{}", first.json_body());
    assert_eq!(first.json_body()["alreadyHandled"], false);
    let after = store_snapshot(&p);
    let again = refund_handled(&p, "REFD", body);
    assert_eq!(again.json_body()["alreadyHandled"], true);
    assert_eq!(store_snapshot(&p), after, "marking it again writes nothing");

    let d = detail(&p, "REFD");
    let handled = &d["deposit"]["refundsDue"][0]["handled"];
    assert_eq!(handled["by"], "admin");
    assert_eq!(handled["reason"], "refunded by bank transfer");
    assert_eq!(list(&p, "status=refund_due")["deposits"], json!([]));
    assert_eq!(list(&p, "status=attention")["deposits"], json!([]));

    // No longer owed: it ends a lifetime after the action, like any settled deposit.
    p.clock.advance(Duration::from_secs(31 * 86_400));
    sweep(&p);
    assert_eq!(status(&p, "depositId=REFD").status, 404);
}

#[test]
fn an_unhandled_refund_keeps_its_deposit() {
    let p = console_platform();
    five(&p);
    p.clock.advance(Duration::from_secs(31 * 86_400));
    sweep(&p);
    assert_eq!(status(&p, "depositId=REFD").status, 200);
    assert_eq!(status(&p, "depositId=CRED").status, 404);
    assert_eq!(ids(&list(&p, "status=refund_due")), ["REFD"]);
}

fn action(p: &TestPlatform, path: &str, body: Option<Value>) -> Response {
    let mut request = admin("POST", path, ADMIN);
    if let Some(body) = body {
        request = request
            .with_header("content-type", "application/json")
            .with_body(body.to_string());
    }
    routes::admin_action::handle(&request, &p.platform())
}

#[test]
fn a_review_closed_by_hand_is_recorded_once_and_releases_the_deposit() {
    let p = console_platform();
    deposit_for(&p, "WRONG", "u9");
    assert_eq!(callback(&p, &paid_body("WRONG", 4000)).status, 200);
    assert_eq!(ids(&list(&p, "status=review")), ["WRONG"]);
    assert_eq!(ids(&list(&p, "status=attention")), ["WRONG"]);
    let path = "/admin/action/review-closed?depositId=WRONG";
    let before = store_snapshot(&p);
    let wrong = action(
        &p,
        path,
        Some(json!({"reference": "REF-NONE", "reason": "x"})),
    );
    assert_eq!(wrong.json_body()["error"], "WRONG_STATE");
    assert_eq!(store_snapshot(&p), before);

    let body = json!({"reference": "REF-WRONG", "reason": "user topped up the 1,000 by hand"});
    let closed = action(&p, path, Some(body.clone()));
    assert_eq!(closed.status, 200, "{}", closed.json_body());
    assert_eq!(closed.json_body()["alreadyHandled"], false);
    let after = store_snapshot(&p);
    assert_eq!(
        action(&p, path, Some(body)).json_body()["alreadyHandled"],
        true
    );
    assert_eq!(store_snapshot(&p), after);
    let d = detail(&p, "WRONG");
    assert_eq!(d["deposit"]["reviews"][0]["closed"]["by"], "admin", "{d}");
    assert_eq!(list(&p, "status=review")["deposits"], json!([]));
    // Not credited, ever; it ends a lifetime after the close, where an open review stays.
    assert!(credits_sent(&p, "WRONG").is_empty());
    p.clock.advance(Duration::from_secs(31 * 86_400));
    sweep(&p);
    assert_eq!(status(&p, "depositId=WRONG").status, 404);
}

#[test]
fn an_open_review_keeps_its_deposit() {
    let p = console_platform();
    deposit_for(&p, "WRONG", "u9");
    assert_eq!(callback(&p, &paid_body("WRONG", 4000)).status, 200);
    p.clock.advance(Duration::from_secs(31 * 86_400));
    sweep(&p);
    assert_eq!(status(&p, "depositId=WRONG").status, 200);
}

#[test]
fn bulk_resend_goes_through_a_filter_a_page_at_a_time_and_sends_nothing_twice() {
    let p = console_platform();
    set_bot(&p, 500);
    for i in 0..7 {
        let id = format!("OW{i}");
        deposit_for(&p, &id, "u1");
        assert_eq!(callback(&p, &paid_body(&id, 5000)).status, 200);
    }
    deposit_for(&p, "PEND", "u1");
    p.http.set_handler(happy_upstreams);
    let sent_before: usize = (0..7)
        .map(|i| credits_sent(&p, &format!("OW{i}")).len())
        .sum();
    let mut resent = Vec::new();
    let mut query = "status=owed".to_string();
    for _ in 0..5 {
        let response = action(&p, &format!("/admin/action/bulk-resend?{query}"), None);
        assert_eq!(response.status, 200, "{}", response.json_body());
        let body = response.json_body();
        for row in body["resent"].as_array().unwrap() {
            assert_eq!(row["credited"], true, "{body}");
            resent.push(row["depositId"].as_str().unwrap().to_string());
        }
        match body["next"].as_str() {
            Some(next) => query = format!("status=owed&cursor={next}"),
            None => break,
        }
    }
    resent.sort();
    assert_eq!(resent, ["OW0", "OW1", "OW2", "OW3", "OW4", "OW5", "OW6"]);
    let sent: usize = (0..7)
        .map(|i| credits_sent(&p, &format!("OW{i}")).len())
        .sum();
    assert_eq!(sent, sent_before + 7);
    // Again: all credited, nothing is sent.
    let again = action(&p, "/admin/action/bulk-resend?status=paid", None);
    assert_eq!(
        again.json_body()["resent"],
        json!([]),
        "{}",
        again.json_body()
    );
    let sent_again: usize = (0..7)
        .map(|i| credits_sent(&p, &format!("OW{i}")).len())
        .sum();
    assert_eq!(sent_again, sent);
    let bad = action(&p, "/admin/action/bulk-resend?status=nope", None);
    assert_eq!(bad.json_body()["error"], "INVALID_FILTER");
}

#[test]
fn csv_export_is_the_page_with_formulas_defused() {
    let p = console_platform();
    deposit_for(&p, "PLAIN", "u1");
    deposit_for(&p, "FORMULA", "=HYPERLINK(\"x\",\"y\")");
    let response = routes::admin::handle(
        &admin("GET", "/admin/deposits.csv?limit=1", ADMIN),
        &p.platform(),
    );
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let next = response
        .header("x-next-cursor")
        .expect("a next page")
        .to_string();
    let text = String::from_utf8(response.body).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(lines[0].starts_with("depositId,userId,bot,gateway,amount,state"));
    assert!(
        lines[1].starts_with(
            "FORMULA,\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\",default,central,5000,PENDING"
        ),
        "{text}"
    );
    let rest = routes::admin::handle(
        &admin(
            "GET",
            &format!("/admin/deposits.csv?limit=1&cursor={next}"),
            ADMIN,
        ),
        &p.platform(),
    );
    let text = String::from_utf8(rest.body).unwrap();
    assert!(
        text.contains("\r\nPLAIN,u1,default,central,5000,PENDING"),
        "{text}"
    );
}

#[test]
fn quarantined_records_are_listed() {
    let p = console_platform();
    let empty = routes::admin::handle(&admin("GET", "/admin/quarantine", ADMIN), &p.platform());
    assert_eq!(empty.json_body(), json!({"ok": true, "quarantined": []}));
    let platform = p.platform();
    let lifetime = topup_core::testing::test_config();
    let store = DepositStore::new(&platform, lifetime.lifetime().unwrap());
    store.quarantine("credit:X", "not JSON").unwrap();
    let listed = routes::admin::handle(&admin("GET", "/admin/quarantine", ADMIN), &p.platform());
    assert_eq!(listed.json_body()["quarantined"][0]["what"], "credit:X");
}
