//! The API contract: each listener's document is generated from the handlers its router serves,
//! and Schemathesis (pinned in deploy/local/requirements-schemathesis.txt, installed by the stack
//! script) fuzzes the running service against both, as an outside client would ([`fuzz`]). The
//! docs page renders the admin one from embedded files only ([`docs_page`]).

mod docs_page;
mod fuzz;

use std::collections::BTreeSet;

use seckill::api::doc::{Listener, json};
use serde_json::Value;

use crate::support::{ADMIN_TOKEN, JWT_SECRET};

/// A listener's document as the code builds it today.
fn document(listener: Listener) -> Value {
    serde_json::from_str(&json(listener, chrono::Utc::now())).unwrap()
}

/// Both documents, the buyers' listener's first.
fn documents() -> [(Listener, Value); 2] {
    [
        (Listener::Public, document(Listener::Public)),
        (Listener::Admin, document(Listener::Admin)),
    ]
}

/// Panics naming `what` unless `a` and `b` are the same document (and says where they differ).
fn assert_same_document(a: &Value, b: &Value, what: &str) {
    if a == b {
        return;
    }
    let paths = |d: &Value| -> BTreeSet<String> {
        d["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(p, _)| p.clone())
            .collect()
    };
    let differ: Vec<&String> = a
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| a[k.as_str()] != b[k.as_str()])
        .collect();
    panic!(
        "{what}: the documents differ in {differ:?}; paths only in the first: {:?}, only in the second: {:?}",
        paths(a).difference(&paths(b)).collect::<Vec<_>>(),
        paths(b).difference(&paths(a)).collect::<Vec<_>>()
    );
}

/// `(method, path, operation)` of every operation of a document.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("responses").is_some() {
                out.push((method.clone(), path.clone(), op));
            }
        }
    }
    out
}

#[test]
fn the_documents_state_bounds_statuses_and_links() {
    for (listener, doc) in documents() {
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let server = doc["servers"][0]["url"].as_str().unwrap();
        let port = if listener == Listener::Admin {
            ":8081"
        } else {
            ":8080"
        };
        assert!(server.ends_with(port), "{listener:?} names {server}");
        for (method, path, op) in operations(&doc) {
            // Every integer parameter has bounds, so a fuzzer never sends what the service must
            // refuse as out of range.
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["schema"]["type"] == "integer" {
                    assert!(
                        p["schema"]["minimum"].is_number() && p["schema"]["maximum"].is_number(),
                        "{method} {path}: {} has no bounds",
                        p["name"]
                    );
                }
            }
            let statuses: BTreeSet<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert!(statuses.contains("503"), "{method} {path}: no 503");
            if op["security"].as_array().is_some_and(|a| !a.is_empty()) {
                assert!(statuses.contains("401"), "{method} {path}: no 401");
            }
            // Links name operations of the same document.
            for r in op["responses"].as_object().unwrap().values() {
                for (name, link) in r["links"].as_object().into_iter().flatten() {
                    let target = link["operationId"].as_str().unwrap();
                    assert!(
                        operations(&doc)
                            .iter()
                            .any(|(_, _, o)| o["operationId"] == target),
                        "{method} {path}: link {name} names {target}, not in this document"
                    );
                }
            }
        }
    }
    let admin = document(Listener::Admin);
    let created = &admin["paths"]["/admin/v1/sales"]["post"]["responses"]["201"]["links"];
    assert_eq!(created["GetSale"]["operationId"], "get_sale");
    assert_eq!(created["GetSale"]["parameters"]["id"], "$response.body#/id");
    let public = document(Listener::Public);
    let reserved = &public["paths"]["/api/v1/sales/{sale_id}/items/{item_id}/orders"]["post"]["responses"]
        ["202"]["links"];
    assert_eq!(reserved["GetOrder"]["operationId"], "get_order");
}

/// Paths only the admin listener routes.
const ADMIN_ONLY: [&str; 4] = ["/admin/", "/console", "/docs", "/metrics"];

#[test]
fn the_public_document_names_no_admin_path_and_the_admin_document_no_buyers_path() {
    let public = document(Listener::Public);
    let admin = document(Listener::Admin);
    let paths = |d: &Value| -> BTreeSet<String> {
        d["paths"].as_object().unwrap().keys().cloned().collect()
    };
    for path in paths(&public) {
        assert!(
            !ADMIN_ONLY.iter().any(|p| path.starts_with(p)),
            "the public document names {path}"
        );
    }
    for path in paths(&admin) {
        assert!(
            !path.starts_with("/api/") && !path.starts_with("/payments/"),
            "the admin document names {path}"
        );
    }
    // Only the probes and the document itself are on both.
    let both: Vec<String> = paths(&public)
        .intersection(&paths(&admin))
        .cloned()
        .collect();
    assert_eq!(both, ["/healthz", "/openapi.json", "/readyz"]);
    // Nor does either describe the other's credentials or tag.
    let text = serde_json::to_string(&public).unwrap();
    assert!(!text.contains("adminToken") && !text.contains("\"admin\""));
    assert!(
        !serde_json::to_string(&admin)
            .unwrap()
            .contains("buyerToken")
    );
}

