//! `openapi.json` (repository root) agrees with the code: the same routes and methods (one
//! operation per route and method served; HEAD with GET and the CORS preflight are described
//! once for every path), the same request fields and query parameters, the same headers, and
//! per route exactly the error codes the route declares, each under its status. The code side is read from the
//! code: `routes::ALL`, `ErrorCode::ALL`, `Route::error_codes`, the field names of the structs
//! that read bodies and queries, the credit call as `bot::credit_request` builds it, and the
//! console's answers as they serialise. Every difference is listed in the failure message.

#![allow(clippy::expect_used, reason = "a test fails by panicking")]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use topup_core::bot::credit_request;
use topup_core::config::Config;
use topup_core::console::{Detail, Page, State, StatusFilter, Summary};
use topup_core::credit::CreditState;
use topup_core::deposit::note::{Note, NoteKind, OperatorAction, OperatorNote};
use topup_core::deposit::request::{CreateDeposit, CreateDepositBody};
use topup_core::error::ApiError;
use topup_core::error::ErrorCode;
use topup_core::gateway::notification::{CallbackBody, GatewayData};
use topup_core::http::Request;
use topup_core::ids::{BotId, DepositId, GatewayName, Reference};
use topup_core::routes::route::{Peer, CORS_ALLOW_HEADERS};
use topup_core::routes::{self, Route};
use topup_core::schema::{field_names, ListQuery, RefundHandledBody, RetryQuery, StatusQuery};
use topup_core::store::DepositStore;
use topup_core::testing::{
    sample_credit, sample_deposit, test_config, test_variables, TestPlatform,
};
use topup_core::view::{DepositStatus, DepositView, Shown};

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

/// Paths a route of `routes::ALL` also serves, under its own path (first), as the document
/// writes them: `routes::admin` reads one deposit at `/admin/deposits/{id}`.
const SUBPATHS: [(&str, &str); 1] = [(routes::admin::DEPOSITS, "/admin/deposits/{depositId}")];

/// Every path the app serves, with its route declaration (none for `/openapi.json`).
fn code_paths() -> Vec<(&'static str, Option<&'static Route>)> {
    let mut paths: Vec<_> = routes::ALL.iter().map(|(p, r)| (*p, Some(*r))).collect();
    for (base, path) in SUBPATHS {
        let route = routes::ALL
            .iter()
            .find(|(p, _)| *p == base)
            .map(|(_, r)| *r);
        paths.push((
            path,
            Some(route.expect("a subpath's route is in routes::ALL")),
        ));
    }
    paths.push((routes::openapi::PATH, None));
    paths
}

