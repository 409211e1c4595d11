use super::*;
use crate::testing::MapVariables;

fn base() -> MapVariables {
    MapVariables::new(&[
        ("shared_secret", "s3cr3t-value"),
        ("central_pg_base_url", "https://pg.example.com"),
        ("bot_backend_url", "http://127.0.0.1:9000"),
    ])
}

#[test]
fn defaults_follow_the_spec() {
    let cfg = Config::load_all(&base()).expect("valid config");
    let (gateway, delivery) = (cfg.gateway().unwrap(), cfg.delivery().unwrap());
    let replay = cfg.replay().unwrap();
    assert_eq!(gateway.central_pg_create_path, "/invoice/create");
    assert_eq!(delivery.bot_credit_path, "/internal/deposit-callback");
    assert_eq!(cfg.lifetime().unwrap().deposit_ttl_ms, 30 * 86_400_000);
    assert!(!replay.enforce_timestamp);
    assert_eq!(replay.timestamp_skew_ms, 300_000);
    assert_eq!(replay.nonce_ttl_ms, 600_000);
    let amounts = cfg.amounts().unwrap();
    assert_eq!(
        (amounts.min_amount, amounts.max_amount),
        (1000, 100_000_000)
    );
    assert!(cfg.allowed_origins.is_empty());
    assert_eq!(gateway.public_base_url, None);
    assert_eq!(cfg.auth().unwrap().shared_secret_previous, None);
    assert_eq!(delivery.credit_retry_schedule.len(), 6);
    assert_eq!(delivery.credit_retry_schedule[0], Duration::from_secs(60));
}

#[test]
fn every_bad_value_names_its_variable() {
    let cases: &[(&str, &str)] = &[
        ("shared_secret", ""),
        ("central_pg_base_url", "pg.example.com"),
        ("central_pg_base_url", "https://pg.example.com/api"),
        ("central_pg_base_url", "https://pg.example.com/"),
        ("bot_backend_url", ""),
        ("central_pg_create_path", "invoice"),
        ("central_pg_timeout_ms", "soon"),
        ("central_pg_timeout_ms", "0"),
        ("bot_timeout_ms", "-5"),
        ("public_base_url", "ftp://x"),
        ("allowed_origins", "https://a.example"),
        ("allowed_origins", "[1,2]"),
        ("deposit_ttl_days", "thirty"),
        ("deposit_ttl_days", "0"),
        ("deposit_ttl_days", "NaN"),
        ("enforce_timestamp", "yes please"),
        ("timestamp_skew_sec", "5m"),
        ("nonce_ttl_seconds", "0"),
        ("min_amount", "1e3"),
        ("max_amount", "-1"),
        ("credit_retry_schedule", "60,soon"),
        ("credit_retry_schedule", ""),
        ("credit_max_retries", "many"),
        ("credit_lease_seconds", "0"),
    ];
    for (name, value) in cases {
        let vars = base().with(name, value);
        let err = Config::load_all(&vars).expect_err(&format!("{name}={value:?} must fail"));
        assert_eq!(
            err.variable, *name,
            "{name}={value:?} blamed {}",
            err.variable
        );
        assert!(err.to_string().contains(name));
    }
}

#[test]
fn combinations_that_defeat_the_lease_are_refused() {
    let refused = |pairs: &[(&str, &str)], variable: &str| {
        let vars = pairs.iter().fold(base(), |v, (n, x)| v.with(n, x));
        let err = Config::load_all(&vars).expect_err(&format!("{pairs:?}"));
        assert_eq!(err.variable, variable, "{pairs:?}: {err}");
    };
    refused(&[("credit_lease_seconds", "2")], "credit_lease_seconds");
    refused(
        &[("credit_lease_seconds", "5"), ("bot_timeout_ms", "5000")],
        "credit_lease_seconds",
    );
    refused(
        &[
            ("deposit_ttl_days", "0.5"),
            ("credit_retry_schedule", "60,86400"),
        ],
        "credit_retry_schedule",
    );
    let fine = base()
        .with("credit_lease_seconds", "6")
        .with("bot_timeout_ms", "5000")
        .with("deposit_ttl_days", "1")
        .with("credit_retry_schedule", "60,86400");
    assert!(Config::load_all(&fine).is_ok());
    let err = Config::load_all(&base().with("credit_lease_seconds", "1")).unwrap_err();
    assert!(err.to_string().contains("bot_timeout_ms"), "{err}");
}

