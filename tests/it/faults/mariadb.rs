//! MariaDB stopped while the consumer persists: it retries with backoff, commits nothing
//! meanwhile, and loses or duplicates nothing once MariaDB is back.

use std::time::Duration;

use crate::support::{
    PrivateServer, STACK, events, eventually, mysql_figures, produce_events, test_settings, unique,
};

#[tokio::test]
async fn mariadb_stopped_during_consumption_loses_nothing_and_duplicates_nothing() {
    let mysql = PrivateServer::start("mysql");
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    let db_name = format!("seckill_t_{}", unique());
    let admin_url = format!("mysql://seckill:seckill@127.0.0.1:{}/seckill", mysql.port);
    {
        use sqlx::Connection;
        let mut conn = sqlx::MySqlConnection::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    settings.mysql.url = seckill::config::Secret::new(format!(
        "mysql://seckill:seckill@127.0.0.1:{}/{db_name}",
        mysql.port
    ));
    let app = crate::support::spawn_with(settings).await;
    let (sale, item) = app.create_live_sale(1_000, 1).await;
    produce_events(app.settings(), &events(sale, item, 100, "a")).await;
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == 100).then_some(()) }
    })
    .await;
    mysql.stop();
    produce_events(app.settings(), &events(sale, item, 150, "b")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    mysql.run("start");
    eventually(Duration::from_secs(120), || {
        let db = db.clone();
        async move {
            match sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM orders")
                .fetch_one(&db)
                .await
            {
                Ok(250) => Some(()),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(mysql_figures(app.db(), item).await, (250, 250, 750));
    app.stop().await;
}
