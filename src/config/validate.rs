//! Relations and ranges that types alone cannot express, checked once at load.

use super::{ConfigError, ConfirmMode, Settings, UserIdentity};

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

impl Settings {
    /// Checks relations and ranges that types alone cannot express.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_listeners()?;
        self.check_identity()?;
        self.check_redis()?;
        self.check_mysql()?;
        self.check_kafka()?;
        self.check_limits()?;
        self.check_sales()?;
        self.check_jobs()
    }

    fn check_listeners(&self) -> Result<(), ConfigError> {
        if self.admin_addr == self.http.addr && self.admin_addr.port() != 0 {
            return Err(ConfigError::new(
                "SECKILL_ADMIN_ADDR",
                "must differ from SECKILL_HTTP_ADDR (the admin API has a listener of its own)",
            ));
        }
        let http = &self.http;
        positive("SECKILL_HTTP_MAX_IN_FLIGHT", http.max_in_flight)?;
        positive("SECKILL_HTTP_HEADER_TIMEOUT_SECS", http.header_timeout_secs)?;
        positive("SECKILL_HTTP_IDLE_TIMEOUT_SECS", http.idle_timeout_secs)?;
        positive("SECKILL_HTTP_MAX_CONNECTIONS", http.max_connections)?;
        positive(
            "SECKILL_HTTP_REQUEST_TIMEOUT_SECS",
            http.request_timeout_secs,
        )?;
        if !(1024..=1 << 20).contains(&http.max_header_bytes) {
            return Err(ConfigError::new(
                "SECKILL_HTTP_MAX_HEADER_BYTES",
                "must be between 1024 and 1048576",
            ));
        }
        positive("SECKILL_LOG_SPAN_EVERY", self.log.span_every)
    }

    fn check_identity(&self) -> Result<(), ConfigError> {
        let proxies = crate::domain::net::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError::new("SECKILL_TRUSTED_PROXIES", e.detail))?;
        if self.user_identity == UserIdentity::TrustedHeader && proxies.is_empty() {
            return Err(ConfigError::new(
                "SECKILL_TRUSTED_PROXIES",
                "SECKILL_USER_IDENTITY=trusted_header believes X-User-Id only from these proxies; name the gateway's addresses",
            ));
        }
        Ok(())
    }

    fn check_redis(&self) -> Result<(), ConfigError> {
        if let Err(e) = crate::domain::redis_url::parse(&self.redis.url) {
            return Err(ConfigError::new(
                "SECKILL_REDIS_URL",
                format!("'{}': {e}", super::redacted(&self.redis.url)),
            ));
        }
        positive("SECKILL_REDIS_POOL_SIZE", self.redis.pool_size)?;
        if self.buy.confirm == ConfirmMode::Replica {
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
        Ok(())
    }

    fn check_mysql(&self) -> Result<(), ConfigError> {
        let url = self.mysql.url.expose();
        if !url.starts_with("mysql://") && !url.starts_with("mariadb://") {
            return Err(ConfigError::new(
                "SECKILL_MYSQL_URL",
                "must be a mysql://user:password@host:port/database URL",
            ));
        }
        positive("SECKILL_MYSQL_MAX_CONNECTIONS", self.mysql.max_connections)
    }

    fn check_kafka(&self) -> Result<(), ConfigError> {
        let kafka = &self.kafka;
        non_empty("SECKILL_KAFKA_BROKERS", &kafka.brokers)?;
        non_empty("SECKILL_KAFKA_TOPIC", &kafka.topic)?;
        non_empty("SECKILL_KAFKA_DEAD_LETTER_TOPIC", &kafka.dead_letter_topic)?;
        non_empty("SECKILL_KAFKA_GROUP_ID", &kafka.group_id)?;
        if kafka.topic == kafka.dead_letter_topic {
            return Err(ConfigError::new(
                "SECKILL_KAFKA_DEAD_LETTER_TOPIC",
                "must differ from SECKILL_KAFKA_TOPIC",
            ));
        }
        positive("SECKILL_KAFKA_PARTITIONS", kafka.partitions)?;
        kafka.security_properties()?;
        positive("SECKILL_KAFKA_MESSAGE_TIMEOUT_MS", kafka.message_timeout_ms)?;
        non_empty(
            "SECKILL_LIFECYCLE_EVENTS_TOPIC",
            &self.lifecycle.events_topic,
        )
    }

    fn check_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for (key, rate, burst) in [
            (
                "SECKILL_LIMITS_GLOBAL_BURST",
                l.global_per_sec,
                l.global_burst,
            ),
            (
                "SECKILL_LIMITS_PER_USER_BURST",
                l.per_user_per_sec,
                l.per_user_burst,
            ),
            (
                "SECKILL_LIMITS_PER_IP_BURST",
                l.per_ip_per_sec,
                l.per_ip_burst,
            ),
            (
                "SECKILL_LIMITS_PAYMENTS_PER_SEC",
                l.payments_per_sec,
                l.payments_per_sec,
            ),
        ] {
            if rate > 0 {
                positive(key, burst)?;
            }
            if rate > u64::from(u32::MAX) || burst > u64::from(u32::MAX) {
                return Err(ConfigError::new(key, "rate and burst must fit in 32 bits"));
            }
        }
        Ok(())
    }

    fn check_sales(&self) -> Result<(), ConfigError> {
        positive("SECKILL_SALE_GRACE_SECS", self.sale.grace_secs)?;
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
        positive("SECKILL_CACHE_REDIS_TTL_SECS", self.cache.redis_ttl_secs)
    }

    fn check_jobs(&self) -> Result<(), ConfigError> {
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
        positive("SECKILL_CONSUMER_BATCH_MAX", self.consumer.batch_max)
    }
}
