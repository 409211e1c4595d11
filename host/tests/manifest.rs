//! The deployment files agree with the code: spin.toml declares and maps exactly the
//! variables the core reads, the runtime configs define every label, and the Fermyon Cloud
//! manifest differs from spin.toml only by literal outbound hosts.

use std::path::{Path, PathBuf};

use topup_host::manifest::Manifest;
use topup_host::runtime_config::{self, StoreDefinition};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn spin_toml_declares_exactly_the_core_variables() {
    let manifest = Manifest::load(&root().join("spin.toml")).expect("spin.toml loads");
    let declared: Vec<_> = manifest.variables.keys().cloned().collect();
    let mut expected: Vec<_> = topup_core::config::VARIABLES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    expected.sort();
    assert_eq!(declared, expected);
    for (name, default) in topup_core::config::VARIABLES {
        let decl = &manifest.variables[*name];
        assert_eq!(decl.default.as_deref(), *default, "default of {name}");
        assert_eq!(decl.required, default.is_none(), "required-ness of {name}");
    }
    assert!(manifest.variables["shared_secret"].secret);
    assert!(manifest.variables["shared_secret_previous"].secret);
    assert!(
        manifest.variables["bots"].secret,
        "bots holds each bot's keys"
    );
    for secret in [
        "pg_shared_secret",
        "duitku_api_key",
        "midtrans_server_key",
        "xendit_secret_key",
        "xendit_callback_token",
        "tripay_api_key",
        "tripay_private_key",
    ] {
        assert!(manifest.variables[secret].secret, "{secret} must be secret");
    }
}

/// The hosts a component that sends credits may reach: `default`'s origin and the slots.
const BOT_HOSTS: [&str; 5] = [
    "{{ bot_backend_url }}",
    "{{ bot_origin_1 }}",
    "{{ bot_origin_2 }}",
    "{{ bot_origin_3 }}",
    "{{ bot_origin_4 }}",
];

#[test]
fn every_component_maps_exactly_what_its_route_reads_and_gets_only_what_it_needs() {
    let manifest = Manifest::load(&root().join("spin.toml")).expect("spin.toml loads");
    let routes: Vec<_> = manifest
        .routes
        .iter()
        .map(|r| (r.route.as_str(), r.component.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            ("/health", "health"),
            ("/deposit/create", "deposit-create"),
            ("/internal/payment-callback", "payment-callback"),
            ("/deposit/status", "deposit-status"),
            ("/internal/credit-retry", "sweep"),
            ("/deposit/retry-credit", "manual-retry"),
            ("/internal/alerts", "alerts"),
            ("/callback/duitku", "callback-duitku"),
            ("/callback/midtrans", "callback-midtrans"),
            ("/callback/xendit", "callback-xendit"),
            ("/callback/tripay", "callback-tripay"),
            ("/openapi.json", "openapi"),
            ("/admin/...", "admin"),
            ("/admin/action/...", "admin-action"),
            ("/console", "console"),
        ]
    );
    assert!(
        manifest.components["openapi"].variables.is_empty(),
        "the document's component reads no variable"
    );
    for (path, route) in topup_core::routes::ALL {
        // Found as Spin routes a request (the console's routes are wildcards).
        let table: Vec<topup_host::routing::Route> = manifest
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| topup_host::routing::Route {
                pattern: r.route.clone(),
                component: i,
            })
            .collect();
        let component = topup_host::routing::find(&table, path)
            .map(|m| manifest.routes[m.component].component.clone())
            .expect("every core route is in spin.toml");
        let mapped: std::collections::BTreeMap<String, String> = manifest.components[&component]
            .variables
            .clone()
            .into_iter()
            .collect();
        let expected: std::collections::BTreeMap<String, String> = route
            .variables()
            .into_iter()
            .map(|name| (name.to_string(), format!("{{{{ {name} }}}}")))
            .collect();
        assert_eq!(mapped, expected, "{component} maps what {path} reads");
    }
    for (id, component) in &manifest.components {
        // Whether it sends credits (then it may reach each bot's origin: `default`'s, and a
        // slot per bot of `bots`), and the gateways it calls.
        let (stores, credits, gateways): (&[&str], bool, &[&str]) = match id.as_str() {
            // /health probes both labels (a read of each) to name the one that is down.
            "health" | "deposit-status" => (&["default", "claims"], false, &[]),
            "openapi" | "console" => (&[], false, &[]),
            // The console's reads list deposits and read their records; its actions resend.
            "admin" => (&["default", "claims"], false, &[]),
            // Alerts go to the operator's webhook and Telegram, nowhere else.
            "alerts" => (
                &["default", "claims"],
                false,
                &["{{ alert_origin }}", "{{ alert_telegram_api_url }}"],
            ),
            "deposit-create" => (
                &["default", "claims"],
                false,
                &[
                    "{{ central_pg_base_url }}",
                    "{{ duitku_base_url }}",
                    "{{ midtrans_snap_url }}",
                    "{{ xendit_base_url }}",
                    "{{ tripay_base_url }}",
                ],
            ),
            // The sweep also asks the gateways about late deposits.
            "sweep" => (
                &["default", "claims"],
                true,
                &[
                    "{{ duitku_base_url }}",
                    "{{ midtrans_api_url }}",
                    "{{ xendit_base_url }}",
                    "{{ tripay_base_url }}",
                ],
            ),
            // A notice these gateways do not sign in full is confirmed with their status API.
            "callback-duitku" => (&["default", "claims"], true, &["{{ duitku_base_url }}"]),
            "callback-midtrans" => (&["default", "claims"], true, &["{{ midtrans_api_url }}"]),
            "callback-xendit" => (&["default", "claims"], true, &["{{ xendit_base_url }}"]),
            _ => (&["default", "claims"], true, &[]),
        };
        let bots: &[&str] = if credits { &BOT_HOSTS } else { &[] };
        let hosts: Vec<&str> = bots.iter().chain(gateways).copied().collect();
        assert_eq!(component.key_value_stores, stores, "{id} stores");
        assert_eq!(
            component.allowed_outbound_hosts, hosts,
            "{id} outbound hosts"
        );
    }
}