#[test]
fn a_route_reads_only_its_sections() {
    // Only CORS and the Lifetime section: nothing else is read, not even the required
    // secrets, and a section not read is a clear error naming its variable.
    let vars = MapVariables::new(&[]);
    let cfg = Config::load(&vars, &[Section::Lifetime]).expect("no secret needed");
    assert_eq!(cfg.lifetime().unwrap().deposit_ttl_ms, 30 * 86_400_000);
    assert_eq!(cfg.auth().unwrap_err().variable, "shared_secret");
    assert_eq!(cfg.delivery().unwrap_err().variable, "bot_backend_url");
    // Every variable belongs to exactly one section, or to CORS.
    let mut named: Vec<&str> = ALL_SECTIONS
        .iter()
        .flat_map(|s| s.variables().iter().copied())
        .chain(ROUTE_VARIABLES.iter().copied())
        .collect();
    named.sort_unstable();
    let mut all: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
    all.sort_unstable();
    assert_eq!(named, all);
}

fn with_gateways(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars = pairs.iter().fold(base(), |v, (n, x)| v.with(n, x));
    Config::load_all(&vars)
}

#[test]
fn central_alone_by_default_and_no_gateway_credentials_needed() {
    let cfg = Config::load_all(&base()).unwrap();
    let gateways = cfg.gateways().unwrap();
    assert_eq!(gateways.enabled, vec![GatewayName::Central]);
    assert_eq!(gateways.default, GatewayName::Central);
    assert_eq!(cfg.duitku().unwrap_err().variable, "gateways_enabled");
    assert_eq!(cfg.tripay().unwrap_err().variable, "gateways_enabled");
}

#[test]
fn gateway_list_and_default_errors_name_their_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("gateways_enabled", "")], "gateways_enabled"),
        (
            &[("gateways_enabled", "central,paypal")],
            "gateways_enabled",
        ),
        (
            &[("gateways_enabled", "central,central")],
            "gateways_enabled",
        ),
        (&[("gateways_enabled", "Central")], "gateways_enabled"),
        (&[("gateway_default", "xendit")], "gateway_default"),
        (&[("gateway_timeout_ms", "0")], "gateway_timeout_ms"),
        (
            &[("reconcile_after_seconds", "0")],
            "reconcile_after_seconds",
        ),
        (&[("reconcile_schedule", "600,soon")], "reconcile_schedule"),
        (&[("reconcile_schedule", "600,0")], "reconcile_schedule"),
        (
            &[("reconcile_max_per_sweep", "0")],
            "reconcile_max_per_sweep",
        ),
        (
            &[("reconcile_max_per_sweep", "5000")],
            "reconcile_max_per_sweep",
        ),
        (
            &[("gateways_enabled", "central,midtrans")],
            "midtrans_server_key",
        ),
        (
            &[
                ("gateways_enabled", "xendit"),
                ("gateway_default", "xendit"),
                ("xendit_secret_key", "k"),
            ],
            "xendit_callback_token",
        ),
        (
            &[
                ("gateways_enabled", "central,duitku"),
                ("duitku_merchant_code", "D1"),
                ("duitku_api_key", "k"),
            ],
            "public_base_url",
        ),
        (
            &[
                ("gateways_enabled", "central,duitku"),
                ("duitku_merchant_code", "D1"),
                ("duitku_api_key", "k"),
                ("duitku_signature", "sha1"),
                ("public_base_url", "https://topup.example"),
            ],
            "duitku_signature",
        ),
        (
            &[
                ("gateways_enabled", "central,midtrans"),
                ("midtrans_server_key", "k"),
                ("midtrans_api_url", "https://api.midtrans.com/v2"),
            ],
            "midtrans_api_url",
        ),
    ];
    for (pairs, variable) in cases {
        let err = with_gateways(pairs).expect_err(&format!("{pairs:?}"));
        assert_eq!(err.variable, *variable, "{pairs:?}: {err}");
    }
}

