//! Typed settings: defaults compiled in, then an optional TOML file, then `SECKILL_*` environment
//! variables. Every setting has exactly one environment name, derived from its path
//! (`http.addr` -> `SECKILL_HTTP_ADDR`), so operators' scripts can rely on it. Values are
//! validated once at load; a bad value is reported as one line naming the key and the problem.
//!
//! `settings` holds the types and their defaults (`servers` those of the connections to Redis,
//! MySQL and Kafka, `secrets` the type that hides secrets and the check that they are real),
//! `env` the layering (file, environment) and `validate` the rules types alone cannot express.

mod docs;
mod env;
mod secrets;
mod sections;
mod servers;
mod settings;
mod validate;

pub use docs::{CORE, reference};
pub use env::{env_name, env_names, is_service_link};
pub use secrets::{MIN_SECRET_LEN, Secret, redacted};
pub use sections::*;
pub use servers::{KafkaSettings, MySqlSettings, RedisSettings};
pub use settings::*;

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
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
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
                ("SECKILL_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7"),
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
    fn kubernetes_service_links_are_skipped_and_reported() {
        let injected = [
            ("SECKILL_API_SERVICE_HOST", "10.96.0.12"),
            ("SECKILL_API_SERVICE_PORT", "80"),
            ("SECKILL_API_SERVICE_PORT_HTTP", "80"),
            ("SECKILL_API_PORT", "tcp://10.96.0.12:80"),
            ("SECKILL_API_PORT_80_TCP", "tcp://10.96.0.12:80"),
            ("SECKILL_API_PORT_80_TCP_PROTO", "tcp"),
            ("SECKILL_API_PORT_80_TCP_PORT", "80"),
            ("SECKILL_API_PORT_80_TCP_ADDR", "10.96.0.12"),
            ("SECKILL_SERVICE_HOST", "10.96.0.13"),
        ];
        let mut vars = injected.to_vec();
        vars.push(("SECKILL_HTTP_ADDR", "0.0.0.0:9000"));
        let s = Settings::load_from(None, env(&vars)).expect("service links do not stop start-up");
        assert_eq!(s.http.addr.port(), 9000);
        let skipped: Vec<&str> = s.ignored_env.iter().map(String::as_str).collect();
        let expected: Vec<&str> = injected.iter().map(|(k, _)| *k).collect();
        assert_eq!(skipped, expected);
        // Near misses are still typos.
        for typo in [
            "SECKILL_API_PORT_80_TCPX",
            "SECKILL_API_PORT_X_TCP",
            "SECKILL_REDIS_URI",
        ] {
            assert!(
                Settings::load_from(None, env(&[(typo, "1")])).is_err(),
                "{typo} must be refused"
            );
        }
    }

    #[test]
    fn relations_are_validated() {
        let err = Settings::load_from(None, env(&[("SECKILL_REDIS_URL", "http://x")])).unwrap_err();
        assert_eq!(err.key, "SECKILL_REDIS_URL");
        let err = Settings::load_from(None, env(&[("SECKILL_USER_IDENTITY", "trusted_header")]))
            .unwrap_err();
        assert_eq!(err.key, "SECKILL_TRUSTED_PROXIES");
        let err = Settings::load_from(None, env(&[("SECKILL_TRUSTED_PROXIES", "10.0.0.0/33")]))
            .unwrap_err();
        assert_eq!(err.key, "SECKILL_TRUSTED_PROXIES");
        let err = Settings::load_from(None, env(&[("SECKILL_ADMIN_ADDR", "127.0.0.1:8080")]))
            .unwrap_err();
        assert_eq!(
            err.key, "SECKILL_ADMIN_ADDR",
            "the admin listener needs its own port"
        );
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
