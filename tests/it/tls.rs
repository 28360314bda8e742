//! TLS and authentication to managed services: the stack's Redis master listens for TLS and
//! its MariaDB accepts it, both with a certificate signed by the stack's own CA; Kafka's
//! settings are checked as far as the client (tansu speaks plaintext only).

use std::collections::HashMap;

use rdkafka::producer::BaseProducer;
use reqwest::StatusCode;
use seckill::{
    config::{ConfirmMode, RedisSettings, Secret},
    stores::{kafka::KafkaEndpoint, redis::RedisPool},
};

use crate::support::{STACK, redis_settings, spawn_with, test_settings};

#[tokio::test]
async fn a_sale_sells_over_tls_to_redis_and_to_mariadb() {
    let mut settings = test_settings("embedded").await;
    settings.redis.url = STACK.redis_tls_url.clone();
    settings.redis.ca_file = STACK.tls_ca_file.clone();
    settings.buy.confirm = ConfirmMode::Replica;
    let mysql = settings.mysql.url.expose().to_string();
    settings.mysql.url = Secret::new(format!(
        "{mysql}?ssl-mode=verify_identity&ssl-ca={}",
        STACK.tls_ca_file
    ));
    let app = spawn_with(settings).await;
    let (sale, item) = app.create_live_sale(3, 1).await;
    let (status, body) = app.buy(sale, item, "tls-buyer", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // The pool's connections really are encrypted.
    let (_, cipher): (String, String) = sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert!(!cipher.is_empty(), "the MySQL session is not encrypted");
    let persisted: i64 = crate::support::eventually(std::time::Duration::from_secs(30), || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE user_id = 'tls-buyer'")
            .fetch_one(app.db())
            .await
            .ok()?;
        (n == 1).then_some(n)
    })
    .await;
    assert_eq!(persisted, 1);
}

/// Forwards connections from a port on 127.0.0.2 to `target`: the same TLS server, reached
/// under an address its certificate does not name (it names `localhost` and 127.0.0.1).
async fn forward_from_another_address(target: u16) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) =
                    tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

/// True when `error` is a refusal of the server's certificate (not a refused connection, a
/// missing file or a timeout).
fn is_certificate_error(error: &str) -> bool {
    let e = error.to_lowercase();
    e.contains("certificate") || e.contains("unknownissuer") || e.contains("notvalidforname")
}

#[tokio::test]
async fn a_server_whose_certificate_the_ca_did_not_sign_is_refused() {
    // Without the stack's CA the system roots do not know the certificate.
    let refused = RedisPool::connect(&redis_settings(&STACK.redis_tls_url, 1)).await;
    let error = refused
        .err()
        .expect("an unknown issuer was accepted")
        .to_string();
    assert!(
        is_certificate_error(&error),
        "not a certificate error: {error}"
    );
    // With it, the same server answers.
    let with_ca = RedisSettings {
        ca_file: STACK.tls_ca_file.clone(),
        ..redis_settings(&STACK.redis_tls_url, 1)
    };
    let pool = RedisPool::connect(&with_ca)
        .await
        .expect("TLS with the stack's CA");
    pool.ping().await.unwrap();
}

#[tokio::test]
async fn a_listening_tls_server_under_a_name_its_certificate_lacks_is_refused() {
    let tls_port: u16 = STACK
        .redis_tls_url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the stack's TLS URL has a port");
    let port = forward_from_another_address(tls_port).await;
    // The forwarder really reaches the server: plain TCP through it gets a TLS alert or a
    // closed connection, not a refusal.
    tokio::net::TcpStream::connect(("127.0.0.2", port))
        .await
        .expect("something listens on the other address");
    let refused = RedisPool::connect(&RedisSettings {
        url: format!("rediss://127.0.0.2:{port}/"),
        pool_size: 1,
        ca_file: STACK.tls_ca_file.clone(),
        ..RedisSettings::default()
    })
    .await;
    let Err(error) = refused else {
        panic!("a certificate for another name was accepted")
    };
    let error = error.to_string();
    assert!(
        is_certificate_error(&error),
        "not a certificate error: {error}"
    );
}

