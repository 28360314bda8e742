//! Reconciliation: clean reports, repair, the command line, leadership, and no false alarm
//! during a stampede. Drift found with the right ids is in [`drift`].

mod drift;
mod periodic;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    TestApp, delete_order, overwrite_stock, reserve_in_turn, run_with_config, spawn_app,
    spawn_app_with, token, two_instances, wait_rows_exactly, write_config,
};

/// A live sale with `n` persisted orders; returns (sale, item, order ids).
async fn drained_sale(app: &TestApp, n: usize) -> (u64, u64, Vec<String>) {
    let (sale, item) = app.create_live_sale(50, 1).await;
    let ids = reserve_in_turn(app, (sale, item), "r", n).await;
    wait_rows_exactly(app.db(), item, n as i64, Duration::from_secs(60)).await;
    (sale, item, ids)
}

async fn reconcile(app: &TestApp, sale: u64, repair: bool) -> Value {
    let path = format!("/admin/v1/sales/{sale}/reconcile?repair={repair}");
    let (status, report) = app.admin_post(&path).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

fn failing(report: &Value) -> Vec<String> {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_clean_sale_after_draining_reports_every_check_ok() {
    let app = spawn_app().await;
    let (sale, _, _) = drained_sale(&app, 5).await;
    let report = reconcile(&app, sale, false).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["discrepancies"], 0);
    let item = &report["items"][0];
    assert_eq!(item["initial_stock"], 50);
    assert_eq!(item["redis_remaining"], 45);
    assert_eq!(item["reserved_units"], 5);
    assert_eq!(item["persisted_units"], 5);
    assert_eq!(item["mysql_stock"], 45);
    assert!(item["checks"].as_array().unwrap().len() >= 9);
    assert!(report["kafka_consumer_lag"].is_i64(), "{report}");

    let stored_path = format!("/admin/v1/sales/{sale}/reconciliation");
    let (status, stored) = app.admin_get(&stored_path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["latest"]["ok"], true);
    assert_eq!(stored["history"].as_array().unwrap().len(), 1);
    let (status, _) = app.admin_post("/admin/v1/sales/999999/reconcile").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn repair_re_drives_a_lost_order_and_the_next_report_is_clean() {
    let app = spawn_app().await;
    let (sale, item, ids) = drained_sale(&app, 3).await;
    // As if its Kafka message had been lost: no row, and MySQL stock never decremented.
    delete_order(app.db(), &ids[0]).await;
    sqlx::query("UPDATE sale_items SET stock = stock + 1 WHERE id = ?")
        .bind(item)
        .execute(app.db())
        .await
        .unwrap();
    let before = reconcile(&app, sale, false).await;
    assert_eq!(failing(&before), vec!["ledger_persisted"]);
    assert_eq!(
        check(&before, "ledger_persisted")["sample_ids"],
        serde_json::json!([ids[0]])
    );

    let repaired = reconcile(&app, sale, true).await;
    assert_eq!(repaired["repaired"], 1, "{repaired}");
    assert_eq!(repaired["repaired_ids"], serde_json::json!([ids[0]]));
    wait_rows_exactly(app.db(), item, 3, Duration::from_secs(60)).await;
    let after = reconcile(&app, sale, false).await;
    assert_eq!(after["ok"], true, "{after}");
    let (_, stored) = app
        .admin_get(&format!("/admin/v1/sales/{sale}/reconciliation"))
        .await;
    let history = stored["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0]["ok"], true, "newest first");
    assert_eq!(history[1]["repaired"], 1);
}

#[tokio::test]
async fn the_cli_prints_a_table_and_exits_non_zero_on_a_discrepancy() {
    let app = spawn_app().await;
    let (sale, item, _) = drained_sale(&app, 2).await;
    let config = write_config(app.settings());
    let run = |args: &[&str]| run_with_config(args, &config);
    let sale_arg = sale.to_string();
    let out = run(&["reconcile", "--sale", &sale_arg]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(table.contains("ALL CHECKS OK"), "{table}");
    assert!(table.contains("ledger_persisted"));

    overwrite_stock(&app, sale, item, 1).await;
    let out = run(&["reconcile", "--sale", &sale_arg, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let out = run(&["reconcile", "--sale", "abc"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects a bad id");
}

#[tokio::test]
async fn two_instances_run_the_periodic_job_one_at_a_time() {
    let (a, b) = two_instances(|s| s.reconcile.interval_secs = 1).await;
    let (sale, _) = a.create_live_sale(10, 1).await;
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let sql = "SELECT COUNT(*) FROM reconciliation_reports WHERE sale_id = ?";
    let runs: i64 = sqlx::query_scalar(sql)
        .bind(sale)
        .fetch_one(a.db())
        .await
        .unwrap();
    let secs = started.elapsed().as_secs() as i64;
    assert!(runs >= 1, "the leader ran");
    assert!(
        runs <= secs + 1,
        "{runs} runs in {secs} s: only one instance runs the job"
    );
    drop(b);
}

#[tokio::test]
async fn reconciling_during_a_stampede_reports_no_false_discrepancy() {
    let app = spawn_app_with(|s| s.reconcile.ledger_grace_secs = 60).await;
    let (sale, item) = app.create_live_sale(100_000, 1).await;
    let url = app.buy_url(sale, item);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut buyers = Vec::new();
    for w in 0..8 {
        let (http, url, stop) = (app.http.clone(), url.clone(), stop.clone());
        buyers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let token = token(&format!("r{w}-{i}"));
                http.post(&url).bearer_auth(token).send().await.unwrap();
                i += 1;
            }
        }));
    }
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let report = reconcile(&app, sale, false).await;
        assert!(report["items"][0]["reserved_units"].as_i64().unwrap() > 0);
        assert_eq!(
            report["ok"], true,
            "checks failed while buys and persistence ran: {report}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for b in buyers {
        b.await.unwrap();
    }
    let _ = item;
}
