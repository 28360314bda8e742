//! Messages delivered twice: one row each, the stock decremented once.

use std::time::Duration;

use crate::support::{
    events, eventually, mysql_figures, produce_events, spawn_app, wait_rows_exactly,
};

#[tokio::test]
async fn redelivered_events_leave_one_row_each_and_stock_decremented_once() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(100, 1).await;
    let batch = events(sale, item, 30, "r");
    produce_events(app.settings(), &batch).await;
    produce_events(app.settings(), &batch).await;
    wait_rows_exactly(app.db(), item, 30, Duration::from_secs(60)).await;
    // Let any second copies arrive, then check nothing changed.
    let dup = app
        .services
        .metrics
        .consumer
        .orders
        .with_label_values(&["duplicate"]);
    eventually(Duration::from_secs(60), || {
        let v = dup.get();
        async move { (v >= 30).then_some(()) }
    })
    .await;
    assert_eq!(mysql_figures(app.db(), item).await, (30, 30, 70));
    app.stop().await;
}