/// A path the document writes as a template, with each `{parameter}` filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "D-1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The `{parameter}` names of a path template.
fn template_parameters(path: &str) -> BTreeSet<String> {
    names(
        path.split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')),
    )
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
    for (base, path) in SUBPATHS {
        if !path.starts_with(&format!("{base}/")) {
            problems.push(format!("{path} is not under its route's path {base}"));
        }
    }
    for (path, route) in code_paths() {
        let Some(item) = doc["paths"][path].as_object() else {
            continue;
        };
        // Each `{name}` of the path is a required path parameter of every operation, and no
        // other path parameter is documented.
        for (method, op) in operations(&doc["paths"][path]) {
            let parameters: Vec<&Value> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| resolve(&doc, p))
                .filter(|p| p["in"] == "path")
                .collect();
            compare(
                &mut problems,
                &format!("path parameters of {method} {path}"),
                &template_parameters(path),
                &names(parameters.iter().map(|p| p["name"].as_str().unwrap_or("?"))),
            );
            for parameter in parameters {
                if parameter["required"] != true {
                    problems.push(format!(
                        "{method} {path}: path parameter {} is not required",
                        parameter["name"]
                    ));
                }
            }
        }
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
            // Whose bearer token: a bot's key, the deployment's secret, the Central PG's, or
            // an operator's of the console.
            let scheme = |name: &str| {
                op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get(name).is_some()))
            };
            let schemes = [
                ("bearerAuth", Peer::Bot),
                ("operatorAuth", Peer::Operator),
                ("pgBearerAuth", Peer::CentralPg),
                ("adminAuth", Peer::Admin),
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
    for (path, route) in code_paths() {
        let Some(route) = route else { continue };
        let answer = routes::route::serve(
            route,
            &Request::new("OPTIONS", &concrete(path)),
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
    // A route may serve more than one documented path (the console's list, its CSV, the
    // quarantine and one deposit): each path documents the shared checks' codes, and its
    // paths together exactly the route's. Every route answers 405 to a method it does not
    // serve: documented once, above.
    let route_codes = |route: &Route| {
        names(
            route
                .error_codes()
                .iter()
                .filter(|c| **c != ErrorCode::MethodNotAllowed)
                .map(|c| c.as_str()),
        )
    };
    let mut groups: Vec<(Option<&Route>, Vec<&str>, BTreeSet<String>)> = Vec::new();
    for (path, route) in code_paths() {
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
        if let Some(route) = route {
            let shared = route_codes(&Route {
                errors: &[],
                ..*route
            });
            let missing: Vec<_> = shared.difference(&doc_side).collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "error codes of {path}: the shared checks' are not all in openapi.json: {missing:?}"
                ));
            }
        }
        all_documented.extend(doc_side.iter().cloned());
        let same = |other: &Option<&Route>| match (other, route) {
            (Some(a), Some(b)) => same_declaration(a, b),
            (None, None) => true,
            _ => false,
        };
        match groups.iter_mut().find(|(r, _, _)| same(r)) {
            Some((_, paths, codes)) => {
                paths.push(path);
                codes.extend(doc_side);
            }
            None => groups.push((route, vec![path], doc_side)),
        }
    }
    for (route, paths, doc_side) in groups {
        compare(
            &mut problems,
            &format!("error codes of {}", paths.join(" and ")),
            &route.map(route_codes).unwrap_or_default(),
            &doc_side,
        );
    }
    compare(
        &mut problems,
        "error codes (ErrorCode::ALL)",
        &names(ErrorCode::ALL.iter().map(|c| c.as_str())),
        &all_documented,
    );
    fail_on(problems);
}

/// Whether two entries of `routes::ALL` are one declaration. Not by address: each `&ROUTE`
/// in a constant table may be an allocation of its own. Two declarations written alike (as
/// `admin_action::REVIEW_CLOSED` is `REFUND_HANDLED`'s) count as one, their paths together.
fn same_declaration(a: &Route, b: &Route) -> bool {
    std::ptr::eq(a, b)
        || (a.method == b.method
            && a.allow == b.allow
            && a.auth == b.auth
            && a.json_body == b.json_body
            && a.raises_alerts == b.raises_alerts
            && a.sections == b.sections
            && a.errors == b.errors)
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

/// The schema of the query parameter `name` of an operation.
fn parameter_schema<'d>(doc: &'d Value, path: &str, method: &str, name: &str) -> &'d Value {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| resolve(doc, p))
        .find(|p| p["in"] == "query" && p["name"] == name)
        .map_or(&Value::Null, |p| &p["schema"])
}

