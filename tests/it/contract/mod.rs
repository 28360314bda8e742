//! The API contract: the document is generated from the handlers, and Schemathesis (pinned in
//! deploy/local/requirements-schemathesis.txt, installed by the stack script) fuzzes the running
//! service against it with every check, following the document's links from a created sale to
//! its item, its buy route and its orders. Zero failures.

use std::{collections::BTreeSet, time::Duration};

use axum::{
    body::Body,
    extract::{Request, State},
    response::Response,
};
use serde_json::Value;

use crate::helpers::{ADMIN_TOKEN, JWT_SECRET, TestApp, spawn_with, test_settings};

fn document() -> Value {
    serde_json::from_str(seckill::api::doc::DOCUMENT.as_str()).unwrap()
}

#[test]
fn the_document_states_bounds_statuses_and_links() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    // Every path parameter that is an id has bounds, so a fuzzer never sends what the service
    // must refuse as out of range.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(op) = op.as_object() else { continue };
            for p in op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
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
            assert!(
                statuses.contains("503"),
                "{method} {path}: shed load is not documented"
            );
            if op
                .get("security")
                .is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()))
            {
                assert!(
                    statuses.contains("401"),
                    "{method} {path}: 401 is not documented"
                );
            }
        }
    }
    let created = &doc["paths"]["/admin/v1/sales"]["post"]["responses"]["201"]["links"];
    assert_eq!(created["BuyFirstItem"]["operationId"], "create_order");
    assert_eq!(
        created["BuyFirstItem"]["parameters"]["item_id"],
        "$response.body#/items/0/id"
    );
    let reserved = &doc["paths"]["/api/v1/sales/{sale_id}/items/{item_id}/orders"]["post"]["responses"]
        ["202"]["links"];
    assert_eq!(reserved["GetOrder"]["operationId"], "get_order");
    // Admin operations name the admin listener as their server.
    assert!(
        doc["paths"]["/admin/v1/sales"]["servers"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with(":8081")
    );
}

#[test]
fn every_error_code_the_service_emits_is_in_the_document() {
    let doc = document();
    let codes: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
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
            for marker in ["ApiError::conflict(", "code: \""] {
                for part in text.split(marker).skip(1) {
                    let code = part.trim_start().trim_start_matches('"');
                    let end = code.find('"').unwrap_or(0);
                    let code = &code[..end];
                    if !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    {
                        emitted.insert(code.to_string());
                    }
                }
            }
        }
    }
    assert!(emitted.len() >= 12, "{emitted:?}");
    for code in &emitted {
        assert!(
            codes.contains(code.as_str()),
            "error code {code} is not documented"
        );
    }
}

/// One base URL for the fuzzer: admin paths go to the admin listener, the rest to the buyers'
/// (answers stream through, so the event stream works).
async fn proxy(State((public, admin)): State<(String, String)>, req: Request) -> Response {
    let path = req.uri().path();
    let base = if ["/admin", "/metrics", "/console", "/docs"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        admin
    } else {
        public
    };
    let url = format!(
        "{base}{}",
        req.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let client = reqwest::Client::new();
    let mut forward = client.request(req.method().clone(), url);
    for (name, value) in req.headers() {
        if name != "host" {
            forward = forward.header(name, value);
        }
    }
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let answer = match forward.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            return Response::builder()
                .status(599)
                .body(Body::from(format!("proxy: {e}")))
                .unwrap();
        }
    };
    let mut out = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        out = out.header(name, value);
    }
    out.body(Body::from_stream(answer.bytes_stream())).unwrap()
}

async fn serve_proxy(app: &TestApp) -> String {
    let router = axum::Router::new()
        .fallback(proxy)
        .with_state((app.base.clone(), app.admin_base.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn schemathesis_finds_no_disagreement_between_the_document_and_the_service() {
    let runner = std::env::var("STACK_SCHEMATHESIS").unwrap_or_else(|_| {
        format!(
            "{}/.local/state/seckill/stack/venv/bin/schemathesis",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    assert!(
        std::path::Path::new(&runner).exists(),
        "schemathesis is not installed at {runner}: run deploy/local/stack.sh install"
    );
    let mut settings = test_settings("embedded").await;
    // The fuzzer is one client: no buckets in its way.
    settings.limits.per_user_per_sec = 0;
    settings.limits.global_per_sec = 0;
    let app = spawn_with(settings).await;
    let base = serve_proxy(&app).await;
    let buyer = seckill::auth::mint_token(&JWT_SECRET, "schemathesis", 3_600).unwrap();
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/local/schemathesis.toml");
    let out_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output/schemathesis");
    std::fs::create_dir_all(&out_dir).unwrap();
    let run = tokio::process::Command::new(&runner)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--url", &base, "--checks", "all", "--seed", "20261126"])
        .args(["--max-examples", "40", "--max-time", "150"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&out_dir)
        .env("SCHEMATHESIS_ADMIN_TOKEN", &*ADMIN_TOKEN)
        .env("SCHEMATHESIS_BUYER_JWT", &buyer)
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finished within 5 minutes")
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(out_dir.join("output.txt"), &text).unwrap();
    assert!(out.status.success(), "schemathesis failed:\n{text}");
    // It really tested: cases generated, operations reached through links.
    assert!(text.contains("generated"), "{text}");
}

#[tokio::test]
async fn every_documented_operation_answers_from_its_handler_on_its_listener() {
    let app = crate::helpers::spawn_app().await;
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let on_admin = item.get("servers").is_some();
        let concrete = path
            .replace("{order_id}", "0190d6a4-8f2f-7c3a-9b1e-1a2b3c4d5e6f")
            .replace("{id}", "999999")
            .replace("{sale_id}", "999999")
            .replace("{item_id}", "999999");
        for method in item.as_object().unwrap().keys().filter(|m| *m != "servers") {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (right, wrong) = if on_admin {
                (app.admin_url(&concrete), app.url(&concrete))
            } else {
                (app.url(&concrete), app.admin_url(&concrete))
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
                "{method} {path} fell through to the fallback"
            );
            // Admin-only operations are not on the buyers' listener.
            if on_admin {
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
    // Both listeners serve the same document, the one the code generates.
    for url in [app.url("/openapi.json"), app.admin_url("/openapi.json")] {
        let served: Value = app
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(served, doc);
    }
}
