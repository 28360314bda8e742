//! The same code on Redis Cluster: only the URL changes. A private three-node cluster (real
//! redis-server processes with their slots spread, started by the stack script) carries a sale
//! from creation to a clean reconciliation report.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    PrivateServer, STACK, TestApp, eventually, mysql_figures, spawn_with, test_settings,
};

/// The one slot all of an item's keys hash to.
async fn slot_of(app: &TestApp, sale: u64, item: u64) -> u16 {
    let keys = app.item_keys(sale, item).await;
    let mut conn = app.redis().get();
    let mut slots = Vec::new();
    for k in keys.as_script_keys() {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        slots.push(slot);
    }
    assert!(
        slots.windows(2).all(|w| w[0] == w[1]),
        "one slot per item: {slots:?}"
    );
    slots[0]
}

/// 120 buyers at once on an item of 50 units: 50 are accepted, the rest refused with a 409.
async fn a_stampede_buys_exactly_fifty(app: &TestApp, sale: u64, item: u64) {
    let buys =
        (0..120).map(|u| async move { app.buy(sale, item, &format!("c{u}"), 1, None).await.0 });
    let statuses = futures::future::join_all(buys).await;
    let reserved = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    assert_eq!(reserved, 50, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::ACCEPTED || *s == StatusCode::CONFLICT)
    );
}

/// `SCRIPT FLUSH` on every node.
async fn flush_scripts_on(nodes: &[String]) {
    for node in nodes {
        let client = redis::Client::open(format!("redis://{node}")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_runs_end_to_end_on_a_redis_cluster() {
    let cluster = PrivateServer::start("cluster");
    let nodes: Vec<String> = (0..3)
        .map(|i| format!("127.0.0.1:{}", cluster.port + i))
        .collect();
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.redis.url = format!("redis+cluster://{}", nodes.join(","));
    let app = spawn_with(settings).await;
    assert!(app.redis().is_cluster());

    // Two sales: their items' keys hash to different slots.
    let (sale, item) = app.create_live_sale(50, 1).await;
    let (other_sale, other_item) = app.create_live_sale(5, 1).await;
    assert_ne!(
        slot_of(&app, sale, item).await,
        slot_of(&app, other_sale, other_item).await
    );

    // A stampede of 120 buyers on 50 units: exactly the stock is sold.
    a_stampede_buys_exactly_fifty(&app, sale, item).await;
    let (status, _) = app.buy(other_sale, other_item, "c0", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Every node loses its scripts (a failover would do the same): buys still work.
    flush_scripts_on(&nodes).await;
    let (status, body) = app.buy(other_sale, other_item, "c1", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "after SCRIPT FLUSH: {body}");

    // The orders reach MySQL, the sale page reads through the cluster, the report is clean.
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == 50).then_some(()) }
    })
    .await;
    let page: Value = app
        .get(&format!("/api/v1/sales/{sale}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["remaining"], 0, "{page}");
    let (status, report) = app
        .admin_post(&format!("/admin/v1/sales/{sale}/reconcile"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["items"][0]["persisted_units"], 50);
    drop(app);
    drop(cluster);
}
