//! The local stack's servers (the variables `stack.sh env` prints), the secrets every test app
//! runs with, and the settings of an isolated app: its own database, key prefix, topic and group.

use std::sync::LazyLock;

use seckill::config::Settings;
use sqlx::{Connection, MySqlConnection};
use uuid::Uuid;

/// A random secret of 64 hex characters (tests never run with a guessable one).
fn random_secret() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// Admin token of every test app (random per test process).
pub static ADMIN_TOKEN: LazyLock<String> = LazyLock::new(random_secret);
/// JWT secret of every test app.
pub static JWT_SECRET: LazyLock<String> = LazyLock::new(random_secret);
/// Payment notification secret of every test app.
pub static PAYMENT_SECRET: LazyLock<String> = LazyLock::new(random_secret);

/// Where the stack's servers are (the variables `stack.sh env` prints).
pub struct Stack {
    pub redis_url: String,
    pub mysql_url: String,
    pub kafka_brokers: String,
    /// The CA that signed the stack's server certificate.
    pub tls_ca_file: String,
    /// The stack Redis master's TLS port, as a `rediss://` URL.
    pub redis_tls_url: String,
}

pub static STACK: LazyLock<Stack> = LazyLock::new(|| {
    let home = std::env::var("HOME").unwrap_or_default();
    Stack {
        redis_url: std::env::var("SECKILL_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:16379/".into()),
        mysql_url: std::env::var("SECKILL_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://seckill:seckill@127.0.0.1:13306/seckill".into()),
        kafka_brokers: std::env::var("SECKILL_KAFKA_BROKERS")
            .unwrap_or_else(|_| "127.0.0.1:19092".into()),
        tls_ca_file: std::env::var("STACK_TLS_CA_FILE")
            .unwrap_or_else(|_| format!("{home}/.local/state/seckill/stack/tls/ca.crt")),
        redis_tls_url: std::env::var("STACK_REDIS_TLS_URL")
            .unwrap_or_else(|_| "rediss://localhost:16389/".into()),
    }
});

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("TEST_LOG").unwrap())
            .with_test_writer()
            .try_init();
    }
});

/// A short unique suffix.
pub fn unique() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// The MySQL URL `server_url` with another database name.
pub fn url_with_database(server_url: &str, db: &str) -> String {
    let cut = server_url.rfind('/').expect("a database path");
    format!("{}/{db}", &server_url[..cut])
}

/// The stack's MySQL URL with another database name.
pub fn mysql_url_for(db: &str) -> String {
    url_with_database(&STACK.mysql_url, db)
}

/// Creates an empty database on the MariaDB at `server_url` and returns its URL.
pub async fn database_on(server_url: &str) -> String {
    let name = format!("seckill_t_{}", unique());
    let answers = "MariaDB answers (the stack's: run deploy/local/stack.sh up)";
    let mut conn = MySqlConnection::connect(server_url).await.expect(answers);
    let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"));
    sqlx::query(create).execute(&mut conn).await.unwrap();
    url_with_database(server_url, &name)
}

/// Creates an empty database on the stack's MariaDB and returns its URL.
pub async fn fresh_database() -> String {
    database_on(&STACK.mysql_url).await
}

/// Settings for an isolated test app; `kafka` is a bootstrap list or `embedded`.
pub async fn test_settings(kafka: &str) -> Settings {
    settings_on(&STACK.redis_url, &fresh_database().await, kafka)
}

/// Settings for an isolated test app on the given servers (private ones, for fault tests):
/// its own key prefix, topic and group; `mysql_url` names the database it owns.
pub fn settings_on(redis_url: &str, mysql_url: &str, kafka: &str) -> Settings {
    LazyLock::force(&TRACING);
    let id = unique();
    let mut s = Settings {
        admin_token: seckill::config::Secret::new(ADMIN_TOKEN.as_str()),
        jwt_secret: seckill::config::Secret::new(JWT_SECRET.as_str()),
        payment_secret: seckill::config::Secret::new(PAYMENT_SECRET.as_str()),
        ..Settings::default()
    };
    s.http.addr = "127.0.0.1:0".parse().unwrap();
    s.admin_addr = "127.0.0.1:0".parse().unwrap();
    s.redis.url = redis_url.to_string();
    s.redis.pool_size = 2;
    s.redis.key_prefix = format!("t{id}:");
    s.mysql.url = seckill::config::Secret::new(mysql_url);
    s.mysql.max_connections = 8;
    s.kafka.brokers = kafka.to_string();
    s.kafka.topic = format!("seckill-t-{id}");
    s.kafka.dead_letter_topic = format!("seckill-t-{id}-dlq");
    s.lifecycle.events_topic = format!("seckill-t-{id}-events");
    s.kafka.group_id = format!("g-{id}");
    s.kafka.partitions = 2;
    s.limits.global_per_sec = 0;
    s.limits.per_user_per_sec = 0;
    s.relay.interval_ms = 200;
    s.kafka.message_timeout_ms = 2_000;
    s.relay.redeliver_after_ms = 3_000;
    s.sale.grace_secs = 3_600;
    s.reconcile.interval_secs = 0;
    s.reconcile.ledger_grace_secs = 0;
    s
}
