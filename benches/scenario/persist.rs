//! The persistence benchmark's work: orders persisted per second into MariaDB by the consumer's
//! batch path, for one hot item and for many items, beside the naive one-transaction-per-order
//! rate. `benches/persist.rs` runs it at full size; the test suite runs it small, so it cannot
//! rot unnoticed.

use std::time::Instant;

use chrono::Utc;
use seckill::{
    domain::{NewItem, NewSale, order_reserved::OrderReserved},
    stores::mysql::{orders::persist_batch, sales::insert_sale},
};
use sqlx::MySqlPool;
use uuid::Uuid;

/// How much to persist.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Orders per batch.
    pub batch: usize,
    /// Orders persisted in each batched scenario.
    pub orders: usize,
    /// Orders persisted one transaction each.
    pub naive_orders: usize,
}

/// Orders per second in each scenario.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// One item, batched.
    pub hot: f64,
    /// 100 items, batched.
    pub many: f64,
    /// One item, one transaction per order.
    pub naive: f64,
}

/// Runs the three scenarios on `pool` (a migrated database of its own); panics unless every
/// order was persisted.
pub async fn measure(pool: &MySqlPool, sizes: Sizes) -> Rates {
    let (hot_sale, hot_item) = sale(pool, 1).await;
    let hot_events = events(hot_sale, &hot_item, sizes.orders, "hot");
    let hot = rate(pool, &hot_events, sizes.batch).await;

    let (many_sale, many_items) = sale(pool, 100).await;
    let many_events = events(many_sale, &many_items, sizes.orders, "many");
    let many = rate(pool, &many_events, sizes.batch).await;

    let (naive_sale, naive_item) = sale(pool, 1).await;
    let naive_events = events(naive_sale, &naive_item, sizes.naive_orders, "naive");
    let naive = rate(pool, &naive_events, 1).await;
    Rates { hot, many, naive }
}

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
                    shards: 1,
                })
                .collect(),
            admission: Default::default(),
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
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(persisted as usize, events.len());
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE sale_id = ?")
        .bind(events[0].sale_id)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(rows as usize, events.len(), "every order has its row");
    events.len() as f64 / secs
}
