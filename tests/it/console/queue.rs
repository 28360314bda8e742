//! A queued sale in the console: while the loadtest's crowd goes through the waiting room, the
//! waiting-room card shows the usher's board (joined, now serving, sold out) and its chart
//! draws places waiting against now serving. The screenshot is `6-waiting-room.png`.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::{Console, text_of};
use crate::support::{ADMIN_TOKEN, JWT_SECRET};

const USERS: u64 = 400;
const STOCK: i64 = 60;

/// The loadtest's crowd through the waiting room of `sale`.
async fn crowd(c: &Console, sale: u64, item: u64) -> loadtest::CrowdReport {
    let (sale, item, users) = (sale.to_string(), item.to_string(), USERS.to_string());
    let args = <loadtest::Args as clap::Parser>::try_parse_from([
        "loadtest",
        "--queue",
        "--base-url",
        &c.app.base,
        "--admin-url",
        &c.app.admin_base,
        "--admin-token",
        &ADMIN_TOKEN,
        "--jwt-secret",
        &JWT_SECRET,
        "--no-progress",
        "--sale",
        &sale,
        "--item",
        &item,
        "--users",
        &users,
        "--connections",
        "16",
        "--join-ramp",
        "4s",
    ])
    .unwrap();
    loadtest::run_crowd(args, false, std::future::pending())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_console_shows_a_queued_sales_waiting_room() {
    let mut c = Console::open().await;
    c.log_in().await;
    let policy = json!({"admit_per_sec": 20, "max_active": 20});
    let (sale, item) = crate::queue::queued_sale(&c.app, STOCK, Utc::now(), policy).await;
    c.b.goto(&c.app.admin_url(&format!("/console#/sales/{sale}")))
        .await;
    c.wait("!document.querySelector('#queue-card').hidden", 15)
        .await;
    let report = crowd(&c, sale, item).await;
    assert_eq!(report.units_sold, STOCK as u64, "{report:?}");
    let joined = text_of("[data-testid=\"queue-joined\"]");
    c.wait(&format!("{joined} === '{USERS}'"), 15).await;
    let sold_out = text_of("[data-testid=\"queue-sold-out\"]");
    c.wait(&format!("{sold_out}.startsWith('yes')"), 15).await;
    let serving: u64 = c
        .text("[data-testid=\"queue-now-serving\"]")
        .await
        .parse()
        .unwrap();
    assert!(
        serving >= STOCK as u64,
        "everyone sold to was admitted first: {serving}"
    );
    // The chart drew both lines, and the waiting line came down as places were admitted.
    let lines =
        c.b.eval("document.querySelectorAll('#queue-card polyline').length")
            .await;
    assert_eq!(lines, json!(2));
    let (_, board) = c.app.admin_get(&format!("/admin/v1/sales/{sale}")).await;
    assert_eq!(board["admission"]["mode"], "queue");
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.screenshot("6-waiting-room.png").await;
}
