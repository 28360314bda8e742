//! The OpenAPI document and the router agree: every documented operation is routed, every
//! route in the code is documented, and the served document is the file.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{ADMIN_TOKEN, spawn_app};

fn documented() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(seckill::api::health::OPENAPI).unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

/// `(METHOD, path)` of every `.route(...)` call in src/api, read from the source.
fn routed_in_code() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut ops = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = rest[at + 7..].trim_start();
            let Some(stripped) = rest.strip_prefix('"') else {
                continue;
            };
            rest = stripped;
            let end = rest.find('"').unwrap();
            let path = rest[..end].to_string();
            // The method router runs to the call's closing parenthesis.
            let mut depth = 1;
            let mut close = end;
            for (i, c) in rest.char_indices().skip(end) {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            close = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let handlers = &rest[end..close];
            for (token, method) in [
                ("get(", "GET"),
                ("post(", "POST"),
                ("patch(", "PATCH"),
                ("put(", "PUT"),
                ("delete(", "DELETE"),
            ] {
                if handlers.contains(token) {
                    ops.insert((method.to_string(), path.clone()));
                }
            }
        }
    }
    ops
}

#[test]
fn every_route_in_the_code_is_documented_and_nothing_else() {
    let code = routed_in_code();
    let doc = documented();
    assert!(code.len() >= 14, "{code:?}");
    let undocumented: Vec<_> = code.difference(&doc).collect();
    let phantom: Vec<_> = doc.difference(&code).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(phantom.is_empty(), "documented but not routed: {phantom:?}");
}

#[tokio::test]
async fn every_documented_operation_answers_from_its_handler() {
    let app = spawn_app().await;
    for (method, path) in documented() {
        let concrete = path
            .replace("{order_id}", "0190d6a4-8f2f-7c3a-9b1e-1a2b3c4d5e6f")
            .replace("{id}", "1")
            .replace("{sale_id}", "1")
            .replace("{item_id}", "1");
        let r = app
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                if concrete.starts_with("/admin")
                    || concrete.starts_with("/console")
                    || concrete == "/metrics"
                {
                    app.admin_url(&concrete)
                } else {
                    app.url(&concrete)
                },
            )
            .bearer_auth(&*ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_ne!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("route not found"),
            "{method} {path} fell through to the fallback"
        );
    }
    let served: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served,
        serde_json::from_str::<Value>(seckill::api::health::OPENAPI).unwrap()
    );
}

#[test]
fn every_error_code_the_service_emits_is_in_the_document() {
    let doc: Value = serde_json::from_str(seckill::api::health::OPENAPI).unwrap();
    let codes: BTreeSet<&str> = doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut emitted = BTreeSet::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for part in text.split("ApiError::conflict(").skip(1) {
                let code = part.trim_start().trim_start_matches('"');
                emitted.insert(code[..code.find('"').unwrap()].to_string());
            }
        }
    }
    assert!(emitted.len() >= 8, "{emitted:?}");
    for code in &emitted {
        assert!(
            codes.contains(code.as_str()),
            "error code {code} is not documented"
        );
    }
}
