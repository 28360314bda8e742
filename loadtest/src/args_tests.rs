//! Tests of the command line: what is accepted, what is refused and why.

use super::*;

#[test]
fn more_users_than_tokens_can_be_signed_up_front_is_refused() {
    let err = parse(&[
        "--sale",
        "1",
        "--item",
        "1",
        "--concurrency",
        "1",
        "--requests",
        "1",
        "--users",
        "1000000000",
    ])
    .unwrap_err();
    assert!(err.contains("--users is at most 2000000"), "{err}");
    assert!(
        parse(&[
            "--sale",
            "1",
            "--item",
            "1",
            "--concurrency",
            "1",
            "--requests",
            "1",
            "--users",
            "2000000"
        ])
        .is_ok()
    );
}

fn parse(args: &[&str]) -> Result<Plan, String> {
    let mut all = vec!["loadtest", "--admin-token", "t", "--jwt-secret", "s"];
    all.extend_from_slice(args);
    Args::try_parse_from(all)
        .map_err(|e| e.to_string())
        .and_then(|a| a.plan().map_err(|e| e.0))
}

#[test]
fn a_closed_loop_run_against_a_new_sale_is_accepted() {
    let p = parse(&["--create-sale", "--concurrency", "8", "--duration", "2s"]).unwrap();
    assert_eq!(p.mode, Mode::ClosedLoop { concurrency: 8 });
    assert_eq!(p.duration, Some(Duration::from_secs(2)));
}

#[test]
fn an_open_loop_run_against_an_existing_item_is_accepted() {
    let p = parse(&[
        "--sale",
        "1",
        "--item",
        "2",
        "--rate",
        "500",
        "--requests",
        "100",
    ])
    .unwrap();
    assert_eq!(
        p.mode,
        Mode::OpenLoop {
            rate: 500,
            connections: 256
        }
    );
    assert_eq!(p.requests, Some(100));
}

#[test]
fn conflicting_or_missing_arguments_are_refused() {
    assert!(
        parse(&["--create-sale", "--duration", "1s"])
            .unwrap_err()
            .contains("--rate")
    );
    assert!(
        parse(&[
            "--create-sale",
            "--rate",
            "1",
            "--concurrency",
            "1",
            "--duration",
            "1s"
        ])
        .is_err()
    );
    assert!(
        parse(&["--create-sale", "--concurrency", "1"])
            .unwrap_err()
            .contains("--duration")
    );
    assert!(
        parse(&["--concurrency", "1", "--duration", "1s"])
            .unwrap_err()
            .contains("--create-sale")
    );
    assert!(
        parse(&["--sale", "1", "--concurrency", "1", "--duration", "1s"]).is_err(),
        "--sale needs --item"
    );
    assert!(
        parse(&[
            "--create-sale",
            "--sale",
            "1",
            "--item",
            "1",
            "--concurrency",
            "1",
            "--duration",
            "1s"
        ])
        .is_err()
    );
    assert!(parse(&["--create-sale", "--concurrency", "0", "--duration", "1s"]).is_err());
    assert!(parse(&["--create-sale", "--rate", "0", "--duration", "1s"]).is_err());
    assert!(parse(&["--create-sale", "--concurrency", "1", "--duration", "soon"]).is_err());
    assert!(parse(&["--create-sale", "--concurrency", "1", "--requests", "0"]).is_err());
    assert!(
        parse(&[
            "--create-sale",
            "--stock",
            "0",
            "--concurrency",
            "1",
            "--requests",
            "5"
        ])
        .is_err()
    );
    assert!(
        parse(&[
            "--endpoint",
            "healthz",
            "--verify",
            "--concurrency",
            "1",
            "--requests",
            "5"
        ])
        .is_err()
    );
    assert!(
        parse(&[
            "--base-url",
            "ftp://x",
            "--endpoint",
            "healthz",
            "--concurrency",
            "1",
            "--requests",
            "5"
        ])
        .is_err()
    );
}

#[test]
fn thresholds_retries_and_keys_are_parsed_and_checked() {
    let p = parse(&[
        "--create-sale",
        "--concurrency",
        "1",
        "--requests",
        "5",
        "--threshold",
        "p99<5ms",
        "--threshold",
        "errors<0.1%",
        "--retry-on",
        "503,429",
        "--idempotency-keys",
        "--report",
        "r.html",
    ])
    .unwrap();
    let t: Vec<String> = p.args.thresholds.iter().map(|t| t.to_string()).collect();
    assert_eq!(t, ["p99<5ms", "errors<0.1%"]);
    assert_eq!(p.args.retry_on, [503, 429]);
    assert!(p.args.idempotency_keys);
    let bad = parse(&[
        "--create-sale",
        "--concurrency",
        "1",
        "--requests",
        "5",
        "--threshold",
        "p99<5",
    ])
    .unwrap_err();
    assert!(bad.contains("needs a unit"), "{bad}");
    assert!(
        parse(&[
            "--create-sale",
            "--concurrency",
            "1",
            "--requests",
            "5",
            "--retry-on",
            "200"
        ])
        .unwrap_err()
        .contains("4xx and 5xx")
    );
    assert!(
        parse(&[
            "--endpoint",
            "healthz",
            "--concurrency",
            "1",
            "--requests",
            "5",
            "--idempotency-keys"
        ])
        .is_err()
    );
}

#[test]
fn healthz_needs_no_sale() {
    assert!(
        parse(&[
            "--endpoint",
            "healthz",
            "--concurrency",
            "4",
            "--requests",
            "10"
        ])
        .is_ok()
    );
}
