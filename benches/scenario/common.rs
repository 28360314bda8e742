//! What the benchmarks and their smoke test share: a fresh MariaDB database of the local stack,
//! dropped afterwards.

use sqlx::{Connection, MySqlConnection, MySqlPool};
use uuid::Uuid;

use seckill::stores::mysql;

/// A migrated database of its own on the stack's MariaDB (SECKILL_MYSQL_URL): the pool, the
/// admin URL and the database's name.
pub async fn fresh_pool() -> (MySqlPool, String, String) {
    let url = std::env::var("SECKILL_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://seckill:seckill@127.0.0.1:13306/seckill".into());
    let name = format!("seckill_bench_{}", Uuid::new_v4().simple());
    let mut conn = MySqlConnection::connect(&url)
        .await
        .expect("MariaDB answers");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let db_url = format!("{}/{name}", &url[..url.rfind('/').unwrap()]);
    let settings = seckill::config::MySqlSettings {
        url: seckill::config::Secret::new(db_url),
        max_connections: 4,
        migrate_on_start: true,
    };
    let pool = mysql::connect(&settings).await.unwrap();
    mysql::migrate(&pool).await.unwrap();
    (pool, url, name)
}

/// Drops the database made by [`fresh_pool`].
pub async fn drop_database(pool: MySqlPool, admin_url: &str, name: &str) {
    pool.close().await;
    let mut conn = MySqlConnection::connect(admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
}