#[test]
fn enabled_gateways_are_configured_and_secrets_stay_hidden() {
    let cfg = with_gateways(&[
        ("gateways_enabled", "central, duitku,midtrans,xendit,tripay"),
        ("gateway_default", "tripay"),
        ("public_base_url", "https://topup.example"),
        ("duitku_merchant_code", "D1"),
        ("duitku_api_key", "duitku-key-value"),
        ("duitku_signature", "legacy"),
        ("midtrans_server_key", "midtrans-key-value"),
        ("xendit_secret_key", "xendit-key-value"),
        ("xendit_callback_token", "xendit-token-value"),
        ("tripay_merchant_code", "T1"),
        ("tripay_api_key", "tripay-key-value"),
        ("tripay_private_key", "tripay-private-value"),
        ("tripay_api_path", "/api"),
    ])
    .unwrap();
    assert_eq!(cfg.gateways().unwrap().default, GatewayName::Tripay);
    assert_eq!(cfg.gateways().unwrap().enabled.len(), 5);
    assert_eq!(cfg.duitku().unwrap().signature, DuitkuSignature::Legacy);
    assert_eq!(cfg.tripay().unwrap().base_url, "https://tripay.co.id/api");
    assert_eq!(
        cfg.midtrans().unwrap().api_url,
        "https://api.sandbox.midtrans.com"
    );
    let debug = format!("{cfg:?}");
    for secret in [
        "duitku-key-value",
        "midtrans-key-value",
        "xendit-key-value",
        "xendit-token-value",
        "tripay-key-value",
        "tripay-private-value",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked");
    }
}

#[test]
fn central_pg_secret_defaults_to_the_bots_and_can_be_its_own() {
    let shared = Config::load_all(&base()).unwrap();
    let central = shared.central_auth().unwrap();
    assert_eq!(central.shared_secret, Secret::new("s3cr3t-value"));
    let own = Config::load_all(
        &base()
            .with("pg_shared_secret", "pg-only")
            .with("shared_secret_previous", "old"),
    )
    .unwrap();
    let central = own.central_auth().unwrap();
    assert_eq!(central.shared_secret, Secret::new("pg-only"));
    // The bot's secrets (current or previous) are not the PG's.
    assert_eq!(central.inbound_secrets().count(), 1);
}

#[test]
fn disabled_gateways_cost_no_variable_reads() {
    // Only the Gateways section and Duitku's: with Duitku disabled, none of its variables
    // is read (they are absent here, so a read would fail).
    let vars = MapVariables::new(&[]);
    struct Only<'a>(&'a MapVariables);
    impl Variables for Only<'_> {
        fn get(&self, name: &str) -> Result<String, crate::platform::VariableError> {
            assert!(!name.starts_with("duitku_"), "read {name}");
            self.0.get(name)
        }
    }
    let cfg = Config::load(&Only(&vars), &[Section::Gateways, Section::Duitku]).unwrap();
    assert_eq!(cfg.duitku().unwrap_err().variable, "gateways_enabled");
}

#[test]
fn min_above_max_is_refused() {
    let vars = base().with("min_amount", "5000").with("max_amount", "4000");
    assert_eq!(Config::load_all(&vars).unwrap_err().variable, "max_amount");
}

#[test]
fn missing_required_variable_is_named() {
    let vars = MapVariables::new(&[("shared_secret", "x"), ("bot_backend_url", "http://b")]);
    let err = Config::load_all(&vars).unwrap_err();
    assert_eq!(err.variable, "central_pg_base_url");
    assert!(err.problem.contains("not set"));
}

#[test]
fn config_errors_never_echo_the_secret() {
    let vars = base().with("shared_secret_previous", "old-secret-value");
    let cfg = Config::load_all(&vars).unwrap();
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("s3cr3t-value"));
    assert!(!debug.contains("old-secret-value"));
    assert_eq!(cfg.auth().unwrap().inbound_secrets().count(), 2);
}

