//! Relations and ranges that types alone cannot express, checked once at load.

use super::{ConfigError, Settings};

impl Settings {
    /// Checks relations and ranges that types alone cannot express.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn positive(key: &str, v: u64) -> Result<(), ConfigError> {
            if v == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
            Ok(())
        }
        fn non_empty(key: &str, v: &str) -> Result<(), ConfigError> {
            if v.trim().is_empty() {
                return Err(ConfigError::new(key, "must not be empty"));
            }
            Ok(())
        }
        if let Err(e) = crate::domain::redis_url::parse(&self.redis.url) {
            return Err(ConfigError::new(
                "SECKILL_REDIS_URL",
                format!("'{}': {e}", super::redacted(&self.redis.url)),
            ));
        }
        if self.admin_addr == self.http.addr && self.admin_addr.port() != 0 {
            return Err(ConfigError::new(
                "SECKILL_ADMIN_ADDR",
                "must differ from SECKILL_HTTP_ADDR (the admin API has a listener of its own)",
            ));
        }
        let proxies = crate::domain::net::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError::new("SECKILL_TRUSTED_PROXIES", e.detail))?;
        if self.user_identity == super::UserIdentity::TrustedHeader && proxies == Default::default()
        {
            return Err(ConfigError::new(
                "SECKILL_TRUSTED_PROXIES",
                "SECKILL_USER_IDENTITY=trusted_header believes X-User-Id only from these proxies; name the gateway's addresses",
            ));
        }
        positive("SECKILL_LOG_SPAN_EVERY", self.log.span_every)?;
        positive("SECKILL_LOG_SLOW_MS", self.log.slow_ms)?;
        positive("SECKILL_REDIS_POOL_SIZE", self.redis.pool_size)?;
        if self.buy.confirm == super::ConfirmMode::Replica {
            positive("SECKILL_REDIS_MIN_REPLICAS", self.redis.min_replicas)?;
        }
        positive(
            "SECKILL_BUY_CONFIRM_TIMEOUT_MS",
            self.buy.confirm_timeout_ms,
        )?;
        if self.buy.confirm_timeout_ms > 1_500 {
            return Err(ConfigError::new(
                "SECKILL_BUY_CONFIRM_TIMEOUT_MS",
                "must be at most 1500 (a Redis call fails after 2 s, and buyers should not wait longer)",
            ));
        }
        if self.redis.key_prefix.contains(['{', '}', ' ']) {
            return Err(ConfigError::new(
                "SECKILL_REDIS_KEY_PREFIX",
                "must not contain braces or spaces (they would break cluster hash tags)",
            ));
        }
        if !self.mysql.url.expose().starts_with("mysql://")
            && !self.mysql.url.expose().starts_with("mariadb://")
        {
            return Err(ConfigError::new(
                "SECKILL_MYSQL_URL",
                "must be a mysql://user:password@host:port/database URL",
            ));
        }
        positive("SECKILL_MYSQL_MAX_CONNECTIONS", self.mysql.max_connections)?;
        non_empty("SECKILL_KAFKA_BROKERS", &self.kafka.brokers)?;
        non_empty("SECKILL_KAFKA_TOPIC", &self.kafka.topic)?;
        non_empty(
            "SECKILL_KAFKA_DEAD_LETTER_TOPIC",
            &self.kafka.dead_letter_topic,
        )?;
        non_empty("SECKILL_KAFKA_GROUP_ID", &self.kafka.group_id)?;
        if self.kafka.topic == self.kafka.dead_letter_topic {
            return Err(ConfigError::new(
                "SECKILL_KAFKA_DEAD_LETTER_TOPIC",
                "must differ from SECKILL_KAFKA_TOPIC",
            ));
        }
        positive("SECKILL_KAFKA_PARTITIONS", self.kafka.partitions)?;
        self.kafka.security_properties()?;
        positive(
            "SECKILL_KAFKA_MESSAGE_TIMEOUT_MS",
            self.kafka.message_timeout_ms,
        )?;
        positive("SECKILL_HTTP_MAX_IN_FLIGHT", self.http.max_in_flight)?;
        positive(
            "SECKILL_HTTP_HEADER_TIMEOUT_SECS",
            self.http.header_timeout_secs,
        )?;
        positive(
            "SECKILL_HTTP_IDLE_TIMEOUT_SECS",
            self.http.idle_timeout_secs,
        )?;
        positive("SECKILL_HTTP_MAX_CONNECTIONS", self.http.max_connections)?;
        if !(1024..=1 << 20).contains(&self.http.max_header_bytes) {
            return Err(ConfigError::new(
                "SECKILL_HTTP_MAX_HEADER_BYTES",
                "must be between 1024 and 1048576",
            ));
        }
        positive(
            "SECKILL_HTTP_REQUEST_TIMEOUT_SECS",
            self.http.request_timeout_secs,
        )?;
        for (key, rate, burst) in [
            (
                "SECKILL_LIMITS_GLOBAL_BURST",
                self.limits.global_per_sec,
                self.limits.global_burst,
            ),
            (
                "SECKILL_LIMITS_PER_USER_BURST",
                self.limits.per_user_per_sec,
                self.limits.per_user_burst,
            ),
            (
                "SECKILL_LIMITS_PER_IP_BURST",
                self.limits.per_ip_per_sec,
                self.limits.per_ip_burst,
            ),
            (
                "SECKILL_LIMITS_PAYMENTS_PER_SEC",
                self.limits.payments_per_sec,
                self.limits.payments_per_sec,
            ),
        ] {
            if rate > 0 {
                positive(key, burst)?;
            }
            if rate > u64::from(u32::MAX) || burst > u64::from(u32::MAX) {
                return Err(ConfigError::new(key, "rate and burst must fit in 32 bits"));
            }
        }
        positive("SECKILL_SALE_GRACE_SECS", self.sale.grace_secs)?;
        positive(
            "SECKILL_SALE_SOLD_OUT_RECHECK_MS",
            self.sale.sold_out_recheck_ms,
        )?;
        if !crate::domain::script_version::KNOWN_VERSIONS
            .contains(&self.sale.script_version.as_str())
        {
            return Err(ConfigError::new(
                "SECKILL_SALE_SCRIPT_VERSION",
                format!(
                    "unknown script version '{}'; known: {}",
                    self.sale.script_version,
                    crate::domain::script_version::KNOWN_VERSIONS.join(", ")
                ),
            ));
        }
        positive("SECKILL_RELAY_INTERVAL_MS", self.relay.interval_ms)?;
        positive(
            "SECKILL_RELAY_REDELIVER_AFTER_MS",
            self.relay.redeliver_after_ms,
        )?;
        if self.relay.redeliver_after_ms <= self.kafka.message_timeout_ms {
            return Err(ConfigError::new(
                "SECKILL_RELAY_REDELIVER_AFTER_MS",
                format!(
                    "must exceed SECKILL_KAFKA_MESSAGE_TIMEOUT_MS ({}), or the relay re-sends messages the producer is still delivering",
                    self.kafka.message_timeout_ms
                ),
            ));
        }
        positive("SECKILL_CONSUMER_BATCH_MAX", self.consumer.batch_max)?;
        positive(
            "SECKILL_LIFECYCLE_EXPIRY_BATCH",
            self.lifecycle.expiry_batch,
        )?;
        if self.lifecycle.expiry_batch > 10_000 {
            return Err(ConfigError::new(
                "SECKILL_LIFECYCLE_EXPIRY_BATCH",
                "must be at most 10000 (one transaction and one script call per item)",
            ));
        }
        non_empty(
            "SECKILL_LIFECYCLE_EVENTS_TOPIC",
            &self.lifecycle.events_topic,
        )?;

        positive("SECKILL_CACHE_LOCAL_TTL_SECS", self.cache.local_ttl_secs)?;
        positive("SECKILL_CACHE_REDIS_TTL_SECS", self.cache.redis_ttl_secs)?;
        positive(
            "SECKILL_CACHE_NEGATIVE_TTL_SECS",
            self.cache.negative_ttl_secs,
        )?;
        Ok(())
    }
}
