//! A release asked twice (a redelivered cancel, a sweep after a crash between the MySQL commit and
//! the record): cancellation and expiry give each unit back once.

use std::time::Duration;

use reqwest::StatusCode;
use seckill::stock::ReleaseOutcome;
use serde_json::json;
use uuid::Uuid;

use crate::support::{assert_clean, cancel, lifecycle_app, sale_with_window, stocks};

#[tokio::test]
async fn cancel_expire_and_a_repeated_release_each_return_a_unit_once() {
    let app = lifecycle_app(None).await;
    let (sale, item) = sale_with_window(&app, 5, 1, 5).await;
    let ids = app.persisted_reservations((sale, item), "c", 3).await;
    assert_eq!(stocks(&app, sale, item).await, (2, 2));

    let (s, first) = cancel(&app, "c0", &ids[0]).await;
    assert_eq!(
        (s, &first["status"]),
        (StatusCode::OK, &json!("cancelled")),
        "{first}"
    );
    let (s, second) = cancel(&app, "c0", &ids[0]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(second, first, "cancelling twice answers the same");
    // Someone else's order is as unknown as a random id.
    let (s, _) = cancel(&app, "c2", &ids[1]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(stocks(&app, sale, item).await, (3, 3));

    // The window (5 s) passes: one expiry pass closes the other two, a second changes nothing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(app.services.lifecycle.expire_once().await.unwrap(), 2);
    assert_eq!(app.services.lifecycle.expire_once().await.unwrap(), 0);
    assert_eq!(stocks(&app, sale, item).await, (5, 5));
    let (s, body) = cancel(&app, "c1", &ids[1]).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("order_closed"))
    );

    // A release asked again (a sweep after a crash between the MySQL commit and the record)
    // gives nothing more.
    sqlx::query("UPDATE orders SET released_at = NULL WHERE item_id = ?")
        .bind(item)
        .execute(app.db())
        .await
        .unwrap();
    assert_eq!(app.services.lifecycle.sweep_once().await.unwrap(), 3);
    let uid: String = sqlx::query_scalar("SELECT uid FROM sales WHERE id = ?")
        .bind(sale)
        .fetch_one(app.db())
        .await
        .unwrap();
    let again = app
        .services
        .stock
        .release(
            app.item_ref(sale, item).await,
            seckill::domain::script_version::CURRENT,
            &uid,
            &[Uuid::parse_str(&ids[2]).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(again, [ReleaseOutcome::Already { units: 1 }]);
    assert_eq!(stocks(&app, sale, item).await, (5, 5));
    assert_clean(&app, sale).await;
}