/// The values a schema names (`enum`), its own and its `anyOf` alternatives'.
fn choices(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = resolve(doc, schema);
    let mut values = enum_values(doc, schema);
    for alternative in schema["anyOf"].as_array().into_iter().flatten() {
        values.extend(enum_values(doc, alternative));
    }
    values
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
    for path in [
        "/deposit/retry-credit",
        "/admin/action/resend",
        "/admin/action/refund-handled",
        "/admin/action/review-closed",
        "/admin/action/reconcile",
    ] {
        compare(
            &mut problems,
            &format!("query of post {path}"),
            &names(field_names::<RetryQuery>()),
            &query_parameters(&doc, path, "post"),
        );
    }
    // The console's list, its CSV and a bulk resend read the same query (admin::list_query),
    // and its filters take the names the code parses.
    for (method, path) in [
        ("get", "/admin/deposits"),
        ("get", "/admin/deposits.csv"),
        ("post", "/admin/action/bulk-resend"),
    ] {
        compare(
            &mut problems,
            &format!("query of {method} {path}"),
            &names(field_names::<ListQuery>()),
            &query_parameters(&doc, path, method),
        );
        compare(
            &mut problems,
            &format!("values of status on {method} {path} (StatusFilter::ALL)"),
            &names(StatusFilter::ALL.iter().map(|(name, _)| name)),
            &choices(&doc, parameter_schema(&doc, path, method, "status")),
        );
        compare(
            &mut problems,
            &format!("values of gateway on {method} {path} (GatewayName::ALL)"),
            &names(GatewayName::ALL.iter().map(|g| g.as_str())),
            &choices(&doc, parameter_schema(&doc, path, method, "gateway")),
        );
    }

    // The body of a refund mark and of a review's close (both read as RefundHandledBody):
    // its fields, all required, and no other (deny_unknown_fields).
    let parses = |body: &serde_json::Map<String, Value>| {
        serde_json::from_value::<RefundHandledBody>(Value::Object(body.clone())).is_ok()
    };
    let mut full = serde_json::Map::new();
    full.insert("reference".into(), json!("REF-1"));
    full.insert("reason".into(), json!("refunded by bank transfer"));
    assert!(parses(&full), "the sample refund mark parses");
    let required_in_code: BTreeSet<String> = full
        .keys()
        .filter(|field| {
            let mut body = full.clone();
            body.remove(*field);
            !parses(&body)
        })
        .cloned()
        .collect();
    let mut extra = full.clone();
    extra.insert("note".into(), json!("x"));
    let closed_in_code = !parses(&extra);
    for path in [
        "/admin/action/refund-handled",
        "/admin/action/review-closed",
    ] {
        let settled = body_schema(&doc, path);
        compare(
            &mut problems,
            &format!("fields of POST {path}"),
            &names(field_names::<RefundHandledBody>()),
            &properties(&doc, settled),
        );
        compare(
            &mut problems,
            &format!("required fields of POST {path}"),
            &required_in_code,
            &names(
                settled["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().unwrap_or("?")),
            ),
        );
        let closed_in_doc = settled["additionalProperties"] == false;
        if closed_in_code != closed_in_doc {
            problems.push(format!(
                "POST {path}: other fields refused in code: {closed_in_code}, in openapi.json (additionalProperties false): {closed_in_doc}"
            ));
        }
    }

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

/// The property names of an object schema, through `$ref` and `allOf`.
fn all_properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = resolve(doc, schema);
    let mut found = names(
        schema["properties"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.keys()),
    );
    for part in schema["allOf"].as_array().into_iter().flatten() {
        found.extend(all_properties(doc, part));
    }
    found
}

/// The required property names of an object schema, through `$ref` and `allOf`.
fn all_required(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = resolve(doc, schema);
    let mut found = names(
        schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or("?")),
    );
    for part in schema["allOf"].as_array().into_iter().flatten() {
        found.extend(all_required(doc, part));
    }
    found
}

/// Records `what` when `value` has a field `schema` does not list, or lacks one it requires.
fn check_fields(
    problems: &mut Vec<String>,
    what: &str,
    doc: &Value,
    schema: &Value,
    value: &Value,
) {
    let sent = names(value.as_object().into_iter().flat_map(|o| o.keys()));
    if sent.is_empty() {
        problems.push(format!("{what}: no object sent ({value})"));
    }
    let documented = all_properties(doc, schema);
    let undocumented: Vec<_> = sent.difference(&documented).collect();
    if !undocumented.is_empty() {
        problems.push(format!(
            "{what}: sent but not in openapi.json: {undocumented:?}"
        ));
    }
    let required = all_required(doc, schema);
    let unsent: Vec<_> = required.difference(&sent).collect();
    if !unsent.is_empty() {
        problems.push(format!(
            "{what}: required by openapi.json but not sent: {unsent:?}"
        ));
    }
}

