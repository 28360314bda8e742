//! The expiry benchmark's work: one hot item with `orders` unpaid orders whose windows have
//! passed, expired by the expiry job's pass (one transaction and one `release.v5` call per
//! batch) until none is left; every unit must be back in MySQL and Redis. `benches/expiry.rs`
//! runs it at full size; the test suite runs it small, so it cannot rot unnoticed.

use std::{sync::Arc, time::Instant};

use chrono::Utc;
use seckill::{
    domain::{NewItem, NewSale, order_reserved::OrderReserved},
    observe::metrics::Metrics,
    orders::lifecycle::Lifecycle,
    stock::{PrewarmItem, PrewarmMode, ScriptRegistry, StockService, scripts::ScriptKind},
    stores::{
        mysql::{
            orders::persist_batch,
            sales::{SaleRecord, insert_sale},
        },
        redis::{
            RedisPool,
            keys::{ItemKeys, Keys},
        },
    },
};
use sqlx::MySqlPool;
use uuid::Uuid;

/// Orders reserved per `deduct.v5` call while setting up.
const DEDUCT_CHUNK: usize = 1_000;
/// Orders persisted per batch while setting up.
const PERSIST_CHUNK: usize = 2_000;

/// Expires `orders` due orders in batches of `batch` on `pool` (a migrated database of its
/// own) and `redis` (under a key prefix of its own, removed afterwards); returns orders expired
/// per second. Panics unless every unit came back on both sides.
pub async fn measure(pool: &MySqlPool, redis: &RedisPool, orders: usize, batch: u32) -> f64 {
    let metrics = Arc::new(Metrics::new());
    let scripts = Arc::new(ScriptRegistry::new(metrics.clone()));
    let prefix = format!("benchexpiry{}:", Uuid::new_v4().simple());
    let stock = StockService::new(redis.clone(), Keys::new(&prefix), scripts.clone());
    let record = sale(pool, &stock, orders).await;
    let (sale_id, item_id) = (record.sale.id, record.items[0].id);
    let keys = stock.keys().item(sale_id, item_id);
    reserve_all(pool, redis, &scripts, &keys, &record, orders).await;

    let lifecycle = Lifecycle::new(pool.clone(), stock.clone(), metrics, batch);
    // What the expiry job runs in each turn: batch after batch until none is due.
    let started = Instant::now();
    let expired = lifecycle.expire_all_due().await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(expired, orders);
    let back: i64 = redis::cmd("GET")
        .arg(&keys.stock)
        .query_async(&mut redis.get())
        .await
        .unwrap();
    assert_eq!(back, orders as i64, "every unit back in Redis");
    let mysql: i64 =
        sqlx::query_scalar("SELECT CAST(stock AS SIGNED) FROM sale_items WHERE id = ?")
            .bind(item_id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(mysql, orders as i64, "every unit back in MySQL");
    let _: () = redis::cmd("UNLINK")
        .arg(&keys.as_script_keys())
        .query_async(&mut redis.get())
        .await
        .unwrap();
    orders as f64 / secs
}

/// A started v5 sale of one item with `orders` units, warmed into Redis.
async fn sale(pool: &MySqlPool, stock: &StockService, orders: usize) -> SaleRecord {
    let now = Utc::now();
    let record = insert_sale(
        pool,
        &NewSale {
            name: "expiry bench".into(),
            starts_at: now - chrono::Duration::seconds(1),
            ends_at: now + chrono::Duration::hours(1),
            items: vec![NewItem {
                sku: "hot".into(),
                title: "t".into(),
                price_cents: 1,
                stock: orders as u32,
                per_user_limit: 1,
                payment_window_secs: 5,
                shards: 1,
            }],
            admission: Default::default(),
        },
        "v5",
    )
    .await
    .unwrap();
    let sale = &record.sale;
    stock
        .prewarm(
            &PrewarmItem {
                sale_id: sale.id,
                item_id: record.items[0].id,
                stock: orders as u64,
                per_user_limit: 1,
                price_cents: 1,
                starts_at_ms: sale.starts_at.timestamp_millis(),
                ends_at_ms: sale.ends_at.timestamp_millis(),
                expire_at_ms: (sale.ends_at + chrono::Duration::hours(1)).timestamp_millis(),
                script_version: "v5".into(),
                sale_uid: sale.uid.clone(),
                initial_stock: orders as u64,
                shards: 1,
            },
            PrewarmMode::Warm,
        )
        .await
        .unwrap();
    record
}

/// Every unit reserved in Redis and persisted in MySQL, each order's window already passed.
async fn reserve_all(
    pool: &MySqlPool,
    redis: &RedisPool,
    scripts: &ScriptRegistry,
    keys: &ItemKeys,
    record: &SaleRecord,
    orders: usize,
) {
    let (sale_id, item_id) = (record.sale.id, record.items[0].id);
    let events: Vec<OrderReserved> = (0..orders)
        .map(|i| {
            OrderReserved::new(
                seckill::domain::order_id::fresh(item_id, &format!("u{i}")),
                sale_id,
                item_id,
                &format!("u{i}"),
                1,
                1,
                Utc::now().timestamp_millis(),
            )
        })
        .collect();
    let deduct = scripts.get(ScriptKind::Deduct, "v5").unwrap().clone();
    for chunk in events.chunks(DEDUCT_CHUNK) {
        let _: Vec<redis::Value> = deduct
            .invoke(&mut redis.get(), &keys.as_script_keys(), |cmd| {
                cmd.arg(&record.sale.uid).arg(chunk.len());
                for e in chunk {
                    cmd.arg(&e.user_id)
                        .arg(1)
                        .arg(e.order_id.as_bytes())
                        .arg(seckill::stock::compact::base36(e.reserved_at_ms))
                        .arg("");
                }
            })
            .await
            .unwrap();
    }
    for chunk in events.chunks(PERSIST_CHUNK) {
        persist_batch(pool, chunk).await.unwrap();
    }
    sqlx::query("UPDATE orders SET expires_at = ? WHERE item_id = ?")
        .bind(Utc::now() - chrono::Duration::seconds(1))
        .bind(item_id)
        .execute(pool)
        .await
        .unwrap();
}
