//! The loadtest's reporting: errors by cause, thresholds, Ctrl-C and the HTML report (the
//! client-side verification is in `verify`).

use crate::support::{JWT_SECRET, spawn_app};
use std::time::Duration;

use super::{args, args_signed, flags, run_on, sale_args};

#[tokio::test]
async fn a_wrong_jwt_secret_shows_as_401s_with_a_hint() {
    let app = spawn_app().await;
    let (s, i) = sale_args(&app, 5).await;
    let json_path =
        std::env::temp_dir().join(format!("loadtest-{}.json", crate::support::unique()));
    let wrong = format!("{}-not-the-secret", *JWT_SECRET);
    let line = format!("--sale {s} --item {i} --users 10 --concurrency 4 --requests 60");
    let summary = loadtest::run(
        args_signed(
            &app.base,
            &app.admin_base,
            &wrong,
            &flags(&line, &["--json", json_path.to_str().unwrap()]),
        ),
        false,
    )
    .await
    .unwrap();
    assert_eq!(summary.outcomes.errors, 60, "{}", summary.render());
    assert_eq!(summary.errors.len(), 1, "one cause: {:?}", summary.errors);
    let e = &summary.errors[0];
    assert_eq!(
        (e.cause.as_str(), e.status, e.count),
        ("401 unauthorized", Some(401), 60)
    );
    assert_eq!(
        e.hint,
        Some("tokens rejected: does --jwt-secret match SECKILL_JWT_SECRET?")
    );
    let text = summary.render();
    assert!(
        text.contains("errors by   401 unauthorized")
            && text.contains("hint: tokens rejected: does --jwt-secret match"),
        "{text}"
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(written["errors"][0]["cause"], "401 unauthorized");
    assert_eq!(written["errors"][0]["count"], 60);
    assert!(
        written["errors"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("--jwt-secret")
    );
    assert!(written["latency_by_outcome"]["error"]["count"] == 60);
}

#[tokio::test]
async fn a_closed_port_shows_as_connect_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let summary = loadtest::run(
        args(
            &base,
            &base,
            &flags("--sale 1 --item 1 --concurrency 2 --requests 10", &[]),
        ),
        false,
    )
    .await
    .unwrap();
    assert_eq!(summary.outcomes.errors, 10, "{}", summary.render());
    assert_eq!(summary.errors.len(), 1, "{:?}", summary.errors);
    let e = &summary.errors[0];
    assert_eq!(
        (e.cause.as_str(), e.status, e.count),
        ("connect refused", None, 10)
    );
    assert!(e.hint.unwrap().contains("nothing listens at --base-url"));
    assert_eq!(
        summary.unknown_fate, 0,
        "a refused connect reserved nothing"
    );
}

#[tokio::test]
async fn thresholds_decide_the_verdict_and_name_the_broken_ones() {
    let app = spawn_app().await;
    let (s, i) = sale_args(&app, 5).await;
    let line = format!("--sale {s} --item {i} --users 50 --concurrency 4 --requests 100");
    let run = |thresholds: &'static [&'static str]| {
        let mut extra = flags(&line, &[]);
        for t in thresholds {
            extra.extend(["--threshold", t]);
        }
        loadtest::run(args(&app.base, &app.admin_base, &extra), false)
    };
    // Thresholds that hold: the run passes.
    let held = run(&[
        "reserved>=5",
        "errors<0.1%",
        "p99<30s",
        "rps>1",
        "timeouts<=0",
    ])
    .await
    .unwrap();
    assert!(held.passed(), "{}", held.render());
    assert_eq!(held.thresholds.len(), 5);
    assert!(held.thresholds.iter().all(|t| t.ok));
    assert!(
        held.render()
            .contains("thresholds  ok     reserved>=5 (measured 5)")
    );
    // Every unit is gone: a sixth reservation cannot happen, and no answer takes under 1 µs.
    let broken = run(&["reserved>=6", "p50<1us", "errors<0.1%"])
        .await
        .unwrap();
    assert!(!broken.passed(), "{}", broken.render());
    let failed: Vec<(&str, f64)> = broken
        .broken_thresholds()
        .map(|t| (t.threshold.as_str(), t.value))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0], ("reserved>=6", 0.0));
    assert_eq!(failed[1].0, "p50<1us");
    assert!(failed[1].1 > 0.001);
    let text = broken.render();
    assert!(text.contains("FAILED reserved>=6 (measured 0)"), "{text}");
    assert!(text.contains("FAILED p50<1us (measured "), "{text}");
    assert!(
        text.contains("ok     errors<0.1% (measured 0.000% (0 of 100))"),
        "{text}"
    );
}

#[tokio::test]
async fn a_cancelled_run_stops_early_and_summarises_what_ran() {
    let app = spawn_app().await;
    let (s, i) = sale_args(&app, 10).await;
    let line = format!(
        "--sale {s} --item {i} --users 1000 --concurrency 4 --duration 60s --threshold reserved>=10"
    );
    let started = std::time::Instant::now();
    let summary = loadtest::run_until(
        args(&app.base, &app.admin_base, &flags(&line, &[])),
        false,
        tokio::time::sleep(Duration::from_millis(1500)),
    )
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(summary.interrupted);
    assert!(summary.requests > 10, "{}", summary.render());
    assert_eq!(summary.outcomes.reserved, 10);
    assert!(
        summary.passed(),
        "thresholds still judge an interrupted run"
    );
    assert!(
        summary.render().contains("interrupted after 1."),
        "{}",
        summary.render()
    );
}

#[tokio::test]
async fn the_html_report_is_self_contained_and_renders_in_chromium() {
    let app = spawn_app().await;
    let (s, i) = sale_args(&app, 20).await;
    let dir = std::env::temp_dir().join(format!("loadtest-report-{}", crate::support::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("run.html");
    let json = dir.join("run.json");
    let line = format!(
        "--sale {s} --item {i} --users 500 --rate 200 --connections 8 --duration 2500ms \
         --threshold p99<30s"
    );
    let paths = [
        "--report",
        report.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ];
    let summary = run_on(&app, &line, &paths).await;
    assert!(summary.series.len() >= 2, "{:?}", summary.series);
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        4,
        "throughput, latency, outcomes, histogram"
    );
    assert!(html.contains("<polyline") && html.contains("<rect"));
    assert!(html.contains("Throughput") && html.contains("p99") && html.contains("histogram"));
    let lower = html.to_ascii_lowercase();
    for banned in ["<script", " src=", "href=", "url(", "@import", "<link"] {
        assert!(!lower.contains(banned), "{banned} in the report");
    }
    assert!(
        !lower.contains("\"http") && !lower.contains("'http"),
        "no URL in an attribute"
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        written["series"].as_array().unwrap().len(),
        summary.series.len()
    );
    // Chromium renders it: the DOM it dumps holds the charts.
    let out = tokio::process::Command::new("chromium")
        .args(crate::browser::HEADLESS)
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", report.display()))
        .output()
        .await
        .expect("chromium is installed (deploy/local/stack.sh install)");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert_eq!(dom.matches("<svg").count(), 4, "{dom}");
    assert!(dom.contains("<polyline"), "{dom}");
    assert!(dom.contains("seckill loadtest report"));
    let _ = std::fs::remove_dir_all(&dir);
}
