//! Tests of the command line: what is accepted, what is refused and why.

use super::*;

/// The arguments `args` (split at spaces) with both secrets given, as a plan or the error.
fn parse(args: &str) -> Result<Plan, String> {
    parse_bare(&format!("--admin-token t --jwt-secret s {args}"))
}

/// The arguments `args` alone, as a plan or the error.
fn parse_bare(args: &str) -> Result<Plan, String> {
    let all = std::iter::once("loadtest").chain(args.split_whitespace());
    Args::try_parse_from(all)
        .map_err(|e| e.to_string())
        .and_then(|a| a.plan().map_err(|e| e.0))
}

#[test]
fn a_closed_loop_run_against_a_new_sale_is_accepted() {
    let p = parse("--create-sale --concurrency 8 --duration 2s").unwrap();
    assert_eq!(p.mode, Mode::ClosedLoop { concurrency: 8 });
    assert_eq!(p.duration, Some(Duration::from_secs(2)));
}

#[test]
fn an_open_loop_run_against_an_existing_item_is_accepted() {
    let p = parse("--sale 1 --item 2 --rate 500 --requests 100").unwrap();
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
fn healthz_needs_no_sale_and_no_token() {
    assert!(parse_bare("--endpoint healthz --concurrency 4 --requests 10").is_ok());
}

#[test]
fn as_many_users_as_tokens_can_be_signed_up_front_are_accepted() {
    assert!(parse("--sale 1 --item 1 --concurrency 1 --requests 1 --users 2000000").is_ok());
}

#[test]
fn thresholds_retries_and_keys_are_parsed() {
    let p = parse(
        "--create-sale --concurrency 1 --requests 5 --threshold p99<5ms \
         --threshold errors<0.1% --retry-on 503,429 --idempotency-keys --report r.html",
    )
    .unwrap();
    let t: Vec<String> = p.args.thresholds.iter().map(|t| t.to_string()).collect();
    assert_eq!(t, ["p99<5ms", "errors<0.1%"]);
    assert_eq!(p.args.retry_on, [503, 429]);
    assert!(p.args.idempotency_keys);
}

/// Each of `cases` (arguments after both secrets, what the error says) is refused so.
fn assert_refused(cases: &[(&str, &str)]) {
    for (args, says) in cases {
        let error = parse(args)
            .map(|p| format!("accepted: {p:?}"))
            .unwrap_or_else(|e| e);
        assert!(error.contains(says), "{args}: {error}");
    }
}

#[test]
fn the_load_is_an_open_or_a_closed_loop_of_at_least_one() {
    assert_refused(&[
        (
            "--create-sale --duration 1s",
            "choose --rate R (open loop) or --concurrency C",
        ),
        (
            "--create-sale --rate 1 --concurrency 1 --duration 1s",
            "'--rate <RATE>' cannot be used with '--concurrency <CONCURRENCY>'",
        ),
        (
            "--create-sale --concurrency 0 --duration 1s",
            "--concurrency must be at least 1",
        ),
        (
            "--create-sale --rate 0 --duration 1s",
            "--rate must be at least 1",
        ),
        (
            "--create-sale --rate 1 --connections 0 --duration 1s",
            "--connections must be at least 1",
        ),
    ]);
}

#[test]
fn a_run_has_a_length_a_target_users_and_stock() {
    assert_refused(&[
        (
            "--create-sale --concurrency 1",
            "give --duration, --requests, or both",
        ),
        (
            "--create-sale --concurrency 1 --duration soon",
            "invalid value 'soon'",
        ),
        (
            "--create-sale --concurrency 1 --requests 0",
            "must be positive",
        ),
        (
            "--create-sale --concurrency 1 --duration 0s",
            "must be positive",
        ),
        (
            "--concurrency 1 --duration 1s",
            "give --create-sale or --sale ID --item ID",
        ),
        ("--sale 1 --concurrency 1 --duration 1s", "--item <ITEM>"),
        (
            "--create-sale --sale 1 --item 1 --concurrency 1 --duration 1s",
            "'--create-sale' cannot be used with",
        ),
        (
            "--sale 1 --item 1 --concurrency 1 --requests 1 --users 1000000000",
            "--users is at most 2000000",
        ),
        (
            "--sale 1 --item 1 --concurrency 1 --requests 1 --users 0",
            "--users must be at least 1",
        ),
        (
            "--create-sale --stock 0 --concurrency 1 --requests 5",
            "--stock and --per-user-limit must be at least 1",
        ),
    ]);
}

#[test]
fn options_for_some_runs_only_are_refused_elsewhere() {
    assert_refused(&[
        (
            "--endpoint healthz --concurrency 1 --requests 5 --verify",
            "--verify checks a buy run",
        ),
        (
            "--create-sale --concurrency 1 --requests 5 --verify --pay-share 1.5",
            "--pay-share must be between 0 and 1",
        ),
        (
            "--create-sale --concurrency 1 --requests 5 --pay-share 0.5",
            "--pay-share needs --verify and --create-sale",
        ),
        (
            "--create-sale --concurrency 1 --requests 5 --threshold p99<5",
            "invalid threshold 'p99<5': a latency needs a unit",
        ),
        (
            "--create-sale --concurrency 1 --requests 5 --retry-on 200",
            "--retry-on takes 4xx and 5xx statuses, not 200",
        ),
        (
            "--endpoint healthz --concurrency 1 --requests 5 --idempotency-keys",
            "--idempotency-keys applies to --endpoint buy",
        ),
        (
            "--sale 1 --item 1 --concurrency 1 --requests 5 --payment-window-secs 5",
            "--payment-window-secs applies to --create-sale",
        ),
        (
            "--sale 1 --item 1 --concurrency 1 --requests 5 --shards 3",
            "--shards applies to --create-sale",
        ),
    ]);
}

#[test]
fn the_urls_are_http() {
    assert_refused(&[
        (
            "--endpoint healthz --concurrency 1 --requests 5 --base-url ftp://x",
            "--base-url must be an http:// URL",
        ),
        (
            "--endpoint healthz --concurrency 1 --requests 5 --admin-url ftp://x",
            "--admin-url must be an http:// URL",
        ),
    ]);
}

#[test]
fn buying_and_administering_need_their_secrets() {
    // Given empty, so that a secret in the environment does not stand in.
    let buy =
        parse_bare("--jwt-secret= --admin-token t --sale 1 --item 1 --concurrency 1 --requests 5");
    assert!(buy.unwrap_err().contains("buying needs --jwt-secret"));
    let create =
        parse_bare("--admin-token= --jwt-secret s --create-sale --concurrency 1 --requests 5");
    assert!(create.unwrap_err().contains("need --admin-token"));
}

/// The `--queue` arguments `args` (after both secrets), as a crowd plan or the error.
fn crowd(args: &str) -> Result<crate::args_crowd::CrowdPlan, String> {
    let all = "loadtest --admin-token t --jwt-secret s --queue".split_whitespace();
    Args::try_parse_from(all.chain(args.split_whitespace()))
        .map_err(|e| e.to_string())
        .and_then(|a| a.crowd_plan().map_err(|e| e.0))
}

#[test]
fn a_queued_crowd_takes_its_defaults() {
    let p = crowd("--create-sale --users 1000").unwrap();
    let c = &p.args.crowd;
    assert_eq!(p.pre_queue_users, 200);
    assert_eq!(p.deadline, crate::args_crowd::CROWD_DEADLINE);
    assert_eq!(
        (c.pre_queue_secs, c.admit_per_sec, c.max_active, c.pow_bits),
        (3, 1000, 1000, 0)
    );
    assert_eq!(c.join_ramp, Duration::from_secs(2));
    assert!(!c.compare_open);
    let p = crowd(
        "--sale 1 --item 2 --users 10 --pre-queue-share 0.5 --pow-bits 20 --duration 30s \
         --connections 8 --join-ramp 500ms",
    )
    .unwrap();
    assert_eq!((p.pre_queue_users, p.args.connections), (5, 8));
    assert_eq!(p.deadline, Duration::from_secs(30));
}

#[test]
fn a_queued_crowd_is_no_load_and_a_load_takes_no_crowd_flags() {
    let a = Args::try_parse_from("loadtest --queue --create-sale".split_whitespace()).unwrap();
    assert!(a.plan().unwrap_err().0.contains("--queue is a crowd run"));
    assert_refused(&[
        (
            "--create-sale --concurrency 1 --requests 1 --pow-bits 3",
            "--queue",
        ),
        (
            "--create-sale --concurrency 1 --requests 1 --compare-open",
            "--queue",
        ),
    ]);
}

#[test]
fn a_queued_crowd_refuses_what_cannot_run() {
    for (args, says) in [
        ("--create-sale --rate 5", "cannot be used with"),
        ("--create-sale --requests 5", "cannot be used with"),
        ("--create-sale --verify", "cannot be used with"),
        (
            "--users 5",
            "--queue needs --create-sale or --sale ID --item ID",
        ),
        (
            "--sale 1 --item 1 --compare-open",
            "--compare-open needs --create-sale",
        ),
        (
            "--create-sale --pre-queue-share 1.5",
            "--pre-queue-share must be between 0 and 1",
        ),
        (
            "--create-sale --admit-per-sec 0",
            "--admit-per-sec and --max-active must be at least 1",
        ),
        (
            "--create-sale --max-active 0",
            "--admit-per-sec and --max-active must be at least 1",
        ),
        ("--create-sale --pow-bits 33", "--pow-bits is at most 32"),
        (
            "--create-sale --join-ramp 0s",
            "--join-ramp must be positive",
        ),
        (
            "--create-sale --pre-queue-secs 0",
            "a pre-queue needs --pre-queue-secs",
        ),
        (
            "--create-sale --users 0",
            "--users must be between 1 and 2000000",
        ),
        (
            "--create-sale --connections 0",
            "--connections must be at least 1",
        ),
        (
            "--create-sale --stock 0",
            "--stock and --per-user-limit must be at least 1",
        ),
        ("--create-sale --base-url ftp://x", "must be http:// URLs"),
        ("--create-sale --duration 0s", "--duration must be positive"),
    ] {
        let error = crowd(args)
            .map(|p| format!("accepted: {p:?}"))
            .unwrap_or_else(|e| e);
        assert!(error.contains(says), "{args}: {error}");
    }
    assert!(crowd("--create-sale --pre-queue-secs 0 --pre-queue-share 0").is_ok());
    let bare = Args::try_parse_from(
        "loadtest --queue --create-sale --jwt-secret= --admin-token t".split_whitespace(),
    );
    assert!(
        bare.unwrap()
            .crowd_plan()
            .unwrap_err()
            .0
            .contains("needs --jwt-secret")
    );
}

#[test]
fn queue_polls_need_a_ticket_and_a_ticket_needs_queue_polls() {
    let p =
        parse("--endpoint queue-poll --sale 1 --item 1 --ticket abc --concurrency 4 --requests 9");
    assert!(p.is_ok(), "{p:?}");
    let e =
        parse("--endpoint queue-poll --sale 1 --item 1 --concurrency 4 --requests 9").unwrap_err();
    assert!(e.contains("--ticket"), "{e}");
    let e = parse("--sale 1 --item 1 --ticket abc --concurrency 4 --requests 9").unwrap_err();
    assert!(e.contains("--ticket"), "{e}");
}