#[test]
fn fractional_ttl_and_flags_parse() {
    let vars = base()
        .with("deposit_ttl_days", "0.5")
        .with("credit_retry_schedule", "60,300,1800,7200,21600")
        .with("enforce_timestamp", "TRUE")
        .with("allowed_origins", r#"["https://shop.example"]"#)
        .with("public_base_url", "https://topup.example/");
    let cfg = Config::load_all(&vars).unwrap();
    assert_eq!(cfg.lifetime().unwrap().deposit_ttl_ms, 43_200_000);
    let ttl = |v: &str| {
        let vars = base()
            .with("deposit_ttl_days", v)
            .with("credit_retry_schedule", "1");
        Config::load_all(&vars).map(|c| c.lifetime().unwrap().deposit_ttl_ms)
    };
    assert_eq!(ttl("0.00003").unwrap(), 2_592);
    assert_eq!(ttl(".25").unwrap(), 21_600_000);
    assert_eq!(ttl("3650").unwrap(), 3650 * 86_400_000);
    assert_eq!(ttl("0.000001").unwrap(), 1_000, "at least one second");
    for bad in ["3650.5", "3651", ".", "", "1e3", "-1", "0.0", "1.2.3"] {
        assert!(ttl(bad).is_err(), "{bad:?}");
    }
    assert!(cfg.replay().unwrap().enforce_timestamp);
    assert_eq!(cfg.allowed_origins, vec!["https://shop.example"]);
    assert_eq!(
        cfg.gateway().unwrap().public_base_url.as_deref(),
        Some("https://topup.example")
    );
}

#[test]
fn a_retired_gateway_is_read_only_by_the_routes_that_serve_its_deposits() {
    let vars = base()
        .with("duitku_merchant_code", "D1")
        .with("duitku_api_key", "k");
    // Out of gateways_enabled: create's sections leave it unread...
    let create = Config::load(&vars, &[Section::Gateways, Section::Duitku]).unwrap();
    assert!(!create.has_credentials(GatewayName::Duitku));
    // ... a callback's read it, while its credentials are all set.
    let serving = [Section::Gateways, Section::Duitku, Section::Retired];
    assert!(Config::load(&vars, &serving)
        .unwrap()
        .has_credentials(GatewayName::Duitku));
    let partly = base().with("duitku_merchant_code", "D1");
    let callback = Config::load(&partly, &serving).unwrap();
    assert!(!callback.has_credentials(GatewayName::Duitku));
    assert_eq!(callback.duitku().unwrap_err().variable, "gateways_enabled");
}

#[test]
fn midtrans_needs_twenty_minutes_of_deposit_life() {
    let midtrans = [
        ("gateways_enabled", "central,midtrans"),
        ("midtrans_server_key", "SB-Mid-server-x"),
        ("credit_retry_schedule", "60"),
    ];
    let with_ttl = |days: &'static str| {
        let mut pairs = midtrans.to_vec();
        pairs.push(("deposit_ttl_days", days));
        with_gateways(&pairs)
    };
    assert_eq!(with_ttl("0.01").unwrap_err().variable, "deposit_ttl_days");
    assert!(with_ttl("0.014").is_ok());
}

#[test]
fn the_pg_signature_is_the_body_unless_timestamped() {
    let scheme = |value: &str| {
        Config::load_all(&base().with("pg_signature", value))
            .map(|c| c.central_auth().unwrap().scheme)
    };
    assert_eq!(
        Config::load_all(&base())
            .unwrap()
            .central_auth()
            .unwrap()
            .scheme,
        SignatureScheme::Body
    );
    assert_eq!(scheme("timestamped").unwrap(), SignatureScheme::Timestamped);
    assert_eq!(scheme("hmac").unwrap_err().variable, "pg_signature");
    // The bot's own calls keep the body scheme whatever the PG uses.
    let cfg = Config::load_all(&base().with("pg_signature", "timestamped")).unwrap();
    assert_eq!(cfg.auth().unwrap().scheme, SignatureScheme::Body);
}

#[test]
fn kv_labels_names_two_labels_or_one() {
    let load = |value: &str| StoreLabels::load(&MapVariables::new(&[("kv_labels", value)]));
    assert_eq!(load("two").map(StoreLabels::claims), Ok("claims"));
    assert_eq!(load(" single ").map(StoreLabels::claims), Ok("default"));
    assert_eq!(load("single").unwrap().in_use(), ["default"]);
    assert_eq!(load("two").unwrap().in_use(), ["default", "claims"]);
    for bad in ["", "Two", "1", "default"] {
        let error = load(bad).unwrap_err();
        assert_eq!(error.variable, "kv_labels", "{bad:?}");
    }
    // Not mapped into the component: an error naming it, never a silent default.
    struct Unmapped;
    impl Variables for Unmapped {
        fn get(&self, _: &str) -> Result<String, crate::platform::VariableError> {
            Err(crate::platform::VariableError::Undefined)
        }
    }
    assert_eq!(
        StoreLabels::load(&Unmapped).unwrap_err().variable,
        "kv_labels"
    );
}
