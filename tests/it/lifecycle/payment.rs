//! Payment notifications: checked and answered once (racing the expiry job: `faults::payment_race`).

use reqwest::StatusCode;
use seckill::orders::signature;
use serde_json::json;
use uuid::Uuid;

use crate::support::{assert_clean, cancel, lifecycle_app, pay, sale_with_window, send, states};

#[tokio::test]
async fn payment_notifications_are_checked_and_answered_once() {
    let app = lifecycle_app(None).await;
    let (sale, item) = sale_with_window(&app, 10, 1, 900).await;
    let ids = app.persisted_reservations((sale, item), "p", 3).await;

    // A bad signature changes nothing.
    let body = json!({"order_id": ids[0], "amount_cents": 1999, "provider_ref": "r0"}).to_string();
    let r = send(
        app.http
            .post(app.url("/payments/v1/notify"))
            .header(
                "x-signature",
                signature::sign(
                    b"not-the-secret",
                    chrono::Utc::now().timestamp(),
                    body.as_bytes(),
                ),
            )
            .body(body),
    )
    .await;
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
