//! Changing a sale: optimistic versions, a moved window, and what a started sale refuses.

use chrono::{Duration, Utc};
use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::create;
use crate::support::{first_item, send, spawn_app};

#[tokio::test]
async fn two_patches_with_the_same_version_give_one_200_and_one_409() {
    let app = spawn_app().await;
    let (status, sale) = create(&app, Duration::hours(2), Duration::hours(1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = sale["id"].as_u64().unwrap();
    let path = format!("/admin/v1/sales/{id}");
    let a = app.admin(
        Method::PATCH,
        &path,
        Some(json!({"version": 1, "name": "A"})),
    );
    let b = app.admin(
        Method::PATCH,
        &path,
        Some(json!({"version": 1, "name": "B"})),
    );
    let ((sa, ba), (sb, bb)) = tokio::join!(a, b);
    let mut statuses = [sa, sb];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{ba} {bb}"
    );
    let conflict = if sa == StatusCode::CONFLICT { &ba } else { &bb };
    assert_eq!(conflict["code"], "version_conflict");
    let (_, now) = app.admin_get(&path).await;
    assert_eq!(now["version"], 2);

    // If-Match works as well, and a missing version is a 428.
    let r = send(
        app.http
            .patch(app.admin_url(&path))
            .bearer_auth(&*crate::support::ADMIN_TOKEN)
            .header("If-Match", "\"2\"")
            .json(&json!({"name": "C"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, err) = app
        .admin(Method::PATCH, &path, Some(json!({"name": "D"})))
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{err}");
    assert_eq!(err["code"], "version_required");
}

#[tokio::test]
async fn a_patch_moves_the_window_and_refreshes_redis_expiries() {
    let app = spawn_app().await;
    let (_, sale) = create(&app, Duration::minutes(30), Duration::hours(1)).await;
    assert_eq!(sale["status"], "warmed");
    let (id, item) = first_item(&sale);
    let new_end = Utc::now() + Duration::hours(5);
    let change = json!({"version": 1, "ends_at": new_end.to_rfc3339(), "items": [{"id": item, "price_cents": 89900}]});
    let (status, body) = app.patch_sale(id, change).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["price_cents"], 89900);
    let keys = app.item_keys(id, item).await;
    let mut conn = app.redis().get();
    let pttl: i64 = conn.pttl(&keys.stock).await.unwrap();
    let expected = (new_end.timestamp_millis() + app.settings().sale.grace_secs as i64 * 1000)
        - Utc::now().timestamp_millis();
    assert!((pttl - expected).abs() < 1_000, "pttl {pttl} vs {expected}");
    let price: i64 = conn.hget(&keys.meta, "price_cents").await.unwrap();
    assert_eq!(price, 89900);

    // Stock cannot change once warmed; an unknown item is named.
    let change = json!({"version": 2, "items": [{"id": item, "stock": 5}]});
    let (status, err) = app.patch_sale(id, change).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "stock_locked");
    let change = json!({"version": 2, "items": [{"id": 999999, "title": "x"}]});
    let (status, err) = app.patch_sale(id, change).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "items[0].id");
}

#[tokio::test]
async fn a_started_sale_cannot_be_patched_or_force_warmed() {
    let app = spawn_app().await;
    let (sale, _) = app.create_live_sale(10, 1).await;
    let change = json!({"version": 1, "name": "x"});
    let (status, err) = app.patch_sale(sale, change).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["code"], "sale_started");
    let (status, err) = app
        .admin_post(&format!("/admin/v1/sales/{sale}/prewarm?force=true"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["code"], "sale_started");
}

#[tokio::test]
async fn the_admission_policy_is_created_read_and_changed_before_the_start() {
    let app = spawn_app().await;
    let (status, sale) = create(&app, Duration::hours(2), Duration::hours(1)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sale["admission"]["mode"], "open", "the default: {sale}");
    let id = sale["id"].as_u64().unwrap();
    let path = format!("/admin/v1/sales/{id}");
    let opens = (Utc::now() + Duration::minutes(90)).to_rfc3339();
    let policy = json!({"mode": "queue", "admit_per_sec": 50, "max_active": 200,
                        "queue_opens_at": opens, "pow_bits": 4});
    let (status, changed) = app
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"version": 1, "admission": policy})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (_, read) = app.admin_get(&path).await;
    let a = &read["admission"];
    assert_eq!(
        (a["mode"].as_str(), a["admit_per_sec"].as_u64()),
        (Some("queue"), Some(50))
    );
    assert_eq!(
        (a["max_active"].as_u64(), a["pow_bits"].as_u64()),
        (Some(200), Some(4))
    );
    assert_eq!(
        a["admission_ttl_secs"], 120,
        "defaults fill what was not sent: {a}"
    );
    // Moving the start before the queue's opening is refused, and changes nothing.
    let early = (Utc::now() + Duration::minutes(80)).to_rfc3339();
    let (status, err) = app
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"version": 2, "starts_at": early})),
        )
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("admission.queue_opens_at")
        ),
        "{err}"
    );
    assert_eq!(app.admin_get(&path).await.1["version"], 2);
}
