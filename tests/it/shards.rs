//! A hot item's stock shards on Redis Cluster: an item of `shards: 3` on a private
//! three-master cluster (real redis-server processes started by the stack script), bought by
//! a stampede through two API instances, sells exactly its stock with every master carrying a
//! share of its script calls; an emptied shard is refilled; a SIGKILL between a move's two
//! halves loses no unit; one Redis node refuses shards.

use std::{collections::HashMap, time::Duration};

use reqwest::{Method, StatusCode};
use seckill::{stock::buyer_holder, stores::redis::keys::Holder};
use serde_json::{Value, json};
use sqlx::MySqlPool;

use crate::support::{
    PrivateServer, STACK, Shoppers, TestApp, eventually, kill_child, live_sale_body, mysql_figures,
    order_ids, spawn_app, spawn_process_paused_at, spawn_with, test_settings, token,
    wait_for_failpoint, write_config,
};

/// The body of a live one-item sale of `stock` units over `shards` shards.
fn sharded_sale(stock: i64, limit: i64, shards: i64) -> Value {
    let mut body = live_sale_body(stock, limit);
    body["items"][0]["shards"] = json!(shards);
    body
}

/// The cluster's node addresses (three masters first, as `--cluster create` makes them).
fn nodes(cluster: &PrivateServer) -> Vec<String> {
    (0..3)
        .map(|i| format!("127.0.0.1:{}", cluster.port + i))
        .collect()
}

/// Settings on the private cluster.
async fn cluster_settings(cluster: &PrivateServer) -> seckill::config::Settings {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.redis.url = format!("redis+cluster://{}", nodes(cluster).join(","));
    settings
}

