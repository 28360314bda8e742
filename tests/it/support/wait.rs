//! Waiting: poll a check until it holds, or until the consumer has persisted an item's orders.

use std::{future::Future, time::Duration};

use sqlx::MySqlPool;

use super::{TestApp, order_rows};

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (`timeout` at most) until MySQL holds exactly `n` orders of `item`.
pub async fn wait_rows_exactly(db: &MySqlPool, item: u64, n: i64, timeout: Duration) {
    eventually(timeout, || async move {
        (order_rows(db, item).await.unwrap() == n).then_some(())
    })
    .await;
}

/// Waits (`timeout` at most) until MySQL holds at least `n` orders of `item`.
pub async fn wait_rows_at_least(db: &MySqlPool, item: u64, n: i64, timeout: Duration) {
    eventually(timeout, || async move {
        (order_rows(db, item).await.unwrap() >= n).then_some(())
    })
    .await;
}

/// Waits (60 s at most) until MySQL holds at least `n` orders of `item`.
pub async fn wait_rows(app: &TestApp, item: u64, n: i64) {
    wait_rows_at_least(app.db(), item, n, Duration::from_secs(60)).await;
}

/// Waits (`timeout` at most) until MySQL holds `n` orders in all; errors (MariaDB on its way
/// back) count as not yet.
pub async fn wait_all_orders(db: &MySqlPool, n: i64, timeout: Duration) {
    eventually(timeout, || async move {
        (super::all_orders(db).await.ok()? == n).then_some(())
    })
    .await;
}
