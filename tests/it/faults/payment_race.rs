//! Payment and expiry at the same instant, 1,000 times: exactly one wins each order, and units come
//! back for the expired ones only, once.

use std::{collections::HashMap, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::support::{
    TestApp, assert_clean, eventually, lifecycle_app, pay, sale_with_window, states, wait_stocks,
};

/// Every window ends at one instant, 1.5 s from now; the payments of `ids` arrive spread over
/// the second around it (one a millisecond). Returns each order's id and its payment's answer.
async fn pay_around_one_deadline(
    app: &TestApp,
    item: u64,
    ids: &[String],
) -> Vec<(String, StatusCode, Value)> {
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(1_500);
    sqlx::query("UPDATE orders SET expires_at = ? WHERE item_id = ?")
        .bind(due)
        .bind(item)
        .execute(app.db())
        .await
        .unwrap();
    let start = tokio::time::Instant::now() + Duration::from_millis(1_000);
    futures::future::join_all(ids.iter().enumerate().map(|(i, id)| async move {
        tokio::time::sleep_until(start + Duration::from_millis(i as u64)).await;
        let (s, body) = pay(app, id, 1999, &format!("ref-{id}")).await;
        (id.clone(), s, body)
    }))
    .await
}

/// Each order of `item` by id: its status in MySQL.
async fn final_statuses(app: &TestApp, item: u64) -> HashMap<String, String> {
    sqlx::query_as::<_, (Uuid, String)>("SELECT order_id, status FROM orders WHERE item_id = ?")
        .bind(item)
        .fetch_all(app.db())
        .await
        .unwrap()
        .into_iter()
        .map(|(id, s)| (id.to_string(), s))
        .collect()
}

/// Checks each payment's answer against how its order ended (paid: 200; expired: 409
/// `order_closed`); returns how many were paid.
fn paid_as_answered(
    answers: &[(String, StatusCode, Value)],
    status: &HashMap<String, String>,
) -> usize {
    let mut paid = 0;
    for (id, s, body) in answers {
        match status[id].as_str() {
            "paid" => {
                assert_eq!(
                    *s,
                    StatusCode::OK,
                    "{id} paid, but the payment was told {s} {body}"
                );
                paid += 1;
            }
            "expired" => assert_eq!(
                (*s, body["code"].as_str()),
                (StatusCode::CONFLICT, Some("order_closed")),
                "{id} expired, so its payment is refused (the provider refunds)"
            ),
            other => panic!("{id} ended {other}"),
        }
    }
    paid
}

#[tokio::test]
async fn payment_and_expiry_race_a_thousand_times_and_exactly_one_wins_each() {
    let app = lifecycle_app(Some(Duration::from_millis(50))).await;
    let (sale, item) = sale_with_window(&app, 1_000, 1, 900).await;
    let ids = app
        .persisted_reservations((sale, item), "race", 1_000)
        .await;
    // The expiry job runs every 50 ms meanwhile.
    let answers = pay_around_one_deadline(&app, item, &ids).await;

    // The job expires whatever was not paid; then every order is closed one way.
    eventually(Duration::from_secs(60), || {
        let app = &app;
        async move {
            let st = states(app, item).await;
            (!st.contains_key("pending_payment")).then_some(())
        }
    })
    .await;
    let status = final_statuses(&app, item).await;
    let paid = paid_as_answered(&answers, &status);
    let expired = 1_000 - paid;
    assert!(
        paid > 0 && expired > 0,
        "the race went both ways: {paid} paid, {expired} expired"
    );
    // Units came back for the expired orders only, once each, on both sides.
    wait_stocks(
        &app,
        sale,
        item,
        (expired as i64, expired as i64),
        Duration::from_secs(30),
    )
    .await;
    let released: Vec<String> =
        crate::support::redis_ledger(app.redis(), app.item_keys(sale, item).await, sale, item)
            .await
            .released
            .iter()
            .map(ToString::to_string)
            .collect();
    assert_eq!(released.len(), expired);
    assert!(released.iter().all(|id| status[id] == "expired"));
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_events WHERE item_id = ?")
        .bind(item)
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(events, 1_000, "one lifecycle event per order");
    assert_clean(&app, sale).await;
}
