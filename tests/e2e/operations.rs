//! The host as a runtime one operates: graceful stop, the access log, metrics, the sweep
//! schedule, and the switch that runs child-process scenarios on `spin up` instead. These
//! use host-only flags, so they always run on `topup-host` (never on Spin).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use topup_testkit::mocks::BotMode;

use crate::support::{
    bearer, free_port, paid_body, sign, Backend, Http, Launch, Process, Runtime, TempDir, TestApp,
    SECRET,
};

/// Polls `check` every 20 ms until it holds, for at most `limit` (process-level events only).
async fn until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn host_with(args: &[String], stderr: Option<&Path>) -> Launch {
    Launch {
        runtime: Some(Runtime::Host),
        args: args.to_vec(),
        stderr: stderr.map(Path::to_path_buf),
    }
}

async fn sigterm_lets_a_paid_callback_in_flight_finish(backend: Backend) {
    let app = TestApp::start(backend, &[]).await;
    let mut process = app
        .launch(host_with(&["--drain-timeout".into(), "30s".into()], None))
        .await;
    let (id, reference) = process.new_deposit("u-drain", 5000).await;

    // The bot holds the credit call: the PAID callback is in flight until it is released.
    app.bot.set_mode(BotMode::Hang);
    let api = process.api.clone();
    let body = paid_body(&id, &reference, 5000);
    let callback = tokio::spawn(async move { api.callback(&body).await });
    until(
        Duration::from_secs(10),
        "the credit call reaches the bot",
        || app.bot.deliveries(&id).len() == 1,
    )
    .await;

    process.signal("TERM");
    let addr = process.addr;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => break,
            // Accepted by the kernel before the listener closed (then reset), or reset as it
            // closed: not yet the steady state.
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "still accepting 10 s after SIGTERM"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(
        process.wait_exit(Duration::ZERO).await,
        None,
        "it waits for the callback in flight"
    );

    app.bot.release();
    let reply = callback.await.expect("callback task");
    assert_eq!(reply.status, 200, "{}", reply.json());
    let exit = process
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("exits once the callback is answered");
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    assert_eq!(app.bot.credits(&id), 1);
    assert_eq!(app.bot.deliveries(&id).len(), 1);
    assert_eq!(app.view(&id).await["credited"], true);
}

crate::on_both_backends!(sigterm_lets_a_paid_callback_in_flight_finish);

