//! Liveness and readiness.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{STACK, spawn_app, spawn_with, test_settings};

#[tokio::test]
async fn healthz_answers_and_readyz_reports_every_dependency_ready() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    app.stop().await;
}

#[tokio::test]
async fn readyz_names_the_dependency_that_is_down() {
    let app = spawn_app().await;
    // Close the app's MySQL pool: MySQL is now unreachable for this instance only.
    app.db().close().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["down"], serde_json::json!(["mysql"]));
    let text = body.to_string();
    assert!(
        !text.contains("pool") && !text.contains("closed"),
        "the cause is logged, not shown: {text}"
    );
}

#[tokio::test]
async fn readiness_is_checked_at_most_once_a_second_however_many_probes_come() {
    // A Redis of its own, so every PING it counts is this app's.
    let redis = crate::support::PrivateServer::start("redis");
    let settings = crate::support::settings_on(
        &redis.url(),
        &crate::support::fresh_database().await,
        &STACK.kafka_brokers,
    );
    let app = spawn_with(settings).await;
    let pings = || async {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut app.redis().get())
            .await
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
            .and_then(|v| v.split(',').next())
            .map_or(0u64, |n| n.parse().unwrap())
    };
    let probes = || async {
        for _ in 0..200 {
            let r = app.get("/readyz").await;
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    probes().await; // warm: the first verdict
    let before = pings().await;
    let started = std::time::Instant::now();
    probes().await;
    let seconds = started.elapsed().as_secs() + 1;
    let after = pings().await;
    // One PING per verdict, one verdict a second at most.
    assert!(
        after - before <= seconds + 1,
        "200 probes in {seconds} s cost {} PINGs",
        after - before
    );
}

#[tokio::test]
async fn an_unreachable_server_at_start_up_is_one_clear_error() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.redis.url = "redis://127.0.0.1:1/".into();
    let err = seckill::api::state::Services::build(settings)
        .await
        .err()
        .expect("build fails");
    let line = format!("{err:#}");
    assert!(
        line.starts_with("cannot reach Redis at redis://127.0.0.1:1/"),
        "{line}"
    );
    assert!(!line.contains('\n'), "one line: {line}");
}

#[tokio::test]
async fn unknown_routes_answer_json() {
    let app = spawn_with(test_settings("embedded").await).await;
    let r = app.get("/nope").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
}
