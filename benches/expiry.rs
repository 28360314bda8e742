//! Orders expired per second, units given back in MySQL and Redis: one hot item with 40,000
//! unpaid orders whose windows have passed, expired by the expiry job's pass (one transaction
//! and one `release.v4` call per batch of 1,000) until none is left.
//!
//! Needs the local stack's MariaDB and Redis (`deploy/local/stack.sh up redis mysql`); reads
//! SECKILL_MYSQL_URL and SECKILL_REDIS_URL. Run: `cargo bench --bench expiry` (or
//! deploy/local/bench.sh for every benchmark).

use std::{sync::Arc, time::Instant};

use chrono::Utc;
use seckill::{
    config::RedisSettings,
    domain::{NewItem, NewSale},
    kafka::events::OrderReserved,
    lifecycle::Lifecycle,
    metrics::Metrics,
    redis_pool::RedisPool,
    stock::{Keys, PrewarmItem, PrewarmMode, ScriptRegistry, StockService, scripts::ScriptKind},
    store::{orders::persist_batch, sales::insert_sale},
};
use uuid::Uuid;

#[path = "common.rs"]
mod common;
use common::{drop_database, fresh_pool};

/// Unpaid orders expired in the run.
const ORDERS: usize = 40_000;
/// Orders per expiry transaction (the default `SECKILL_LIFECYCLE_EXPIRY_BATCH`).
const BATCH: u32 = 1_000;

#[tokio::main]
async fn main() {
    let (pool, admin_url, name) = fresh_pool().await;
    let redis = RedisPool::connect(&RedisSettings {
        url: std::env::var("SECKILL_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:16379/".into()),
        pool_size: 2,
        ..Default::default()
    })
    .await
    .expect("Redis answers");
    let metrics = Arc::new(Metrics::new());
    let scripts = Arc::new(ScriptRegistry::new(metrics.clone()));
    let prefix = format!("benchexpiry{}:", Uuid::new_v4().simple());
    let stock = StockService::new(redis.clone(), Keys::new(&prefix), scripts.clone());

    let now = Utc::now();
    let record = insert_sale(
        &pool,
        &NewSale {
            name: "expiry bench".into(),
            starts_at: now - chrono::Duration::seconds(1),
            ends_at: now + chrono::Duration::hours(1),
            items: vec![NewItem {
                sku: "hot".into(),
                title: "t".into(),
                price_cents: 1,
                stock: ORDERS as u32,
                per_user_limit: 1,
                payment_window_secs: 5,
            }],
        },
        "v4",
    )
    .await
    .unwrap();
    let (sale_id, item_id) = (record.sale.id, record.items[0].id);
    let uid = record.sale.uid.clone();
    stock
        .prewarm(
            &PrewarmItem {
                sale_id,
                item_id,
                stock: ORDERS as u64,
                per_user_limit: 1,
                price_cents: 1,
                starts_at_ms: record.sale.starts_at.timestamp_millis(),
                ends_at_ms: record.sale.ends_at.timestamp_millis(),
                expire_at_ms: (record.sale.ends_at + chrono::Duration::hours(1)).timestamp_millis(),
                script_version: "v4".into(),
                sale_uid: uid.clone(),
                initial_stock: ORDERS as u64,
            },
            PrewarmMode::Warm,
        )
        .await
        .unwrap();

    // Every unit reserved in Redis (deduct batches of 1,000) and persisted in MySQL.
    let events: Vec<OrderReserved> = (0..ORDERS)
        .map(|i| {
            OrderReserved::new(
                Uuid::now_v7(),
                sale_id,
                item_id,
                &format!("u{i}"),
                1,
                1,
                Utc::now().timestamp_millis(),
            )
        })
        .collect();
    let deduct = scripts.get(ScriptKind::Deduct, "v4").unwrap().clone();
    let keys = stock.keys().item(sale_id, item_id);
    for chunk in events.chunks(1_000) {
        let _: Vec<redis::Value> = scripts
            .invoke(&mut redis.get(), &deduct, &keys.as_script_keys(), |cmd| {
                cmd.arg(&uid).arg(chunk.len());
                for e in chunk {
                    cmd.arg(&e.user_id)
                        .arg(1)
                        .arg(e.order_id.to_string())
                        .arg(e.to_bytes())
                        .arg("");
                }
            })
            .await
            .unwrap();
    }
    for chunk in events.chunks(2_000) {
        persist_batch(&pool, chunk).await.unwrap();
    }
    sqlx::query("UPDATE orders SET expires_at = ? WHERE item_id = ?")
        .bind(Utc::now() - chrono::Duration::seconds(1))
        .bind(item_id)
        .execute(&pool)
        .await
        .unwrap();

    let lifecycle = Lifecycle::new(pool.clone(), stock.clone(), metrics, BATCH);
    // What the expiry job runs in each turn: batch after batch until none is due.
    let started = Instant::now();
    let expired = lifecycle.expire_all_due().await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(expired, ORDERS);
    let back: i64 = redis::cmd("GET")
        .arg(&keys.stock)
        .query_async(&mut redis.get())
        .await
        .unwrap();
    assert_eq!(back, ORDERS as i64, "every unit back in Redis");
    let mysql: i64 =
        sqlx::query_scalar("SELECT CAST(stock AS SIGNED) FROM sale_items WHERE id = ?")
            .bind(item_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(mysql, ORDERS as i64, "every unit back in MySQL");
    println!(
        "orders expired per second, units back in MySQL and Redis (batches of {BATCH}, {ORDERS} orders)"
    );
    println!(
        "   hot single item   {:>9.0} /s   (goal >= 10000 /s)",
        ORDERS as f64 / secs
    );

    let _: () = redis::cmd("UNLINK")
        .arg(&keys.as_script_keys())
        .query_async(&mut redis.get())
        .await
        .unwrap();
    drop_database(pool, &admin_url, &name).await;
}
