//! Orders persisted per second into MariaDB by the consumer's batch path, for one hot item and
//! for many items, beside the naive one-transaction-per-order rate, in the same run.
//!
//! Needs the local stack's MariaDB (`deploy/local/stack.sh up mysql`); reads SECKILL_MYSQL_URL.
//! Run: `cargo bench --bench persist` (or deploy/local/bench.sh for every benchmark).

use std::time::Instant;

use chrono::Utc;
use seckill::{
    domain::{NewItem, NewSale},
    kafka::events::OrderReserved,
    store::{orders::persist_batch, sales::insert_sale},
};
use sqlx::MySqlPool;
use uuid::Uuid;

#[path = "common.rs"]
mod common;
use common::{drop_database, fresh_pool};

/// Orders per batch, as the consumer's default `batch_max`.
const BATCH: usize = 2_000;
/// Orders persisted in each batched scenario.
const ORDERS: usize = 40_000;
/// Orders persisted one transaction each (enough for a stable rate).
const NAIVE_ORDERS: usize = 1_000;

async fn sale(pool: &MySqlPool, items: usize) -> (u64, Vec<u64>) {
    let now = Utc::now();
    let record = insert_sale(
        pool,
        &NewSale {
            name: "bench".into(),
            starts_at: now,
            ends_at: now + chrono::Duration::hours(1),
            items: (0..items)
                .map(|i| NewItem {
                    sku: format!("s{i}"),
                    title: "t".into(),
                    price_cents: 1,
                    stock: 1_000_000_000,
                    per_user_limit: 1,
                    payment_window_secs: 900,
                })
                .collect(),
        },
        "v1",
    )
    .await
    .unwrap();
    (record.sale.id, record.items.iter().map(|i| i.id).collect())
}

fn events(sale: u64, items: &[u64], n: usize, tag: &str) -> Vec<OrderReserved> {
    (0..n)
        .map(|i| {
            OrderReserved::new(
                Uuid::now_v7(),
                sale,
                items[i % items.len()],
                &format!("{tag}-{i}"),
                1,
                1,
                Utc::now().timestamp_millis(),
            )
        })
        .collect()
}

async fn rate(pool: &MySqlPool, events: &[OrderReserved], batch: usize) -> f64 {
    let started = Instant::now();
    let mut persisted = 0;
    for chunk in events.chunks(batch) {
        persisted += persist_batch(pool, chunk).await.unwrap().persisted;
    }
    assert_eq!(persisted as usize, events.len());
    events.len() as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let (pool, admin_url, name) = fresh_pool().await;

    let (hot_sale, hot_item) = sale(&pool, 1).await;
    let hot = rate(&pool, &events(hot_sale, &hot_item, ORDERS, "hot"), BATCH).await;

    let (many_sale, many_items) = sale(&pool, 100).await;
    let many = rate(
        &pool,
        &events(many_sale, &many_items, ORDERS, "many"),
        BATCH,
    )
    .await;

    let (naive_sale, naive_item) = sale(&pool, 1).await;
    let naive = rate(
        &pool,
        &events(naive_sale, &naive_item, NAIVE_ORDERS, "naive"),
        1,
    )
    .await;

    println!("orders persisted per second into MariaDB (batches of {BATCH}, {ORDERS} orders each)");
    println!(
        "   hot single item   {hot:>9.0} /s   {:>5.1}x naive   (goal >= 20000 /s and >= 40x)",
        hot / naive
    );
    println!(
        "   100 items         {many:>9.0} /s   {:>5.1}x naive",
        many / naive
    );
    println!("   naive, 1 tx/order {naive:>9.0} /s   ({NAIVE_ORDERS} orders)");

    drop_database(pool, &admin_url, &name).await;
}
