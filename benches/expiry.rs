//! Orders expired per second, units given back in MySQL and Redis: one hot item with 40,000
//! unpaid orders whose windows have passed, expired by the expiry job's pass (one transaction
//! and one `release.v5` call per batch of 1,000) until none is left.
//!
//! Needs the local stack's MariaDB and Redis (`deploy/local/stack.sh up redis mysql`); reads
//! SECKILL_MYSQL_URL and SECKILL_REDIS_URL. Run: `cargo bench --bench expiry` (or
//! deploy/local/bench.sh for every benchmark). The work itself is in `scenario/expiry.rs`,
//! which the test suite also runs at a small size.

#[path = "scenario/common.rs"]
mod common;
#[path = "scenario/expiry.rs"]
mod scenario;

use common::{drop_database, fresh_pool};
use seckill::{config::RedisSettings, stores::redis::RedisPool};

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
    let rate = scenario::measure(&pool, &redis, ORDERS, BATCH).await;
    println!(
        "orders expired per second, units back in MySQL and Redis (batches of {BATCH}, {ORDERS} orders)"
    );
    println!("   hot single item   {rate:>9.0} /s   (goal >= 10000 /s)");
    drop_database(pool, &admin_url, &name).await;
}
