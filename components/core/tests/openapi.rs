//! `openapi.json` (repository root) agrees with the code: the same routes and methods, the
//! same request fields and query parameters, the same headers, and per route exactly the
//! error codes the route declares, each under its status. The code side is read from the
//! code: `routes::ALL`, `ErrorCode::ALL`, `Route::error_codes`, the field names of the structs
//! that read bodies and queries, and the credit call as `bot::credit_request` builds it.
//! Every difference is listed in the failure message.

#![allow(clippy::expect_used, reason = "a test fails by panicking")]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use topup_core::bot::credit_request;
use topup_core::deposit::request::{CreateDeposit, CreateDepositBody};
use topup_core::error::ErrorCode;
use topup_core::gateway::notification::{CallbackBody, GatewayData};
use topup_core::routes::route::{Peer, CORS_ALLOW_HEADERS};
use topup_core::routes::{self, Route};
use topup_core::schema::{field_names, RetryQuery, StatusQuery};
use topup_core::testing::{sample_credit, test_config};

const DOCUMENT: &str = include_str!("../../../openapi.json");

/// Every method OpenAPI can describe; the document describes each on every path.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

/// Follows a local `$ref` (`#/a/b/c`).
fn resolve<'d>(doc: &'d Value, value: &'d Value) -> &'d Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => match doc.pointer(pointer.trim_start_matches('#')) {
            Some(target) => resolve(doc, target),
            None => &Value::Null,
        },
        None => value,
    }
}

fn names(values: impl IntoIterator<Item = impl ToString>) -> BTreeSet<String> {
    values.into_iter().map(|v| v.to_string()).collect()
}

/// Records `what` when the two sets differ, naming each side's extra members.
fn compare(
    problems: &mut Vec<String>,
    what: &str,
    code: &BTreeSet<String>,
    doc: &BTreeSet<String>,
) {
    let missing: Vec<_> = code.difference(doc).collect();
    let extra: Vec<_> = doc.difference(code).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{what}: in the code but not in openapi.json: {missing:?}"
        ));
    }
    if !extra.is_empty() {
        problems.push(format!(
            "{what}: in openapi.json but not in the code: {extra:?}"
        ));
    }
}