/// `series{labels}` → value, from an exposition text.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(metrics: &Http) -> HashMap<String, f64> {
    let reply = metrics.send("GET", "/metrics", &[], Bytes::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_exposition(&String::from_utf8_lossy(&reply.body))
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

fn requests(route: &str, status: u16) -> String {
    format!("topup_http_requests_total{{route=\"{route}\",status=\"{status}\"}}")
}

/// A paid flow whose inline credit fails (the bot answers 503) and which the host's own
/// `--sweep-every` schedule then delivers; the metrics move by exactly the flow's calls, the
/// log has one line per request and none of the secrets, and SIGTERM stops it all with 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_sweep_delivers_and_is_logged_and_counted() {
    let app = TestApp::start(Backend::Sqlite, &[]).await;
    let dir = TempDir::new();
    let log = dir.path().join("stderr.log");
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let mut process = app
        .launch(host_with(
            &[
                "--metrics".into(),
                metrics_addr.clone(),
                "--sweep-every".into(),
                "1s".into(),
            ],
            Some(&log),
        ))
        .await;
    let metrics = Http::new(&format!("http://{metrics_addr}"));
    assert_eq!(
        process
            .http
            .send("GET", "/metrics", &[], Bytes::new())
            .await
            .status,
        404,
        "the app's port does not serve metrics"
    );
    assert_eq!(
        metrics
            .send("GET", "/other", &[], Bytes::new())
            .await
            .status,
        404
    );
    let before = scrape(&metrics).await;

    app.bot.set_mode(BotMode::Status(503));
    let (id, reference) = process.new_deposit("u-ops", 5000).await;
    let body = paid_body(&id, &reference, 5000);
    let signature = sign(SECRET, body.as_bytes());
    let reply = process.callback(&body).await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    app.bot.set_mode(BotMode::Accept);
    let refused = app.bot.deliveries(&id).len();
    assert!(refused >= 1, "the inline attempt reached the bot");
    let view = process.view(&id).await;
    assert_eq!(view["credited"], false);

    until(
        Duration::from_secs(30),
        "the host's schedule delivers the owed credit",
        || app.bot.credits(&id) == 1,
    )
    .await;
    // The sweep's counters move once its answer has been read.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let after = scrape(&metrics).await;
        if delta(&before, &after, "topup_sweep_credits_delivered_total") >= 1.0 {
            break after;
        }
        assert!(Instant::now() < deadline, "sweep credits not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    for (route, status, n) in [
        ("/deposit/create", 200, 1.0),
        ("/internal/payment-callback", 200, 1.0),
        ("/deposit/status", 200, 1.0),
    ] {
        let series = requests(route, status);
        assert_eq!(delta(&before, &after, &series), n, "{series}");
        let labels = format!("route=\"{route}\",status=\"{status}\"");
        for histogram in [
            format!("topup_http_request_duration_seconds_count{{{labels}}}"),
            format!("topup_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}}"),
        ] {
            assert_eq!(delta(&before, &after, &histogram), n, "{histogram}");
        }
    }
    assert_eq!(
        delta(&before, &after, "topup_sweep_credits_delivered_total"),
        1.0
    );
    let sweeps = delta(&before, &after, "topup_sweep_runs_total{outcome=\"ok\"}");
    assert!(sweeps >= 1.0, "sweeps counted: {sweeps}");
    assert!(
        delta(&before, &after, &requests("/internal/credit-retry", 200)) >= sweeps,
        "each scheduled sweep is also a request"
    );
    let pg = format!(
        "topup_outbound_requests_total{{host=\"{}\",outcome=\"2xx\"}}",
        app.pg.url()
    );
    assert_eq!(delta(&before, &after, &pg), 1.0, "{pg}");
    let bot_5xx = format!(
        "topup_outbound_requests_total{{host=\"{}\",outcome=\"5xx\"}}",
        app.bot.url()
    );
    let bot_2xx = format!(
        "topup_outbound_requests_total{{host=\"{}\",outcome=\"2xx\"}}",
        app.bot.url()
    );
    assert_eq!(
        delta(&before, &after, &bot_5xx),
        refused as f64,
        "{bot_5xx}"
    );
    assert_eq!(delta(&before, &after, &bot_2xx), 1.0, "{bot_2xx}");
    // The claims are in the last label in use (`default` when it is the only one).
    let claims = crate::support::labels_in_use().last().expect("a label");
    for series in [
        "topup_store_operations_total{label=\"default\",kind=\"writes\"}".to_string(),
        format!("topup_store_operations_total{{label=\"{claims}\",kind=\"increments\"}}"),
    ] {
        assert!(delta(&before, &after, &series) >= 1.0, "{series}");
    }

    // Stopping also stops the schedule; the process exits 0.
    process.signal("TERM");
    let exit = process
        .wait_exit(Duration::from_secs(40))
        .await
        .expect("exits after SIGTERM");
    assert_eq!(exit.code(), Some(0), "{exit:?}");

    let text = std::fs::read_to_string(&log).expect("read the captured stderr");
    for needle in [
        SECRET.to_string(),
        bearer(SECRET),
        signature.clone(),
        "depositId=".to_string(),
    ] {
        assert!(!text.contains(&needle), "the log holds {needle:?}:\n{text}");
    }
    let entries: Vec<Value> = text
        .lines()
        .filter(|line| line.starts_with("{\"") && line.contains("\"requestId\""))
        .map(|line| serde_json::from_str(line).expect("an access-log line is JSON"))
        .collect();
    let mut ids = std::collections::HashSet::new();
    for entry in &entries {
        let time = entry["time"].as_str().expect("time");
        assert!(
            time.len() == 24 && &time[10..11] == "T" && time.ends_with('Z'),
            "{time}"
        );
        let route = entry["route"].as_str().expect("route");
        assert!(
            (route.starts_with('/') || route == "unrouted") && !route.contains('?'),
            "route {route}"
        );
        assert!(entry["durationMs"].as_f64().is_some(), "{entry}");
        assert!(entry["status"].as_u64().is_some(), "{entry}");
        assert!(ids.insert(entry["requestId"].as_str().expect("id").to_string()));
        let keys: Vec<&String> = entry.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 6, "only the six fields: {entry}");
    }
    let count = |method: &str, route: &str| {
        entries
            .iter()
            .filter(|e| e["method"] == method && e["route"] == route && e["status"] == 200)
            .count()
    };
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["method"] == "GET" && e["route"] == "unrouted" && e["status"] == 404)
            .count(),
        1,
        "GET /metrics on the app's port is an unrouted 404"
    );
    assert_eq!(count("POST", "/deposit/create"), 1);
    assert_eq!(count("POST", "/internal/payment-callback"), 1);
    assert_eq!(count("GET", "/deposit/status"), 1);
    assert!(count("POST", "/internal/credit-retry") as f64 >= sweeps);

    // Never two scheduled sweeps at once: their [start, start + duration] do not overlap
    // (1 ms of slack for the millisecond timestamps).
    let mut spans: Vec<(f64, f64)> = entries
        .iter()
        .filter(|e| e["route"] == "/internal/credit-retry")
        .map(|e| {
            let start = millis(e["time"].as_str().expect("time"));
            (start, start + e["durationMs"].as_f64().expect("duration"))
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0 + 1.0, "sweeps overlap: {:?}", pair);
    }
}

