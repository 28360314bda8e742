//! The promise under faults, one file per failure kind of the failure table in
//! docs/ARCHITECTURE.md: processes SIGKILLed or sent SIGTERM mid-sale, the broker, MariaDB or Redis
//! taken away, messages delivered twice or unreadable, and races the clock decides. Where a fault
//! lands during a rate-limited stampede, its client records every order id it was told is
//! reserved, and afterwards the stores are checked in straight SQL and by reconciliation
//! ([`assert_promises_kept`]). Faulted servers are private ones, started through the stack script.

mod combined;
mod consumer_kill;
mod consumer_restart;
mod foreign_state;
mod kafka_outage;
mod mariadb;
mod payment_race;
mod redelivery;
mod redis_failover;
mod redis_kill;
mod redis_loss;
mod release_twice;
mod service_kill;
mod sigterm;
mod unparseable_message;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    time::Duration,
};

use redis::AsyncCommands;
use seckill::config::Settings;
use sqlx::MySqlPool;

use crate::support::{
    STACK, Shoppers, TestApp, assert_clean, eventually, fresh_database, mysql_stock,
    order_statuses, order_units, output_text, run_with_config, settings_on, unique,
};

/// Units of the rate-limited sales the Redis faults land in.
const STOCK: i64 = 1_500;
/// Their per-user limit.
const LIMIT: i64 = 2;

/// A folder for one test's process logs, kept when the test fails (its path is in the
/// assertion messages).
fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seckill-faults-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every confirmed order persisted exactly once, nothing oversold, nobody above the limit:
/// read in straight SQL.
pub(crate) async fn assert_promises_kept(
    db: &MySqlPool,
    item: u64,
    stock: i64,
    limit: i64,
    confirmed: &HashSet<String>,
) {
    let by_id = order_statuses(db, item).await;
    let missing: Vec<&String> = confirmed
        .iter()
        .filter(|id| by_id.get(*id).map(String::as_str) != Some("pending_payment"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} confirmed orders are not persisted, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let (units, rejected): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN status IN ('pending_payment', 'paid') THEN quantity END), 0) AS SIGNED), \
         CAST(COUNT(CASE WHEN status = 'rejected' THEN 1 END) AS SIGNED) \
         FROM orders WHERE item_id = ?",
    )
    .bind(item)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(units, stock, "exactly the stock is sold, never more");
    assert_eq!(rejected, 0, "MySQL rejected nothing Redis confirmed");
    let over: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT user_id FROM orders WHERE item_id = ? AND status IN ('pending_payment', 'paid') \
         GROUP BY user_id HAVING SUM(quantity) > ?) o",
    )
    .bind(item)
    .bind(limit)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(over, 0, "nobody holds more than the limit of {limit}");
    assert_eq!(
        mysql_stock(db, item).await,
        0,
        "MySQL's stock is used up exactly"
    );
}

/// Runs `seckill reconcile --sale` as an operator would; returns its exit status and report.
pub fn reconcile(config: &Path, sale: u64) -> (bool, String) {
    let out = run_with_config(&["reconcile", "--sale", &sale.to_string()], config);
    (out.status.success(), output_text(&out))
}

/// Settings for a rate-limited sale on `redis_url`: about 80 buys a second are admitted, so
/// the sale lasts through the fault.
async fn rate_limited(redis_url: &str) -> Settings {
    let mut s = settings_on(redis_url, &fresh_database().await, &STACK.kafka_brokers);
    s.limits.global_per_sec = 80;
    s.limits.global_burst = 5;
    s
}

/// The sale of [`STOCK`] units with a limit of [`LIMIT`] on `app`, and 64 shoppers buying it
/// from 1,200 users, once 300 orders were confirmed.
async fn stampede_under_way(app: &TestApp) -> (u64, u64, Shoppers) {
    let (sale, item) = app.create_live_sale(STOCK, LIMIT).await;
    let shoppers = Shoppers::start(&app.base, sale, item, 64, 1_200);
    shoppers.wait_confirmed(300, Duration::from_secs(60)).await;
    (sale, item, shoppers)
}

/// Waits for the sell-out, checks the fault landed mid-sale, then that every confirmed order
/// is persisted once, nothing is oversold or rejected, nobody is above the limit, and the
/// reconciliation report is clean.
async fn sell_out_and_check(
    app: &TestApp,
    shoppers: Shoppers,
    sale: u64,
    item: u64,
    at_fault: usize,
    fault: &str,
) -> String {
    let (confirmed, answers) = shoppers.finish_at_sell_out(Duration::from_secs(120)).await;
    eprintln!(
        "{fault}: {at_fault} confirmed at the fault, {} at the sell-out; answers {answers}",
        confirmed.len()
    );
    assert!(
        at_fault < STOCK as usize && confirmed.len() > at_fault,
        "the fault must land mid-sale: {at_fault} confirmed at the fault, {} at the end",
        confirmed.len()
    );
    let db = app.db();
    eventually(Duration::from_secs(90), || async move {
        (order_units(db, item).await.unwrap() >= STOCK).then_some(())
    })
    .await;
    assert_promises_kept(db, item, STOCK, LIMIT, &confirmed).await;
    assert_clean(app, sale).await;
    answers
}

/// The item's remaining stock as the Redis server on `port` holds it.
async fn stock_on(port: u16, keys: &seckill::stores::redis::keys::ItemKeys) -> Option<i64> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    conn.get(&keys.stock).await.ok()?
}
