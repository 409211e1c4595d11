//! `openapi.json` (repository root) agrees with the code: the same routes and methods (one
//! operation per route and method served; HEAD with GET and the CORS preflight are described
//! once for every path), the same request fields and query parameters, the same headers, and
//! per route exactly the error codes the route declares, each under its status. The code side is read from the
//! code: `routes::ALL`, `ErrorCode::ALL`, `Route::error_codes`, the field names of the structs
//! that read bodies and queries, and the credit call as `bot::credit_request` builds it.
//! Every difference is listed in the failure message.

#![allow(clippy::expect_used, reason = "a test fails by panicking")]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use topup_core::bot::credit_request;
use topup_core::config::Config;
use topup_core::deposit::request::{CreateDeposit, CreateDepositBody};
use topup_core::error::ApiError;
use topup_core::error::ErrorCode;
use topup_core::gateway::notification::{CallbackBody, GatewayData};
use topup_core::http::Request;
use topup_core::ids::BotId;
use topup_core::routes::route::{Peer, CORS_ALLOW_HEADERS};
use topup_core::routes::{self, Route};
use topup_core::schema::{field_names, RetryQuery, StatusQuery};
use topup_core::testing::{sample_credit, test_config, test_variables, TestPlatform};

const DOCUMENT: &str = include_str!("../../../openapi.json");

/// Every method OpenAPI can describe in a path item.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Where the document describes, once for every path, the preflight and the refusal of a
/// method a path does not serve.
const PREFLIGHT: &str = "/components/pathItems/CorsPreflight/options";
const METHOD_NOT_ALLOWED: &str = "/components/responses/MethodNotAllowed";

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

/// The operations the document gives a route serving `allow`: one per method, without the
/// HEAD that every GET route also answers (the document says so once).
fn operations_for(allow: &str) -> BTreeSet<String> {
    let mut methods = served(allow);
    if methods.contains("get") {
        methods.remove("head");
    }
    methods
}

/// The operations of a path item, by method.
fn operations(item: &Value) -> impl Iterator<Item = (&String, &Value)> {
    item.as_object()
        .into_iter()
        .flatten()
        .filter(|(method, _)| METHODS.contains(&method.as_str()))
}

/// The string values a documented schema allows (`enum`).
fn enum_values(doc: &Value, schema: &Value) -> BTreeSet<String> {
    names(
        resolve(doc, schema)["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or("?").to_string()),
    )
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
        // HEAD only ever comes with GET (route::checked serves HEAD on GET routes alone).
        let methods = served(allow);
        if methods.contains("head") && !methods.contains("get") {
            problems.push(format!("{path}: serves HEAD without GET ({allow})"));
        }
        compare(
            &mut problems,
            &format!("operations on {path}"),
            &operations_for(allow),
            &names(item.keys()),
        );
        let Some(route) = route else { continue };
        for method in operations_for(route.allow) {
            let Some(op) = item.get(&method) else {
                continue;
            };
            // Whose bearer token: a bot's key, the deployment's secret, or the Central PG's.
            let scheme = |name: &str| {
                op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get(name).is_some()))
            };
            let schemes = [
                ("bearerAuth", Peer::Bot),
                ("operatorAuth", Peer::Operator),
                ("pgBearerAuth", Peer::CentralPg),
            ];
            let mut required = schemes.iter().filter(|(name, _)| scheme(name));
            let bearer = required.next().map(|(_, peer)| *peer);
            if required.next().is_some() {
                problems.push(format!("{method} {path}: two bearer schemes"));
            }
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

    // The preflight every path answers, and the refusal of every other method, once.
    let preflight = doc.pointer(PREFLIGHT).unwrap_or(&Value::Null);
    let preflight_204 = resolve(&doc, &preflight["responses"]["204"]);
    if preflight_204.is_null() {
        problems.push(format!("{PREFLIGHT}: no 204 answer"));
    }
    if doc.pointer(METHOD_NOT_ALLOWED).is_none() {
        problems.push(format!("{METHOD_NOT_ALLOWED} is missing"));
    }
    let description = doc["info"]["description"].as_str().unwrap_or("");
    for promise in [
        "a GET path also answers HEAD",
        "405 METHOD_NOT_ALLOWED",
        "#/components/pathItems/CorsPreflight",
    ] {
        if !description.contains(promise) {
            problems.push(format!("info.description does not say {promise:?}"));
        }
    }
    let allows = names(
        code_paths()
            .iter()
            .map(|(_, route)| route.map_or(routes::openapi::ALLOW, |r| r.allow)),
    );
    let headers = &preflight_204["headers"];
    compare(
        &mut problems,
        "Access-Control-Allow-Methods values",
        &allows,
        &enum_values(
            &doc,
            &resolve(&doc, &headers["Access-Control-Allow-Methods"])["schema"],
        ),
    );
    compare(
        &mut problems,
        "Access-Control-Allow-Headers value",
        &names([CORS_ALLOW_HEADERS]),
        &enum_values(
            &doc,
            &resolve(&doc, &headers["Access-Control-Allow-Headers"])["schema"],
        ),
    );
    let refusal = resolve(
        &doc,
        doc.pointer(METHOD_NOT_ALLOWED).unwrap_or(&Value::Null),
    );
    compare(
        &mut problems,
        "Allow values (405)",
        &allows,
        &enum_values(&doc, &resolve(&doc, &refusal["headers"]["Allow"])["schema"]),
    );
    fail_on(problems);
}

