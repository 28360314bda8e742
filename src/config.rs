//! Typed settings: defaults compiled in, then an optional TOML file, then `SECKILL_*` environment
//! variables. Every setting has exactly one environment name, derived from its path
//! (`http.addr` -> `SECKILL_HTTP_ADDR`), so operators' scripts can rely on it. Values are
//! validated once at load; a bad value is reported as one line naming the key and the problem.

use std::{fmt, net::SocketAddr, path::Path, time::Duration};

use serde::{Deserialize, Serialize};

/// Prefix of every environment variable the service reads.
pub const ENV_PREFIX: &str = "SECKILL_";

/// The word that selects librdkafka's in-process mock cluster instead of real brokers.
pub const EMBEDDED_KAFKA: &str = "embedded";

/// A string that must never reach a log line (tokens, passwords).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A connection URL with its password replaced, safe for logs and error lines.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// All settings of one seckill process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Bearer token for `/admin/v1` (`SECKILL_ADMIN_TOKEN`).
    pub admin_token: Secret,
    /// HMAC secret that signs buyers' HS256 tokens (`SECKILL_JWT_SECRET`).
    pub jwt_secret: Secret,
    /// `jwt` (verify `Authorization: Bearer`) or `trusted_header` (read `X-User-Id`, for
    /// deployments behind a gateway that authenticates users).
    pub user_identity: UserIdentity,
    /// HTTP listener.
    pub http: HttpSettings,
    /// Redis (standalone or cluster).
    pub redis: RedisSettings,
    /// MySQL / MariaDB.
    pub mysql: MySqlSettings,
    /// Kafka brokers, topics and client tuning.
    pub kafka: KafkaSettings,
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
    /// Sale page read path caches.
    pub cache: CacheSettings,
    /// Logging.
    pub log: LogSettings,
}

/// How the buy endpoint learns who the buyer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserIdentity {
    /// `Authorization: Bearer <HS256 JWT>`; the user is the token's `sub`.
    Jwt,
    /// `X-User-Id` set by an authenticating gateway in front of the service.
    TrustedHeader,
}

/// HTTP listener settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address to bind; port 0 picks a free port (tests).
    pub addr: SocketAddr,
    /// Requests served at once before new ones are shed with 503; bounds memory under a flood.
    pub max_in_flight: u64,
    /// Seconds a request may take before it is answered with 503.
    pub request_timeout_secs: u64,
    /// Seconds to let in-flight requests finish on shutdown.
    pub shutdown_grace_secs: u64,
}

/// Redis settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://host:port/db` for a standalone server; `redis+cluster://h1:p1,h2:p2` for a cluster.
    pub url: String,
    /// Connections in the pool. Each is multiplexed, so a few carry a lot.
    pub pool_size: u64,
    /// Prefix of every key this process writes; lets several deployments (or tests) share a server.
    pub key_prefix: String,
}

/// MySQL settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MySqlSettings {
    /// `mysql://user:password@host:port/database`.
    pub url: Secret,
    /// Pool size. The database sees only winners, batched; a few connections suffice.
    pub max_connections: u64,
    /// Apply pending migrations when a command starts.
    pub migrate_on_start: bool,
}

/// Kafka settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// Comma-separated bootstrap servers, or `embedded` for the in-process mock cluster.
    pub brokers: String,
    /// Topic of `OrderReserved` events.
    pub topic: String,
    /// Topic for messages the consumer can never parse.
    pub dead_letter_topic: String,
    /// Consumer group of the order consumers.
    pub group_id: String,
    /// Partitions used when this service creates the topics (embedded broker, tests).
    pub partitions: u64,
    /// How long the producer keeps retrying a message before reporting failure; the outbox
    /// relay takes over after that.
    pub message_timeout_ms: u64,
    /// How long the producer lets messages gather into one request.
    pub linger_ms: u64,
}

