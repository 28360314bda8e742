//! The services of one process, shared by every handler and background job (`app::services`
//! builds them).

use std::{
    ops::Deref,
    sync::{Arc, Mutex},
};

use sqlx::MySqlPool;

use crate::{
    buy::{BuyService, identify::Authenticator},
    config::Settings,
    observe::metrics::Metrics,
    orders::{lifecycle::Lifecycle, lookup::OrderLookup},
    outbox::Outbox,
    reconcile::Reconciler,
    sales::{SaleAdmin, page::SalePages},
    stock::StockService,
    stores::{
        kafka::KafkaEndpoint,
        redis::{RedisPool, lock::RedisLock},
    },
};

/// Everything a request or job may need.
pub struct Services {
    /// Effective settings.
    pub settings: Arc<Settings>,
    /// MySQL pool.
    pub db: MySqlPool,
    /// Redis connections.
    pub redis: RedisPool,
    /// Kafka location (keeps the embedded cluster alive).
    pub kafka: KafkaEndpoint,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Stock scripts and snapshots.
    pub stock: StockService,
    /// Distributed locks.
    pub lock: RedisLock,
    /// Ledger -> Kafka delivery.
    pub outbox: Outbox,
    /// Caller verification.
    pub auth: Arc<Authenticator>,
    /// The buy path.
    pub buy: BuyService,
    /// The waiting rooms of queued sales.
    pub queue: crate::buy::waiting_room::WaitingRoom,
    /// Admin operations.
    pub admin: SaleAdmin,
    /// Live views of sales for the console.
    pub live: crate::sales::live::LiveFeed,
    /// Cancelled when the HTTP servers begin their graceful shutdown, so endless answers (live
    /// event streams) end and let it finish.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Buyers' order lookups.
    pub orders: OrderLookup,
    /// Pay, cancel, expire, release.
    pub lifecycle: Lifecycle,
    /// Reconciliation runs.
    pub reconciler: Reconciler,
    /// The public sale page and its caches.
    pub sale_pages: SalePages,
    /// The last readiness verdict (probes are cached for a second).
    pub ready: crate::api::ready::ReadyCache,
    /// Where recovery requests arrive; taken by the prewarm scheduler when it starts.
    pub recovery_requests: Mutex<Option<RecoveryRequests>>,
}

/// The receiving end of recovery requests (sale id, when the loss was seen).
pub(crate) type RecoveryRequests =
    tokio::sync::mpsc::UnboundedReceiver<(u64, tokio::time::Instant)>;

/// A cheap-to-clone handle on [`Services`], the axum state.
#[derive(Clone)]
pub struct AppState(pub Arc<Services>);

impl Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}