fn fail_on(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "openapi.json and the code disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The methods a route serves besides OPTIONS, from its `allow`.
fn served(allow: &str) -> BTreeSet<String> {
    allow
        .split(", ")
        .filter(|m| *m != "OPTIONS")
        .map(str::to_ascii_lowercase)
        .collect()
}

/// `(status, error code)` of every JSON error the operation documents.
fn documented_errors(doc: &Value, operation: &Value) -> Vec<(u16, String)> {
    let mut found = Vec::new();
    let Some(responses) = operation["responses"].as_object() else {
        return found;
    };
    for (status, response) in responses {
        let response = resolve(doc, response);
        let schema = &response["content"]["application/json"]["schema"];
        let Some(codes) = schema["properties"]["error"]["enum"].as_array() else {
            continue;
        };
        let status: u16 = status.parse().unwrap_or(0);
        found.extend(
            codes
                .iter()
                .map(|c| (status, c.as_str().unwrap_or("?").to_string())),
        );
    }
    found
}

/// The body each gateway's callback route reads: its adapter checks the content type
/// (`gateway/{duitku,midtrans,xendit}.rs`; Tripay's reads JSON whatever the type), as
/// `tests/gateways.rs` tests.
const GATEWAY_BODIES: [(&str, &str); 4] = [
    ("/callback/duitku", "application/x-www-form-urlencoded"),
    ("/callback/midtrans", "application/json"),
    ("/callback/xendit", "application/json"),
    ("/callback/tripay", "application/json"),
];

/// Headers the gateway adapters read (`gateway/xendit.rs`, `gateway/tripay.rs`); a browser
/// never sends them, so they are not in `CORS_ALLOW_HEADERS`.
const GATEWAY_HEADERS: [&str; 3] = [
    "X-Callback-Token",
    "X-Callback-Signature",
    "X-Callback-Event",
];

/// Every path the app serves, with its route declaration (none for `/openapi.json`).
fn code_paths() -> Vec<(&'static str, Option<&'static Route>)> {
    let mut paths: Vec<_> = routes::ALL.iter().map(|(p, r)| (*p, Some(*r))).collect();
    paths.push((routes::openapi::PATH, None));
    paths
}

#[test]
fn the_document_describes_every_route_and_method_and_nothing_else() {
    let doc = document();
    let mut problems = Vec::new();
    let doc_paths = names(doc["paths"].as_object().expect("paths").keys());
    compare(
        &mut problems,
        "routes",
        &names(code_paths().iter().map(|(p, _)| p)),
        &doc_paths,
    );
    for (path, route) in code_paths() {
        let Some(item) = doc["paths"][path].as_object() else {
            continue;
        };
        let allow = route.map_or(routes::openapi::ALLOW, |r| r.allow);
        compare(
            &mut problems,
            &format!("methods described on {path}"),
            &names(METHODS),
            &names(item.keys()),
        );
        let doc_served: BTreeSet<String> = item
            .iter()
            .filter(|(method, op)| {
                *method != "options"
                    && !op["tags"]
                        .as_array()
                        .is_some_and(|t| t.contains(&Value::from("refused")))
            })
            .map(|(method, _)| method.clone())
            .collect();
        compare(
            &mut problems,
            &format!("methods served on {path}"),
            &served(allow),
            &doc_served,
        );
        let Some(route) = route else { continue };
        for method in served(route.allow) {
            let op = &item[&method];
            // Whose bearer token: the bot's secret, or the Central PG's (`pg_shared_secret`).
            let scheme = |name: &str| {
                op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get(name).is_some()))
            };
            let bearer = match (scheme("bearerAuth"), scheme("pgBearerAuth")) {
                (false, false) => None,
                (true, false) => Some(Peer::Bot),
                (false, true) => Some(Peer::CentralPg),
                (true, true) => {
                    problems.push(format!("{method} {path}: two bearer schemes"));
                    None
                }
            };
            if bearer != route.auth {
                problems.push(format!(
                    "{method} {path}: bearer token required in code: {:?}, in openapi.json: {bearer:?}",
                    route.auth
                ));
            }
            // A gateway's callback route leaves the content type to its adapter.
            let media = GATEWAY_BODIES
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, media)| *media);
            let json = op["requestBody"]["content"]
                .get("application/json")
                .is_some();
            let expected = route.json_body || media == Some("application/json");
            if json != expected {
                problems.push(format!(
                    "{method} {path}: JSON body in code: {expected}, in openapi.json: {json}",
                ));
            }
            if let Some(media) = media {
                compare(
                    &mut problems,
                    &format!("{method} {path}: body media types"),
                    &names([media]),
                    &names(
                        op["requestBody"]["content"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(k, _)| k),
                    ),
                );
            }
        }
    }
    fail_on(problems);
}

#[test]
fn each_route_documents_exactly_its_error_codes_under_their_statuses() {
    let doc = document();
    let mut problems = Vec::new();
    let mut all_documented = BTreeSet::new();
    for (path, route) in code_paths() {
        let code_side = match route {
            Some(route) => names(route.error_codes().iter().map(|c| c.as_str())),
            None => names([ErrorCode::MethodNotAllowed.as_str()]),
        };
        let mut doc_side = BTreeSet::new();
        for (method, op) in doc["paths"][path].as_object().into_iter().flatten() {
            for (status, code) in documented_errors(&doc, op) {
                let expected = ErrorCode::ALL
                    .iter()
                    .find(|c| c.as_str() == code)
                    .map(|c| c.status());
                if expected.is_some_and(|s| s != status) {
                    problems.push(format!(
                        "{method} {path}: {code} is documented under {status}, the code answers {}",
                        expected.unwrap_or_default()
                    ));
                }
                doc_side.insert(code);
            }
        }
        compare(
            &mut problems,
            &format!("error codes of {path}"),
            &code_side,
            &doc_side,
        );
        all_documented.extend(doc_side);
    }
    compare(
        &mut problems,
        "error codes (ErrorCode::ALL)",
        &names(ErrorCode::ALL.iter().map(|c| c.as_str())),
        &all_documented,
    );
    fail_on(problems);
}

/// The property names of a documented JSON body schema.
fn properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    names(
        resolve(doc, schema)["properties"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.keys()),
    )
}

fn body_schema<'d>(doc: &'d Value, path: &str) -> &'d Value {
    resolve(
        doc,
        &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"],
    )
}

fn query_parameters(doc: &Value, path: &str, method: &str) -> BTreeSet<String> {
    names(
        doc["paths"][path][method]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(doc, p))
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap_or("?").to_string()),
    )
}