#[test]
fn runtime_configs_define_both_labels() {
    let sqlite = runtime_config::load(Some(&root().join("runtime-config.toml"))).unwrap();
    assert!(
        matches!(&sqlite["default"], StoreDefinition::Sqlite(p) if p.ends_with(".spin/sqlite_key_value.db"))
    );
    assert!(
        matches!(&sqlite["claims"], StoreDefinition::Sqlite(p) if p.ends_with(".spin/claims.db"))
    );
    let redis = runtime_config::load(Some(&root().join("runtime-config.redis.toml"))).unwrap();
    assert_eq!(
        redis["default"],
        StoreDefinition::Redis("redis://127.0.0.1:6379".into())
    );
    assert_eq!(
        redis["claims"],
        StoreDefinition::Redis("redis://127.0.0.1:6379".into()),
        "both labels share database 0"
    );
}

#[test]
fn cloud_manifest_has_literal_hosts_and_nothing_else_changed() {
    let out = root().join("target").join("spin.cloud.test.toml");
    let run = |pg: &str, bot: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_topup-host"))
            .args(["cloud-manifest", "--manifest"])
            .arg(root().join("spin.toml"))
            .arg("--out")
            .arg(&out)
            .env("SPIN_VARIABLE_CENTRAL_PG_BASE_URL", pg)
            .env("SPIN_VARIABLE_BOT_BACKEND_URL", bot)
            .env("SPIN_VARIABLE_BOT_ORIGIN_1", "https://wa-bot.example.net")
            .output()
            .expect("run topup-host cloud-manifest")
    };
    assert!(
        run("https://pg.example.com", "https://bot.example.com:8443")
            .status
            .success()
    );
    let original = std::fs::read_to_string(root().join("spin.toml")).unwrap();
    let cloud = std::fs::read_to_string(&out).unwrap();
    let changed: Vec<_> = original
        .lines()
        .zip(cloud.lines())
        .filter(|(a, b)| a != b)
        .map(|(_, b)| b.to_string())
        .collect();
    assert_eq!(original.lines().count(), cloud.lines().count());
    // Every component with outbound hosts: create, the Central PG's callback, the sweep, the
    // manual retry, the console's actions, the alerts and the four gateway callbacks.
    assert_eq!(changed.len(), 10, "{changed:?}");
    assert!(changed
        .iter()
        .all(|l| l.starts_with("allowed_outbound_hosts") && !l.contains("{{")));
    // The gateways' hosts resolve to their variables' defaults (the sandboxes).
    assert!(changed.contains(
        &r#"allowed_outbound_hosts = ["https://pg.example.com", "https://api-sandbox.duitku.com", "https://app.sandbox.midtrans.com", "https://api.xendit.co", "https://tripay.co.id"]"#
            .to_string()
    ));
    // The bots' slots: one set, the others at their reserved defaults.
    assert!(changed.contains(
        &r#"allowed_outbound_hosts = ["https://bot.example.com:8443", "https://wa-bot.example.net", "https://bot-origin-2.invalid", "https://bot-origin-3.invalid", "https://bot-origin-4.invalid"]"#
            .to_string()
    ), "{changed:?}");
    assert!(changed.contains(
        &r#"allowed_outbound_hosts = ["https://alert-origin.invalid", "https://api.telegram.org"]"#
            .to_string()
    ), "{changed:?}");

    // Cloud's manifest sits next to spin.toml, so component sources resolve the same.
    let loaded = Manifest::parse(&cloud, root());
    assert_eq!(loaded.expect("cloud manifest loads").components.len(), 15);

    let refused = run("https://pg.example.com/api", "https://bot.example.com");
    assert!(
        !refused.status.success(),
        "an origin with a path is refused"
    );
    let reason = String::from_utf8_lossy(&refused.stderr);
    assert!(reason.contains("not an origin"), "{reason}");
}

