//! Building the services of one process from the settings. Building fails fast, with one clear
//! line, when a server is unreachable.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use sqlx::MySqlPool;

use crate::{
    api::state::Services,
    buy::waiting_room::{RoomParts, WaitingRoom},
    buy::{
        BuyParts, BuyService, Confirmation,
        gate::{Gates, SoldOutFlags},
        identify::Authenticator,
    },
    config::{ConfirmMode, Settings},
    observe::metrics::Metrics,
    orders::{lifecycle::Lifecycle, lookup::OrderLookup},
    outbox::Outbox,
    reconcile::Reconciler,
    sales::{Recoveries, Recovery, SaleAdmin, catalog::Catalog, page::SalePages},
    stock::{ReplicaWait, ScriptRegistry, StockService},
    stores::{
        kafka::{KafkaEndpoint, producer::OrderProducer},
        mysql,
        redis::{RedisPool, keys::Keys, lock::RedisLock},
    },
};

impl Services {
    /// Connects to Redis, MySQL and Kafka (running migrations when configured) and builds every
    /// service.
    ///
    /// # Errors
    /// A server is unreachable or refuses us; the message names which and where.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let settings = Arc::new(settings);
        let metrics = Arc::new(Metrics::new());
        let redis =
            tokio::time::timeout(Duration::from_secs(10), RedisPool::connect(&settings.redis))
                .await
                .map_err(|_| anyhow::anyhow!("timed out"))
                .and_then(|r| r.map_err(anyhow::Error::from))
                .with_context(|| {
                    format!(
                        "cannot reach Redis at {}",
                        crate::config::redacted(&settings.redis.url)
                    )
                })?;
        if settings.buy.confirm == ConfirmMode::Replica
            && let Ok(Some(n)) = redis.connected_replicas().await
            && n < settings.redis.min_replicas
        {
            tracing::error!(
                connected = n,
                wanted = settings.redis.min_replicas,
                "SECKILL_BUY_CONFIRM=replica waits for Redis replicas the master does not have: every buy answers 503 until they connect; for a single Redis without replicas set SECKILL_BUY_CONFIRM=ledger"
            );
        }
        let db = mysql::open(&settings.mysql, settings.mysql.migrate_on_start).await?;
        let kafka = KafkaEndpoint::resolve(&settings)
            .await
            .with_context(|| format!("cannot reach Kafka at {}", settings.kafka.brokers))?;
        Self::assemble(settings, metrics, redis, db, kafka).await
    }

    /// Builds the services over already-open connections (tests share servers this way).
    ///
    /// # Errors
    /// Loading the Lua scripts or creating the producer failed.
    pub async fn assemble(
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
        redis: RedisPool,
        db: MySqlPool,
        kafka: KafkaEndpoint,
    ) -> anyhow::Result<Self> {
        let base = Base::connect(settings, metrics, redis, db, kafka).await?;
        let (recoveries, recovery_requests) = Recoveries::channel();
        let catalog = Catalog::new(base.db.clone());
        let auth = Arc::new(Authenticator::new(&base.settings));
        let queue = WaitingRoom::new(RoomParts {
            db: base.db.clone(),
            redis: base.redis.clone(),
            keys: base.stock.keys().clone(),
            grace_secs: base.settings.sale.grace_secs,
            secret: base.settings.jwt_secret.expose().as_bytes().to_vec(),
            metrics: base.metrics.clone(),
        });
        let buy = base.buy_service(auth.clone(), catalog.clone(), recoveries.clone(), &queue);
        let sale_pages = base.sale_pages().await?;
        let admin = base.sale_admin(catalog, recoveries.clone(), &sale_pages);
        let live = base.live_feed(&admin);
        let orders = OrderLookup::new(
            base.db.clone(),
            base.stock.clone(),
            chrono::Duration::seconds(base.settings.sale.grace_secs as i64),
        );
        let lifecycle = Lifecycle::new(
            base.db.clone(),
            base.stock.clone(),
            base.metrics.clone(),
            crate::orders::lifecycle::EXPIRY_BATCH,
        )
        .looking_up(orders.clone());
        let reconciler = Reconciler::new(
            base.db.clone(),
            base.stock.clone(),
            base.kafka.clone(),
            base.outbox.clone(),
            base.settings.clone(),
            base.metrics.clone(),
            recoveries,
        );
        Ok(Self {
            ready: Default::default(),
            stopping: Default::default(),
            lifecycle,
            recovery_requests: Mutex::new(Some(recovery_requests)),
            sale_pages,
            reconciler,
            auth,
            settings: base.settings,
            db: base.db,
            redis: base.redis,
            kafka: base.kafka,
            metrics: base.metrics,
            stock: base.stock,
            lock: base.lock,
            outbox: base.outbox,
            buy,
            queue,
            admin,
            live,
            orders,
        })
    }
}