/// The preflight headers every route sends are values the document allows.
#[test]
fn the_documented_preflight_is_the_one_the_routes_answer() {
    let doc = document();
    let preflight = doc.pointer(PREFLIGHT).expect("the preflight path item");
    let headers = &resolve(&doc, &preflight["responses"]["204"])["headers"];
    let platform = TestPlatform::new();
    let mut answers = vec![(
        routes::openapi::PATH,
        routes::openapi::handle(&Request::new("OPTIONS", routes::openapi::PATH), "{}"),
    )];
    for (path, route) in routes::ALL {
        let answer = routes::route::serve(
            route,
            &Request::new("OPTIONS", path),
            &platform.platform(),
            |_, _, _, _| Err(ApiError::Unauthorized),
        );
        answers.push((path, answer));
    }
    let mut problems = Vec::new();
    for (path, answer) in answers {
        if answer.status != 204 {
            problems.push(format!("OPTIONS {path} answered {}", answer.status));
        }
        for name in [
            "Access-Control-Allow-Methods",
            "Access-Control-Allow-Headers",
            "Access-Control-Max-Age",
        ] {
            let sent = answer.header(&name.to_ascii_lowercase()).unwrap_or("none");
            let documented = enum_values(&doc, &resolve(&doc, &headers[name])["schema"]);
            if !documented.contains(sent) {
                problems.push(format!(
                    "OPTIONS {path}: {name} is {sent:?}, openapi.json allows {documented:?}"
                ));
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
    // Said once for every path: a method it does not serve (405), and the preflight.
    let mut everywhere = Vec::new();
    let refusal = doc.pointer(METHOD_NOT_ALLOWED).unwrap_or(&Value::Null);
    everywhere.extend(documented_errors(
        &doc,
        &serde_json::json!({ "responses": { "405": refusal } }),
    ));
    everywhere.extend(documented_errors(
        &doc,
        doc.pointer(PREFLIGHT).unwrap_or(&Value::Null),
    ));
    for (status, code) in &everywhere {
        let expected = ErrorCode::ALL
            .iter()
            .find(|c| c.as_str() == code)
            .map(|c| c.status());
        if expected != Some(*status) {
            problems.push(format!(
                "{code} is documented for every path under {status}, the code answers {expected:?}"
            ));
        }
        all_documented.insert(code.clone());
    }
    compare(
        &mut problems,
        "error codes documented for every path",
        &names([
            ErrorCode::MethodNotAllowed.as_str(),
            ErrorCode::ConfigError.as_str(),
        ]),
        &names(everywhere.iter().map(|(_, code)| code)),
    );
    for (path, route) in code_paths() {
        // Every route answers 405 to a method it does not serve: documented once, above.
        let code_side = match route {
            Some(route) => names(
                route
                    .error_codes()
                    .iter()
                    .filter(|c| **c != ErrorCode::MethodNotAllowed)
                    .map(|c| c.as_str()),
            ),
            None => BTreeSet::new(),
        };
        let mut doc_side = BTreeSet::new();
        for (method, op) in operations(&doc["paths"][path]) {
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

/// The property names of a documented JSON body schema (of its object alternative, when it
/// is `anyOf` an object and null).
fn properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = resolve(doc, schema);
    let object = schema["anyOf"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|alternative| resolve(doc, alternative))
        .find(|alternative| alternative.get("properties").is_some())
        .unwrap_or(schema);
    names(
        object["properties"]
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
    compare(
        &mut problems,
        "query of get /deposit/status",
        &names(field_names::<StatusQuery>()),
        &query_parameters(&doc, "/deposit/status", "get"),
    );
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
    let items = doc["paths"].as_object().expect("paths").values().chain(
        doc["components"]["pathItems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, item)| item),
    );
    for item in items {
        for (_, op) in operations(item) {
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
    // A named bot's credit: every field the document lists (`botId` too) is in it.
    let variables = test_variables()
        .with(
            "bots",
            r#"[{"id":"shop","secret":"shop-secret","creditUrl":"http://bot.test/shop"}]"#,
        )
        .with("bot_origin_1", "http://bot.test");
    let config = Config::load_all(&variables).expect("config");
    let mut credit = sample_credit(1_000);
    credit.bot = BotId::parse("shop").expect("bot id");
    let routes = config.bot_routes().expect("routes");
    let request = credit_request(
        &routes.target(&credit.bot).expect("shop is configured"),
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
