//! The operator console in a real browser (headless Chromium): log in, create a sale through the
//! form (a validation error shown on its field first), drive buys at it with the loadtest, watch
//! the counters reach sold out, reconcile clean, then find a deleted order named by the failing
//! check. Screenshots go to target/test-output/console/.

use std::{path::PathBuf, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    browser::Browser,
    helpers::{ADMIN_TOKEN, JWT_SECRET, STACK, spawn_with, test_settings},
};

const STOCK: u64 = 150;

fn output_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-output/console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `document.querySelector(selector).textContent`, as a JavaScript expression.
fn text_of(selector: &str) -> String {
    format!("(document.querySelector('{selector}') || {{}}).textContent")
}

#[tokio::test]
async fn an_operator_creates_watches_and_reconciles_a_sale_in_the_console() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.limits.per_user_per_sec = 0;
    let app = spawn_with(settings).await;
    let out = output_dir();
    let mut b = Browser::start().await;

    // The console is the binary's own, on the admin listener only, and loads nothing else.
    let public = app.http.get(app.url("/console")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let page = app
        .http
        .get(app.admin_url("/console"))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );

    // 1. Log in: a wrong token is refused, the right one opens the sales list.
    b.goto(&app.admin_url("/console")).await;
    b.wait_for(
        "document.querySelector('#login-form')",
        Duration::from_secs(10),
    )
    .await;
    b.eval("document.querySelector('#token').value = 'not-the-token'; document.querySelector('#login-form').requestSubmit()").await;
    b.wait_for(
        &format!("{}.includes('not this service')", text_of("#login-error")),
        Duration::from_secs(10),
    )
    .await;
    b.eval(&format!(
        "document.querySelector('#token').value = '{}'; document.querySelector('#login-form').requestSubmit()",
        &*ADMIN_TOKEN
    ))
    .await;
    b.wait_for(
        "document.querySelector('#create-form')",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        b.eval("sessionStorage.getItem('seckill.token') !== null && document.cookie === ''")
            .await,
        Value::Bool(true)
    );

    // 2. Create a sale through the form: a bad stock is shown on its field, nothing created.
    let fill = |stock: &str| {
        format!(
            "(() => {{ const f = document.querySelector('#create-form');
               f.name.value = 'Browser sale';
               const pad = (n) => String(n).padStart(2, '0');
               const at = (d) => `${{d.getFullYear()}}-${{pad(d.getMonth() + 1)}}-${{pad(d.getDate())}}T${{pad(d.getHours())}}:${{pad(d.getMinutes())}}:${{pad(d.getSeconds())}}`;
               f.starts_at.value = at(new Date(Date.now() + 2000));
               f.ends_at.value = at(new Date(Date.now() + 3600 * 1000));
               f.querySelector('[data-field=\"items[0].stock\"]').value = '{stock}';
               f.querySelector('[data-field=\"items[0].per_user_limit\"]').value = '1';
               f.requestSubmit(); }})()"
        )
    };
    b.eval(&fill("-5")).await;
    b.wait_for(
        "document.querySelector('[data-field=\"items[0].stock\"]').classList.contains('invalid')",
        Duration::from_secs(10),
    )
    .await;
    let shown = b.eval(&text_of("#create-error")).await;
    assert!(
        shown.as_str().unwrap().contains("items[0].stock"),
        "{shown}"
    );
    let (_, list) = app
        .admin(reqwest::Method::GET, "/admin/v1/sales", None)
        .await;
    assert_eq!(list["total"], 0, "the refused form wrote nothing");
    b.screenshot(&out.join("0-create-form-error.png")).await;
    b.eval(&fill(&STOCK.to_string())).await;
    b.wait_for(
        "location.hash.startsWith('#/sales/')",
        Duration::from_secs(10),
    )
    .await;
    let sale: u64 = b
        .eval("location.hash.split('/')[2]")
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    b.wait_for(
        "document.querySelector('[data-item]')",
        Duration::from_secs(15),
    )
    .await;
    let item: u64 = b
        .eval("document.querySelector('[data-item]').dataset.item")
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        b.eval(&text_of(&format!(
            "[data-testid=\"item-remaining-{item}\"]"
        )))
        .await,
        STOCK.to_string()
    );

    // 3. The loadtest buys it out; the counters move to sold out and everything persisted.
    tokio::time::sleep(Duration::from_secs(2)).await; // the sale starts
    let args = {
        use clap::Parser;
        loadtest::Args::try_parse_from([
            "loadtest",
            "--base-url",
            &app.base,
            "--admin-url",
            &app.admin_base,
            "--admin-token",
            &ADMIN_TOKEN,
            "--jwt-secret",
            &JWT_SECRET,
            "--no-progress",
            "--sale",
            &sale.to_string(),
            "--item",
            &item.to_string(),
            "--users",
            "1000",
            "--concurrency",
            "8",
            "--requests",
            "1200",
        ])
        .unwrap()
    };
    let summary = loadtest::run(args, false).await.unwrap();
    assert!(summary.outcomes.reserved >= STOCK, "{summary:?}");
    let remaining = format!("[data-testid=\"item-remaining-{item}\"]");
    let persisted = format!("[data-testid=\"item-persisted-{item}\"]");
    b.wait_for(
        &format!("{} === '0'", text_of(&remaining)),
        Duration::from_secs(30),
    )
    .await;
    b.wait_for(
        &format!(
            "{}.startsWith('sold out at')",
            text_of(&format!("[data-testid=\"sold-out-{item}\"]"))
        ),
        Duration::from_secs(30),
    )
    .await;
    b.wait_for(
        &format!("{} === '{STOCK}'", text_of(&persisted)),
        Duration::from_secs(60),
    )
    .await;
    let lines = b
        .eval(&format!(
            "document.querySelectorAll('[data-item=\"{item}\"] svg polyline').length"
        ))
        .await;
    assert_eq!(lines, 2, "reserved and persisted are charted");
    b.screenshot(&out.join("1-sold-out.png")).await;

    // 4. Reconcile now: the panel shows the clean report.
    b.eval("document.querySelector('#reconcile').click()").await;
    b.wait_for(
        &format!(
            "{}.startsWith('clean')",
            text_of("[data-testid=report-status]")
        ),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        b.eval("document.querySelectorAll('[data-testid=check-failing]').length")
            .await,
        0
    );
    b.wait_for(
        "document.querySelectorAll('#history tbody tr').length >= 1",
        Duration::from_secs(10),
    )
    .await;
    b.screenshot(&out.join("2-clean-report.png")).await;

    // 5. An order row disappears behind the service's back: the failing check names it.
    let row: Vec<u8> = sqlx::query_scalar("SELECT order_id FROM orders ORDER BY order_id LIMIT 1")
        .fetch_one(app.db())
        .await
        .unwrap();
    let gone = uuid::Uuid::from_slice(&row).unwrap().to_string();
    sqlx::query("DELETE FROM orders WHERE order_id = ?")
        .bind(&row)
        .execute(app.db())
        .await
        .unwrap();
    b.eval("document.querySelector('#reconcile').click()").await;
    b.wait_for(
        &format!(
            "[...document.querySelectorAll('[data-testid=check-failing]')].some((c) => c.textContent.includes('{gone}'))"
        ),
        Duration::from_secs(30),
    )
    .await;
    let verdict = b.eval(&text_of("[data-testid=report-status]")).await;
    assert!(verdict.as_str().unwrap().contains("failing"), "{verdict}");
    let first_check = b
        .eval("document.querySelector('#report .check').dataset.testid")
        .await;
    assert_eq!(first_check, "check-failing", "failing checks come first");
    b.screenshot(&out.join("3-failing-check.png")).await;
    eprintln!("console screenshots in {}", out.display());
}

