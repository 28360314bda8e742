//! `seckill reconcile --watch`: redraws until interrupted and exits with the last verdict.

use std::{
    io::{BufRead, BufReader},
    time::{Duration, Instant},
};

use super::command;

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