/// Every error code the source can answer with: the `code()` matches of the error enums (the
/// edge's and the services' refusal kinds), the conflicts raised with a code, and bodies
/// written by hand.
fn emitted_codes() -> BTreeSet<String> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let literal = |text: &str| -> Option<String> {
        let rest = text.trim_start().strip_prefix('"')?;
        let code = &rest[..rest.find('"')?];
        (!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .then(|| code.to_string())
    };
    let mut emitted = BTreeSet::new();
    let error_rs = std::fs::read_to_string(src.join("api/error/mod.rs")).unwrap();
    let body = error_rs
        .split("pub fn code(&self)")
        .nth(1)
        .expect("ApiError::code in src/api/error/mod.rs");
    let body = &body[..body.find("\n    }\n").expect("the end of ApiError::code")];
    for arm in body.split("=> ").skip(1) {
        emitted.extend(literal(arm));
    }
    assert!(
        emitted.contains("recovering") && emitted.contains("stock_unavailable"),
        "{emitted:?}"
    );
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for body in text.split("fn code(self) -> &'static str {").skip(1) {
                let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
                for arm in body.split("=> ").skip(1) {
                    emitted.extend(literal(arm));
                }
            }
            for part in text.split("ApiError::conflict(").skip(1) {
                let code = literal(part);
                assert!(
                    code.is_some() || part.trim_start().starts_with("kind.code()"),
                    "{}: a conflict whose code is neither a literal nor a refusal kind's code cannot be checked",
                    p.display()
                );
                emitted.extend(code);
            }
            for marker in ["code: \"", "\"code\": \"", "\"code\":\""] {
                for part in text.split(marker).skip(1) {
                    emitted.extend(literal(&format!("\"{part}")));
                }
            }
        }
    }
    emitted
}

#[test]
fn every_error_code_the_service_emits_is_in_the_documents_and_no_other() {
    let emitted = emitted_codes();
    assert!(emitted.len() >= 25, "{emitted:?}");
    for (listener, doc) in documents() {
        let documented: BTreeSet<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        let undocumented: Vec<_> = emitted.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "{listener:?}: error codes not documented: {undocumented:?}"
        );
        let never: Vec<_> = documented.difference(&emitted).collect();
        assert!(never.is_empty(), "documented but never answered: {never:?}");
        // The codes an answer's description names are codes.
        for (method, path, op) in operations(&doc) {
            for (status, r) in op["responses"].as_object().unwrap() {
                if status.as_str() < "400" {
                    continue;
                }
                let description = r["description"].as_str().unwrap_or_default();
                for word in description.split('`').skip(1).step_by(2) {
                    if word.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                        assert!(
                            documented.contains(word),
                            "{method} {path} {status} names `{word}`, which is no error code"
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn every_documented_operation_answers_from_its_handler_on_its_listener() {
    let app = crate::support::spawn_app().await;
    let public = document(Listener::Public);
    for (listener, doc) in documents() {
        for (method, path, _) in operations(&doc) {
            let concrete = path
                .replace("{order_id}", "0190d6a4-8f2f-7c3a-9b1e-1a2b3c4d5e6f")
                .replace("{id}", "999999")
                .replace("{sale_id}", "999999")
                .replace("{item_id}", "999999");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (right, wrong) = match listener {
                Listener::Admin => (app.admin_url(&concrete), app.url(&concrete)),
                Listener::Public => (app.url(&concrete), app.admin_url(&concrete)),
            };
            let r = app
                .http
                .request(method.clone(), right)
                .bearer_auth(&*ADMIN_TOKEN)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_ne!(
                r.status(),
                reqwest::StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let body = r.text().await.unwrap();
            assert!(
                !body.contains("route not found"),
                "{method} {path} fell through to the fallback on {listener:?}"
            );
            // What only the admin document names is not on the buyers' listener.
            if listener == Listener::Admin && public["paths"].get(&path).is_none() {
                let r = app
                    .http
                    .request(method.clone(), wrong)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    r.status(),
                    reqwest::StatusCode::NOT_FOUND,
                    "{method} {path} on the buyers' port"
                );
            }
        }
    }
    // Each listener serves its own document, the one the code generates (dated by the hour: if
    // the hour turns meanwhile, once more).
    for (url, listener) in [
        (app.url("/openapi.json"), Listener::Public),
        (app.admin_url("/openapi.json"), Listener::Admin),
    ] {
        for again in [false, true] {
            let hour = this_hour();
            let served: Value = app
                .http
                .get(&url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let expected = document(listener);
            if served != expected && hour != this_hour() && !again {
                continue;
            }
            assert_same_document(&served, &expected, &format!("{listener:?} serves"));
            break;
        }
    }
}

/// The hour the documents are dated for now.
fn this_hour() -> String {
    chrono::Utc::now().format("%F %H").to_string()
}

#[tokio::test]
async fn seckill_openapi_prints_what_each_listener_serves() {
    let app = crate::support::spawn_app().await;
    for (flag, url) in [
        (None, app.url("/openapi.json")),
        (Some("--admin"), app.admin_url("/openapi.json")),
    ] {
        for again in [false, true] {
            let hour = this_hour();
            let served: Value = app
                .http
                .get(&url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_seckill"))
                .arg("openapi")
                .args(flag)
                .env("RUST_LOG", "off")
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
            if printed != served && hour != this_hour() && !again {
                continue;
            }
            assert_same_document(&printed, &served, &format!("seckill openapi {flag:?}"));
            break;
        }
    }
}

#[tokio::test]
async fn a_buy_whose_body_is_json_null_buys_one_unit_as_the_document_allows() {
    let app = crate::support::spawn_app().await;
    let (sale, item) = app.create_live_sale(10, 2).await;
    let body = &document(Listener::Public)["paths"]["/api/v1/sales/{sale_id}/items/{item_id}/orders"]
        ["post"]["requestBody"];
    let schema = serde_json::to_string(body).unwrap();
    assert!(
        schema.contains("\"null\""),
        "the document allows null: {schema}"
    );
    let token = seckill::buy::identify::mint_token(&JWT_SECRET, "null-body", 600).unwrap();
    let r = app
        .http
        .post(app.url(&format!("/api/v1/sales/{sale}/items/{item}/orders")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["quantity"], 1, "{v}");
}