/// Token-bucket settings. A rate of 0 switches that limiter off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Buy requests per second admitted in total by one instance.
    pub global_per_sec: u64,
    /// Burst of the global bucket.
    pub global_burst: u64,
    /// Buy requests per second admitted per user.
    pub per_user_per_sec: u64,
    /// Burst of each user's bucket.
    pub per_user_burst: u64,
    /// Buy requests per second per client IP; off by default (NAT makes an address a poor identity).
    pub per_ip_per_sec: u64,
    /// Burst of each IP's bucket.
    pub per_ip_burst: u64,
}

/// Sale lifecycle settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaleSettings {
    /// Seconds every Redis key of a sale outlives the sale's end, so late consumers and
    /// reconciliation still see the ledger.
    pub grace_secs: u64,
    /// Sales starting within this many seconds are warmed on creation; later ones by the
    /// scheduler when they come this close.
    pub prewarm_lead_secs: u64,
    /// Milliseconds a local sold-out flag is trusted before Redis is asked again.
    pub sold_out_recheck_ms: u64,
    /// Script version new sales are pinned to.
    pub script_version: String,
}

/// Outbox relay settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySettings {
    /// How often the relay scans the outbox.
    pub interval_ms: u64,
    /// A reservation unacknowledged for this long is re-emitted.
    pub redeliver_after_ms: u64,
}

/// Order consumer settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerSettings {
    /// Most messages persisted in one MySQL transaction.
    pub batch_max: u64,
    /// Longest wait for a batch to fill, in milliseconds.
    pub batch_wait_ms: u64,
}

/// Reconciliation settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileSettings {
    /// Seconds between periodic runs inside `serve`/`all`; 0 switches the periodic job off.
    pub interval_secs: u64,
    /// A ledger entry younger than this may still be in flight and is not reported missing.
    pub ledger_grace_secs: u64,
    /// Seconds after a sale's end during which it is still reconciled periodically.
    pub ended_window_secs: u64,
}

/// Sale page cache settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Seconds a sale detail lives in the in-process cache.
    pub local_ttl_secs: u64,
    /// Seconds a sale detail lives in Redis (before jitter).
    pub redis_ttl_secs: u64,
    /// Seconds an unknown id is remembered as missing.
    pub negative_ttl_secs: u64,
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `seckill=debug,info`; `RUST_LOG` wins when set.
    pub filter: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            admin_token: Secret::new("change-me-admin"),
            jwt_secret: Secret::new("change-me-jwt-secret"),
            user_identity: UserIdentity::Jwt,
            http: HttpSettings::default(),
            redis: RedisSettings::default(),
            mysql: MySqlSettings::default(),
            kafka: KafkaSettings::default(),
            limits: LimitSettings::default(),
            sale: SaleSettings::default(),
            relay: RelaySettings::default(),
            consumer: ConsumerSettings::default(),
            reconcile: ReconcileSettings::default(),
            cache: CacheSettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_in_flight: 20_000,
            request_timeout_secs: 10,
            shutdown_grace_secs: 10,
        }
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:16379/".into(),
            pool_size: 16,
            key_prefix: String::new(),
        }
    }
}

impl Default for MySqlSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("mysql://seckill:seckill@127.0.0.1:13306/seckill"),
            max_connections: 16,
            migrate_on_start: true,
        }
    }
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:19092".into(),
            topic: "seckill.orders".into(),
            dead_letter_topic: "seckill.orders.dlq".into(),
            group_id: "seckill-order-consumer".into(),
            partitions: 4,
            message_timeout_ms: 5_000,
            linger_ms: 20,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            global_per_sec: 100_000,
            global_burst: 20_000,
            per_user_per_sec: 5,
            per_user_burst: 10,
            per_ip_per_sec: 0,
            per_ip_burst: 50,
        }
    }
}

impl Default for SaleSettings {
    fn default() -> Self {
        Self {
            grace_secs: 86_400,
            prewarm_lead_secs: 3_600,
            sold_out_recheck_ms: 500,
            script_version: "v2".into(),
        }
    }
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            interval_ms: 1_000,
            redeliver_after_ms: 10_000,
        }
    }
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            batch_max: 2_000,
            batch_wait_ms: 20,
        }
    }
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            interval_secs: 30,
            ledger_grace_secs: 30,
            ended_window_secs: 3_600,
        }
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            local_ttl_secs: 2,
            redis_ttl_secs: 60,
            negative_ttl_secs: 5,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// A setting that could not be loaded; displays as one line naming the key and the problem.
