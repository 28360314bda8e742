//! The loadtest harness, run in-process against a real app, verifies what the product promises.

use loadtest::Args;

use crate::support::{ADMIN_TOKEN, JWT_SECRET, TestApp, spawn_app};

/// Arguments for a run against `base` (and its admin listener at `admin`), then `extra`.
pub(super) fn args(base: &str, admin: &str, extra: &[&str]) -> Args {
    args_signed(base, admin, &JWT_SECRET, extra)
}

/// Arguments whose buyers' tokens are signed with `secret`.
pub(super) fn args_signed(base: &str, admin: &str, secret: &str, extra: &[&str]) -> Args {
    use clap::Parser;
    let mut all = vec![
        "loadtest",
        "--base-url",
        base,
        "--admin-url",
        admin,
        "--admin-token",
        &ADMIN_TOKEN,
        "--jwt-secret",
        secret,
        "--no-progress",
    ];
    all.extend_from_slice(extra);
    Args::try_parse_from(all).unwrap()
}

/// The words of `line` (flags as typed on a command line, split at spaces), then `more` as they
/// are (paths, which may hold spaces).
pub(super) fn flags<'a>(line: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    line.split_whitespace()
        .chain(more.iter().copied())
        .collect()
}

/// Runs the loadtest against `app` with the [`flags`] of `line` and `more`.
pub(super) async fn run_on(app: &TestApp, line: &str, more: &[&str]) -> loadtest::Summary {
    let extra = flags(line, more);
    loadtest::run(args(&app.base, &app.admin_base, &extra), false)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_closed_loop_run_sells_the_stock_and_verifies_clean() {
    let app = spawn_app().await;
    let line = "--create-sale --stock 50 --per-user-limit 1 --users 400 --concurrency 16 \
                --requests 1500 --verify --drain-timeout 90s";
    let summary = run_on(&app, line, &[]).await;
    assert_eq!(summary.requests, 1500);
    assert_eq!(summary.outcomes.total(), 1500);
    assert_eq!(summary.outcomes.reserved, 50, "{}", summary.render());
    assert_eq!(summary.outcomes.errors + summary.outcomes.timeouts, 0);
    let v = summary.verification.as_ref().expect("verified");
    assert!(v.ok, "{}", summary.render());
    assert_eq!((v.reservations, v.persisted_units, v.stock), (50, 50, 50));
    assert_eq!(summary.reconciliation.as_ref().unwrap()["ok"], true);
    assert!(summary.latency.p50_ms > 0.0);
    // Latency per outcome, besides the overall one.
    let by = &summary.latency_by_outcome;
    assert_eq!(by["reserved"].count, 50, "{}", summary.render());
    assert_eq!(
        by["sold_out"].count + by.get("limit_exceeded").map_or(0, |l| l.count),
        1450
    );
    assert!(!by.contains_key("error"));
    assert!(by["reserved"].p50_ms > 0.0 && by["reserved"].max_ms <= summary.latency.max_ms);
    assert!(summary.render().contains("  reserved        p50 "));
    // The client's own count is what verify compared with the stores.
    assert_eq!((v.confirmed, v.distinct_order_ids), (50, Some(50)));
    assert_eq!(v.persisted_orders, 50);
}

#[tokio::test]
async fn an_open_loop_run_offers_its_rate_and_counts_every_answer() {
    let app = spawn_app().await;
    let json_path =
        std::env::temp_dir().join(format!("loadtest-{}.json", crate::support::unique()));
    let (s, i) = sale_args(&app, 5).await;
    let line = format!("--sale {s} --item {i} --users 50 --rate 400 --connections 8 --duration 1s");
    let summary = run_on(&app, &line, &["--json", json_path.to_str().unwrap()]).await;
    // The machine-readable figures are the summary's.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(written["requests"], summary.requests);
    assert_eq!(written["outcomes"]["reserved"], 5);
    assert_eq!(written["latency"]["p99_ms"], summary.latency.p99_ms);
    assert!(written["throughput_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(written["latency_by_outcome"]["reserved"]["count"], 5);
    assert_eq!(
        written["latency_by_outcome"]["sold_out"]["count"],
        summary.outcomes.sold_out
    );
    assert_eq!(written["errors"], serde_json::json!([]));
    // The per-second series adds up to the requests.
    let series = written["series"].as_array().unwrap();
    assert!(!series.is_empty());
    let sum: u64 = series.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
    assert_eq!(sum, summary.requests);
    assert!(series[0]["p99_ms"].as_f64().is_some() && series[0]["rps"].as_f64().is_some());
    assert!(written["schedule"]["late"].is_u64());
    // About 400 requests scheduled in one second, each counted once.
    assert!(
        (350..=401).contains(&summary.requests),
        "{}",
        summary.render()
    );
    assert_eq!(summary.outcomes.reserved, 5);
    assert_eq!(
        summary.outcomes.sold_out + summary.outcomes.limit_exceeded + summary.outcomes.reserved,
        summary.requests,
        "{}",
        summary.render()
    );
}

#[tokio::test]
async fn open_loop_latency_counts_the_wait_behind_a_stalled_answer() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // A server whose first answer takes 300 ms; every later one is immediate.
    let stalled = std::sync::Arc::new(AtomicBool::new(false));
    let router = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || {
            let stalled = stalled.clone();
            async move {
                if !stalled.swap(true, Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    // One connection at 100 requests/s: the ~30 requests scheduled during the stall wait for
    // it, and their latency counts from when they should have been sent.
    let summary = loadtest::run(
        args(
            &base,
            &base,
            &flags(
                "--endpoint healthz --rate 100 --connections 1 --duration 1s",
                &[],
            ),
        ),
        false,
    )
    .await
    .unwrap();
    assert!(summary.latency.max_ms >= 290.0, "{}", summary.render());
    assert!(
        summary.latency.p90_ms >= 100.0,
        "the requests queued behind the stall count their wait: {}",
        summary.render()
    );
    // They started late (their connection was busy), and more than 1% late is a warning.
    let schedule = summary.schedule.as_ref().expect("open loop");
    assert_eq!(schedule.scheduled, summary.requests);
    assert!(
        (20..=60).contains(&schedule.late),
        "~30 requests were due during the stall: {}",
        summary.render()
    );
    assert!(schedule.max_late_ms >= 250.0, "{schedule:?}");
    assert!(schedule.warning.as_ref().unwrap().contains("started late"));
    assert!(
        summary.render().contains("WARNING     "),
        "{}",
        summary.render()
    );
}

/// A live sale with `stock` units and a per-user limit of 1, and its arguments.
pub(super) async fn sale_args(app: &crate::support::TestApp, stock: i64) -> (String, String) {
    let (sale, item) = app.create_live_sale(stock, 1).await;
    (sale.to_string(), item.to_string())
}

mod crowd;
mod reporting;
mod verify;
