//! The command line: clear one-line errors, each command explained, tokens and reports.

use std::{
    io::{BufRead, BufReader},
    time::{Duration, Instant},
};

use crate::support::{ADMIN_TOKEN, JWT_SECRET, PAYMENT_SECRET, STACK, free_port};

/// `seckill` with the stack's servers unset, real (random) secrets, and `env` on top.
fn command(args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seckill"));
    cmd.args(args)
        .env_remove("SECKILL_REDIS_URL")
        .env_remove("SECKILL_MYSQL_URL")
        .env_remove("SECKILL_KAFKA_BROKERS")
        .env("SECKILL_ADMIN_TOKEN", &*ADMIN_TOKEN)
        .env("SECKILL_JWT_SECRET", &*JWT_SECRET)
        .env("SECKILL_PAYMENT_SECRET", &*PAYMENT_SECRET)
        .env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn seckill(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    command(args, env).output().unwrap()
}

#[test]
fn default_placeholder_and_short_secrets_stop_the_serving_roles_with_exit_2() {
    let cases = [
        ("SECKILL_ADMIN_TOKEN", "change-me-admin"),
        ("SECKILL_JWT_SECRET", "change-me-jwt-secret"),
        ("SECKILL_PAYMENT_SECRET", "change-me-payment-secret"),
        // The Kubernetes Secret's placeholder, long enough but copied from the example.
        ("SECKILL_ADMIN_TOKEN", "replace-with-openssl-rand-hex-32"),
        ("SECKILL_JWT_SECRET", "0123456789abcdef0123456789abcde"),
    ];
    for (key, value) in cases {
        for role in ["serve", "all"] {
            let out = seckill(&[role], &[(key, value)]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{role} {key}={value}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(key) && !err.contains(value), "{err}");
        }
    }
    // Without the variables at all, the built-in defaults are refused too.
    let mut bare = std::process::Command::new(env!("CARGO_BIN_EXE_seckill"));
    bare.arg("serve")
        .env_remove("SECKILL_ADMIN_TOKEN")
        .env_remove("SECKILL_JWT_SECRET")
        .env_remove("SECKILL_PAYMENT_SECRET");
    assert_eq!(bare.output().unwrap().status.code(), Some(2));
    // A consumer holds none of them, so it does not ask: it gets as far as MySQL.
    let out = seckill(
        &["consume"],
        &[
            ("SECKILL_ADMIN_TOKEN", "change-me-admin"),
            ("SECKILL_MYSQL_URL", "mysql://u:p@127.0.0.1:1/x"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn passwords_in_urls_appear_neither_in_config_output_nor_in_start_up_errors() {
    let redis = "redis://:hunter2-redis-pass@127.0.0.1:1/";
    let out = seckill(
        &["config"],
        &[
            ("SECKILL_REDIS_URL", redis),
            (
                "SECKILL_MYSQL_URL",
                "mysql://u:hunter2-mysql-pass@127.0.0.1:1/x",
            ),
        ],
    );
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("127.0.0.1:1"), "{printed}");
    assert!(!printed.contains("hunter2"), "{printed}");
    for secret in [&*ADMIN_TOKEN, &*JWT_SECRET, &*PAYMENT_SECRET] {
        assert!(!printed.contains(secret.as_str()));
    }
    let out = seckill(
        &["serve"],
        &[
            ("SECKILL_REDIS_URL", redis),
            ("SECKILL_HTTP_ADDR", "127.0.0.1:0"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach Redis")
            && err.contains("127.0.0.1:1")
            && !err.contains("hunter2"),
        "{err}"
    );
}

/// What the kubelet injects for a Service named `seckill-api` in the pod's namespace.
const SERVICE_LINKS: &[(&str, &str)] = &[
    ("SECKILL_API_SERVICE_HOST", "10.96.0.12"),
    ("SECKILL_API_SERVICE_PORT", "80"),
    ("SECKILL_API_SERVICE_PORT_HTTP", "80"),
    ("SECKILL_API_PORT", "tcp://10.96.0.12:80"),
    ("SECKILL_API_PORT_80_TCP", "tcp://10.96.0.12:80"),
    ("SECKILL_API_PORT_80_TCP_PROTO", "tcp"),
    ("SECKILL_API_PORT_80_TCP_PORT", "80"),
    ("SECKILL_API_PORT_80_TCP_ADDR", "10.96.0.12"),
];

/// A GET with an `X-Request-Id`, over a plain socket; returns the answer's head.
fn raw_get(addr: &str, path: &str, request_id: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nX-Request-Id: {request_id}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_server_starts_with_kubernetes_service_links_in_its_environment_and_says_so() {
    let (http, admin) = (free_port(), free_port());
    let http_addr = format!("127.0.0.1:{http}");
    let admin_addr = format!("127.0.0.1:{admin}");
    let mut env: Vec<(&str, &str)> = SERVICE_LINKS.to_vec();
    env.extend([
        ("SECKILL_REDIS_URL", STACK.redis_url.as_str()),
        ("SECKILL_MYSQL_URL", STACK.mysql_url.as_str()),
        ("SECKILL_KAFKA_BROKERS", "embedded"),
        ("SECKILL_HTTP_ADDR", http_addr.as_str()),
        ("SECKILL_ADMIN_ADDR", admin_addr.as_str()),
        ("SECKILL_BUY_CONFIRM", "ledger"),
        ("RUST_LOG", "warn,seckill::api=debug"),
    ]);
    let mut child = command(&["serve"], &env)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    // The image's own probe: `seckill healthcheck` against the listener.
    let probe = |path: &str, addr: &str| {
        seckill(&["healthcheck", "--path", path, "--addr", addr], &[])
            .status
            .code()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while probe("/healthz", &http_addr) != Some(0) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "seckill serve exited with service links set"
        );
        assert!(
            Instant::now() < deadline,
            "seckill serve never answered /healthz"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(probe("/readyz", &http_addr), Some(0));
    assert_eq!(probe("/nowhere", &http_addr), Some(1), "a 404 is unhealthy");
    assert_eq!(probe("/metrics", &admin_addr), Some(0));
    // An error answer's request id is the one in the log line about it.
    let answer = raw_get(&http_addr, "/api/v1/orders/not-an-id", "probe-req-4242");
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-request-id: probe-req-4242"),
        "{answer}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        probe("/healthz", &http_addr),
        Some(1),
        "nothing listens any more"
    );
    let log = lines.join().unwrap().join("\n");
    assert!(
        log.lines()
            .any(|l| l.contains("probe-req-4242") && l.contains("answered with an error")),
        "the request id is not in the log: {log}"
    );
    for (name, _) in SERVICE_LINKS {
        assert!(
            log.contains(name) && log.contains("Kubernetes service link"),
            "no warning names {name}: {log}"
        );
    }
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let out = seckill(&["serve"], &[("SECKILL_REDIS_POOL_SIZE", "lots")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("SECKILL_REDIS_POOL_SIZE") && err.contains("lots"),
        "{err}"
    );
    let out = seckill(&["consume"], &[("SECKILL_KAFKA_TOPIC", " ")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SECKILL_KAFKA_TOPIC"));
}

#[test]
fn an_unreachable_server_stops_start_up_with_one_line_naming_it() {
    let out = seckill(
        &["serve"],
        &[
            ("SECKILL_REDIS_URL", "redis://127.0.0.1:1/"),
            ("SECKILL_HTTP_ADDR", "127.0.0.1:0"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: cannot reach Redis at redis://127.0.0.1:1/"),
        "{err}"
    );
    let out = seckill(
        &["migrate"],
        &[("SECKILL_MYSQL_URL", "mysql://u:secret@127.0.0.1:1/x")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach MySQL") && !err.contains("secret"),
        "{err}"
    );
}

#[test]
fn every_command_explains_itself() {
    use clap::CommandFactory;
    let cli = seckill::cli::Cli::command();
    let commands: Vec<_> = cli
        .get_subcommands()
        .filter(|c| c.get_name() != "help")
        .collect();
    let names: Vec<&str> = commands.iter().map(|c| c.get_name()).collect();
    assert!(
        names.len() >= 9 && names.contains(&"token") && names.contains(&"openapi"),
        "{names:?}"
    );
    for cmd in commands {
        let name = cmd.get_name();
        let out = seckill(&[name, "--help"], &[]);
        assert!(out.status.success(), "{name} --help: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        // Its own explanation, and one for each of its options.
        let about = cmd.get_about().expect("every command has an explanation");
        let first = about.to_string();
        let first = first
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            help.contains(&first),
            "{name} --help lacks '{first}':\n{help}"
        );
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            assert!(
                arg.get_help().is_some(),
                "{name} --{long} has no explanation"
            );
            assert!(
                help.contains(&format!("--{long}")),
                "{name} --help lacks --{long}"
            );
        }
    }
    // The overview names every command.
    let out = seckill(&["--help"], &[]);
    let overview = String::from_utf8_lossy(&out.stdout);
    for cmd in seckill::cli::Cli::command().get_subcommands() {
        assert!(overview.contains(cmd.get_name()), "{overview}");
    }
}

#[test]
fn token_prints_a_buyer_token_the_service_accepts() {
    let out = seckill(&["token", "--user", "alice", "--ttl", "10m"], &[]);
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let settings = seckill::config::Settings {
        jwt_secret: seckill::config::Secret::new(JWT_SECRET.as_str()),
        ..Default::default()
    };
    let auth = seckill::buy::identify::Authenticator::new(&settings);
    let user = auth
        .buyer(Some(&format!("Bearer {token}")), None, None)
        .expect("the service accepts it");
    assert_eq!(user.as_ref(), "alice");
    // Its lifetime is the one asked for.
    let claims: serde_json::Value =
        serde_json::from_slice(&base64_url_decode(token.split('.').nth(1).unwrap())).unwrap();
    let life = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(life, 600);
    // Bad input: a clear error and exit 2.
    for (args, env) in [
        (vec!["token", "--user", "alice", "--ttl", "forever"], vec![]),
        (vec!["token", "--user", "   "], vec![]),
        (vec!["token"], vec![]),
        (
            vec!["token", "--user", "alice"],
            vec![("SECKILL_JWT_SECRET", "change-me-jwt-secret")],
        ),
    ] {
        let out = seckill(&args, &env);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty());
    }
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = alphabet.iter().position(|a| *a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

/// Runs `seckill reconcile --watch` on `config` until it has drawn two reports, then sends it
/// SIGINT; returns its exit code and what it printed.
fn watch_twice(config: &std::path::Path, sale: u64) -> (Option<i32>, String) {
    let mut child = command(
        &[
            "reconcile",
            "--config",
            config.to_str().unwrap(),
            "--sale",
            &sale.to_string(),
            "--watch",
            "--every",
            "300ms",
        ],
        &[],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
            let _ = tx.send(text.clone());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while seen.matches("Reconciliation of sale").count() < 2 {
        assert!(Instant::now() < deadline, "two reports never came: {seen}");
        if let Ok(text) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = text;
        }
    }
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let code = child.wait().unwrap().code();
    (code, seen)
}

#[tokio::test]
async fn reconcile_watch_redraws_until_interrupted_and_exits_with_the_last_verdict() {
    let app = crate::support::spawn_app().await;
    let (sale, item) = app.create_live_sale(5, 1).await;
    let (status, _) = app.buy(sale, item, "watched", 1, None).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    crate::support::eventually(Duration::from_secs(30), || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(app.db())
            .await
            .ok()?;
        (n == 1).then_some(())
    })
    .await;
    // No grace: an entry missing from MySQL fails the report at once.
    let mut settings = app.settings().clone();
    settings.reconcile.ledger_grace_secs = 0;
    let config = crate::support::write_config(&settings);
    let (code, printed) = tokio::task::spawn_blocking({
        let config = config.clone();
        move || watch_twice(&config, sale)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{printed}");
    assert!(printed.contains("ALL CHECKS OK"), "{printed}");
    assert!(printed.contains("\x1b[2J"), "the screen is redrawn");
    // Drift: the order row disappears behind the service's back; the last report fails.
    sqlx::query("DELETE FROM orders")
        .execute(app.db())
        .await
        .unwrap();
    let (code, printed) = tokio::task::spawn_blocking(move || watch_twice(&config, sale))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{printed}");
    assert!(printed.contains("DISCREPANCIES"), "{printed}");
}