/// Milliseconds since midnight of an RFC 3339 `…THH:MM:SS.mmmZ` (the test runs within a day
/// except across midnight, where the day is added).
fn millis(time: &str) -> f64 {
    let day: f64 = time[8..10].parse().expect("day");
    let h: f64 = time[11..13].parse().expect("hour");
    let m: f64 = time[14..16].parse().expect("minute");
    let s: f64 = time[17..23].parse().expect("seconds");
    ((day * 24.0 + h) * 60.0 + m) * 60_000.0 + s * 1000.0
}

/// With `SPIN_BIN` (or `E2E_RUNTIME=spin`), child-process scenarios run `spin up`. Spin is
/// not installable here, so a fake `spin` checks the command line it gets and runs
/// `topup-host serve` with the translated flags: a paid flow through it credits once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_spin_switch_runs_spin_up_with_the_same_app() {
    let app = TestApp::start(Backend::Sqlite, &[]).await;
    let dir = TempDir::new();
    let fake = dir.path().join("spin");
    let seen = dir.path().join("spin.args");
    std::fs::write(
        &fake,
        format!(
            r#"#!/usr/bin/env bash
set -eu
printf '%s\n' "$@" > '{seen}'
[ "$1" = up ] || {{ echo "fake spin: only 'up'" >&2; exit 2; }}
shift
args=(serve)
while [ $# -gt 0 ]; do
  case "$1" in
    --listen) args+=(--listen "$2"); shift 2 ;;
    --runtime-config-file) args+=(--runtime-config-file "$2"); shift 2 ;;
    -f|--from) args+=(--manifest "$2"); shift 2 ;;
    *) echo "fake spin: unknown flag $1" >&2; exit 2 ;;
  esac
done
exec '{host}' "${{args[@]}}"
"#,
            seen = seen.display(),
            host = env!("CARGO_BIN_EXE_topup-host"),
        ),
    )
    .expect("write the fake spin");
    let mut permissions = std::fs::metadata(&fake).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&fake, permissions).expect("chmod the fake spin");

    let process: Process = app
        .launch(Launch {
            runtime: Some(Runtime::Spin(fake.clone())),
            ..Launch::default()
        })
        .await;
    let args: Vec<String> = std::fs::read_to_string(&seen)
        .expect("the fake spin ran")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        args,
        [
            "up".to_string(),
            "--listen".into(),
            process.addr.to_string(),
            "--runtime-config-file".into(),
            app.stores.runtime_config().display().to_string(),
            "--from".into(),
            crate::support::manifest().display().to_string(),
        ]
    );
    let (id, reference) = process.new_deposit("u-spin", 5000).await;
    let reply = process.callback(&paid_body(&id, &reference, 5000)).await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    assert_eq!(app.bot.credits(&id), 1);
    assert_eq!(process.view(&id).await["credited"], true);
    // Dropping it kills its whole process group (Spin's trigger is a child of `spin up`).
    drop(process);
}
