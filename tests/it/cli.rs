//! The command line: clear one-line errors, and a README that documents every setting.

use std::collections::BTreeSet;

fn seckill(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seckill"));
    cmd.args(args)
        .env_remove("SECKILL_REDIS_URL")
        .env_remove("SECKILL_MYSQL_URL")
        .env_remove("SECKILL_KAFKA_BROKERS")
        .env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
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
    for cmd in ["serve", "consume", "reconcile", "migrate", "all", "config"] {
        let out = seckill(&[cmd, "--help"], &[]);
        assert!(out.status.success(), "{cmd} --help");
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn the_readme_documents_exactly_the_settings_that_exist() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let documented: BTreeSet<String> = readme
        .lines()
        .filter(|l| l.starts_with("| `SECKILL_"))
        .map(|l| l[3..].split('`').next().unwrap().to_string())
        .collect();
    let existing: BTreeSet<String> = seckill::config::env_names().into_iter().collect();
    assert_eq!(documented, existing);
}