/// A CA of its own, which signed nothing the stack serves: its certificate file.
fn unrelated_ca() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("seckill-ca-{}", crate::support::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=unrelated CA", "-keyout"])
        .arg(dir.join("ca.key"))
        .arg("-out")
        .arg(dir.join("ca.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl made a CA");
    dir.join("ca.crt")
}

#[tokio::test]
async fn mariadb_verified_against_a_ca_that_did_not_sign_it_is_refused() {
    let ca = unrelated_ca();
    let mysql = seckill::config::MySqlSettings {
        url: Secret::new(format!(
            "{}?ssl-mode=verify_ca&ssl-ca={}",
            STACK.mysql_url,
            ca.display()
        )),
        ..Default::default()
    };
    let error = format!(
        "{:#}",
        seckill::stores::mysql::open(&mysql, false)
            .await
            .expect_err("a server certificate the CA did not sign was accepted")
    );
    assert!(
        is_certificate_error(&error),
        "not a certificate error: {error}"
    );
    // The stack's own CA verifies the same server.
    let mysql = seckill::config::MySqlSettings {
        url: Secret::new(format!(
            "{}?ssl-mode=verify_identity&ssl-ca={}",
            STACK.mysql_url, STACK.tls_ca_file
        )),
        ..Default::default()
    };
    seckill::stores::mysql::open(&mysql, false)
        .await
        .expect("verified against the stack's CA");
    let _ = std::fs::remove_dir_all(ca.parent().unwrap());
}

fn properties(config: &rdkafka::ClientConfig) -> HashMap<String, String> {
    config
        .config_map()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn kafka_tls_and_sasl_settings_reach_every_client() {
    let mut settings = test_settings("127.0.0.1:1").await;
    settings.kafka.security_protocol = "sasl_ssl".into();
    settings.kafka.sasl_mechanism = "SCRAM-SHA-512".into();
    settings.kafka.sasl_username = "orders".into();
    settings.kafka.sasl_password = Secret::new("kafka-pass");
    settings.kafka.ssl_ca_location = STACK.tls_ca_file.clone();
    let endpoint = KafkaEndpoint::for_brokers(&settings).unwrap();
    let config = endpoint.client_config();
    for (key, value) in [
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "orders"),
        ("sasl.password", "kafka-pass"),
        ("ssl.ca.location", STACK.tls_ca_file.as_str()),
    ] {
        assert_eq!(config.get(key), Some(value), "{key}");
    }
    // librdkafka itself accepts them: built with OpenSSL, SCRAM included.
    // (Without the OpenSSL build, creation fails: "OpenSSL not available at build time".)
    let created: Result<BaseProducer, _> = endpoint.client_config().create();
    assert!(created.is_ok(), "{:?}", created.err());
    // The same through the environment, as an operator sets them; plaintext by default.
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let s = seckill::config::Settings::load_from(
        None,
        env(&[
            ("SECKILL_KAFKA_SECURITY_PROTOCOL", "ssl"),
            ("SECKILL_KAFKA_SSL_CA_LOCATION", "/etc/kafka/ca.pem"),
        ]),
    )
    .unwrap();
    let props = properties(&KafkaEndpoint::for_brokers(&s).unwrap().client_config());
    assert_eq!(props["security.protocol"], "ssl");
    assert_eq!(props["ssl.ca.location"], "/etc/kafka/ca.pem");
    assert!(!props.contains_key("sasl.mechanism"));
    let plain = seckill::config::Settings::load_from(None, env(&[])).unwrap();
    let props = properties(&KafkaEndpoint::for_brokers(&plain).unwrap().client_config());
    assert_eq!(props["security.protocol"], "plaintext");
    // Inconsistent settings are refused at load, naming the key.
    for (pairs, key) in [
        (
            vec![("SECKILL_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")],
            "SECKILL_KAFKA_SASL_MECHANISM",
        ),
        (
            vec![
                ("SECKILL_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
                ("SECKILL_KAFKA_SASL_MECHANISM", "GSSAPI"),
            ],
            "SECKILL_KAFKA_SASL_MECHANISM",
        ),
        (
            vec![
                ("SECKILL_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                ("SECKILL_KAFKA_SASL_MECHANISM", "PLAIN"),
            ],
            "SECKILL_KAFKA_SASL_USERNAME",
        ),
        (
            vec![("SECKILL_KAFKA_SECURITY_PROTOCOL", "tls")],
            "SECKILL_KAFKA_SECURITY_PROTOCOL",
        ),
        (
            vec![("SECKILL_KAFKA_SSL_CA_LOCATION", "/ca.pem")],
            "SECKILL_KAFKA_SSL_CA_LOCATION",
        ),
    ] {
        let err = seckill::config::Settings::load_from(None, env(&pairs)).unwrap_err();
        assert_eq!(err.key, key, "{pairs:?}: {err}");
    }
}