#[derive(Debug, thiserror::Error)]
#[error("config: {key}: {problem}")]
pub struct ConfigError {
    /// Environment name of the offending setting (or the file, for file-level problems).
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl Settings {
    /// Loads defaults, then `file` (if given), then `SECKILL_*` variables from the process
    /// environment, and validates the result.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment, so tests never touch the real one.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut tree = toml::Value::try_from(Settings::default())
            .map_err(|e| ConfigError::new("defaults", e.to_string()))?;
        if let Some(path) = file {
            let key = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::new(&key, format!("cannot read: {e}")))?;
            let overlay: toml::Value = toml::from_str(&text)
                .map_err(|e| ConfigError::new(&key, e.message().to_string()))?;
            merge(&mut tree, overlay, &mut Vec::new())?;
        }
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != "SECKILL_CONFIG")
            .collect();
        apply_env(&mut tree, &env)?;
        let settings: Settings = serde_path_to_error::deserialize(tree.clone()).map_err(|e| {
            let path: Vec<String> = e.path().iter().map(|seg| seg.to_string()).collect();
            let mut shown = &tree;
            for part in &path {
                shown = shown.get(part.as_str()).unwrap_or(shown);
            }
            ConfigError::new(
                env_name(&path),
                format!("{} (got {shown})", e.inner().message()),
            )
        })?;
        settings.validate()?;
        Ok(settings)
    }

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
        if self.admin_token.expose().len() < 8 {
            return Err(ConfigError::new(
                "SECKILL_ADMIN_TOKEN",
                "must be at least 8 characters",
            ));
        }
        if self.jwt_secret.expose().len() < 16 {
            return Err(ConfigError::new(
                "SECKILL_JWT_SECRET",
                "must be at least 16 characters",
            ));
        }
        let redis = &self.redis.url;
        if !(redis.starts_with("redis://")
            || redis.starts_with("rediss://")
            || redis.starts_with("redis+cluster://"))
        {
            return Err(ConfigError::new(
                "SECKILL_REDIS_URL",
                format!("'{redis}' is not a redis://, rediss:// or redis+cluster:// URL"),
            ));
        }
        positive("SECKILL_REDIS_POOL_SIZE", self.redis.pool_size)?;
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
        positive(
            "SECKILL_KAFKA_MESSAGE_TIMEOUT_MS",
            self.kafka.message_timeout_ms,
        )?;
        positive("SECKILL_HTTP_MAX_IN_FLIGHT", self.http.max_in_flight)?;
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
        if !crate::stock::scripts::KNOWN_VERSIONS.contains(&self.sale.script_version.as_str()) {
            return Err(ConfigError::new(
                "SECKILL_SALE_SCRIPT_VERSION",
                format!(
                    "unknown script version '{}'; known: {}",
                    self.sale.script_version,
                    crate::stock::scripts::KNOWN_VERSIONS.join(", ")
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
        positive("SECKILL_CACHE_LOCAL_TTL_SECS", self.cache.local_ttl_secs)?;
        positive("SECKILL_CACHE_REDIS_TTL_SECS", self.cache.redis_ttl_secs)?;
        positive(
            "SECKILL_CACHE_NEGATIVE_TTL_SECS",
            self.cache.negative_ttl_secs,
        )?;
        Ok(())
    }

    /// True when the in-process mock Kafka cluster is selected.
    pub fn kafka_is_embedded(&self) -> bool {
        self.kafka.brokers.trim() == EMBEDDED_KAFKA
    }

    /// Producer linger as a duration.
    pub fn kafka_linger(&self) -> Duration {
        Duration::from_millis(self.kafka.linger_ms)
    }

    /// Producer delivery timeout as a duration.
    pub fn kafka_message_timeout(&self) -> Duration {
        Duration::from_millis(self.kafka.message_timeout_ms)
    }
}

/// The environment name of a settings path: `http.addr` -> `SECKILL_HTTP_ADDR`.
pub fn env_name(path: &[String]) -> String {
    let mut name = String::from(ENV_PREFIX);
    name.push_str(&path.join("_").to_ascii_uppercase());
    name
}

/// Every settings path with its environment name, for `--help`-style listings and the README.
pub fn env_names() -> Vec<String> {
    let tree = toml::Value::try_from(Settings::default()).expect("defaults serialise");
    let mut out = Vec::new();
    collect_leaves(&tree, &mut Vec::new(), &mut |path, _| {
        out.push(env_name(path))
    });
    out
}

fn collect_leaves(
    v: &toml::Value,
    path: &mut Vec<String>,
    f: &mut dyn FnMut(&[String], &toml::Value),
) {
    match v {
        toml::Value::Table(t) => {
            for (k, child) in t {
                path.push(k.clone());
                collect_leaves(child, path, f);
                path.pop();
            }
        }
        leaf => f(path, leaf),
    }
}

/// Overlays `from` onto `into`, refusing keys the defaults do not know.
fn merge(
    into: &mut toml::Value,
    from: toml::Value,
    path: &mut Vec<String>,
) -> Result<(), ConfigError> {
    match (into, from) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (k, v) in over {
                path.push(k.clone());
                let Some(slot) = base.get_mut(&k) else {
                    return Err(ConfigError::new(
                        path.join("."),
                        "unknown setting in the config file",
                    ));
                };
                merge(slot, v, path)?;
                path.pop();
            }
            Ok(())
        }
        (slot, v) => {
            if std::mem::discriminant(slot) != std::mem::discriminant(&v) {
                return Err(ConfigError::new(
                    path.join("."),
                    format!("expected a {}, got a {}", slot.type_str(), v.type_str()),
                ));
            }
            *slot = v;
            Ok(())
        }
    }
}