/// A plain connection to one node.
async fn node(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The ports of the cluster's masters.
async fn masters(cluster: &PrivateServer) -> Vec<u16> {
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
async fn script_calls(port: u16) -> u64 {
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
async fn int(app: &TestApp, cmd: &str, key: &str) -> i64 {
    let value: Option<i64> = redis::cmd(cmd)
        .arg(key)
        .query_async(&mut app.redis().get())
        .await
        .unwrap();
    value.unwrap_or(0)
}

/// The item's keys of one holder.
fn holder_keys(app: &TestApp, sale: u64, item: u64, holder: Holder) -> HolderKeys {
    app.keys().holder(sale, item, holder)
}
type HolderKeys = seckill::stores::redis::keys::ItemKeys;

/// Units held by every holder of a 3-shard item: central first.
async fn holder_stocks(app: &TestApp, sale: u64, item: u64) -> Vec<i64> {
    let mut stocks = Vec::new();
    for holder in seckill::stock::shards::holders(3) {
        stocks.push(int(app, "GET", &holder_keys(app, sale, item, holder).stock).await);
    }
    stocks
}

/// Most units any buyer of the item holds in MySQL.
async fn most_units_of_one_buyer(db: &MySqlPool, item: u64) -> i64 {
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
async fn persisted(db: &MySqlPool, item: u64, n: i64) {
    eventually(Duration::from_secs(90), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == n).then_some(()) }
    })
    .await;
}

/// The reconciliation report of a sale, which must be clean; it is returned.
async fn clean_report(app: &TestApp, sale: u64) -> Value {
    let (status, report) = app
        .admin_post(&format!("/admin/v1/sales/{sale}/reconcile"))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    report
}

#[tokio::test]
async fn one_redis_node_refuses_stock_shards_and_writes_nothing() {
    let app = spawn_app().await;
    assert!(!app.redis().is_cluster());
    let (status, body) = app.create_sale(sharded_sale(100, 1, 3)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "items[0].shards", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("Redis Cluster"),
        "{body}"
    );
    let (status, body) = app.create_sale(sharded_sale(100, 1, 17)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "items[0].shards", "{body}");
    let sales: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sales")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(sales, 0, "nothing written");
    // One shard is the default and works everywhere.
    let (status, body) = app.create_sale(sharded_sale(100, 1, 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["items"][0]["shards"], 1, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_item_of_three_shards_sells_its_stock_on_every_master_from_two_instances() {
    let cluster = PrivateServer::start("cluster");
    let settings = cluster_settings(&cluster).await;
    let a = spawn_with(settings.clone()).await;
    let b = spawn_with(settings).await;
    let (status, body) = a.create_sale(sharded_sale(900, 2, 3)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["items"][0]["shards"], 3, "{body}");
    let (sale, item) = (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    );
    // Warmed: the shards hold 150 each, the central bucket the other 450.
    assert_eq!(
        holder_stocks(&a, sale, item).await,
        vec![450, 150, 150, 150]
    );

    let masters = masters(&cluster).await;
    let mut before = HashMap::new();
    for &port in &masters {
        before.insert(port, script_calls(port).await);
    }
    let at_a = Shoppers::start(&a.base, sale, item, 24, 3_000);
    let at_b = Shoppers::start(&b.base, sale, item, 24, 3_000);
    let (mut confirmed, answers_a, lag_a) = at_a.finish_timed(Duration::from_secs(120)).await;
    let (more, answers_b, lag_b) = at_b.finish_timed(Duration::from_secs(120)).await;
    confirmed.extend(more);

    // Exactly the stock, nothing left anywhere while buyers were told sold out, and sold
    // out soon after the last unit.
    assert_eq!(confirmed.len(), 900, "{answers_a} {answers_b}");
    assert_eq!(holder_stocks(&a, sale, item).await, vec![0, 0, 0, 0]);
    assert!(lag_a <= Duration::from_secs(1), "{lag_a:?}");
    assert!(lag_b <= Duration::from_secs(1), "{lag_b:?}");
    let (status, late) = b.buy(sale, item, "latecomer", 1, None).await;
    assert_eq!(
        (status, late["code"].as_str()),
        (StatusCode::CONFLICT, Some("sold_out"))
    );

    // Every master carried a fair share of the item's script calls.
    let mut calls = HashMap::new();
    for &port in &masters {
        calls.insert(port, script_calls(port).await - before[&port]);
    }
    let total: u64 = calls.values().sum();
    for (port, n) in &calls {
        let share = *n as f64 / total as f64;
        assert!((0.25..=0.42).contains(&share), "master {port}: {calls:?}");
    }

    // Each shard started with 150 of its 300 buyers' units: each was refilled.
    for index in 0..3 {
        let keys = holder_keys(&a, sale, item, Holder::Shard { index, of: 3 });
        assert!(int(&a, "HLEN", &keys.moves_in).await > 0, "shard {index}");
        assert_eq!(int(&a, "HLEN", &keys.moves_pending).await, 0);
    }

    // Every 202 is persisted once, nobody above the limit, and the report is clean.
    persisted(a.db(), item, 900).await;
    let stored = order_ids(a.db(), item).await.unwrap();
    assert_eq!(stored, confirmed);
    assert_eq!(mysql_figures(a.db(), item).await, (900, 900, 0));
    assert!(most_units_of_one_buyer(a.db(), item).await <= 2);
    assert_eq!(
        clean_report(&a, sale).await["items"][0]["persisted_units"],
        900
    );
    drop((a, b, cluster));
}

/// A buy of one unit, asked again while it is answered 503 `stock_moving` (for 5 s at most).
async fn buy_past_moves(app: &TestApp, sale: u64, item: u64, user: &str) -> (StatusCode, Value) {
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
fn buyers_of_shard(index: u16, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("home{i}"))
        .filter(|u| buyer_holder(u, 3) == Holder::Shard { index, of: 3 })
        .take(n)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_of_one_shard_buy_every_unit_of_the_others() {
    let cluster = PrivateServer::start("cluster");
    let app = spawn_with(cluster_settings(&cluster).await).await;
    let (status, body) = app.create_sale(sharded_sale(90, 1, 3)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (sale, item) = (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    );
    // Only shard 0's buyers come: its 15 units go first, then the central bucket's 45, then
    // what shards 1 and 2 hold, moved to it. None of them is told sold out before that.
    let buyers = buyers_of_shard(0, 120);
    let mut reserved = 0;
    let mut first_sold_out = None;
    for (n, user) in buyers.iter().enumerate() {
        let (status, body) = buy_past_moves(&app, sale, item, user).await;
        match status {
            StatusCode::ACCEPTED => reserved += 1,
            StatusCode::CONFLICT if body["code"] == "sold_out" => {
                first_sold_out.get_or_insert(n);
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(reserved, 90);
    assert_eq!(
        first_sold_out,
        Some(90),
        "sold out only after the last unit"
    );
    assert_eq!(holder_stocks(&app, sale, item).await, vec![0, 0, 0, 0]);
    for index in [1, 2] {
        let keys = holder_keys(&app, sale, item, Holder::Shard { index, of: 3 });
        assert!(
            int(&app, "HLEN", &keys.moves_out).await > 0,
            "shard {index} gave"
        );
    }
    persisted(app.db(), item, 90).await;
    assert_eq!(
        clean_report(&app, sale).await["items"][0]["persisted_units"],
        90
    );
    drop((app, cluster));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_killed_between_a_moves_take_and_give_loses_no_unit() {
    let cluster = PrivateServer::start("cluster");
    let settings = cluster_settings(&cluster).await;
    // The in-process app runs the consumer and reads; the child sells until it is killed.
    let app = spawn_with(settings.clone()).await;
    let mut child_settings = settings.clone();
    crate::support::fixed_ports(&mut child_settings);
    let config = write_config(&child_settings);
    let log = config.with_file_name("serve.log");
    let remote = crate::support::Remote::at(&child_settings);
    let point = "shards.move_taken";
    let mut child = spawn_process_paused_at("serve", &config, &log, point);
    remote.wait_ready().await;
    let (status, body) = app.create_sale(sharded_sale(60, 1, 3)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (sale, item) = (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    );
    // Shard 0's buyers empty it through the child (10 units), whose refill takes units from
    // the central bucket and is killed before it gives them.
    let buyers = buyers_of_shard(0, 90);
    let url = remote.buy_url(sale, item);
    let mut confirmed = std::collections::HashSet::new();
    let sells = async {
        for user in &buyers[..11] {
            let r = remote.http.post(&url).bearer_auth(token(user)).send().await;
            if let Ok(r) = r
                && r.status() == StatusCode::ACCEPTED
            {
                let body: Value = r.json().await.unwrap();
                confirmed.insert(body["order_id"].as_str().unwrap().to_string());
            }
        }
    };
    tokio::select! {
        () = sells => {}
        () = wait_for_failpoint(&log, point) => {}
    }
    wait_for_failpoint(&log, point).await;
    let central = holder_keys(&app, sale, item, Holder::Central);
    assert_eq!(
        int(&app, "HLEN", &central.moves_pending).await,
        1,
        "a move in flight"
    );
    let shard0 = holder_keys(&app, sale, item, Holder::Shard { index: 0, of: 3 });
    assert_eq!(int(&app, "GET", &shard0.stock).await, 0, "taken, not given");
    kill_child(&mut child);
    assert_eq!(confirmed.len(), 10, "the shard's own units sold first");

    // The rest is sold through the in-process instance: the pending move is given (by the
    // relay, or by the refill that finds no other unit), and every unit is sold.
    let mut sold = confirmed.len();
    for user in &buyers[10..] {
        let (status, body) = buy_past_moves(&app, sale, item, user).await;
        match status {
            StatusCode::ACCEPTED => sold += 1,
            StatusCode::CONFLICT if body["code"] == "sold_out" => break,
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(sold, 60, "no unit lost with the killed process");
    assert_eq!(int(&app, "HLEN", &central.moves_pending).await, 0);
    persisted(app.db(), item, 60).await;
    assert!(confirmed.is_subset(&order_ids(app.db(), item).await.unwrap()));
    assert_eq!(
        clean_report(&app, sale).await["items"][0]["persisted_units"],
        60
    );
    drop((app, cluster));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_gives_units_back_to_the_buyers_shard() {
    let cluster = PrivateServer::start("cluster");
    let app = spawn_with(cluster_settings(&cluster).await).await;
    let mut body = sharded_sale(30, 1, 3);
    body["items"][0]["payment_window_secs"] = json!(5);
    let (status, body) = app.admin(Method::POST, "/admin/v1/sales", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (sale, item) = (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    );
    let user = &buyers_of_shard(2, 1)[0];
    let (status, body) = app.buy(sale, item, user, 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let shard2 = holder_keys(&app, sale, item, Holder::Shard { index: 2, of: 3 });
    assert_eq!(int(&app, "GET", &shard2.stock).await, 4);
    // Unpaid, the order expires and its unit returns to shard 2.
    persisted(app.db(), item, 1).await;
    eventually(Duration::from_secs(60), || {
        let app = &app;
        let stock = shard2.stock.clone();
        async move { (int(app, "GET", &stock).await == 5).then_some(()) }
    })
    .await;
    clean_report(&app, sale).await;
    drop((app, cluster));
}

/// A buy of one unit, asked again while it is answered 503 (`recovering`, `stock_moving`) for
/// up to 90 s.
async fn buy_through_recovery(
    app: &TestApp,
    sale: u64,
    item: u64,
    user: &str,
) -> (StatusCode, Value) {
    for _ in 0..900 {
        let (status, body) = app.buy(sale, item, user, 1, None).await;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{user}: still 503 after 90 s");
}

/// Deletes every key of shard 1 of the item, on the master that holds it (its data lost).
async fn lose_shard_one(cluster: &PrivateServer) -> usize {
    let mut lost = 0;
    for port in masters(cluster).await {
        let mut conn = node(port).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*:h1.*")
            .query_async(&mut conn)
            .await
            .unwrap();
        for key in &keys {
            let _: i64 = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        lost += keys.len();
    }
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_item_that_lost_one_shard_is_rebuilt_whole() {
    let cluster = PrivateServer::start("cluster");
    let app = spawn_with(cluster_settings(&cluster).await).await;
    let (status, body) = app.create_sale(sharded_sale(90, 1, 3)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (sale, item) = (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    );
    // Mid-sale: 30 units sold over the shards, persisted.
    let mut sold = 0;
    for n in 0..30 {
        let (status, body) = buy_past_moves(&app, sale, item, &format!("early{n}")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        sold += 1;
    }
    persisted(app.db(), item, 30).await;
    assert!(lose_shard_one(&cluster).await > 0, "shard 1 had keys");

    // Buyers keep coming: shard 1's get `recovering` until the item is rebuilt whole from
    // MySQL, then everybody buys until the last unit.
    for n in 0.. {
        let (status, body) = buy_through_recovery(&app, sale, item, &format!("late{n}")).await;
        match status {
            StatusCode::ACCEPTED => sold += 1,
            StatusCode::CONFLICT if body["code"] == "sold_out" => break,
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(sold, 90, "exactly the stock, none sold twice");
    assert_eq!(holder_stocks(&app, sale, item).await, vec![0, 0, 0, 0]);
    persisted(app.db(), item, 90).await;
    assert_eq!(mysql_figures(app.db(), item).await, (90, 90, 0));
    assert!(most_units_of_one_buyer(app.db(), item).await <= 1);
    assert_eq!(
        clean_report(&app, sale).await["items"][0]["persisted_units"],
        90
    );
    drop((app, cluster));
}
