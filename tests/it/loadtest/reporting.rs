//! The loadtest's reporting: errors by cause, thresholds, Ctrl-C, retries, the HTML report and
//! the client-side verification.

use crate::support::{ADMIN_TOKEN, JWT_SECRET, STACK, spawn_app, spawn_with, test_settings};
use std::time::Duration;

use super::{args, args_signed, sale_args};

#[tokio::test]
async fn a_wrong_jwt_secret_shows_as_401s_with_a_hint() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(5, 1).await;
    let (s, i) = (sale.to_string(), item.to_string());
    let json_path =
        std::env::temp_dir().join(format!("loadtest-{}.json", crate::support::unique()));
    let wrong = format!("{}-not-the-secret", *JWT_SECRET);
    let summary = loadtest::run(
        args_signed(
            &app.base,
            &app.admin_base,
            &wrong,
            &[
                "--sale",
                &s,
                "--item",
                &i,
                "--users",
                "10",
                "--concurrency",
                "4",
                "--requests",
                "60",
                "--json",
                json_path.to_str().unwrap(),
            ],
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
            &[
                "--sale",
                "1",
                "--item",
                "1",
                "--concurrency",
                "2",
                "--requests",
                "10",
            ],
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

/// A live sale with `stock` units and a per-user limit of 1, and its arguments.

#[tokio::test]
async fn thresholds_decide_the_verdict_and_name_the_broken_ones() {
    let app = spawn_app().await;
    let (s, i) = sale_args(&app, 5).await;
    let run = |thresholds: &'static [&'static str]| {
        let mut extra = vec![
            "--sale",
            &s,
            "--item",
            &i,
            "--users",
            "50",
            "--concurrency",
            "4",
            "--requests",
            "100",
        ];
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
    let started = std::time::Instant::now();
    let summary = loadtest::run_until(
        args(
            &app.base,
            &app.admin_base,
            &[
                "--sale",
                &s,
                "--item",
                &i,
                "--users",
                "1000",
                "--concurrency",
                "4",
                "--duration",
                "60s",
                "--threshold",
                "reserved>=10",
            ],
        ),
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
async fn retried_rate_limited_buys_still_reserve_with_their_idempotency_keys() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.limits.per_user_per_sec = 2;
    settings.limits.per_user_burst = 1;
    let app = spawn_with(settings).await;
    // 8 users, 3 units each at most, 40 buys: each user's bucket refuses most first tries.
    let (sale, item) = app.create_live_sale(100, 3).await;
    let (s, i) = (sale.to_string(), item.to_string());
    let summary = loadtest::run(
        args(
            &app.base,
            &app.admin_base,
            &[
                "--sale",
                &s,
                "--item",
                &i,
                "--users",
                "8",
                "--concurrency",
                "8",
                "--requests",
                "40",
                "--retry-on",
                "429",
                "--idempotency-keys",
                "--verify",
                "--drain-timeout",
                "60s",
            ],
        ),
        false,
    )
    .await
    .unwrap();
    let text = summary.render();
    assert!(summary.retries.retries > 0, "{text}");
    assert_eq!(summary.retries.retries, summary.retries.by_status[&429]);
    assert!(
        summary.outcomes.reserved >= 16,
        "retries got through: {text}"
    );
    assert!(text.contains("retries     "), "{text}");
    assert!(summary.verification.as_ref().unwrap().ok, "{text}");
    // The server received the keys: every persisted order carries one, all different; nobody
    // holds more than the limit; MySQL has exactly what the client was confirmed.
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT user_id, COUNT(*), COUNT(DISTINCT idempotency_key), \
         CAST(SUM(idempotency_key IS NULL) AS SIGNED) FROM orders WHERE item_id = ? GROUP BY user_id",
    )
    .bind(item)
    .fetch_all(app.db())
    .await
    .unwrap();
    let total: i64 = rows.iter().map(|r| r.1).sum();
    assert_eq!(total as u64, summary.outcomes.reserved, "{rows:?}");
    for (user, orders, keys, without) in &rows {
        assert!(
            *orders <= 3,
            "{user} holds {orders} orders, above the limit of 3"
        );
        assert_eq!((keys, without), (orders, &0), "{user}: one key per order");
    }
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT idempotency_key FROM orders WHERE item_id = ? LIMIT 1")
            .bind(item)
            .fetch_all(app.db())
            .await
            .unwrap();
    assert!(keys[0].starts_with("lt-"), "{keys:?}");
}

#[tokio::test]
async fn the_html_report_is_self_contained_and_renders_in_chromium() {
    let app = spawn_app().await;
    let (s, i) = sale_args(&app, 20).await;
    let dir = std::env::temp_dir().join(format!("loadtest-report-{}", crate::support::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("run.html");
    let json = dir.join("run.json");
    let summary = loadtest::run(
        args(
            &app.base,
            &app.admin_base,
            &[
                "--sale",
                &s,
                "--item",
                &i,
                "--users",
                "500",
                "--rate",
                "200",
                "--connections",
                "8",
                "--duration",
                "2500ms",
                "--threshold",
                "p99<30s",
                "--report",
                report.to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
            ],
        ),
        false,
    )
    .await
    .unwrap();
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
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
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

#[tokio::test]
async fn verify_compares_the_stores_with_what_the_client_was_confirmed() {
    let app = spawn_app().await;
    let summary = loadtest::run(
        args(
            &app.base,
            &app.admin_base,
            &[
                "--create-sale",
                "--stock",
                "5",
                "--users",
                "20",
                "--concurrency",
                "4",
                "--requests",
                "40",
                "--verify",
                "--drain-timeout",
                "60s",
            ],
        ),
        false,
    )
    .await
    .unwrap();
    let v = summary.verification.as_ref().unwrap();
    assert!(v.ok, "{}", summary.render());
    assert_eq!(summary.order_ids.len(), 5);
    let (sale, item) = (summary.sale_id.unwrap(), summary.item_id.unwrap());
    let client = loadtest::ClientTally {
        item_id: item,
        confirmed: summary.outcomes.reserved,
        order_ids: Some(summary.order_ids.clone()),
        unknown_fate: summary.unknown_fate,
        only_client: true,
    };
    // One of the orders confirmed to the client disappears from MySQL.
    let gone = sqlx::query("DELETE FROM orders WHERE order_id = UNHEX(REPLACE(?, '-', ''))")
        .bind(&summary.order_ids[0])
        .execute(app.db())
        .await
        .unwrap();
    assert_eq!(gone.rows_affected(), 1);
    let http = reqwest::Client::new();
    let (v, _) = loadtest::verify::verify_sale(
        &http,
        &app.admin_base,
        &ADMIN_TOKEN,
        sale,
        &client,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert!(!v.ok);
    assert!(
        v.problems.iter().any(|p| p.contains(&format!(
            "item {item}: 5 reservations confirmed to this client but MySQL holds 4 units (4 persisted + 0 released): 1 missing"
        ))),
        "{v:?}"
    );
}
