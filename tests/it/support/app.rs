//! An app in-process (`seckill all`, or the API alone) on port 0, and what a test asks of it.

use std::{net::SocketAddr, sync::Arc};

use seckill::{
    api::state::Services,
    app::{Application, ConsumerParts},
    config::Settings,
    stock::{ItemRef, key_uid},
    stores::redis::{
        RedisPool,
        keys::{Holder, ItemKeys, Keys},
    },
};
use sqlx::MySqlPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{STACK, test_settings};

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
    /// The keys the app uses (scoped to its database).
    pub fn keys(&self) -> Keys {
        self.services.stock.keys().clone()
    }
    /// The item as the stock layer addresses it (see [`item_ref_in`]).
    pub async fn item_ref(&self, sale: u64, item: u64) -> ItemRef {
        item_ref_in(self.db(), sale, item).await
    }
    /// The keys of an item of one shard (see [`item_ref_in`]).
    pub async fn item_keys(&self, sale: u64, item: u64) -> ItemKeys {
        self.item_ref(sale, item)
            .await
            .keys(&self.keys(), Holder::Whole)
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_base)
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

/// The item as the stock layer addresses it: from script v6 on, its keys carry its sale's uid,
/// read here from MySQL.
pub async fn item_ref_in(db: &MySqlPool, sale: u64, item: u64) -> ItemRef {
    let (version, uid, shards): (String, String, u16) = sqlx::query_as(
        "SELECT s.script_version, s.uid, i.shards FROM sales s \
         JOIN sale_items i ON i.sale_id = s.id WHERE s.id = ? AND i.id = ?",
    )
    .bind(sale)
    .bind(item)
    .fetch_one(db)
    .await
    .expect("the item exists");
    ItemRef {
        sale_id: sale,
        item_id: item,
        shards,
        uid: key_uid(&version, &uid),
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

/// Starts an app on the stack's real broker, with `change` made to its settings first.
pub async fn spawn_app_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    change(&mut settings);
    spawn_with(settings).await
}

/// Two apps on the same settings (one database, key prefix, topic and group), as two instances
/// of one deployment, with `change` made to their settings first.
pub async fn two_instances(change: impl FnOnce(&mut Settings)) -> (TestApp, TestApp) {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    change(&mut settings);
    let a = spawn_with(settings.clone()).await;
    (a, spawn_with(settings).await)
}

/// Starts an app on the stack's real broker.
pub async fn spawn_app() -> TestApp {
    spawn_with(test_settings(&STACK.kafka_brokers).await).await
}