#[test]
fn request_fields_and_query_parameters_match_the_structs_that_read_them() {
    let doc = document();
    let mut problems = Vec::new();
    let create = body_schema(&doc, "/deposit/create");
    compare(
        &mut problems,
        "fields of POST /deposit/create",
        &names(field_names::<CreateDepositBody>()),
        &properties(&doc, create),
    );
    let callback = body_schema(&doc, "/internal/payment-callback");
    compare(
        &mut problems,
        "fields of POST /internal/payment-callback",
        &names(field_names::<CallbackBody>()),
        &properties(&doc, callback),
    );
    compare(
        &mut problems,
        "fields of the callback's duitkuData",
        &names(field_names::<GatewayData>()),
        &properties(&doc, &callback["properties"]["duitkuData"]),
    );
    for method in ["get", "head"] {
        compare(
            &mut problems,
            &format!("query of {method} /deposit/status"),
            &names(field_names::<StatusQuery>()),
            &query_parameters(&doc, "/deposit/status", method),
        );
    }
    compare(
        &mut problems,
        "query of post /deposit/retry-credit",
        &names(field_names::<RetryQuery>()),
        &query_parameters(&doc, "/deposit/retry-credit", "post"),
    );

    // Required create fields, found by leaving each out of a valid body.
    let full: serde_json::Map<String, Value> = serde_json::from_str(
        r#"{"userId":"u1","amount":50000,"msisdn":"+628123456789","email":"a@b.co",
            "productDetails":"Top up","depositId":"D-1","gateway":"central"}"#,
    )
    .expect("sample body");
    let amounts = test_config().amounts().cloned().expect("amounts");
    let required_in_code: BTreeSet<String> = full
        .keys()
        .filter(|field| {
            let mut body = full.clone();
            body.remove(*field);
            CreateDeposit::parse(Value::Object(body).to_string().as_bytes(), &amounts).is_err()
        })
        .cloned()
        .collect();
    let required_in_doc = names(
        create["required"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or("?").to_string()),
    );
    compare(
        &mut problems,
        "required fields of POST /deposit/create",
        &required_in_code,
        &required_in_doc,
    );
    fail_on(problems);
}

#[test]
fn the_headers_the_app_reads_are_documented() {
    let doc = document();
    let mut documented = names(["Authorization", "Content-Type"]);
    for item in doc["paths"].as_object().expect("paths").values() {
        for op in item.as_object().into_iter().flatten().map(|(_, op)| op) {
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                let parameter = resolve(&doc, parameter);
                if parameter["in"] == "header" {
                    documented.insert(parameter["name"].as_str().unwrap_or("?").to_string());
                }
            }
        }
    }
    for scheme in doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes")
        .values()
    {
        if scheme["in"] == "header" {
            documented.insert(scheme["name"].as_str().unwrap_or("?").to_string());
        }
    }
    let mut problems = Vec::new();
    compare(
        &mut problems,
        "request headers (routes::CORS_ALLOW_HEADERS and the gateways')",
        &names(CORS_ALLOW_HEADERS.split(", ").chain(GATEWAY_HEADERS)),
        &documented,
    );
    fail_on(problems);
}

#[test]
fn the_credit_webhook_is_the_request_the_app_sends() {
    let doc = document();
    let config = test_config();
    let (auth, delivery) = (
        config.auth().expect("auth"),
        config.delivery().expect("delivery"),
    );
    let credit = sample_credit(1_000);
    let request = credit_request(
        auth,
        delivery,
        &credit.call(),
        2_000,
        Duration::from_secs(5),
    );
    let body: Value = serde_json::from_slice(&request.body).expect("credit body is JSON");
    let webhook = &doc["webhooks"]["credit"]["post"];
    let mut problems = Vec::new();
    compare(
        &mut problems,
        "fields of the credit webhook",
        &names(body.as_object().expect("object").keys()),
        &properties(
            &doc,
            &webhook["requestBody"]["content"]["application/json"]["schema"],
        ),
    );
    let mut documented_headers = names(["authorization", "content-type"]);
    documented_headers.extend(
        webhook["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "header")
            .map(|p| p["name"].as_str().unwrap_or("?").to_ascii_lowercase()),
    );
    compare(
        &mut problems,
        "headers of the credit webhook",
        &names(request.headers.iter().map(|(name, _)| name)),
        &documented_headers,
    );
    fail_on(problems);
}

#[test]
fn every_declared_code_has_one_status_and_distinct_text() {
    let texts: BTreeMap<&str, u16> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str(), c.status()))
        .collect();
    assert_eq!(texts.len(), ErrorCode::ALL.len(), "two codes share a text");
}
