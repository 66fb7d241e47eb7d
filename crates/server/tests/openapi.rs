//! Proves the API's description stays the API's: the checked-in `docs/openapi.json` is
//! what the code generates; every route of the router is described and every described
//! operation reaches a route; every error code of the table is in the document with its
//! status; the links a client follows after creating a payment (query, cancel, refund,
//! receipt) are declared and lead to real operations and parameters; the server serves
//! the document and a reference page that needs no network.

#[macro_use]
mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

#[test]
fn the_checked_in_document_is_the_generated_one() {
    let generated = saoma_server::openapi_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json differs from what the code generates; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p saoma-server --test openapi` (or `saoma openapi > docs/openapi.json`) \
         and commit it"
    );
}

fn document() -> Value {
    serde_json::from_str(&saoma_server::openapi_json()).unwrap()
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

/// `(METHOD, path)` of every operation the document describes.
fn described(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(*m).is_some() {
                ops.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// `(METHOD, path)` of every API route the router declares (`.route("…", get(…).post(…))`
/// in lib.rs), the screens' pages and the document's own routes aside.
fn routed() -> BTreeSet<(String, String)> {
    let source = include_str!("../src/lib.rs");
    let mut ops = BTreeSet::new();
    for chunk in source.split(".route(\"").skip(1) {
        let Some((path, rest)) = chunk.split_once('"') else { continue };
        let api =
            path.starts_with("/v1/") || ["/healthz", "/metrics", "/.well-known/jwks.json"].contains(&path);
        if !api {
            continue;
        }
        let call = rest.split("))\n").next().unwrap_or(rest);
        for m in METHODS {
            if call.contains(&format!("{m}(")) || call.contains(&format!("::{m}(")) {
                ops.insert((m.to_uppercase(), path.to_string()));
            }
        }
    }
    ops
}

#[test]
fn every_route_is_described() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let described = described(&doc);
    let routed = routed();
    assert!(routed.len() > 80, "the router's routes were read ({})", routed.len());
    let missing: Vec<_> = routed.difference(&described).collect();
    assert!(missing.is_empty(), "routes without a description: {missing:?}");
    let extra: Vec<_> = described.difference(&routed).collect();
    assert!(extra.is_empty(), "described but not routed: {extra:?}");
}

#[test]
fn every_error_code_is_in_the_document_with_its_status() {
    let doc = document();
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let table = doc["components"]["schemas"]["ErrorCode"]["description"].as_str().unwrap();
    for code in saoma_api::ErrorCode::ALL {
        assert!(codes.contains(&code.as_str()), "{code} missing from the ErrorCode schema");
        let answer = &doc["components"]["responses"][format!("Error{}", code.status())];
        let text = answer["description"].as_str().unwrap_or_default();
        assert!(text.contains(&format!("`{code}`")), "{code} missing from the {} answer", code.status());
        assert!(
            table.contains(&format!("| `{code}` | {} |", code.status())),
            "{code} missing from the table"
        );
    }
    // Every operation answers its errors with the envelope of the table.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            let responses = op["responses"].as_object().unwrap();
            for status in ["400", "429", "500", "503"] {
                assert!(responses.contains_key(status), "{m} {path} lacks {status}");
            }
            if op.get("security").is_some() {
                assert!(responses.contains_key("401"), "{m} {path} lacks 401");
            }
        }
    }
}

/// Every `$ref` in `v`.
/// Every operation of the document by its id, with the names of its parameters.
fn operations_by_id(doc: &Value) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let mut ops = std::collections::BTreeMap::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            let params = op["parameters"].as_array().into_iter().flatten();
            let names = params.filter_map(|p| p["name"].as_str().map(str::to_string)).collect();
            ops.insert(op["operationId"].as_str().unwrap().to_string(), names);
        }
    }
    ops
}

#[test]
fn the_links_after_a_payment_lead_to_real_operations() {
    let doc = document();
    let ops = operations_by_id(&doc);
    let created = &doc["paths"]["/v1/payments"]["post"]["responses"]["200"]["links"];
    let names: BTreeSet<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    for wanted in ["GetPayment", "CancelPayment", "RefundPayment", "GetReceipt"] {
        assert!(names.contains(wanted), "POST /v1/payments links to {wanted}: {names:?}");
    }
    let mut links = 0;
    for item in doc["paths"].as_object().unwrap().values() {
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            for answer in op["responses"].as_object().unwrap().values() {
                for (name, link) in answer["links"].as_object().into_iter().flatten() {
                    links += 1;
                    let target = link["operationId"].as_str().unwrap();
                    let params =
                        ops.get(target).unwrap_or_else(|| panic!("{name} leads to no operation {target}"));
                    for (param, expression) in link["parameters"].as_object().unwrap() {
                        assert!(params.contains(param), "{name}: {target} has no parameter {param}");
                        assert!(expression.as_str().unwrap().starts_with("$response.body#/"), "{name}");
                    }
                }
            }
        }
    }
    assert!(links >= 10, "{links} links");
}

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r);
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100, "references were read");
    for r in all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "x_1").replace("{date}", "2026-01-01")
}

async fn described_operations_reach_their_routes(db: Db) {
    let w = World::new(db, 0, 0).await;
    let http = reqwest::Client::new();
    for (method, path) in described(&document()) {
        let url = format!("{}{}", w.url(), concrete(&path));
        let r = http
            .request(method.parse().unwrap(), &url)
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path}: not routed ({body})");
        assert!(!body.contains("no such route"), "{method} {path}: not routed ({body})");
        assert!(status < 500, "{method} {path}: {status} {body}");
    }
}

async fn serves_the_document_and_its_reference_page(db: Db) {
    let w = World::new(db, 0, 0).await;
    let http = reqwest::Client::new();
    let r = http.get(format!("{}/openapi.json", w.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(r.text().await.unwrap(), saoma_server::openapi_json());

    let page = http.get(format!("{}/docs/", w.url())).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://"), "the page loads nothing from elsewhere");
    let init = http.get(format!("{}/docs/swagger-initializer.js", w.url())).send().await.unwrap();
    assert_eq!(init.status().as_u16(), 200);
    assert!(init.text().await.unwrap().contains("/openapi.json"), "the page reads this server's document");
    for file in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let r = http.get(format!("{}/docs/{file}", w.url())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{file}");
    }
    let root = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/docs", w.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(root.headers()["location"], "/docs/");
    let missing = http.get(format!("{}/docs/nope.js", w.url())).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

/// A query string that does not parse is answered with the documented envelope, on the
/// public image routes and on the merchant's lists alike (not axum's plain-text 400).
async fn bad_queries_answer_the_envelope(db: Db) {
    let w = World::new(db, 0, 0).await;
    let http = reqwest::Client::new();
    for path in ["/v1/qr.png", "/v1/qr.svg", "/v1/barcode.svg", "/v1/qr.png?payload=x&payload=y"] {
        let r = http.get(format!("{}{path}", w.url())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_request", "{path}: {v}");
    }
    let bad_limit = w.merchant.call::<Value>("GET", "/v1/merchant/settlements?limit=ten", None::<&()>).await;
    let e = bad_limit.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_request")), "{e}");
}

on_both!(
    described_operations_reach_their_routes,
    serves_the_document_and_its_reference_page,
    bad_queries_answer_the_envelope
);
