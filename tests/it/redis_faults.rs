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
    helpers::{
        PrivateServer, STACK, TestApp, eventually, fresh_database, settings_on,
        spawn_process_logged, spawn_roles, spawn_with, unique, write_config,
    },
    processes::Frozen,
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
    answers
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

/// The item's remaining stock as the Redis server on `port` holds it.
async fn stock_on(port: u16, keys: &seckill::stores::redis::keys::ItemKeys) -> Option<i64> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    conn.get(&keys.stock).await.ok()?
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
    let (sale, item) = app.create_live_sale(STOCK, LIMIT).await;
    let keys = app.keys().item(sale, item);
    let shoppers = Shoppers::start(&app.base, sale, item, 64, 1_200);
    shoppers.wait_confirmed(300, Duration::from_secs(60)).await;

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

/// Rows MySQL holds for an item.
async fn persisted(db: &MySqlPool, item: u64) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE item_id = ?")
        .bind(item)
        .fetch_one(db)
        .await
        .unwrap()
}

/// How long the consumer stays frozen after Redis came back empty: well past the producer's
/// message timeout, after which a rebuild that did not wait for the consumer would have run.
const FROZEN_AFTER_LOSS: Duration = Duration::from_secs(12);

#[tokio::test]
async fn redis_restarted_empty_is_rebuilt_from_mysql_and_every_confirmed_order_stands() {
    let redis = PrivateServer::start("redis");
    let mut settings = rate_limited(&redis.url()).await;
    // Confirmed only once the broker has the order: nothing confirmed lives only in Redis.
    settings.buy.confirm = ConfirmMode::Kafka;
    let app = spawn_roles(settings, false).await;
    // The consumer is a process of its own, so that it can be frozen.
    let mut consumer_settings = app.settings().clone();
    crate::processes::fixed_ports(&mut consumer_settings);
    let log = std::env::temp_dir().join(format!("seckill-consume-{}.log", unique()));
    let consumer = Frozen::new(spawn_process_logged(
        "consume",
        &write_config(&consumer_settings),
        &log,
    ));
    let (sale, item) = app.create_live_sale(STOCK, LIMIT).await;
    let shoppers = Shoppers::start(&app.base, sale, item, 64, 1_200);
    shoppers.wait_confirmed(300, Duration::from_secs(60)).await;

    // Frozen before the loss: what the broker holds from now on is not in MySQL.
    consumer.freeze();
    let frozen_at = persisted(app.db(), item).await;
    shoppers
        .wait_confirmed(frozen_at as usize + 60, Duration::from_secs(60))
        .await;
    let at_fault = shoppers.confirmed();
    redis.kill_redis_on(redis.ports[1]);
    redis.kill_redis_on(redis.ports[0]);
    for dir in ["redis", "redis-replica"] {
        std::fs::remove_dir_all(redis.dir.join(dir)).unwrap();
    }
    redis.restart();
    let in_mysql = persisted(app.db(), item).await;
    eprintln!(
        "data loss: {at_fault} confirmed, {in_mysql} in MySQL (consumer frozen at {frozen_at})"
    );
    assert!(
        (at_fault as i64) > in_mysql,
        "Kafka must hold confirmed orders MySQL does not have"
    );
    let keys = app.keys().item(sale, item);
    assert_eq!(
        stock_on(redis.port, &keys).await,
        None,
        "Redis came back empty"
    );

    // Buys find the state lost and ask for a recovery; it must wait for the consumer.
    tokio::time::sleep(FROZEN_AFTER_LOSS).await;
    assert_eq!(
        stock_on(redis.port, &keys).await,
        None,
        "the item was rebuilt while Kafka still held orders MySQL did not have (log {})",
        log.display()
    );
    consumer.thaw();
    sell_out_and_check(&app, shoppers, sale, item, at_fault, "data loss").await;
    let _ = std::fs::remove_file(log);
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
