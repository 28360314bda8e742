//! Selling a sharded item: exactly its stock, from every master, to buyers of any shard.

use std::{collections::HashMap, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::support::{Shoppers, order_ids, spawn_app, spawn_with};

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
    let (sale, item) = create_sharded(&a, 900, 2, 3).await;
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
        let keys = holder_keys(&a, sale, item, Holder::Shard { index, of: 3 }).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_of_one_shard_buy_every_unit_of_the_others() {
    let cluster = PrivateServer::start("cluster");
    let app = spawn_with(cluster_settings(&cluster).await).await;
    let (sale, item) = create_sharded(&app, 90, 1, 3).await;
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
        let keys = holder_keys(&app, sale, item, Holder::Shard { index, of: 3 }).await;
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
    let shard2 = holder_keys(&app, sale, item, Holder::Shard { index: 2, of: 3 }).await;
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