/// The connections and the layers every service builds on: the stock scripts, the locks and
/// the outbox.
struct Base {
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    redis: RedisPool,
    db: MySqlPool,
    kafka: KafkaEndpoint,
    stock: StockService,
    lock: RedisLock,
    outbox: Outbox,
}

impl Base {
    async fn connect(
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
        redis: RedisPool,
        db: MySqlPool,
        kafka: KafkaEndpoint,
    ) -> anyhow::Result<Self> {
        let scripts = Arc::new(ScriptRegistry::new(metrics.clone()));
        scripts
            .load_all(&mut redis.get())
            .await
            .context("loading Lua scripts into Redis failed")?;
        let database = crate::stores::mysql::deployment::uid(&db).await.context(
            "reading this database's identity (table `deployment`) failed: run `seckill migrate`",
        )?;
        let keys = Keys::new(&settings.redis.key_prefix).scoped(&database);
        let replicas = (settings.buy.confirm == ConfirmMode::Replica).then(|| ReplicaWait {
            replicas: u32::try_from(settings.redis.min_replicas).unwrap_or(u32::MAX),
            timeout_ms: settings.buy.confirm_timeout_ms,
        });
        let stock = StockService::confirming(redis.clone(), keys.clone(), scripts, replicas);
        let lock = RedisLock::new(redis.clone(), keys, &metrics);
        lock.load()
            .await
            .context("loading the lock scripts into Redis failed")?;
        let producer = OrderProducer::new(
            &kafka,
            &settings.kafka.topic,
            settings.kafka_message_timeout(),
            settings.kafka_linger(),
        )
        .context("creating the Kafka producer failed")?;
        let outbox = Outbox::new(producer, stock.clone(), metrics.clone());
        Ok(Self {
            settings,
            metrics,
            redis,
            db,
            kafka,
            stock,
            lock,
            outbox,
        })
    }

    fn buy_service(
        &self,
        auth: Arc<Authenticator>,
        catalog: Catalog,
        recoveries: Recoveries,
        queue: &WaitingRoom,
    ) -> BuyService {
        let settings = &self.settings;
        BuyService::new(BuyParts {
            auth,
            gates: Arc::new(Gates::new(
                &settings.limits,
                !settings.trusted_proxies.trim().is_empty(),
            )),
            catalog,
            sold_out: Arc::new(SoldOutFlags::new(crate::buy::gate::sold_out::RECHECK_AFTER)),
            stock: self.stock.clone(),
            outbox: self.outbox.clone(),
            confirmation: Confirmation {
                mode: settings.buy.confirm,
                timeout: Duration::from_millis(settings.buy.confirm_timeout_ms),
            },
            recoveries,
            queue: queue.clone(),
            metrics: self.metrics.clone(),
        })
    }

    async fn sale_pages(&self) -> anyhow::Result<SalePages> {
        let sale_pages = SalePages::new(
            self.db.clone(),
            self.stock.clone(),
            self.lock.clone(),
            &self.settings,
            self.metrics.clone(),
        );
        let known = sale_pages
            .rebuild_bloom()
            .await
            .context("rebuilding the Bloom filter of sale ids failed")?;
        tracing::debug!(sales = known, "Bloom filter of sale ids rebuilt");
        Ok(sale_pages)
    }

    fn sale_admin(
        &self,
        catalog: Catalog,
        recoveries: Recoveries,
        sale_pages: &SalePages,
    ) -> SaleAdmin {
        let settings = &self.settings;
        let recovery = Recovery::new(
            self.db.clone(),
            self.stock.clone(),
            self.kafka.clone(),
            &settings.kafka.topic,
            &settings.kafka.group_id,
            settings.kafka_message_timeout() + Duration::from_secs(1),
        );
        SaleAdmin::new(
            self.db.clone(),
            self.stock.clone(),
            self.lock.clone(),
            catalog,
            settings.sale.clone(),
            recovery,
            recoveries,
        )
        .with_listener(Arc::new(sale_pages.clone()))
    }

    fn live_feed(&self, admin: &SaleAdmin) -> crate::sales::live::LiveFeed {
        crate::sales::live::LiveFeed::new(
            admin.clone(),
            self.db.clone(),
            Arc::new(crate::stores::kafka::lag::LagCache::new(
                self.kafka.clone(),
                &self.settings.kafka.topic,
                &self.settings.kafka.group_id,
                Duration::from_secs(1),
            )),
        )
    }
}