#[tokio::test]
async fn the_events_stream_speaks_sse_to_curl_and_ends_at_shutdown() {
    let app = crate::helpers::spawn_app().await;
    let (sale, item) = app.create_live_sale(5, 1).await;
    let url = app.admin_url(&format!("/admin/v1/sales/{sale}/events"));
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .http
        .get(app.admin_url("/admin/v1/sales/999999/events"))
        .bearer_auth(&*ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, _) = app.buy(sale, item, "watched", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut r = app
        .http
        .get(&url)
        .bearer_auth(&*ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    // Two snapshots, a second apart; each names the sale's figures.
    let mut text = String::new();
    while text.matches("event: snapshot").count() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
            .await
            .expect("a snapshot a second")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let snap: Value = serde_json::from_str(first).unwrap();
    assert_eq!(snap["sale"]["id"], sale);
    assert_eq!(snap["sale"]["items"][0]["reservations"], 1);
    assert!(snap["items"][0]["buy_rate_per_sec"].is_number());
    assert!(snap.get("consumer_lag").is_some() && snap.get("history").is_some());
    // Graceful shutdown does not wait for a watcher to hang up.
    let stopped = tokio::time::timeout(Duration::from_secs(20), app.stop()).await;
    assert!(stopped.is_ok(), "an open event stream held the shutdown");
    drop(r);
}
