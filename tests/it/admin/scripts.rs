//! The Lua scripts behind the admin API: reloaded after a flush, pinned per sale across an
//! upgrade.

use redis::AsyncCommands;
use reqwest::{Method, StatusCode};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_flushed_script_is_loaded_again_and_the_call_succeeds() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let mut conn = app.redis().get();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let before = app.services.metrics.script_reloads.get();
    let (status, body) = app.buy(sale, item, "alice", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(app.services.metrics.script_reloads.get(), before + 1);
    // Prewarm (another script) also recovers.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (status, body) = app
        .admin(
            Method::POST,
            &format!("/admin/v1/sales/{sale}/prewarm"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["outcome"], "already_warmed");
    assert_eq!(body["items"][0]["remaining"], 9);
}

/// The `script="…"` count of `seckill_script_duration_seconds` in an app's metrics.
async fn script_calls(app: &crate::helpers::TestApp, script: &str) -> u64 {
    let text = app
        .http
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!(r#"seckill_script_duration_seconds_count{{script="{script}"}} "#);
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_sale_keeps_the_script_version_it_was_warmed_with_across_an_upgrade() {
    use crate::helpers::{STACK, spawn_with, test_settings};
    // Instances of three configurations (v1, v2, and today's v3), sharing every store.
    let mut old = test_settings(&STACK.kafka_brokers).await;
    old.sale.script_version = "v1".into();
    let mut mid = old.clone();
    mid.sale.script_version = "v2".into();
    let mut new = old.clone();
    new.sale.script_version = "v3".into();
    let old = spawn_with(old).await;
    let mid = spawn_with(mid).await;
    let new = spawn_with(new).await;
    let (old_sale, old_item) = old.create_live_sale(10, 2).await;
    let (mid_sale, mid_item) = mid.create_live_sale(10, 2).await;
    let (new_sale, new_item) = new.create_live_sale(10, 2).await;
    let (_, sale) = new
        .admin(Method::GET, &format!("/admin/v1/sales/{old_sale}"), None)
        .await;
    assert_eq!(sale["script_version"], "v1");

    // Every sale bought through the upgraded instance: each runs its own version.
    for (sale, item) in [
        (old_sale, old_item),
        (mid_sale, mid_item),
        (new_sale, new_item),
    ] {
        let (status, body) = new.buy(sale, item, "upgrader", 1, None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    assert_eq!(script_calls(&new, "deduct.v1").await, 1);
    assert_eq!(script_calls(&new, "deduct.v2").await, 1);
    assert_eq!(script_calls(&new, "deduct.v3").await, 1);
    // The old sale's keys hold exactly what v1 writes: one reservation, one unit for the user.
    let keys = old.keys().item(old_sale, old_item);
    let mut conn = old.redis().get();
    let remaining: i64 = conn.get(&keys.stock).await.unwrap();
    // v1 keeps one buyers hash.
    let held: i64 = conn.hget(&keys.buyers, "upgrader").await.unwrap();
    assert_eq!((remaining, held), (9, 1));
}