/// The documented schema of an operation's 200 JSON answer.
fn answer_schema<'d>(doc: &'d Value, path: &str, method: &str) -> &'d Value {
    resolve(
        doc,
        &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"],
    )
}

/// A documented `enum` holds `value`.
fn check_value(problems: &mut Vec<String>, what: &str, doc: &Value, schema: &Value, value: &Value) {
    let allowed = enum_values(doc, schema);
    if !value.as_str().is_some_and(|v| allowed.contains(v)) {
        problems.push(format!("{what}: {value} is not one of {allowed:?}"));
    }
}

/// The console's answers carry the fields the document lists: a page of rows, and one
/// deposit (its status view with bot, gateway and state, a refund marked handled, a review,
/// an ignored callback) with a timeline holding every kind of event.
#[test]
fn the_console_answers_have_the_documented_fields() {
    let doc = document();
    let mut problems = Vec::new();
    let reference = |r: &str| Reference::parse(r).expect("reference");
    let deposit = sample_deposit("DEP1", 50_000);
    let mut credit = sample_credit(1_000);
    credit.attempts = 1;
    credit.last_result = Some(json!({"ok": true}));
    credit.credited_at = Some(1_500);
    credit.state = CreditState::Credited;
    let note = |at, invoice: &str, kind| Note {
        epoch: deposit.epoch,
        reference: reference(invoice),
        at,
        kind,
        nonce: None,
    };
    let notes = vec![
        note(
            2_000,
            "REF-OTHER",
            NoteKind::Paid {
                payment_method: Some("VC".into()),
                result_code: Some("00".into()),
            },
        ),
        note(
            2_500,
            "REF-DEP1",
            NoteKind::Failed {
                result_code: Some("01".into()),
                closed: true,
            },
        ),
        note(
            3_000,
            "REF-THIRD",
            NoteKind::WrongAmount {
                received: "1000".into(),
            },
        ),
        note(
            4_000,
            "REF-OTHER",
            NoteKind::Operator(OperatorNote {
                action: OperatorAction::RefundHandled,
                by: "admin".into(),
                reason: Some("refunded by bank transfer".into()),
            }),
        ),
        note(
            5_000,
            "REF-DEP1",
            NoteKind::Operator(OperatorNote {
                action: OperatorAction::Resend,
                by: "admin".into(),
                reason: None,
            }),
        ),
    ];
    let view = DepositView::new(
        deposit.clone(),
        deposit.invoice().as_ref(),
        Some(credit.clone()),
        &notes,
    );
    let shown = Shown {
        view,
        deposit,
        notes,
        credit: Some(credit),
    };
    let detail = serde_json::to_value(Detail::of(shown)).expect("detail");
    let schema = answer_schema(&doc, "/admin/deposits/{depositId}", "get");
    check_fields(&mut problems, "a deposit's detail", &doc, schema, &detail);
    let deposit_schema = resolve(&doc, &schema["properties"]["deposit"]);
    check_fields(
        &mut problems,
        "a detail's deposit",
        &doc,
        deposit_schema,
        &detail["deposit"],
    );
    // Its state and refunds: through the allOf, the status view's own schema.
    let parts: Vec<&Value> = deposit_schema["allOf"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|part| resolve(&doc, part))
        .collect();
    let part_with = |name: &str| {
        parts
            .iter()
            .find(|p| p["properties"].get(name).is_some())
            .map_or(&Value::Null, |p| &p["properties"][name])
    };
    check_value(
        &mut problems,
        "a detail's state",
        &doc,
        part_with("state"),
        &detail["deposit"]["state"],
    );
    let refund_schema = resolve(&doc, &part_with("refundsDue")["items"]);
    let refund = &detail["deposit"]["refundsDue"][0];
    check_fields(&mut problems, "a refund due", &doc, refund_schema, refund);
    check_fields(
        &mut problems,
        "a refund's handled mark",
        &doc,
        &refund_schema["properties"]["handled"],
        &refund["handled"],
    );
    let event_schema = resolve(&doc, &schema["properties"]["timeline"]["items"]);
    let mut kinds = BTreeSet::new();
    for event in detail["timeline"].as_array().into_iter().flatten() {
        check_fields(&mut problems, "a timeline event", &doc, event_schema, event);
        check_value(
            &mut problems,
            "a timeline event's kind",
            &doc,
            &event_schema["properties"]["kind"],
            &event["kind"],
        );
        kinds.insert(event["kind"].as_str().unwrap_or("?").to_string());
    }
    compare(
        &mut problems,
        "kinds of timeline events",
        &kinds,
        &enum_values(&doc, &event_schema["properties"]["kind"]),
    );

    let page = Page {
        ok: true,
        deposits: vec![Summary {
            deposit_id: DepositId::parse("DEP1").expect("id"),
            user_id: "user-1".into(),
            bot: BotId::default(),
            gateway: GatewayName::Central,
            amount: 50_000,
            state: State::Owed,
            status: DepositStatus::Paid,
            credited: false,
            credit_attempts: Some(1),
            created_at: 0,
            reference: Some(reference("REF-DEP1")),
            refunds_due: 0,
            reviews: 0,
        }],
        next: Some("1.2".into()),
    };
    let page = serde_json::to_value(page).expect("page");
    let schema = answer_schema(&doc, "/admin/deposits", "get");
    check_fields(&mut problems, "a page of deposits", &doc, schema, &page);
    let row_schema = resolve(&doc, &schema["properties"]["deposits"]["items"]);
    check_fields(
        &mut problems,
        "a page's row",
        &doc,
        row_schema,
        &page["deposits"][0],
    );
    compare(
        &mut problems,
        "fields of a page's row (every one always sent)",
        &names(
            page["deposits"][0]
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys()),
        ),
        &all_properties(&doc, row_schema),
    );
    fail_on(problems);
}

