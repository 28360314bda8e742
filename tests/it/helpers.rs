//! The test harness: each test gets its own app on port 0, its own MySQL database, its own Redis
//! key prefix and its own Kafka topic and consumer group, all on the real servers of the local
//! stack (`deploy/local/stack.sh up`). Tests therefore run in parallel and never FLUSHALL.

#![allow(dead_code)]

use std::{
    collections::HashSet,
    future::Future,
    net::SocketAddr,
    sync::{Arc, LazyLock},
    time::Duration,
};

use reqwest::StatusCode;
use seckill::{
    api::state::Services,
    app::{Application, ConsumerParts},
    buy::identify::mint_token,
    config::Settings,
    stores::redis::{RedisPool, keys::Keys},
};
use serde_json::{Value, json};
use sqlx::{Connection, MySqlConnection, MySqlPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use crate::processes::{PrivateServer, spawn_process, spawn_process_logged, write_config};

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

/// The stack's MySQL URL with another database name.
pub fn mysql_url_for(db: &str) -> String {
    let base = &STACK.mysql_url;
    let cut = base.rfind('/').expect("a database path");
    format!("{}/{db}", &base[..cut])
}

/// Creates an empty database and returns its URL.
pub async fn fresh_database() -> String {
    let name = format!("seckill_t_{}", unique());
    let mut conn = MySqlConnection::connect(&STACK.mysql_url)
        .await
        .expect("MariaDB of the local stack answers (run deploy/local/stack.sh up)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    mysql_url_for(&name)
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

/// A running app.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    /// The admin listener's base URL.
    pub admin_base: String,
    pub http: reqwest::Client,
    pub services: Arc<Services>,
    pub shutdown: CancellationToken,
    pub server: Option<JoinHandle<anyhow::Result<()>>>,
    pub consumer: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn settings(&self) -> &Settings {
        &self.services.settings
    }
    pub fn db(&self) -> &MySqlPool {
        &self.services.db
    }
    pub fn redis(&self) -> &RedisPool {
        &self.services.redis
    }
    pub fn keys(&self) -> Keys {
        Keys::new(&self.settings().redis.key_prefix)
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_base)
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.admin_url(path))
            .bearer_auth(&*ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Creates a one-item sale that started a second ago and runs 30 minutes.
    pub async fn create_live_sale(&self, stock: i64, per_user_limit: i64) -> (u64, u64) {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/admin/v1/sales",
                Some(live_sale_body(stock, per_user_limit)),
            )
            .await;
        sale_and_item(status, &body)
    }

    /// A buy as `user`; returns status, headers and body.
    pub async fn buy(
        &self,
        sale: u64,
        item: u64,
        user: &str,
        quantity: u32,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let token = mint_token(&JWT_SECRET, user, 600).unwrap();
        let mut req = self
            .http
            .post(self.url(&format!("/api/v1/sales/{sale}/items/{item}/orders")))
            .bearer_auth(token)
            .json(&json!({ "quantity": quantity }));
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Stops the app gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.server.take() {
            h.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts an app (API and order consumer, as `seckill all`) with `settings`.
pub async fn spawn_with(settings: Settings) -> TestApp {
    spawn_roles(settings, true).await
}

/// Starts the API and, if `with_consumer`, the order consumer.
pub async fn spawn_roles(settings: Settings, with_consumer: bool) -> TestApp {
    let services = Arc::new(Services::build(settings).await.expect("services build"));
    let app = Application::bind(services.clone()).await.expect("bind");
    let addr = app.local_addr();
    let admin_base = format!("http://{}", app.admin_addr());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let consumer = with_consumer.then(|| {
        let parts = ConsumerParts::from_services(&services);
        let settings = services.settings.clone();
        let token = shutdown.clone();
        tokio::spawn(async move { parts.run(&settings, token).await })
    });
    TestApp {
        addr,
        base: format!("http://{addr}"),
        admin_base,
        http: reqwest::Client::new(),
        services,
        shutdown,
        server: Some(server),
        consumer,
    }
}

/// Starts an app on the stack's real broker.
pub async fn spawn_app() -> TestApp {
    spawn_with(test_settings(&STACK.kafka_brokers).await).await
}

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

/// Produces events straight to the app's orders topic (as the outbox would).
pub async fn produce_events(
    settings: &Settings,
    events: &[seckill::domain::order_reserved::OrderReserved],
) {
    let endpoint = seckill::stores::kafka::KafkaEndpoint::from_bootstrap(&settings.kafka.brokers);
    let producer = seckill::stores::kafka::producer::OrderProducer::new(
        &endpoint,
        &settings.kafka.topic,
        Duration::from_secs(30),
        Duration::from_millis(5),
    )
    .unwrap();
    let sends = events
        .iter()
        .map(|e| {
            let producer = producer.clone();
            let payload = e.to_bytes();
            let key = e.key();
            async move { producer.send(&key, &payload).await }
        })
        .collect::<Vec<_>>();
    for r in futures::future::join_all(sends).await {
        r.expect("event produced");
    }
}

/// Orders of an item in MySQL: (rows, persisted units, MySQL-side stock).
pub async fn mysql_figures(db: &MySqlPool, item: u64) -> (i64, i64, i64) {
    let (rows, units): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN status IN ('pending_payment','paid') THEN quantity END),0) AS SIGNED) FROM orders WHERE item_id = ?",
    )
    .bind(item)
    .fetch_one(db)
    .await
    .unwrap();
    let stock: i64 =
        sqlx::query_scalar("SELECT CAST(stock AS SIGNED) FROM sale_items WHERE id = ?")
            .bind(item)
            .fetch_one(db)
            .await
            .unwrap();
    (rows, units, stock)
}

