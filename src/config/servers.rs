//! Where the servers are and how to authenticate to them: Redis, MySQL, Kafka.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Secret, redacted};

/// Redis settings. Its `Debug` hides a password in the URL.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://host:port/db` for a standalone server; `redis+cluster://h1:p1,h2:p2` for a
    /// cluster; `redis+sentinel://s1:p1,s2:p2/<master name>` for a master found by Sentinel.
    pub url: String,
    /// Connections in the pool. Each is multiplexed, so a few carry a lot.
    pub pool_size: u64,
    /// Prefix of every key this process writes; lets several deployments (or tests) share a server.
    pub key_prefix: String,
    /// Replicas that must acknowledge a reservation in `replica` confirmation mode.
    pub min_replicas: u64,
    /// PEM file of the certificate authority that signed the servers' certificates, for a
    /// `rediss://` URL (empty: the system's roots).
    pub ca_file: String,
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
    /// librdkafka `security.protocol`: `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// SASL mechanism for the `sasl_*` protocols: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: String,
    /// SASL user name.
    pub sasl_username: String,
    /// SASL password.
    pub sasl_password: Secret,
    /// PEM file of the certificate authority of the brokers (empty: the system's roots).
    pub ssl_ca_location: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:16379/".into(),
            pool_size: 16,
            key_prefix: String::new(),
            min_replicas: 1,
            ca_file: String::new(),
        }
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redacted(&self.url))
            .field("pool_size", &self.pool_size)
            .field("key_prefix", &self.key_prefix)
            .field("min_replicas", &self.min_replicas)
            .field("ca_file", &self.ca_file)
            .finish()
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
            security_protocol: "plaintext".into(),
            sasl_mechanism: String::new(),
            sasl_username: String::new(),
            sasl_password: Secret::default(),
            ssl_ca_location: String::new(),
        }
    }
}

/// `security.protocol` values librdkafka understands.
const KAFKA_PROTOCOLS: &[&str] = &["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
/// SASL mechanisms built into librdkafka (GSSAPI would need Cyrus SASL).
const KAFKA_SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

impl KafkaSettings {
    /// The librdkafka properties of the security settings, for every client this process
    /// builds (producer, consumers, admin, lag probe).
    ///
    /// # Errors
    /// A [`super::ConfigError`] naming the setting that is unknown or missing.
    pub fn security_properties(&self) -> Result<Vec<(&'static str, String)>, super::ConfigError> {
        use super::ConfigError;
        let protocol = self.security_protocol.trim().to_ascii_lowercase();
        if !KAFKA_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(ConfigError::new(
                "SECKILL_KAFKA_SECURITY_PROTOCOL",
                format!("expected one of {KAFKA_PROTOCOLS:?}, got '{protocol}'"),
            ));
        }
        let mut props = vec![("security.protocol", protocol.clone())];
        if protocol.starts_with("sasl_") {
            let mechanism = self.sasl_mechanism.trim().to_ascii_uppercase();
            if !KAFKA_SASL_MECHANISMS.contains(&mechanism.as_str()) {
                return Err(ConfigError::new(
                    "SECKILL_KAFKA_SASL_MECHANISM",
                    format!("{protocol} needs one of {KAFKA_SASL_MECHANISMS:?}, got '{mechanism}'"),
                ));
            }
            if self.sasl_username.trim().is_empty() {
                return Err(ConfigError::new(
                    "SECKILL_KAFKA_SASL_USERNAME",
                    format!("{protocol} needs a user name"),
                ));
            }
            props.push(("sasl.mechanism", mechanism));
            props.push(("sasl.username", self.sasl_username.trim().to_string()));
            props.push(("sasl.password", self.sasl_password.expose().to_string()));
        } else if !self.sasl_mechanism.trim().is_empty() || !self.sasl_username.trim().is_empty() {
            return Err(ConfigError::new(
                "SECKILL_KAFKA_SASL_MECHANISM",
                format!(
                    "SASL settings need SECKILL_KAFKA_SECURITY_PROTOCOL=sasl_plaintext or sasl_ssl (it is {protocol})"
                ),
            ));
        }
        if !self.ssl_ca_location.trim().is_empty() {
            if !protocol.ends_with("ssl") {
                return Err(ConfigError::new(
                    "SECKILL_KAFKA_SSL_CA_LOCATION",
                    format!(
                        "a CA file needs SECKILL_KAFKA_SECURITY_PROTOCOL=ssl or sasl_ssl (it is {protocol})"
                    ),
                ));
            }
            props.push(("ssl.ca.location", self.ssl_ca_location.trim().to_string()));
        }
        Ok(props)
    }
}
