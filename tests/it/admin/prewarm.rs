//! Warming sales: on demand, idempotently, under another instance's lock, and by the scheduler.

use chrono::{Duration, Utc};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::json;

use super::{all_keys_of, create, keys_of};
use crate::support::{first_item, spawn_app};

#[tokio::test]
async fn a_sale_far_ahead_is_warmed_later_and_prewarm_is_idempotent() {
    let app = spawn_app().await;
    // Starts beyond the prewarm lead time: created, not warmed.
    let lead = app.settings().sale.prewarm_lead_secs as i64;
    let (status, sale) = create(&app, Duration::seconds(lead + 600), Duration::hours(1)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sale["status"], "created");
    assert!(sale["items"][0]["redis_remaining"].is_null());
    let (id, item) = first_item(&sale);

    // Stock may still change before warming.
    let change = json!({"version": 1, "items": [{"id": item, "stock": 7}]});
    let (status, body) = app.patch_sale(id, change).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let path = format!("/admin/v1/sales/{id}/prewarm");
    let (status, first) = app.admin_post(&path).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["items"][0]["outcome"], "warmed");
    assert_eq!(first["items"][0]["remaining"], 7);
    let (status, second) = app.admin_post(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["items"][0]["outcome"], "already_warmed");
    // Force before the start overwrites (no reservations can exist yet).
    let (status, forced) = app.admin_post(&format!("{path}?force=true")).await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(forced["items"][0]["outcome"], "warmed");
    let (_, shown) = app.admin_get(&format!("/admin/v1/sales/{id}")).await;
    assert_eq!(shown["status"], "warmed");
}

#[tokio::test]
async fn prewarm_waits_for_another_instances_lock_and_then_gives_up_with_409() {
    let app = spawn_app().await;
    let lead = app.settings().sale.prewarm_lead_secs as i64;
    let (_, sale) = create(&app, Duration::seconds(lead + 600), Duration::hours(1)).await;
    let id = sale["id"].as_u64().unwrap();
    // Another instance is warming this sale.
    let guard = app
        .services
        .lock
        .try_acquire(
            &format!("prewarm:s{id}"),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap()
        .unwrap();
    let (status, err) = app.prewarm(id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "prewarm_in_progress");
    let keys = keys_of(&app).await;
    assert!(
        keys.is_empty(),
        "nothing warmed while the lock is held: {keys:?}"
    );
    assert!(all_keys_of(&app).await.iter().any(|k| k.contains(":lock:")));
    app.services.lock.release(&guard).await.unwrap();
    let (status, _) = app.prewarm(id).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_scheduler_warms_a_sale_once_its_start_comes_within_the_lead_time() {
    use crate::support::{STACK, eventually, spawn_with, test_settings};
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    // The scheduler looks every 5 s: with an 8 s lead, a sale starting in 14 s is due 6 s after
    // creation and warmed by 11 s at the latest, before it starts.
    settings.sale.prewarm_lead_secs = 8;
    let app = spawn_with(settings).await;
    let (status, sale) = create(&app, Duration::seconds(14), Duration::hours(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["status"], "created", "not warmed at creation");
    let (id, item) = first_item(&sale);
    let ends_at = chrono::DateTime::parse_from_rfc3339(sale["ends_at"].as_str().unwrap()).unwrap();

    let warmed = eventually(std::time::Duration::from_secs(30), || {
        let app = &app;
        async move {
            let (_, s) = app.admin_get(&format!("/admin/v1/sales/{id}")).await;
            (s["status"] == "warmed").then_some(s)
        }
    })
    .await;
    assert_eq!(warmed["items"][0]["redis_remaining"], 100);
    let started =
        chrono::DateTime::parse_from_rfc3339(warmed["starts_at"].as_str().unwrap()).unwrap();
    assert!(Utc::now() < started, "warmed before the sale starts");
    let keys = app.item_keys(id, item).await;
    let ttl_ms: i64 = app.redis().get().pttl(&keys.stock).await.unwrap();
    let expected = (ends_at.with_timezone(&Utc) - Utc::now()).num_milliseconds()
        + app.settings().sale.grace_secs as i64 * 1000;
    assert!(
        (ttl_ms - expected).abs() < 2_000,
        "stock key expires with the sale: pttl {ttl_ms} vs {expected}"
    );
}
