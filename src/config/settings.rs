//! The settings types and their compiled-in defaults.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{KafkaSettings, MySqlSettings, RedisSettings, Secret, sections::*};

/// Prefix of every environment variable the service reads.
pub(crate) const ENV_PREFIX: &str = "SECKILL_";

/// The word that selects librdkafka's in-process mock cluster instead of real brokers.
pub(crate) const EMBEDDED_KAFKA: &str = "embedded";

/// All settings of one seckill process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Bearer token for `/admin/v1`.
    pub admin_token: Secret,
    /// HMAC secret that signs buyers' HS256 tokens.
    pub jwt_secret: Secret,
    /// HMAC-SHA256 secret the payment provider signs its notifications with
    ///.
    pub payment_secret: Secret,
    /// `jwt` (verify `Authorization: Bearer`) or `trusted_header` (read `X-User-Id`, for
    /// deployments behind a gateway that authenticates users).
    pub user_identity: UserIdentity,
    /// Buyer token checks beyond the signature and expiry.
    pub jwt: JwtSettings,
    /// Comma-separated addresses or networks of the proxies in front of the service
    ///. Only their `X-Forwarded-For` (per-IP limits) and
    /// `X-User-Id` (trusted-header identity) are believed; empty trusts nobody.
    pub trusted_proxies: String,
    /// Listener of the admin API and `/metrics`: loopback by default,
    /// so neither is on the buyer-facing port unless asked.
    pub admin_addr: SocketAddr,
    /// HTTP listener.
    pub http: HttpSettings,
    /// Redis (standalone or cluster).
    pub redis: RedisSettings,
    /// MySQL / MariaDB.
    pub mysql: MySqlSettings,
    /// Kafka brokers, topics and client tuning.
    pub kafka: KafkaSettings,
    /// When a buy is answered 202: what must hold the reservation first.
    pub buy: BuySettings,
    /// Token buckets in front of the buy endpoint.
    pub limits: LimitSettings,
    /// Sale lifecycle: grace period, prewarm lead time, sold-out flag.
    pub sale: SaleSettings,
    /// Outbox relay that re-emits reservations Kafka has not acknowledged.
    pub relay: RelaySettings,
    /// Order consumer batching.
    pub consumer: ConsumerSettings,
    /// Reconciliation job.
    pub reconcile: ReconcileSettings,
    /// Order lifecycle: expiry and lifecycle events.
    pub lifecycle: LifecycleSettings,
    /// Sale page read path caches.
    pub cache: CacheSettings,
    /// Logging.
    pub log: LogSettings,
    /// `SECKILL_*` variables skipped because they look like Kubernetes service links (logged
    /// as a warning at start-up); not a setting.
    #[serde(skip)]
    pub ignored_env: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            admin_token: Secret::new("change-me-admin"),
            jwt_secret: Secret::new("change-me-jwt-secret"),
            payment_secret: Secret::new("change-me-payment-secret"),
            user_identity: UserIdentity::Jwt,
            jwt: JwtSettings::default(),
            trusted_proxies: String::new(),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            buy: BuySettings::default(),
            http: HttpSettings::default(),
            redis: RedisSettings::default(),
            mysql: MySqlSettings::default(),
            kafka: KafkaSettings::default(),
            limits: LimitSettings::default(),
            sale: SaleSettings::default(),
            relay: RelaySettings::default(),
            consumer: ConsumerSettings::default(),
            reconcile: ReconcileSettings::default(),
            lifecycle: LifecycleSettings::default(),
            cache: CacheSettings::default(),
            log: LogSettings::default(),
            ignored_env: Vec::new(),
        }
    }
}

impl Settings {
    /// True when the in-process mock Kafka cluster is selected.
    pub(crate) fn kafka_is_embedded(&self) -> bool {
        self.kafka.brokers.trim() == EMBEDDED_KAFKA
    }

    /// Producer linger as a duration: short when buyers wait for the broker's ack (`kafka`
    /// confirmation), where every millisecond of it is a millisecond of each buy's answer.
    pub(crate) fn kafka_linger(&self) -> Duration {
        use crate::stores::kafka::producer::{CONFIRMING_LINGER, LINGER};
        if self.buy.confirm == ConfirmMode::Kafka {
            CONFIRMING_LINGER
        } else {
            LINGER
        }
    }

    /// Producer delivery timeout as a duration.
    pub(crate) fn kafka_message_timeout(&self) -> Duration {
        Duration::from_millis(self.kafka.message_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::kafka::producer::{CONFIRMING_LINGER, LINGER};

    #[test]
    fn the_producer_lingers_briefly_only_when_buyers_wait_for_kafka() {
        let mut settings = Settings::default();
        for (mode, linger) in [
            (ConfirmMode::Ledger, LINGER),
            (ConfirmMode::Replica, LINGER),
            (ConfirmMode::Kafka, CONFIRMING_LINGER),
        ] {
            settings.buy.confirm = mode;
            assert_eq!(settings.kafka_linger(), linger, "{mode:?}");
        }
        assert!(CONFIRMING_LINGER < LINGER);
    }
}
