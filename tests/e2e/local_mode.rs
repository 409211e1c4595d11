//! `scripts/run.sh`'s local mode: the four mock gateways started as `topup-mocks
//! --gateways-from` starts them (the same function), a deposit at each through the app, the
//! buyer paying through the mock's `/_mock/pay` → the bot credited once. And run.sh exports
//! the variables the app declares, with the values the mocks expect.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use topup_testkit::mocks::gateways::{
    local_app_variables, start_local_gateways, Keys, MockGateway,
};

use crate::support::{Backend, Http, TestApp};

fn repo_file(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn buyer_pays(gateway: &MockGateway, what: &str, id: &str) -> serde_json::Value {
    let reply = Http::new(&gateway.url())
        .send("POST", &format!("/_mock/{what}?order={id}"), &[], "")
        .await;
    assert_eq!(
        reply.status,
        200,
        "{:?}: {}",
        gateway.protocol(),
        reply.json()
    );
    reply.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mock_pay_credits_once_at_every_gateway() {
    let keys = Keys::from_secret("e2e-local-gateway-secret");
    // The app's port is known only once it runs: start pointed nowhere, then point.
    let gateways = start_local_gateways(0, &keys, "http://127.0.0.1:1")
        .await
        .expect("mock gateways");
    let vars = local_app_variables(&gateways, "https://topup.example");
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::start(Backend::Sqlite, &vars).await;
    let app_url = format!("http://{}", app.addr);

    for gateway in &gateways {
        gateway.set_app(&app_url);
        let name = gateway.protocol().name();
        let created = app
            .create(
                &json!({"userId": "tg:42", "amount": 50_000, "gateway": name,
                "email": "buyer@example.com"}),
            )
            .await;
        assert_eq!(created.status, 200, "{name}: {}", created.json());
        let id = created.json()["depositId"]
            .as_str()
            .expect("depositId")
            .to_string();
        assert_eq!(gateway.orders(), 1, "{name}");

        let paid = buyer_pays(gateway, "pay", &id).await;
        assert_eq!(paid["appStatus"], 200, "{name}: {paid}");
        assert_eq!(paid["notified"], format!("/callback/{name}"), "{name}");
        assert_eq!(app.bot.credits(&id), 1, "{name}");
        assert_eq!(app.view(&id).await["status"], "PAID", "{name}");
        // Paying again resends the same notification: acknowledged, no second credit; and
        // an expiry after the payment does not undo it.
        assert_eq!(buyer_pays(gateway, "pay", &id).await["appStatus"], 200);
        assert_eq!(buyer_pays(gateway, "expire", &id).await["appStatus"], 200);
        assert_eq!(app.bot.credits(&id), 1, "{name}");
        assert_eq!(app.bot.deliveries(&id).len(), 1, "{name}");
        assert_eq!(app.view(&id).await["status"], "PAID", "{name}");

        // An order the gateway never saw: 404 from the mock, nothing sent.
        let unknown = Http::new(&gateway.url())
            .send("POST", "/_mock/pay?order=nope", &[], "")
            .await;
        assert_eq!(unknown.status, 404, "{name}");
    }

    // A mock gateway of the tests proper has no such endpoint, and still wants a length.
    let strict = MockGateway::start(gateways[0].protocol())
        .await
        .expect("mock");
    let strict = Http::new(&strict.url());
    let reply = strict.send("POST", "/_mock/pay?order=x", &[], "{}").await;
    assert_eq!(reply.status, 404);
    let reply = strict.send("POST", "/_mock/pay?order=x", &[], "").await;
    assert_eq!(reply.status, 411);
}

/// `export SPIN_VARIABLE_NAME="value"` lines of run.sh, by lower-case name.
fn run_sh_exports() -> BTreeMap<String, String> {
    repo_file("scripts/run.sh")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("export SPIN_VARIABLE_"))
        .filter_map(|rest| rest.split_once('='))
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                value.trim_matches('"').to_string(),
            )
        })
        .collect()
}

/// Names declared in spin.toml's `[variables]`.
fn manifest_variables() -> BTreeSet<String> {
    repo_file("spin.toml")
        .lines()
        .skip_while(|line| line.trim() != "[variables]")
        .skip(1)
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| line.split_once(" = {"))
        .map(|(name, _)| name.trim().to_string())
        .collect()
}

#[tokio::test]
async fn run_sh_exports_the_apps_variables_with_the_mocks_values() {
    let exports = run_sh_exports();
    let declared = manifest_variables();
    assert!(declared.contains("duitku_api_key"), "{declared:?}");
    for name in exports.keys() {
        assert!(
            declared.contains(name),
            "run.sh exports {name}, spin.toml has no such variable"
        );
    }
    // run.sh's `$g` is the generated secret the mocks' keys are made from.
    let gateways = start_local_gateways(0, &Keys::from_secret("$g"), "http://127.0.0.1:1")
        .await
        .expect("mock gateways");
    for (name, expected) in local_app_variables(&gateways, "http://$listen") {
        let Some(value) = exports.get(name) else {
            panic!("run.sh does not export {name}");
        };
        if expected.starts_with("http://127.0.0.1:") {
            assert!(value.starts_with("http://127.0.0.1:30"), "{name}={value}");
        } else if name == "public_base_url" {
            assert!(value.contains("http://$listen"), "{name}={value}");
        } else {
            assert_eq!(value, &expected, "{name}");
        }
    }
    // The ports follow Protocol::ALL from --gateways-from 3083, as topup-mocks assigns them.
    for (offset, gateway) in (0u16..).zip(&gateways) {
        for (name, _) in gateway.app_variables() {
            if name.ends_with("_url") {
                assert_eq!(
                    exports[name],
                    format!("http://127.0.0.1:{}", 3083 + offset),
                    "{name}"
                );
            }
        }
    }
}
