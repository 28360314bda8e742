//! The API contract: each listener's document is generated from the handlers its router serves,
//! and Schemathesis (pinned in deploy/local/requirements-schemathesis.txt, installed by the stack
//! script) fuzzes the running service against both, as an outside client would ([`fuzz`]). The
//! docs page renders the admin one from embedded files only ([`docs_page`]). What the running
//! service answers and serves is checked against them in [`served`].

mod docs_page;
mod fuzz;
mod served;

use std::collections::BTreeSet;

use seckill::api::doc::{Listener, json};
use serde_json::Value;

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
