//! The running service against its documents: every documented operation reaches its handler on
//! its own listener, each listener serves the document the code generates (as `seckill openapi`
//! prints it), and a request the document allows is served.

use seckill::api::doc::Listener;
use serde_json::Value;

use super::{assert_same_document, document, documents, operations};
use crate::support::{ADMIN_TOKEN, JWT_SECRET, send};

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
            let r = send(
                app.http
                    .request(method.clone(), right)
                    .bearer_auth(&*ADMIN_TOKEN)
                    .header("content-type", "application/json")
                    .body("{}"),
            )
            .await;
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
                let r = send(app.http.request(method.clone(), wrong)).await;
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
            let served: Value = send(app.http.get(&url)).await.json().await.unwrap();
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
            let served: Value = send(app.http.get(&url)).await.json().await.unwrap();
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
    let r = send(
        app.http
            .post(app.url(&format!("/api/v1/sales/{sale}/items/{item}/orders")))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body("null"),
    )
    .await;
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["quantity"], 1, "{v}");
}
