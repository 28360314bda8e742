//! Redis data lost: restarted empty mid-sale (`kafka` mode), the item rebuilt from MySQL once the
//! consumer has persisted what Kafka holds; a started sale's lost state rebuilt by prewarm or by
//! the first buy that finds it gone, never warmed afresh; and what MySQL cannot honour stored as
//! rejected.

use std::time::Duration;

use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use seckill::{config::ConfirmMode, domain::order_reserved::OrderReserved};
use uuid::Uuid;

use super::{rate_limited, sell_out_and_check, stampede_under_way, stock_on};
use crate::support::{
    Frozen, PrivateServer, STACK, TestApp, as_buyer, assert_clean, events, eventually,
    failing_checks, mysql_figures, order_rows, produce_events, reserve_in_turn, spawn_app,
    spawn_process_logged, spawn_roles, spawn_with, test_settings, unique, wait_rows,
    wait_rows_exactly, write_config,
};

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
    crate::support::fixed_ports(&mut consumer_settings);
    let log = std::env::temp_dir().join(format!("seckill-consume-{}.log", unique()));
    let consumer = Frozen::new(spawn_process_logged(
        "consume",
        &write_config(&consumer_settings),
        &log,
    ));
    let (sale, item, shoppers) = stampede_under_way(&app).await;

    // Frozen before the loss: what the broker holds from now on is not in MySQL.
    consumer.freeze();
    let frozen_at = order_rows(app.db(), item).await.unwrap();
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
    let in_mysql = order_rows(app.db(), item).await.unwrap();
    eprintln!(
        "data loss: {at_fault} confirmed, {in_mysql} in MySQL (consumer frozen at {frozen_at})"
    );
    assert!(
        (at_fault as i64) > in_mysql,
        "Kafka must hold confirmed orders MySQL does not have"
    );
    let keys = app.item_keys(sale, item).await;
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

/// Every key of the item gone, as after Redis restarted without its data.
/// Every key of the item goes (the buckets of a v5 ledger too), as in a real loss.
async fn lose_state(app: &TestApp, sale: u64, item: u64) {
    let keys = app.item_keys(sale, item).await;
    let base = keys.stock.strip_suffix(":stock").unwrap();
    let mut conn = app.redis().get();
    let all: Vec<String> = conn.keys(format!("{base}:*")).await.unwrap();
    assert!(
        all.len() >= 3,
        "the item had stock, meta and a bucket: {all:?}"
    );
    let _: () = conn.del(&all).await.unwrap();
}

#[tokio::test]
async fn prewarm_of_a_started_sale_with_lost_state_rebuilds_it_from_mysql() {
    let app = spawn_with(test_settings(&STACK.kafka_brokers).await).await;
    let (sale, item) = app.create_live_sale(10, 2).await;
    let (s, first) = app.buy(sale, item, "a", 2, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let (s, keyed) = app.buy(sale, item, "b", 1, Some("key-b")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{keyed}");
    wait_rows(&app, item, 2).await;

    lose_state(&app, sale, item).await;
    let (status, report) = app.prewarm(sale).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["items"][0]["outcome"], "recovered", "{report}");
    assert_eq!(
        report["items"][0]["remaining"], 7,
        "MySQL's remaining units, not the initial 10: {report}"
    );
    // The buyers' units and idempotency keys came back with it.
    let (s, body) = app.buy(sale, item, "a", 1, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "limit_exceeded");
    let (s, replay) = app.buy(sale, item, "b", 1, Some("key-b")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{replay}");
    assert_eq!(
        replay["order_id"], keyed["order_id"],
        "the first order again"
    );
    let (s, _) = app.buy(sale, item, "c", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    wait_rows(&app, item, 3).await;
    assert_clean(&app, sale).await;
}

#[tokio::test]
async fn a_buy_that_finds_the_state_lost_starts_a_recovery_and_reconciliation_reports_it() {
    let app = spawn_with(test_settings(&STACK.kafka_brokers).await).await;
    let (sale, item) = app.create_live_sale(5, 1).await;
    reserve_in_turn(&app, (sale, item), "u", 3).await;
    wait_rows(&app, item, 3).await;
    lose_state(&app, sale, item).await;

    // Reconciliation never calls a lost state "ok".
    let report = app.services.reconciler.run_once(sale, false).await.unwrap();
    assert!(!report.ok);
    let failing = failing_checks(&report);
    assert_eq!(failing, ["redis_state_present"], "{}", report.to_table());

    let (s, body) = app.buy(sale, item, "late", 1, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "recovering");
    // Rebuilt in the background: the two units left sell, and no more.
    let sold: Vec<StatusCode> = eventually(Duration::from_secs(60), || async {
        let (s, _) = app.buy(sale, item, "x0", 1, None).await;
        (s != StatusCode::SERVICE_UNAVAILABLE).then_some(vec![s])
    })
    .await;
    assert_eq!(sold, [StatusCode::ACCEPTED]);
    let (s, _) = app.buy(sale, item, "x1", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, body) = app.buy(sale, item, "x2", 1, None).await;
    assert_eq!(body["code"], "sold_out", "{s} {body}");
    let (s, body) = app.buy(sale, item, "u0", 1, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    wait_rows(&app, item, 5).await;
    assert_clean(&app, sale).await;
}

#[tokio::test]
async fn orders_mysql_cannot_honour_are_stored_as_rejected() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(3, 1).await;
    // As if Redis had lost data: one user twice, and more units than the stock.
    let mut batch = events(sale, item, 4, "x");
    batch.push(OrderReserved::new(
        seckill::domain::order_id::fresh(item, "x0"),
        sale,
        item,
        "x0",
        1,
        1999,
        0,
    ));
    produce_events(app.settings(), &batch).await;
    wait_rows_exactly(app.db(), item, 5, Duration::from_secs(60)).await;
    let (rows, units, stock) = mysql_figures(app.db(), item).await;
    assert_eq!((rows, units, stock), (5, 3, 0));
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT reject_reason FROM orders WHERE item_id = ? AND status = 'rejected' ORDER BY reject_reason",
    )
    .bind(item)
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(reasons, ["stock_exhausted", "user_limit"]);
    // The buyer sees the refusal and its reason through the orders API.
    let rejected: Uuid = sqlx::query_scalar(
        "SELECT order_id FROM orders WHERE item_id = ? AND reject_reason = 'user_limit'",
    )
    .bind(item)
    .fetch_one(app.db())
    .await
    .unwrap();
    let path = format!("/api/v1/orders/{rejected}");
    let (_, view) = as_buyer(&app, Method::GET, "x0", &path).await;
    assert_eq!(view["status"], "rejected", "{view}");
    assert_eq!(view["reject_reason"], "user_limit", "{view}");
}
