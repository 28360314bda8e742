//! The periodic job: a live sale is checked on counters only, an ended one in full.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    TestApp, live_sale_body, overwrite_stock, reserve_in_turn, spawn_app_with, wait_rows_exactly,
};

/// The newest stored report once it is newer than `after` (an RFC 3339 time), waiting up to
/// 20 s for the job to write one.
async fn next_report(app: &TestApp, sale: u64, after: &str) -> Value {
    let after = chrono::DateTime::parse_from_rfc3339(after).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = app
            .admin_get(&format!("/admin/v1/sales/{sale}/reconciliation"))
            .await;
        let latest = &body["latest"];
        if let Some(at) = latest["generated_at"].as_str()
            && chrono::DateTime::parse_from_rfc3339(at).unwrap() > after
        {
            return latest.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no report after {after} within 20 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn failing(report: &Value) -> Vec<&str> {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

#[tokio::test]
async fn a_live_sale_is_checked_on_counters_and_an_ended_one_in_full() {
    let app = spawn_app_with(|s| s.reconcile.interval_secs = 1).await;
    let ends_in = Duration::from_secs(20);
    let mut body = live_sale_body(50, 1);
    body["ends_at"] = json!((chrono::Utc::now() + ends_in).to_rfc3339());
    let created = Instant::now();
    let (status, sale_body) = app.create_sale(body).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{sale_body}");
    let (sale, item) = (
        sale_body["id"].as_u64().unwrap(),
        sale_body["items"][0]["id"].as_u64().unwrap(),
    );
    reserve_in_turn(&app, (sale, item), "p", 3).await;
    wait_rows_exactly(app.db(), item, 3, Duration::from_secs(30)).await;

    // Live: counters only, with the figures the counters give.
    let report = next_report(&app, sale, &now()).await;
    assert!(
        created.elapsed() < ends_in,
        "the sale ended before its checks"
    );
    assert_eq!(report["scope"], "counters", "{report}");
    assert_eq!(report["ok"], true, "{report}");
    let figures = &report["items"][0];
    assert_eq!(figures["ledger_entries"], 3, "{report}");
    assert_eq!(figures["reserved_units"], 3, "{report}");
    assert_eq!(figures["persisted_orders"], 3, "{report}");
    assert_eq!(figures["redis_remaining"], 47, "{report}");

    // Redis holding more than was put on sale is found without reading the ledger.
    overwrite_stock(&app, sale, item, 51).await;
    let report = next_report(&app, sale, &now()).await;
    assert!(
        created.elapsed() < ends_in,
        "the sale ended before its checks"
    );
    assert_eq!(report["scope"], "counters", "{report}");
    assert_eq!(
        failing(&report),
        ["stock_within_bounds", "ledger_covers_orders"],
        "{report}"
    );
    overwrite_stock(&app, sale, item, 47).await;

    // Ended: the full comparison, order by order.
    tokio::time::sleep(ends_in.saturating_sub(created.elapsed())).await;
    let report = next_report(&app, sale, &now()).await;
    assert_eq!(report["scope"], "full", "{report}");
    assert_eq!(report["ok"], true, "{report}");
    let names: Vec<_> = report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ledger_persisted"), "{report}");

    // On demand, a live or ended sale is always compared in full.
    let (_, report) = app
        .admin_post(&format!("/admin/v1/sales/{sale}/reconcile?repair=false"))
        .await;
    assert_eq!(report["scope"], "full", "{report}");
}
