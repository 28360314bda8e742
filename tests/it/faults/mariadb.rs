//! MariaDB stopped while the consumer persists: it retries with backoff, commits nothing
//! meanwhile, and loses or duplicates nothing once MariaDB is back.

use std::time::Duration;

use crate::support::{
    PrivateServer, STACK, database_on, events, mysql_figures, produce_events, spawn_with,
    test_settings, wait_all_orders, wait_rows_exactly,
};

#[tokio::test]
async fn mariadb_stopped_during_consumption_loses_nothing_and_duplicates_nothing() {
    let mysql = PrivateServer::start("mysql");
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.mysql.url = seckill::config::Secret::new(database_on(&mysql.url()).await);
    let app = spawn_with(settings).await;
    let (sale, item) = app.create_live_sale(1_000, 1).await;
    produce_events(app.settings(), &events(sale, item, 100, "a")).await;
    wait_rows_exactly(app.db(), item, 100, Duration::from_secs(60)).await;
    mysql.stop();
    produce_events(app.settings(), &events(sale, item, 150, "b")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    mysql.run("start");
    wait_all_orders(app.db(), 250, Duration::from_secs(120)).await;
    assert_eq!(mysql_figures(app.db(), item).await, (250, 250, 750));
    app.stop().await;
}
