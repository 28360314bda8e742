//! A hot item's stock shards on Redis Cluster, on a private three-master cluster (real
//! redis-server processes started by the stack script): `selling` buys a sharded item through
//! a stampede from two API instances and by buyers of one shard only, and checks that one Redis
//! node refuses shards; `faults` kills an API between a move's two halves and loses a shard's
//! keys mid-sale.

mod faults;
mod selling;

use std::time::Duration;

use reqwest::StatusCode;
use seckill::{stock::buyer_holder, stores::redis::keys::Holder};
use serde_json::{Value, json};
use sqlx::MySqlPool;

use crate::support::{
    PrivateServer, STACK, TestApp, eventually, live_sale_body, mysql_figures, test_settings,
};

/// The body of a live one-item sale of `stock` units over `shards` shards.
pub(super) fn sharded_sale(stock: i64, limit: i64, shards: i64) -> Value {
    let mut body = live_sale_body(stock, limit);
    body["items"][0]["shards"] = json!(shards);
    body
}

/// The cluster's node addresses (three masters first, as `--cluster create` makes them).
pub(super) fn nodes(cluster: &PrivateServer) -> Vec<String> {
    (0..3)
        .map(|i| format!("127.0.0.1:{}", cluster.port + i))
        .collect()
}

/// Settings on the private cluster.
pub(super) async fn cluster_settings(cluster: &PrivateServer) -> seckill::config::Settings {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.redis.url = format!("redis+cluster://{}", nodes(cluster).join(","));
    settings
}

/// A plain connection to one node.
pub(super) async fn node(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The ports of the cluster's masters.
pub(super) async fn masters(cluster: &PrivateServer) -> Vec<u16> {
    let mut found = Vec::new();
    for port in cluster.port..cluster.port + 6 {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut node(port).await)
            .await
            .unwrap();
        if info.contains("role:master") {
            found.push(port);
        }
    }
    assert_eq!(found.len(), 3, "three masters");
    found
}

/// `EVALSHA` calls a node has served.
pub(super) async fn script_calls(port: u16) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut node(port).await)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// An integer from Redis through the app's cluster connection (0 when absent).
pub(super) async fn int(app: &TestApp, cmd: &str, key: &str) -> i64 {
    let value: Option<i64> = redis::cmd(cmd)
        .arg(key)
        .query_async(&mut app.redis().get())
        .await
        .unwrap();
    value.unwrap_or(0)
}

/// The item's keys of one holder.
pub(super) async fn holder_keys(app: &TestApp, sale: u64, item: u64, holder: Holder) -> HolderKeys {
    app.item_ref(sale, item).await.keys(&app.keys(), holder)
}
pub(super) type HolderKeys = seckill::stores::redis::keys::ItemKeys;

/// Units held by every holder of a 3-shard item: central first.
pub(super) async fn holder_stocks(app: &TestApp, sale: u64, item: u64) -> Vec<i64> {
    let mut stocks = Vec::new();
    for holder in seckill::stock::shards::holders(3) {
        stocks.push(
            int(
                app,
                "GET",
                &holder_keys(app, sale, item, holder).await.stock,
            )
            .await,
        );
    }
    stocks
}

/// Most units any buyer of the item holds in MySQL.
pub(super) async fn most_units_of_one_buyer(db: &MySqlPool, item: u64) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(MAX(u), 0) AS SIGNED) FROM \
         (SELECT SUM(quantity) AS u FROM orders WHERE item_id = ? GROUP BY user_id) t",
    )
    .bind(item)
    .fetch_one(db)
    .await
    .unwrap()
}

/// Waits until MySQL holds `n` orders of the item.
pub(super) async fn persisted(db: &MySqlPool, item: u64, n: i64) {
    eventually(Duration::from_secs(90), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == n).then_some(()) }
    })
    .await;
}

/// The reconciliation report of a sale, which must be clean; it is returned.
pub(super) async fn clean_report(app: &TestApp, sale: u64) -> Value {
    let (status, report) = app
        .admin_post(&format!("/admin/v1/sales/{sale}/reconcile"))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    report
}

/// Creates a live one-item sale of `stock` units over `shards` shards; (sale, item).
pub(super) async fn create_sharded(
    app: &TestApp,
    stock: i64,
    limit: i64,
    shards: i64,
) -> (u64, u64) {
    let (status, body) = app.create_sale(sharded_sale(stock, limit, shards)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["items"][0]["shards"], shards, "{body}");
    (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    )
}

/// A buy of one unit, asked again while it is answered 503 `stock_moving` (for 5 s at most).
pub(super) async fn buy_past_moves(
    app: &TestApp,
    sale: u64,
    item: u64,
    user: &str,
) -> (StatusCode, Value) {
    for _ in 0..100 {
        let (status, body) = app.buy(sale, item, user, 1, None).await;
        if body["code"] != "stock_moving" {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{user}: units kept moving for 5 s");
}

/// Users whose home is shard `index` of 3.
pub(super) fn buyers_of_shard(index: u16, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("home{i}"))
        .filter(|u| buyer_holder(u, 3) == Holder::Shard { index, of: 3 })
        .take(n)
        .collect()
}
