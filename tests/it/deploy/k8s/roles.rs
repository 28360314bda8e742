//! Least privilege per role: each role reads its own Secret, holds only the keys it uses, logs
//! in to MySQL and Kafka as its own user, and reaches both over TLS that checks the server.

use std::{
    collections::BTreeSet,
    io::Read,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sqlx::mysql::MySqlSslMode;

use super::{Role, SERVING_SECRETS, role, roles};

#[test]
fn each_role_reads_its_own_secret_with_only_the_keys_it_uses() {
    let roles = roles();
    for (i, a) in roles.iter().enumerate() {
        assert!(!a.secrets.is_empty(), "{}: reads no Secret", a.name);
        for b in &roles[i + 1..] {
            let shared: Vec<_> = a.secrets.intersection(&b.secrets).collect();
            assert!(
                shared.is_empty(),
                "{} and {} share the Secret {shared:?}",
                a.name,
                b.name
            );
        }
    }
    let api = role("api");
    for key in SERVING_SECRETS {
        assert!(api.from_secrets.contains(key), "the API lacks {key}");
    }
    for name in ["consumer", "migrate"] {
        let r = role(name);
        for key in SERVING_SECRETS.iter().chain(&["SECKILL_REDIS_URL"]) {
            assert!(
                r.var(key).is_none(),
                "{name} gets {key}, which only the API uses"
            );
        }
    }
    let migrate = role("migrate");
    let expected: BTreeSet<String> = ["SECKILL_MYSQL_URL".to_string()].into();
    assert_eq!(migrate.from_secrets, expected, "the migration's secrets");
    let kafka: Vec<&String> = migrate
        .env
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("SECKILL_KAFKA_"))
        .collect();
    assert!(kafka.is_empty(), "the migration gets {kafka:?}");
    for name in ["api", "consumer"] {
        let r = role(name);
        for key in ["SECKILL_KAFKA_SASL_USERNAME", "SECKILL_KAFKA_SASL_PASSWORD"] {
            assert!(
                r.from_secrets.contains(key),
                "{name}: {key} not from its Secret"
            );
        }
    }
}

/// Runs `seckill <command>` with exactly the role's environment; waits at most a minute.
fn run_role(role: &Role, command: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seckill"))
        .arg(command)
        .env_clear()
        .envs(role.env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

/// The binary's own start-up checks (settings, then the secrets of the serving roles) with each
/// role's environment: the consumer and the migration get past them without the API's keys and
/// stop only at MySQL, which does not exist here; the API stops at its placeholder keys.
#[test]
fn each_role_starts_past_the_binarys_checks_with_its_own_environment() {
    for (name, command) in [("consumer", "consume"), ("migrate", "migrate")] {
        let (code, stderr) = run_role(&role(name), command);
        assert_ne!(code, Some(2), "{name} refused its settings: {stderr}");
        assert!(
            stderr.contains("cannot reach MySQL at mysql://seckill_"),
            "{name} did not get as far as MySQL (exit {code:?}): {stderr}"
        );
        assert!(!stderr.contains("replace-me"), "a password in: {stderr}");
    }
    let (code, stderr) = run_role(&role("api"), "serve");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("config: SECKILL_ADMIN_TOKEN: looks like a placeholder"),
        "{stderr}"
    );
}

#[test]
fn kafka_and_mysql_are_reached_over_tls_that_checks_the_server_with_each_roles_user() {
    let mut mysql_users = BTreeSet::new();
    for r in roles() {
        let settings = r.settings();
        let options = seckill::stores::mysql::connect_options(&settings.mysql).unwrap();
        assert!(
            matches!(options.get_ssl_mode(), MySqlSslMode::VerifyIdentity),
            "{}: MySQL's ssl-mode is {:?}, not VERIFY_IDENTITY",
            r.name,
            options.get_ssl_mode()
        );
        let url = settings.mysql.url.expose();
        let ca = url
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("ssl-ca="))
            .unwrap_or_else(|| panic!("{}: no ssl-ca in the MySQL URL", r.name));
        assert!(r.mounts_file(ca), "{}: {ca} is not mounted", r.name);
        mysql_users.insert(options.get_username().to_string());
    }
    assert_eq!(
        mysql_users.len(),
        3,
        "one MySQL user per role: {mysql_users:?}"
    );
    let mut kafka_users = BTreeSet::new();
    for name in ["api", "consumer"] {
        let r = role(name);
        let props = r.settings().kafka.security_properties().unwrap();
        let prop = |key: &str| {
            props
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{name}: no Kafka {key}"))
        };
        assert_eq!(
            prop("security.protocol"),
            "sasl_ssl",
            "{name}: Kafka security.protocol"
        );
        assert!(prop("sasl.mechanism").starts_with("SCRAM-"), "{name}");
        let ca = prop("ssl.ca.location");
        assert!(r.mounts_file(&ca), "{name}: {ca} is not mounted");
        kafka_users.insert(prop("sasl.username"));
    }
    assert_eq!(kafka_users.len(), 2, "API and consumer share a Kafka user");
}

#[test]
fn buyer_tokens_must_name_the_issuer_and_the_audience() {
    let jwt = role("api").settings().jwt;
    assert!(!jwt.issuer.trim().is_empty(), "SECKILL_JWT_ISSUER is unset");
    assert!(
        !jwt.audience.trim().is_empty(),
        "SECKILL_JWT_AUDIENCE is unset"
    );
}