/// The console's operator token in the tests below.
const ADMIN: &str = "operator-token-0123456789";

fn as_admin(method: &str, path: &str) -> Request {
    Request::new(method, path).with_header("authorization", &format!("Bearer {ADMIN}"))
}

/// The console's CSV (its media type, headers and header line), its quarantine and a bulk
/// resend, and the alerts run (every field of `AlertReport`, always sent) answer as
/// documented.
#[test]
fn the_csv_the_quarantine_a_bulk_resend_and_the_alerts_run_answer_as_documented() {
    let doc = document();
    let mut problems = Vec::new();
    let mut platform = TestPlatform::new();
    platform.variables = platform.variables.clone().with("admin_token", ADMIN);
    let p = platform.platform();

    let csv = routes::admin::handle(&as_admin("GET", "/admin/deposits.csv"), &p);
    assert_eq!(csv.status, 200, "{}", String::from_utf8_lossy(&csv.body));
    let documented = &doc["paths"]["/admin/deposits.csv"]["get"]["responses"]["200"];
    let media = csv
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .unwrap_or("none")
        .trim()
        .to_string();
    compare(
        &mut problems,
        "media types of GET /admin/deposits.csv",
        &names([media]),
        &names(
            documented["content"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.keys()),
        ),
    );
    for (name, header) in documented["headers"].as_object().into_iter().flatten() {
        let header = resolve(&doc, header);
        let allowed = enum_values(&doc, &header["schema"]);
        match csv.header(&name.to_ascii_lowercase()) {
            None if header["required"] == true => {
                problems.push(format!(
                    "GET /admin/deposits.csv: {name} is documented, not sent"
                ));
            }
            Some(value) if !allowed.is_empty() && !allowed.contains(value) => {
                problems.push(format!(
                    "GET /admin/deposits.csv: {name} is {value:?}, openapi.json allows {allowed:?}"
                ))
            }
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(&csv.body);
    let columns = text.split("\r\n").next().unwrap_or_default();
    let description = doc["paths"]["/admin/deposits.csv"]["get"]["description"]
        .as_str()
        .unwrap_or_default();
    if !description.contains(&format!("`{columns}`")) {
        problems.push(format!(
            "GET /admin/deposits.csv: its header line {columns:?} is not in its description"
        ));
    }

    let store = DepositStore::new(&p, test_config().lifetime().expect("lifetime"));
    store
        .quarantine("deposit D2", "not JSON")
        .expect("quarantined");
    let answer = routes::admin::handle(&as_admin("GET", "/admin/quarantine"), &p);
    assert_eq!(answer.status, 200, "{}", answer.json_body());
    let quarantine = answer.json_body();
    let schema = answer_schema(&doc, "/admin/quarantine", "get");
    check_fields(&mut problems, "the quarantine", &doc, schema, &quarantine);
    check_fields(
        &mut problems,
        "a quarantined record",
        &doc,
        resolve(&doc, &schema["properties"]["quarantined"]["items"]),
        &quarantine["quarantined"][0],
    );

    let answer = routes::admin_action::handle(
        &as_admin("POST", "/admin/action/bulk-resend?status=owed"),
        &p,
    );
    assert_eq!(answer.status, 200, "{}", answer.json_body());
    check_fields(
        &mut problems,
        "a bulk resend",
        &doc,
        answer_schema(&doc, "/admin/action/bulk-resend", "post"),
        &answer.json_body(),
    );

    let answer = routes::alerts::handle(
        &Request::new("POST", "/internal/alerts")
            .with_header("authorization", "Bearer test-secret"),
        &p,
    );
    assert_eq!(answer.status, 200, "{}", answer.json_body());
    let report = answer.json_body();
    let schema = answer_schema(&doc, "/internal/alerts", "post");
    check_fields(&mut problems, "an alerts run", &doc, schema, &report);
    compare(
        &mut problems,
        "fields of an alerts run (every one always sent)",
        &names(report.as_object().into_iter().flat_map(|o| o.keys())),
        &all_properties(&doc, schema),
    );
    fail_on(problems);
}

/// `/console` answers the documented HTML, with the documented headers.
#[test]
fn the_console_page_is_the_documented_html() {
    let doc = document();
    let platform = TestPlatform::new();
    let answer = routes::console::handle(&Request::new("GET", "/console"), &platform.platform());
    assert_eq!(answer.status, 200);
    let documented = &doc["paths"]["/console"]["get"]["responses"]["200"];
    let mut problems = Vec::new();
    let media = answer
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .unwrap_or("none")
        .trim()
        .to_string();
    compare(
        &mut problems,
        "media types of GET /console",
        &names([media]),
        &names(
            documented["content"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.keys()),
        ),
    );
    for (name, header) in documented["headers"].as_object().into_iter().flatten() {
        let header = resolve(&doc, header);
        let sent = answer.header(&name.to_ascii_lowercase());
        let allowed = enum_values(&doc, &header["schema"]);
        match sent {
            None if header["required"] == true => {
                problems.push(format!("GET /console: {name} is documented, not sent"));
            }
            Some(value) if !allowed.is_empty() && !allowed.contains(value) => {
                problems.push(format!(
                    "GET /console: {name} is {value:?}, openapi.json allows {allowed:?}"
                ));
            }
            _ => {}
        }
    }
    fail_on(problems);
}