#[test]
fn p3_manifest_is_spin_toml_with_the_p3_build() {
    let spin = std::fs::read_to_string(root().join("spin.toml")).expect("spin.toml");
    let committed = std::fs::read_to_string(root().join("spin.p3.toml")).expect("spin.p3.toml");
    let expected =
        topup_host::p3_manifest::p3_manifest(&spin).expect("spin.p3.toml from spin.toml");
    assert!(
        committed == expected,
        "spin.p3.toml is not spin.toml with the p3 build: run \
         `target/host/topup-host p3-manifest` (or `cargo run --profile host -p topup-host -- \
         p3-manifest`) and commit spin.p3.toml"
    );
    // Both load, with the same variables, routes and components.
    let p2 = Manifest::load(&root().join("spin.toml")).expect("spin.toml loads");
    let p3 = Manifest::load(&root().join("spin.p3.toml")).expect("spin.p3.toml loads");
    assert_eq!(
        p2.variables.keys().collect::<Vec<_>>(),
        p3.variables.keys().collect::<Vec<_>>()
    );
    assert_eq!(p2.routes.len(), p3.routes.len());
    for (id, component) in &p3.components {
        assert!(
            component.source.to_string_lossy().contains("/release-p3/"),
            "{id}: {}",
            component.source.display()
        );
        assert_eq!(component.variables, p2.components[id].variables, "{id}");
    }
}

#[test]
fn single_label_manifest_is_spin_toml_on_one_label() {
    let spin = std::fs::read_to_string(root().join("spin.toml")).expect("spin.toml");
    let committed = std::fs::read_to_string(root().join("spin.single-label.toml"))
        .expect("spin.single-label.toml");
    let expected = topup_host::single_label_manifest::single_label_manifest(&spin)
        .expect("spin.single-label.toml from spin.toml");
    assert!(
        committed == expected,
        "spin.single-label.toml is not spin.toml on one label: run \
         `target/host/topup-host single-label-manifest` and commit spin.single-label.toml"
    );
    let two = Manifest::load(&root().join("spin.toml")).expect("spin.toml loads");
    let one = Manifest::load(&root().join("spin.single-label.toml")).expect("it loads");
    assert_eq!(
        one.variables["kv_labels"].default.as_deref(),
        Some("single")
    );
    for (id, component) in &one.components {
        let expected: Vec<_> = two.components[id]
            .key_value_stores
            .iter()
            .filter(|label| *label != "claims")
            .cloned()
            .collect();
        assert_eq!(component.key_value_stores, expected, "{id}");
        assert_eq!(component.variables, two.components[id].variables, "{id}");
        assert_eq!(component.source, two.components[id].source, "{id}");
    }
}

/// Spin 3.x and 4.0 check every templated `allowed_outbound_hosts` entry against the variables'
/// defaults when they load the app, and refuse to start it if one is not a host (an empty
/// default among them): every default must be an origin.
#[test]
fn every_templated_outbound_host_is_an_origin_with_the_defaults() {
    let manifest = Manifest::load(&root().join("spin.toml")).expect("spin.toml loads");
    let mut checked = 0;
    for (id, component) in &manifest.components {
        for template in component
            .allowed_outbound_hosts
            .iter()
            .filter(|t| t.contains("{{"))
        {
            let lookup = |name: &str| manifest.variables.get(name)?.default.clone();
            // A required variable has no default: Spin checks that entry only at run time.
            let Ok(expanded) = topup_host::manifest::expand_template(template, lookup) else {
                continue;
            };
            checked += 1;
            if let Err(error) = topup_host::outbound::AllowedHost::parse(&expanded) {
                panic!("{id}: {template} with its default is {expanded:?}, not a host: {error:#}");
            }
        }
    }
    assert!(
        checked >= 20,
        "only {checked} templated entries have defaults"
    );
}