/// Applies `SECKILL_*` variables, typed after the default at the same path.
fn apply_env(tree: &mut toml::Value, env: &[(String, String)]) -> Result<(), ConfigError> {
    let mut known = Vec::new();
    collect_leaves(tree, &mut Vec::new(), &mut |path, leaf| {
        known.push((env_name(path), path.to_vec(), leaf.type_str()));
    });
    for (key, raw) in env {
        let Some((_, path, kind)) = known.iter().find(|(name, _, _)| name == key) else {
            return Err(ConfigError::new(key, "unknown setting"));
        };
        let value = match *kind {
            "integer" => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .map(toml::Value::Integer)
                .ok_or_else(|| {
                    ConfigError::new(key, format!("expected a whole number >= 0, got '{raw}'"))
                })?,
            "boolean" => match raw.trim() {
                "true" | "1" | "yes" => toml::Value::Boolean(true),
                "false" | "0" | "no" => toml::Value::Boolean(false),
                _ => {
                    return Err(ConfigError::new(
                        key,
                        format!("expected true or false, got '{raw}'"),
                    ));
                }
            },
            _ => toml::Value::String(raw.clone()),
        };
        let mut slot = &mut *tree;
        for part in path {
            slot = slot
                .get_mut(part.as_str())
                .expect("path came from the same tree");
        }
        *slot = value;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        Settings::load_from(None, env(&[])).expect("defaults load");
    }

    #[test]
    fn documented_env_names_exist() {
        let names = env_names();
        for name in [
            "SECKILL_HTTP_ADDR",
            "SECKILL_REDIS_URL",
            "SECKILL_MYSQL_URL",
            "SECKILL_KAFKA_BROKERS",
            "SECKILL_KAFKA_TOPIC",
            "SECKILL_ADMIN_TOKEN",
            "SECKILL_JWT_SECRET",
            "SECKILL_LIMITS_GLOBAL_PER_SEC",
            "SECKILL_LIMITS_PER_USER_PER_SEC",
            "SECKILL_SALE_GRACE_SECS",
        ] {
            assert!(names.contains(&name.to_string()), "{name} missing");
        }
    }

    #[test]
    fn env_overrides_are_typed_after_defaults() {
        let s = Settings::load_from(
            None,
            env(&[
                ("SECKILL_HTTP_ADDR", "0.0.0.0:9000"),
                ("SECKILL_KAFKA_BROKERS", "embedded"),
                ("SECKILL_LIMITS_GLOBAL_PER_SEC", "0"),
                ("SECKILL_MYSQL_MIGRATE_ON_START", "false"),
                ("SECKILL_USER_IDENTITY", "trusted_header"),
            ]),
        )
        .unwrap();
        assert_eq!(s.http.addr.port(), 9000);
        assert!(s.kafka_is_embedded());
        assert_eq!(s.limits.global_per_sec, 0);
        assert!(!s.mysql.migrate_on_start);
        assert_eq!(s.user_identity, UserIdentity::TrustedHeader);
    }

    #[test]
    fn a_bad_number_names_the_key() {
        let err =
            Settings::load_from(None, env(&[("SECKILL_REDIS_POOL_SIZE", "lots")])).unwrap_err();
        assert_eq!(err.key, "SECKILL_REDIS_POOL_SIZE");
        assert!(err.to_string().contains("'lots'"), "{err}");
    }

    #[test]
    fn a_bad_address_names_the_key() {
        let err = Settings::load_from(None, env(&[("SECKILL_HTTP_ADDR", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("nowhere"), "{err}");
    }

    #[test]
    fn an_unknown_env_setting_is_refused() {
        let err = Settings::load_from(None, env(&[("SECKILL_REDIS_ULR", "x")])).unwrap_err();
        assert_eq!(err.key, "SECKILL_REDIS_ULR");
    }

    #[test]
    fn relations_are_validated() {
        let err = Settings::load_from(None, env(&[("SECKILL_REDIS_URL", "http://x")])).unwrap_err();
        assert_eq!(err.key, "SECKILL_REDIS_URL");
        let err = Settings::load_from(None, env(&[("SECKILL_JWT_SECRET", "short")])).unwrap_err();
        assert_eq!(err.key, "SECKILL_JWT_SECRET");
        let err = Settings::load_from(
            None,
            env(&[("SECKILL_KAFKA_DEAD_LETTER_TOPIC", "seckill.orders")]),
        )
        .unwrap_err();
        assert_eq!(err.key, "SECKILL_KAFKA_DEAD_LETTER_TOPIC");
        let err = Settings::load_from(None, env(&[("SECKILL_RELAY_REDELIVER_AFTER_MS", "5000")]))
            .unwrap_err();
        assert_eq!(err.key, "SECKILL_RELAY_REDELIVER_AFTER_MS");
    }

    #[test]
    fn a_file_overlays_defaults_and_env_overlays_the_file() {
        let dir = std::env::temp_dir().join(format!("seckill-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("seckill.toml");
        std::fs::write(
            &file,
            "[kafka]\ntopic = \"from-file\"\npartitions = 8\n[http]\naddr = \"127.0.0.1:7000\"\n",
        )
        .unwrap();
        let s =
            Settings::load_from(Some(&file), env(&[("SECKILL_KAFKA_TOPIC", "from-env")])).unwrap();
        assert_eq!(s.kafka.topic, "from-env");
        assert_eq!(s.kafka.partitions, 8);
        assert_eq!(s.http.addr.port(), 7000);
        std::fs::write(&file, "[kafka]\ntopik = \"x\"\n").unwrap();
        let err = Settings::load_from(Some(&file), env(&[])).unwrap_err();
        assert_eq!(err.key, "kafka.topik");
        std::fs::write(&file, "[kafka]\npartitions = \"many\"\n").unwrap();
        let err = Settings::load_from(Some(&file), env(&[])).unwrap_err();
        assert_eq!(err.key, "kafka.partitions");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn passwords_are_hidden_in_urls() {
        assert_eq!(
            redacted("mysql://seckill:pw@127.0.0.1:3306/db"),
            "mysql://seckill:***@127.0.0.1:3306/db"
        );
        assert_eq!(redacted("redis://127.0.0.1/"), "redis://127.0.0.1/");
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::default();
        let shown = format!("{s:?}");
        assert!(!shown.contains("change-me-admin"));
        assert!(!shown.contains("seckill:seckill@"));
    }
}
