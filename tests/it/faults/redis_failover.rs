//! A Sentinel failover mid-sale, in the default (`replica`) mode: the replica lags, the master is
//! SIGKILLed, Sentinel promotes the replica that lacks the lag's reservations; buys made during
//! the lag were answered 503 `unconfirmed`, and every 202 is persisted.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use seckill::config::ConfirmMode;

use super::{rate_limited, sell_out_and_check, stampede_under_way, stock_on};
use crate::support::{PrivateServer, eventually, spawn_with};

/// The master Sentinel names now.
async fn sentinel_master(sentinel: &PrivateServer) -> Option<u16> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", sentinel.port)).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let addr: Vec<String> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg("seckill")
        .query_async(&mut conn)
        .await
        .ok()?;
    addr.get(1)?.parse().ok()
}

/// Writes 24 MiB to the master on `port`, outside any sale's keys: with its replica paused,
/// the socket buffers between them fill up, so whatever the master writes next waits in the
/// master's own output buffer for the replica, as behind a replica that lags.
async fn fill_replication_buffers(port: u16) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let value = vec![b'x'; 8 << 20];
    for n in 0..3 {
        let _: () = conn
            .set(format!("ballast:{n}"), value.as_slice())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_sentinel_failover_loses_no_confirmed_order_in_the_default_mode() {
    let sentinel = PrivateServer::start("sentinel");
    let (master, replica) = (sentinel.ports[3], sentinel.ports[4]);
    let settings = rate_limited(&sentinel.url()).await;
    assert_eq!(settings.buy.confirm, ConfirmMode::Replica, "the default");
    let app = spawn_with(settings).await;
    let (sale, item, shoppers) = stampede_under_way(&app).await;
    let keys = app.item_keys(sale, item).await;

    // The replica falls behind: paused, with the replication stream backed up behind it, for
    // about a second of buys before the master dies. What the master wrote meanwhile never
    // reaches the replica that Sentinel promotes.
    sentinel.pause_redis_on(replica);
    fill_replication_buffers(master).await;
    let at_pause = shoppers.confirmed();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let at_fault = shoppers.confirmed();
    let left_on_master = stock_on(master, &keys).await.expect("the master's stock");
    sentinel.kill_redis_on(master);
    sentinel.resume_redis_on(replica);
    let killed = Instant::now();
    eventually(Duration::from_secs(60), || async {
        (sentinel_master(&sentinel).await == Some(replica)).then_some(())
    })
    .await;
    eprintln!(
        "Sentinel promoted the replica {:?} after the SIGKILL",
        killed.elapsed()
    );
    let left_on_promoted = stock_on(replica, &keys).await.expect("the promoted stock");
    eprintln!(
        "failover: {at_pause} confirmed at the pause, {at_fault} at the SIGKILL; stock {left_on_master} on the dead master, {left_on_promoted} on the promoted replica"
    );
    assert!(
        left_on_promoted > left_on_master,
        "the promoted replica must lack the reservations of the lag ({left_on_master} left on the master, {left_on_promoted} on the replica): else the fault tested nothing"
    );
    // The dead master comes back, as a supervisor restarts it, as the new master's replica:
    // until then nothing can be confirmed (the new master has no replica to acknowledge).
    sentinel.restart();
    let answers = sell_out_and_check(&app, shoppers, sale, item, at_fault, "failover").await;
    // While the replica lagged, reservations were made on the master and not confirmed.
    assert!(
        answers.contains("\"503 unconfirmed\""),
        "no buy was answered 503 unconfirmed while the replica lagged: {answers}"
    );
}
