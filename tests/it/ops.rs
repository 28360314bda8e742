//! Operating it: metrics that move by the right amounts, JSON logs with request spans, a
//! stand-alone consumer's probes. A SIGTERM during load is in `faults::sigterm`.

use std::{
    io::{BufRead, BufReader},
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    Remote, STACK, TestApp, eventually, sample, spawn_app, test_settings, wait_rows_exactly,
    write_config,
};

/// The app's `/metrics`, which must answer 200.
async fn scrape(app: &TestApp) -> String {
    let r = app.get_admin("/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

/// What five buys on three units, their persistence and a reconciliation add to the metrics
/// between the scrapes `before` and `after`.
fn five_buys_on_three_units_counted(before: &str, after: &str, sale: u64) {
    let delta =
        |name: &str, labels: &str| sample(after, name, labels) - sample(before, name, labels);
    let route = r#"route="/api/v1/sales/{sale_id}/items/{item_id}/orders""#;
    assert_eq!(
        delta("seckill_buy_outcomes_total", r#"code="reserved""#),
        3.0,
        "{after}"
    );
    assert_eq!(
        delta("seckill_buy_outcomes_total", r#"code="sold_out""#),
        2.0
    );
    assert_eq!(
        delta(
            "seckill_http_requests_total",
            &format!(r#"{route},status="202""#)
        ),
        3.0
    );
    assert_eq!(
        delta(
            "seckill_http_requests_total",
            &format!(r#"{route},status="409""#)
        ),
        2.0
    );
    assert_eq!(delta("seckill_buy_duration_seconds_count", ""), 5.0);
    // The third reservation took the last unit and set the local flag: the two losers were
    // answered from memory without running the script.
    assert_eq!(
        delta(
            "seckill_script_duration_seconds_count",
            &format!(
                r#"script="deduct.{}""#,
                seckill::domain::script_version::CURRENT
            )
        ),
        3.0
    );
    // Sent one after another, each buy was a batch of its own.
    assert_eq!(delta("seckill_deduct_batch_size_count", ""), 3.0);
    assert_eq!(delta("seckill_deduct_batch_size_sum", ""), 3.0);
    assert_eq!(
        delta("seckill_gate_rejections_total", r#"gate="sold_out_flag""#),
        2.0
    );
    assert_eq!(
        delta("seckill_kafka_produce_duration_seconds_count", ""),
        3.0
    );
    assert_eq!(
        delta("seckill_consumer_orders_total", r#"outcome="persisted""#),
        3.0
    );
    assert_eq!(
        sample(
            after,
            "seckill_reconcile_discrepancies",
            &format!(r#"sale_id="{sale}""#)
        ),
        0.0
    );
}

#[tokio::test]
async fn metrics_move_by_the_right_amounts() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(3, 1).await;
    let before = scrape(&app).await;
    for u in 0..5 {
        app.buy(sale, item, &format!("m{u}"), 1, None).await;
    }
    wait_rows_exactly(app.db(), item, 3, Duration::from_secs(60)).await;
    let (status, _) = app
        .admin_post(&format!("/admin/v1/sales/{sale}/reconcile"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = scrape(&app).await;
    five_buys_on_three_units_counted(&before, &after, sale);
    assert!(after.contains("seckill_consumer_lag "));
    assert!(!after.contains("user_id"), "no user ids in labels");
}

#[tokio::test]
async fn json_logs_carry_the_request_span_and_order_id() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    crate::support::fixed_ports(&mut settings);
    settings.log.format = seckill::config::LogFormat::Json;
    // Every public request spanned (the default samples one in 100).
    settings.log.span_every = 1;
    let config = write_config(&settings);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seckill"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "seckill=debug")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let remote = Remote::at(&settings);
    remote.wait_ready().await;
    let (s, i) = remote.create_live_sale(5, 1).await;
    let r = remote.buy_as("logger", s, i).await;
    let order_id = r["order_id"].as_str().unwrap().to_string();
    let found = eventually(Duration::from_secs(10), || {
        let lines = lines.lock().unwrap().clone();
        let order_id = order_id.clone();
        async move {
            lines.iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["fields"]["order_id"] == order_id.as_str()).then_some(v)
            })
        }
    })
    .await;
    assert_eq!(found["span"]["name"], "request");
    assert_eq!(
        found["span"]["route"],
        "/api/v1/sales/{sale_id}/items/{item_id}/orders"
    );
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "every line is JSON"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_standalone_consumer_serves_health_and_metrics() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    let app = crate::support::spawn_roles(settings.clone(), false).await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    crate::support::fixed_ports(&mut settings);
    let config = write_config(&settings);
    let mut child = crate::support::spawn_process("consume", &config);
    let remote = Remote::at(&settings);
    remote.wait_ready().await;
    app.buy(sale, item, "c1", 1, None).await;
    let persisted = |t: &str| sample(t, "seckill_consumer_orders_total", r#"outcome="persisted""#);
    let text = eventually(Duration::from_secs(60), || async {
        let t = remote.metrics().await?;
        (persisted(&t) == 1.0).then_some(t)
    })
    .await;
    assert!(text.contains("seckill_consumer_batch_size_count"));
    child.kill().unwrap();
    child.wait().unwrap();
}
