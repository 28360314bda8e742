//! Orders persisted per second into MariaDB by the consumer's batch path, for one hot item and
//! for many items, beside the naive one-transaction-per-order rate, in the same run.
//!
//! Needs the local stack's MariaDB (`deploy/local/stack.sh up mysql`); reads SECKILL_MYSQL_URL.
//! Run: `cargo bench --bench persist` (or deploy/local/bench.sh for every benchmark). The work
//! itself is in `scenario/persist.rs`, which the test suite also runs at a small size.

#[path = "scenario/common.rs"]
mod common;
#[path = "scenario/persist.rs"]
mod scenario;

use common::{drop_database, fresh_pool};
use scenario::Sizes;

/// The consumer's default `batch_max`, 40,000 orders per batched scenario and enough naive
/// transactions for a stable rate.
const SIZES: Sizes = Sizes {
    batch: 2_000,
    orders: 40_000,
    naive_orders: 1_000,
};

#[tokio::main]
async fn main() {
    let (pool, admin_url, name) = fresh_pool().await;
    let r = scenario::measure(&pool, SIZES).await;
    let Sizes {
        batch,
        orders,
        naive_orders,
    } = SIZES;
    println!("orders persisted per second into MariaDB (batches of {batch}, {orders} orders each)");
    println!(
        "   hot single item   {:>9.0} /s   {:>5.1}x naive   (goal >= 20000 /s and >= 40x)",
        r.hot,
        r.hot / r.naive
    );
    println!(
        "   100 items         {:>9.0} /s   {:>5.1}x naive",
        r.many,
        r.many / r.naive
    );
    println!(
        "   naive, 1 tx/order {:>9.0} /s   ({naive_orders} orders)",
        r.naive
    );
    drop_database(pool, &admin_url, &name).await;
}
