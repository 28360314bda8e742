//! Faults under a sharded item: a process killed between a move's two halves, and one
//! shard's keys lost mid-sale.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::*;
use crate::support::{
    kill_child, order_ids, spawn_process_paused_at, spawn_with, token, wait_for_failpoint,
    write_config,
};

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
    let (sale, item) = create_sharded(&app, 60, 1, 3).await;
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
    let central = holder_keys(&app, sale, item, Holder::Central).await;
    assert_eq!(
        int(&app, "HLEN", &central.moves_pending).await,
        1,
        "a move in flight"
    );
    let shard0 = holder_keys(&app, sale, item, Holder::Shard { index: 0, of: 3 }).await;
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
    let (sale, item) = create_sharded(&app, 90, 1, 3).await;
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
