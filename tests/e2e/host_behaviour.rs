//! The host keeps Spin's rules where the app's own behaviour cannot show them: undeclared
//! stores are refused, outbound requests go only to allowed hosts, required variables and
//! store labels are checked at startup.

use std::collections::HashMap;

use serde_json::json;
use topup_host::{App, AppOptions};

use crate::support::{bearer, manifest, Backend, TempDir, TestApp, SECRET};

/// A copy of spin.toml (next to the original, so sources resolve) with `edit` applied.
/// An edited copy of spin.toml in `dir` (never in the repository), its component sources
/// pointing at the built components.
fn edited_manifest(dir: &TempDir, edit: impl Fn(&str) -> String) -> std::path::PathBuf {
    let original = std::fs::read_to_string(manifest()).unwrap();
    let root = manifest().parent().unwrap().display().to_string();
    let edited =
        edit(&original).replace("source = \"target/", &format!("source = \"{root}/target/"));
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, edited).unwrap();
    path
}

fn env(pg: &str, bot: &str) -> HashMap<String, String> {
    [
        ("SHARED_SECRET", SECRET),
        ("CENTRAL_PG_BASE_URL", pg),
        ("BOT_BACKEND_URL", bot),
    ]
    .into_iter()
    .map(|(k, v)| (format!("SPIN_VARIABLE_{k}"), v.to_string()))
    .collect()
}

async fn serve(options: &AppOptions) -> crate::support::Http {
    let app = App::load(options).await.expect("load");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = crate::support::Http::new(&format!("http://{}", listener.local_addr().unwrap()));
    tokio::spawn(async move {
        let _ = app.serve(listener).await;
    });
    http
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_store_and_disallowed_host_are_refused() {
    let reference = TestApp::start(Backend::Sqlite, &[]).await;
    let dir = TempDir::new();
    // payment-callback loses the label of its claims (`claims`, or `default` when it is the
    // only one); deposit-create loses its outbound host.
    let source = format!(
        "[component.payment-callback]\nsource = \"{}payment_callback.wasm\"\n",
        crate::support::Build::current().wasm_dir()
    );
    let (granted, kept) = if crate::support::single_label() {
        ("[\"default\"]", "[]")
    } else {
        ("[\"default\", \"claims\"]", "[\"default\"]")
    };
    let path = edited_manifest(&dir, |text| {
        let edited = text.replacen(
            &format!("{source}key_value_stores = {granted}"),
            &format!("{source}key_value_stores = {kept}"),
            1,
        );
        assert_ne!(
            edited, text,
            "the manifest grants payment-callback {granted}"
        );
        edited
        .replacen(
            "allowed_outbound_hosts = [\"{{ central_pg_base_url }}\", \"{{ duitku_base_url }}\", \"{{ midtrans_snap_url }}\", \"{{ xendit_base_url }}\", \"{{ tripay_base_url }}\"]\n",
            "",
            1,
        )
    });
    let options = AppOptions {
        manifest: path.clone(),
        runtime_config: Some(reference.stores.runtime_config()),
        env: env(&reference.pg.url(), &reference.bot.url()),
        ..AppOptions::default()
    };
    let http = serve(&options).await;

    let bearer = bearer(SECRET);
    let create = http
        .send(
            "POST",
            "/deposit/create",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            json!({"userId": "u", "amount": 5000}).to_string(),
        )
        .await;
    assert_eq!(create.status, 502, "{}", create.json());
    assert!(
        create.json()["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("not allowed"),
        "{}",
        create.json()
    );
    assert!(
        reference.pg.received().is_empty(),
        "no connection is made to a disallowed host"
    );

    let (id, reference_id) = reference.new_deposit("u1", 5000).await;
    // The create wrote the deposit and its expiry task (whose slot counter is in `claims`);
    // the refused callback must change nothing at all.
    let before = reference.stores.snapshot();
    let body = crate::support::paid_body(&id, &reference_id, 5000);
    let signature = crate::support::sign(SECRET, body.as_bytes());
    let paid = http
        .send(
            "POST",
            "/internal/payment-callback",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
                ("x-signature", &signature),
            ],
            body,
        )
        .await;
    assert_eq!(
        (paid.status, paid.json()["error"].clone()),
        (503, json!("STORE_UNAVAILABLE")),
        "{}",
        paid.json()
    );
    assert!(reference.bot.received().is_empty());
    assert_eq!(
        reference.stores.snapshot(),
        before,
        "a callback refused for want of its store wrote something"
    );
    assert!(!reference
        .stores
        .keys("claims")
        .contains(&format!("paid:{id}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_checks_variables_and_labels() {
    let dir = TempDir::new();
    let mut missing = env("http://127.0.0.1:1", "http://127.0.0.1:2");
    missing.remove("SPIN_VARIABLE_SHARED_SECRET");
    let error = App::load(&AppOptions {
        manifest: manifest(),
        runtime_config: None,
        env: missing,
        ..AppOptions::default()
    })
    .await
    .err()
    .expect("a required variable without a value stops startup");
    assert!(
        error
            .to_string()
            .contains("no provider resolved required variable(s): [Key(\"shared_secret\")]"),
        "{error}"
    );

    // `claims` is not Spin's default label, so it must be defined in the runtime config; with
    // one label (`E2E_LABELS=single`) nothing names it, and `default` alone is enough.
    let config = dir.path().join("only-default.toml");
    std::fs::write(
        &config,
        "[key_value_store.default]\ntype = \"spin\"\npath = \"d.db\"\n",
    )
    .unwrap();
    let loaded = App::load(&AppOptions {
        manifest: manifest(),
        runtime_config: Some(config),
        env: env("http://127.0.0.1:1", "http://127.0.0.1:2"),
        ..AppOptions::default()
    })
    .await;
    if crate::support::single_label() {
        assert!(loaded.is_ok(), "{:?}", loaded.err());
    } else {
        let error = loaded.err().expect("an undefined label stops startup");
        assert!(
            error
                .to_string()
                .contains("unknown key_value_stores label \"claims\""),
            "{error}"
        );
    }
}
