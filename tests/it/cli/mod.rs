//! The command line: clear one-line errors, secrets refused, each command explained; tokens
//! ([`token`]) and a reconciliation report redrawn until interrupted ([`watch`]).

mod token;
mod watch;

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
/// (As `NAME=value` words; [`service_links`] reads them.)
const SERVICE_LINKS: &str = "\
    SECKILL_API_SERVICE_HOST=10.96.0.12 SECKILL_API_SERVICE_PORT=80 \
    SECKILL_API_SERVICE_PORT_HTTP=80 SECKILL_API_PORT=tcp://10.96.0.12:80 \
    SECKILL_API_PORT_80_TCP=tcp://10.96.0.12:80 SECKILL_API_PORT_80_TCP_PROTO=tcp \
    SECKILL_API_PORT_80_TCP_PORT=80 SECKILL_API_PORT_80_TCP_ADDR=10.96.0.12";

/// [`SERVICE_LINKS`] as (name, value) pairs.
fn service_links() -> Vec<(&'static str, &'static str)> {
    let words = SERVICE_LINKS.split_whitespace();
    words.map(|w| w.split_once('=').unwrap()).collect()
}

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
    let mut env: Vec<(&str, &str)> = service_links();
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
    for (name, _) in service_links() {
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
