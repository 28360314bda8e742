//! Units that come back and sell again (a release asked twice: `faults::release_twice`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::support::{
    assert_clean, cancel, eventually, lifecycle_app, pay, sale_with_window, states, stocks,
    wait_rows, wait_stocks,
};

#[tokio::test]
async fn units_that_come_back_sell_again_and_the_states_add_up() {
    // Stock 100, window 5 s, 300 buyers: 100 reserve; 40 pay, 10 cancel, 50 expire; then
    // exactly 60 more buyers get 202.
    let app = lifecycle_app(None).await;
    let (sale, item) = sale_with_window(&app, 100, 1, 5).await;
    let first: Vec<(StatusCode, Value)> = futures::future::join_all((0..300).map(|u| {
        let app = &app;
        async move { app.buy(sale, item, &format!("r{u}"), 1, None).await }
    }))
    .await;
    let winners: Vec<(usize, String)> = first
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| *s == StatusCode::ACCEPTED)
        .map(|(u, (_, b))| (u, b["order_id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(winners.len(), 100);
    wait_rows(&app, item, 100).await;
    for (_, id) in &winners[..40] {
        let (s, body) = pay(&app, id, 1999, &format!("ref-{id}")).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    for (u, id) in &winners[40..50] {
        let (s, body) = cancel(&app, &format!("r{u}"), id).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(app.services.lifecycle.expire_once().await.unwrap(), 50);

    let losers: Vec<usize> = (0..300)
        .filter(|u| !winners.iter().any(|(w, _)| w == u))
        .collect();
    let second: Vec<StatusCode> = futures::future::join_all(losers.iter().map(|u| {
        let app = &app;
        async move { app.buy(sale, item, &format!("r{u}"), 1, None).await.0 }
    }))
    .await;
    let again = second
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    assert_eq!(again, 60, "{second:?}");
    wait_rows(&app, item, 160).await;
    let st = states(&app, item).await;
    assert_eq!(
        (
            st["paid"],
            st["pending_payment"],
            st["cancelled"],
            st["expired"]
        ),
        (40, 60, 10, 50),
        "{st:?}"
    );
    assert_eq!(stocks(&app, sale, item).await, (0, 0), "nothing oversold");
    assert_clean(&app, sale).await;
}

#[tokio::test]
async fn a_buyer_who_cancelled_can_buy_again_within_the_limit() {
    let app = lifecycle_app(None).await;
    let (sale, item) = sale_with_window(&app, 10, 1, 900).await;
    let (s, body) = app.buy(sale, item, "back", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let id = body["order_id"].as_str().unwrap().to_string();
    let (s, body) = app.buy(sale, item, "back", 1, None).await;
    assert_eq!(body["code"], "limit_exceeded", "{s} {body}");
    // Not persisted yet, it cannot be cancelled; once it is, it can.
    let cancelled = eventually(Duration::from_secs(30), || {
        let (app, id) = (&app, &id);
        async move {
            let (s, body) = cancel(app, "back", id).await;
            (s == StatusCode::OK).then_some(body)
        }
    })
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    let (s, body) = app.buy(sale, item, "back", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn the_expiry_job_closes_an_order_within_its_window_plus_five_seconds() {
    let app = lifecycle_app(Some(Duration::from_millis(200))).await;
    let (sale, item) = sale_with_window(&app, 5, 1, 5).await;
    let ids = app.persisted_reservations((sale, item), "e", 1).await;
    let expires_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT expires_at FROM orders WHERE order_id = ?")
            .bind(Uuid::parse_str(&ids[0]).unwrap())
            .fetch_one(app.db())
            .await
            .unwrap();
    let closed_at: chrono::DateTime<chrono::Utc> = eventually(Duration::from_secs(30), || {
        let db = app.db().clone();
        let id = Uuid::parse_str(&ids[0]).unwrap();
        async move {
            sqlx::query_scalar(
                "SELECT closed_at FROM orders WHERE order_id = ? AND status = 'expired'",
            )
            .bind(id)
            .fetch_optional(&db)
            .await
            .unwrap()
        }
    })
    .await;
    let late = closed_at - expires_at;
    assert!(
        late >= chrono::Duration::zero() && late <= chrono::Duration::seconds(5),
        "expired {late} after its time"
    );
    wait_stocks(&app, sale, item, (5, 5), Duration::from_secs(10)).await;
    let metrics = app.services.metrics.render();
    assert!(
        metrics.contains("seckill_order_expiry_lateness_seconds_count 1"),
        "the lateness is measured"
    );
}