/// The body of a one-item sale that started a second ago and runs 30 minutes.
pub fn live_sale_body(stock: i64, per_user_limit: i64) -> Value {
    let now = chrono::Utc::now();
    json!({
        "name": "test sale",
        "starts_at": (now - chrono::Duration::seconds(1)).to_rfc3339(),
        "ends_at": (now + chrono::Duration::minutes(30)).to_rfc3339(),
        "items": [{"sku": "sku-1", "title": "Item", "price_cents": 1999,
                   "stock": stock, "per_user_limit": per_user_limit}],
    })
}

fn sale_and_item(status: StatusCode, body: &Value) -> (u64, u64) {
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "warmed", "{body}");
    (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    )
}

/// A `seckill` child process, reached over HTTP.
pub struct Remote {
    pub http: reqwest::Client,
    pub base: String,
    /// Its admin listener.
    pub admin_base: String,
}

impl Remote {
    /// The process listening on `settings.http.addr` (and `settings.admin_addr`).
    pub fn at(settings: &Settings) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{}", settings.http.addr),
            admin_base: format!("http://{}", settings.admin_addr),
        }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        eventually(Duration::from_secs(60), || async move {
            match self.http.get(format!("{}/readyz", self.base)).send().await {
                Ok(r) if r.status() == StatusCode::OK => Some(()),
                _ => None,
            }
        })
        .await;
    }

    /// Creates a live one-item sale through the admin API; returns (sale, item).
    pub async fn create_live_sale(&self, stock: i64, per_user_limit: i64) -> (u64, u64) {
        let r = self
            .http
            .post(format!("{}/admin/v1/sales", self.admin_base))
            .bearer_auth(&*ADMIN_TOKEN)
            .json(&live_sale_body(stock, per_user_limit))
            .send()
            .await
            .unwrap();
        let status = r.status();
        sale_and_item(status, &r.json().await.unwrap())
    }

    /// Starts `workers` buyers that buy `item` as ever-new users until the service stops
    /// answering (connection refused, or a 5xx while it shuts down). Every order confirmed
    /// with a 202 is recorded in the returned set.
    pub fn stampede(&self, sale: u64, item: u64, workers: usize) -> Stampede {
        let confirmed = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let tasks = (0..workers)
            .map(|w| {
                let (http, url, confirmed) = (
                    self.http.clone(),
                    self.buy_url(sale, item),
                    confirmed.clone(),
                );
                tokio::spawn(async move {
                    for i in 0.. {
                        let token = mint_token(&JWT_SECRET, &format!("s{w}-{i}"), 600).unwrap();
                        match http.post(&url).bearer_auth(token).send().await {
                            Ok(r) if r.status() == StatusCode::ACCEPTED => {
                                let body: Value = r.json().await.unwrap();
                                let id = body["order_id"].as_str().unwrap().to_string();
                                confirmed.lock().unwrap().insert(id);
                            }
                            Ok(r) if r.status().is_server_error() => break,
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        Stampede { confirmed, tasks }
    }

    /// The buy URL of an item.
    pub fn buy_url(&self, sale: u64, item: u64) -> String {
        format!("{}/api/v1/sales/{sale}/items/{item}/orders", self.base)
    }
}

/// Buyers running against a [`Remote`].
pub struct Stampede {
    confirmed: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Stampede {
    /// Waits until at least `n` reservations were confirmed.
    pub async fn confirmed_at_least(&self, n: usize) {
        eventually(Duration::from_secs(60), || {
            let have = self.confirmed.lock().unwrap().len();
            async move { (have >= n).then_some(()) }
        })
        .await;
    }

    /// Waits for the buyers to stop (the service went away) and returns what was confirmed.
    pub async fn finish(self) -> std::collections::HashSet<String> {
        for t in self.tasks {
            t.await.unwrap();
        }
        self.confirmed.lock().unwrap().clone()
    }
}

/// What Redis holds for one item's reservations, whatever its ledger layout (JSON payloads
/// before v5, compact buckets from v5).
pub struct RedisLedger {
    /// Every entry as its event, by order id.
    pub events: std::collections::BTreeMap<Uuid, seckill::domain::order_reserved::OrderReserved>,
    /// Every buyer's units.
    pub buyers: std::collections::BTreeMap<String, i64>,
    /// Orders whose units were given back (the released hash before v5, marked entries from
    /// v5).
    pub released: HashSet<Uuid>,
}

/// Reads [`RedisLedger`] of one item.
pub async fn redis_ledger(redis: &RedisPool, keys: &Keys, sale: u64, item: u64) -> RedisLedger {
    use redis::AsyncCommands;
    let mut conn = redis.get();
    let ledger =
        seckill::stock::ledger::ItemLedger::open(&mut conn, keys.item(sale, item), sale, item)
            .await
            .unwrap();
    let events = ledger.all_events(&mut conn).await.unwrap();
    let buyers = ledger.all_buyers(&mut conn).await.unwrap();
    let released = if ledger.is_compact() {
        let mut out = HashSet::new();
        for key in ledger.ledger_keys() {
            let page: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&key).await.unwrap();
            for (field, raw) in page {
                // A bucket's other fields are buyers.
                let Some(id) = ledger.order_of_field(&field) else {
                    continue;
                };
                let entry = seckill::stock::compact::CompactEntry::decode(&raw).unwrap();
                if entry.released {
                    out.insert(id);
                }
            }
        }
        out
    } else {
        let ids: Vec<String> = conn.hkeys(&ledger.keys.released).await.unwrap();
        ids.iter().map(|id| Uuid::parse_str(id).unwrap()).collect()
    };
    RedisLedger {
        events,
        buyers,
        released,
    }
}
