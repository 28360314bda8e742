//! Payment notifications: checked, answered once, and racing the expiry job.

use std::{collections::HashMap, time::Duration};

use reqwest::StatusCode;
use seckill::orders::signature;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{app, assert_clean, cancel, pay, reserve_each, sale, states, stocks, wait_rows};
use crate::helpers::eventually;

#[tokio::test]
async fn payment_notifications_are_checked_and_answered_once() {
    let app = app(None).await;
    let (sale, item) = sale(&app, 10, 1, 900).await;
    let ids = reserve_each(&app, sale, item, "p", 3).await;
    wait_rows(&app, item, 3).await;

    // A bad signature changes nothing.
    let body = json!({"order_id": ids[0], "amount_cents": 1999, "provider_ref": "r0"}).to_string();
    let r = app
        .http
        .post(app.url("/payments/v1/notify"))
        .header(
            "x-signature",
            signature::sign(
                b"not-the-secret",
                chrono::Utc::now().timestamp(),
                body.as_bytes(),
            ),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (s, body) = pay(&app, &ids[0], 1, "r0").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "amount_cents");
    assert_eq!(states(&app, item).await["pending_payment"], 3);

    let (s, paid) = pay(&app, &ids[0], 1999, "r0").await;
    assert_eq!(s, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "paid");
    // The same payment again: the same answer. Another payment: already paid.
    let (s, again) = pay(&app, &ids[0], 1999, "r0").await;
    assert_eq!((s, &again["status"]), (StatusCode::OK, &json!("paid")));
    assert_eq!(again["paid_at"], paid["paid_at"]);
    let (s, other) = pay(&app, &ids[0], 1999, "r0-bis").await;
    assert_eq!(
        (s, other["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_paid"))
    );
    // A cancelled order is closed; the provider refunds.
    let (s, _) = cancel(&app, "p1", &ids[1]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, closed) = pay(&app, &ids[1], 1999, "r1").await;
    assert_eq!(
        (s, closed["code"].as_str()),
        (StatusCode::CONFLICT, Some("order_closed"))
    );
    let (s, _) = pay(&app, &Uuid::now_v7().to_string(), 1999, "r9").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A paid order cannot be cancelled.
    let (s, body) = cancel(&app, "p0", &ids[0]).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_paid"))
    );
    let st = states(&app, item).await;
    assert_eq!(
        (st["paid"], st["cancelled"], st["pending_payment"]),
        (1, 1, 1)
    );
    assert_clean(&app, sale).await;
}

#[tokio::test]
async fn payment_and_expiry_race_a_thousand_times_and_exactly_one_wins_each() {
    let app = app(Some(Duration::from_millis(50))).await;
    let (sale, item) = sale(&app, 1_000, 1, 900).await;
    let ids = reserve_each(&app, sale, item, "race", 1_000).await;
    wait_rows(&app, item, 1_000).await;
    // Every window ends at one instant, 1.5 s from now; the 1,000 payments arrive spread over
    // the second around it, while the expiry job runs every 50 ms.
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(1_500);
    sqlx::query("UPDATE orders SET expires_at = ? WHERE item_id = ?")
        .bind(due)
        .bind(item)
        .execute(app.db())
        .await
        .unwrap();
    let start = tokio::time::Instant::now() + Duration::from_millis(1_000);
    let answers: Vec<(String, StatusCode, Value)> =
        futures::future::join_all(ids.iter().enumerate().map(|(i, id)| {
            let app = &app;
            async move {
                tokio::time::sleep_until(start + Duration::from_millis(i as u64)).await;
                let (s, body) = pay(app, id, 1999, &format!("ref-{id}")).await;
                (id.clone(), s, body)
            }
        }))
        .await;

    // The job expires whatever was not paid; then every order is closed one way.
    eventually(Duration::from_secs(60), || {
        let app = &app;
        async move {
            let st = states(app, item).await;
            (!st.contains_key("pending_payment")).then_some(())
        }
    })
    .await;
    let status: HashMap<String, String> = sqlx::query_as::<_, (Uuid, String)>(
        "SELECT order_id, status FROM orders WHERE item_id = ?",
    )
    .bind(item)
    .fetch_all(app.db())
    .await
    .unwrap()
    .into_iter()
    .map(|(id, s)| (id.to_string(), s))
    .collect();
    let mut paid = 0;
    for (id, s, body) in &answers {
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
    let expired = 1_000 - paid;
    assert!(
        paid > 0 && expired > 0,
        "the race went both ways: {paid} paid, {expired} expired"
    );
    // Units came back for the expired orders only, once each, on both sides.
    eventually(Duration::from_secs(30), || {
        let app = &app;
        async move {
            (stocks(app, sale, item).await == (expired as i64, expired as i64)).then_some(())
        }
    })
    .await;
    let released: Vec<String> = crate::helpers::redis_ledger(app.redis(), &app.keys(), sale, item)
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
