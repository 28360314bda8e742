//! Waiting: poll a check until it holds, or until the consumer has persisted an item's orders.

use std::{future::Future, time::Duration};

use super::TestApp;

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

/// Waits (60 s at most) until MySQL holds at least `n` orders of `item`.
pub async fn wait_rows(app: &TestApp, item: u64, n: i64) {
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move {
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE item_id = ?")
                .bind(item)
                .fetch_one(&db)
                .await
                .unwrap();
            (rows >= n).then_some(())
        }
    })
    .await;
}
