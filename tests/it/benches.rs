//! The benchmarks' work, run small so that it cannot rot between benchmark runs: the same code
//! as `cargo bench --bench persist` and `--bench expiry` (their scenarios are included here),
//! against the stack's MariaDB and Redis. The figures are printed, not judged: speed is
//! measured by the benchmarks on a quiet machine, not by tests on a shared one.

#[path = "../../benches/scenario/common.rs"]
mod common;
#[path = "../../benches/scenario/expiry.rs"]
mod expiry;
#[path = "../../benches/scenario/persist.rs"]
mod persist;

use crate::support::stack_redis;

#[tokio::test]
async fn the_persist_benchmark_runs() {
    let (pool, admin_url, name) = common::fresh_pool().await;
    let sizes = persist::Sizes {
        batch: 500,
        orders: 2_000,
        naive_orders: 50,
    };
    let r = persist::measure(&pool, sizes).await;
    eprintln!("persist, {sizes:?}: {r:?}");
    for rate in [r.hot, r.many, r.naive] {
        assert!(rate.is_finite() && rate > 0.0, "{r:?}");
    }
    common::drop_database(pool, &admin_url, &name).await;
}

#[tokio::test]
async fn the_expiry_benchmark_runs() {
    let (pool, admin_url, name) = common::fresh_pool().await;
    let redis = stack_redis(2).await;
    // Several batches, so the pass goes round its loop.
    let rate = expiry::measure(&pool, &redis, 2_000, 300).await;
    eprintln!("expiry, 2000 orders in batches of 300: {rate:.0} orders/s");
    assert!(rate.is_finite() && rate > 0.0, "{rate}");
    common::drop_database(pool, &admin_url, &name).await;
}
