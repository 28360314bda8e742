//! Every 202 is honoured when Redis fails: a Sentinel failover, Redis restarted empty, Redis
//! SIGKILLed and restarted from its AOF. Each fault lands during a rate-limited stampede whose
//! client records every order id it was told is reserved; afterwards the stores are checked in
//! straight SQL and by reconciliation. The faulted Redis servers are private, started through
//! the stack script; MySQL and Kafka are the shared ones (a fresh database, topic and group).

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use seckill::config::{ConfirmMode, Settings};
use sqlx::MySqlPool;

use crate::{
    faults::assert_promises_kept,
    helpers::{PrivateServer, STACK, TestApp, eventually, fresh_database, settings_on, spawn_with},
    shoppers::Shoppers,
};

const STOCK: i64 = 1_500;
const LIMIT: i64 = 2;

/// Settings for a rate-limited sale on `redis_url`: about 80 buys a second are admitted, so
/// the sale lasts through the fault.
async fn rate_limited(redis_url: &str) -> Settings {
    let mut s = settings_on(redis_url, &fresh_database().await, &STACK.kafka_brokers);
    s.limits.global_per_sec = 80;
    s.limits.global_burst = 5;
    s
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
) {
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
    let db: MySqlPool = app.db().clone();
    eventually(Duration::from_secs(90), || {
        let db = db.clone();
        async move {
            let units: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM orders WHERE item_id = ?",
            )
            .bind(item)
            .fetch_one(&db)
            .await
            .unwrap();
            (units >= STOCK).then_some(())
        }
    })
    .await;
    assert_promises_kept(&db, item, STOCK, LIMIT, &confirmed).await;
    let report = app.services.reconciler.run_once(sale, false).await.unwrap();
    assert!(report.ok, "{}", report.to_table());
}

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

#[tokio::test]
async fn a_sentinel_failover_loses_no_confirmed_order_in_the_default_mode() {
    let sentinel = PrivateServer::start("sentinel");
    let (master, replica) = (sentinel.ports[3], sentinel.ports[4]);
    let settings = rate_limited(&sentinel.url()).await;
    assert_eq!(settings.buy.confirm, ConfirmMode::Replica, "the default");
    let app = spawn_with(settings).await;
    let (sale, item) = app.create_live_sale(STOCK, LIMIT).await;
    let shoppers = Shoppers::start(&app.base, sale, item, 64, 1_200);
    shoppers.wait_confirmed(300, Duration::from_secs(60)).await;

    let at_fault = shoppers.confirmed();
    sentinel.kill_redis_on(master);
    let killed = Instant::now();
    eventually(Duration::from_secs(60), || async {
        (sentinel_master(&sentinel).await == Some(replica)).then_some(())
    })
    .await;
    eprintln!(
        "Sentinel promoted the replica {:?} after the SIGKILL",
        killed.elapsed()
    );
    // The dead master comes back, as a supervisor restarts it, as the new master's replica:
    // until then nothing can be confirmed (the new master has no replica to acknowledge).
    sentinel.restart();
    sell_out_and_check(&app, shoppers, sale, item, at_fault, "failover").await;
}

#[tokio::test]
async fn redis_restarted_empty_is_rebuilt_from_mysql_and_every_confirmed_order_stands() {
    let redis = PrivateServer::start("redis");
    let mut settings = rate_limited(&redis.url()).await;
    // Confirmed only once the broker has the order: nothing confirmed lives only in Redis.
    settings.buy.confirm = ConfirmMode::Kafka;
    let app = spawn_with(settings).await;
    let (sale, item) = app.create_live_sale(STOCK, LIMIT).await;
    let shoppers = Shoppers::start(&app.base, sale, item, 64, 1_200);
    shoppers.wait_confirmed(300, Duration::from_secs(60)).await;

    let at_fault = shoppers.confirmed();
    redis.kill_redis_on(redis.ports[1]);
    redis.kill_redis_on(redis.ports[0]);
    for dir in ["redis", "redis-replica"] {
        std::fs::remove_dir_all(redis.dir.join(dir)).unwrap();
    }
    redis.restart();
    let keys = app.keys().item(sale, item);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stock: Option<i64> = conn.get(&keys.stock).await.unwrap();
    assert_eq!(stock, None, "Redis came back empty");
    sell_out_and_check(&app, shoppers, sale, item, at_fault, "data loss").await;
    let rebuilt: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE item_id = ?")
        .bind(item)
        .fetch_one(app.db())
        .await
        .unwrap();
    assert!(rebuilt > 0);
}

#[tokio::test]
async fn redis_sigkilled_and_restarted_from_its_aof_keeps_every_confirmed_order() {
    let redis = PrivateServer::start("redis");
    let settings = rate_limited(&redis.url()).await;
    let app = spawn_with(settings).await;
    let (sale, item) = app.create_live_sale(STOCK, LIMIT).await;
    let shoppers = Shoppers::start(&app.base, sale, item, 64, 1_200);
    shoppers.wait_confirmed(300, Duration::from_secs(60)).await;

    let at_fault = shoppers.confirmed();
    redis.kill_redis_on(redis.port);
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart();
    let ledger = crate::helpers::redis_ledger(app.redis(), &app.keys(), sale, item)
        .await
        .events
        .len();
    assert!(
        ledger as usize >= at_fault,
        "the AOF brought back every reservation ({ledger} ledger entries, {at_fault} confirmed)"
    );
    sell_out_and_check(&app, shoppers, sale, item, at_fault, "AOF restart").await;
}
