//! How fast the queue moves: never past `max_active` admitted-but-unbought buyers nor past the
//! stock × overbooking; again when buyers buy, admissions lapse or units come back; and
//! `sold_out` to everyone still queued the moment the stock is gone.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{buy_admitted, join, join_with, poll_at, poll_until, queued_sale, settles_at};
use crate::support::{TestApp, cancel, eventually, spawn_app, two_instances};

/// `n` buyers `<prefix>-<i>` join in turn; their tickets.
async fn crowd(app: &TestApp, sale: u64, prefix: &str, n: usize) -> Vec<String> {
    let mut tickets = Vec::new();
    for i in 0..n {
        let joined = join(app, sale, &format!("{prefix}-{i}")).await;
        tickets.push(joined["ticket"].as_str().unwrap().to_string());
    }
    tickets
}

/// The admitted ticket's buyer buys one unit; the order id.
async fn admitted_buy(app: &TestApp, sale: u64, item: u64, user: &str, ticket: &str) -> String {
    let body = poll_until(app, sale, ticket, Duration::from_secs(10), |b| {
        b["state"] == "admitted"
    })
    .await;
    let token = body["admission_token"].as_str().unwrap();
    let (status, order) = buy_admitted(app, sale, item, user, Some(token)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{order}");
    order["order_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn admission_stops_at_max_active_and_resumes_as_buyers_buy_or_lapse() {
    let app = spawn_app().await;
    let policy = json!({"admit_per_sec": 50, "max_active": 3, "admission_ttl_secs": 10});
    let (sale, item) = queued_sale(&app, 100, Utc::now(), policy).await;
    let t = crowd(&app, sale, "active", 10).await;
    settles_at(&app, sale, &t[9], 3).await;
    for (i, ticket) in t.iter().enumerate().take(2) {
        admitted_buy(&app, sale, item, &format!("active-{i}"), ticket).await;
    }
    settles_at(&app, sale, &t[9], 5).await;
    // Nobody else buys: the admissions of 2, 3 and 4 lapse, and three more are let in.
    let lapsed = poll_until(&app, sale, &t[2], Duration::from_secs(20), |b| {
        b["state"] == "expired"
    })
    .await;
    assert_eq!(lapsed["position"], 2, "{lapsed}");
    poll_until(&app, sale, &t[7], Duration::from_secs(10), |b| {
        b["state"] == "admitted"
    })
    .await;
    assert_eq!(poll_at(&app, sale, &t[8]).await.1["state"], "waiting");
}

#[tokio::test]
async fn admission_stops_at_the_stock_times_overbooking_and_resumes_when_units_come_back() {
    let app = spawn_app().await;
    let (sale, _) = queued_sale(&app, 10, Utc::now(), json!({"admit_per_sec": 100})).await;
    let t = crowd(&app, sale, "over", 20).await;
    settles_at(&app, sale, &t[19], 15).await;

    let exact = json!({"admit_per_sec": 100, "overbooking": 1.0});
    let (sale, item) = queued_sale(&app, 4, Utc::now(), exact).await;
    let t = crowd(&app, sale, "back", 8).await;
    settles_at(&app, sale, &t[7], 4).await;
    let mut orders = Vec::new();
    for (i, ticket) in t.iter().enumerate().take(4) {
        orders.push(admitted_buy(&app, sale, item, &format!("back-{i}"), ticket).await);
    }
    poll_until(&app, sale, &t[4], Duration::from_secs(5), |b| {
        b["state"] == "sold_out"
    })
    .await;
    // A buyer cancels: the unit comes back, and the next in line is admitted for it.
    eventually(Duration::from_secs(20), || async {
        let (status, _) = cancel(&app, "back-0", &orders[0]).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let next = poll_until(&app, sale, &t[4], Duration::from_secs(10), |b| {
        b["state"] == "admitted"
    })
    .await;
    assert_eq!(next["position"], 4, "{next}");
    settles_at(&app, sale, &t[7], 5).await;
}

#[tokio::test]
async fn sold_out_reaches_everyone_still_queued_at_once_on_every_instance() {
    // The buys go through `a`; `b` learns of the sell-out only from the usher's board.
    let (a, b) = two_instances(|_| {}).await;
    let (sale, item) = queued_sale(&a, 2, Utc::now(), json!({"admit_per_sec": 100})).await;
    let t = crowd(&a, sale, "last", 30).await;
    for (i, ticket) in t.iter().enumerate().take(2) {
        admitted_buy(&a, sale, item, &format!("last-{i}"), ticket).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2_500);
    let mut told = vec![[false; 2]; t.len()];
    while told.iter().flatten().any(|b| !b) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not told within 2.5 s: {told:?}"
        );
        for (i, ticket) in t.iter().enumerate() {
            for (k, app) in [&a, &b].into_iter().enumerate() {
                let (_, body, retry) = poll_at(app, sale, ticket).await;
                told[i][k] |= body["state"] == "sold_out";
                assert!(retry.unwrap_or(1) <= 1 || told[i][k], "{body}");
            }
        }
    }
    let (status, late): (StatusCode, Value) = join_with(&b, sale, "latecomer", json!({})).await;
    assert_eq!(
        (status, late["state"].as_str()),
        (StatusCode::OK, Some("sold_out")),
        "{late}"
    );
    assert!(late.get("ticket").is_none(), "{late}");
}
