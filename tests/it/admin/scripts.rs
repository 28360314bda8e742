//! The Lua scripts behind the admin API: reloaded after a flush, pinned per sale across an
//! upgrade (a sale of the release before keeps its version).

use redis::AsyncCommands;
use reqwest::StatusCode;

use crate::support::spawn_app;

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
    let before = app.services.metrics.scripts.reloads.get();
    let (status, body) = app.buy(sale, item, "alice", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(app.services.metrics.scripts.reloads.get(), before + 1);
    // Prewarm (another script) also recovers.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let body = prewarm(&app, sale).await;
    assert_eq!(body["items"][0]["outcome"], "already_warmed");
    assert_eq!(body["items"][0]["remaining"], 9);
}

/// A prewarm of `sale` through the admin API, which must answer 200; its body.
async fn prewarm(app: &crate::support::TestApp, sale: u64) -> serde_json::Value {
    let path = format!("/admin/v1/sales/{sale}/prewarm");
    let (status, body) = app.admin_post(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The `script="…"` count of `seckill_script_duration_seconds` in an app's metrics.
async fn script_calls(app: &crate::support::TestApp, script: &str) -> u64 {
    let text = app.metrics_text().await;
    let prefix = format!(r#"seckill_script_duration_seconds_count{{script="{script}"}} "#);
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// A live sale whose row is pinned to `version`, as the release that wrote it would have: not
/// warmed yet (the row is written straight to MySQL, past this instance's configuration).
async fn sale_pinned_to(app: &crate::support::TestApp, version: &str) -> (u64, u64) {
    use seckill::domain::sale::{NewItem, NewSale};
    let now = chrono::Utc::now();
    let item = NewItem {
        sku: "sku-1".into(),
        title: "Item".into(),
        price_cents: 1999,
        stock: 10,
        per_user_limit: 2,
        payment_window_secs: 900,
        shards: 1,
    };
    let sale = NewSale {
        items: vec![item],
        name: format!("pinned to {version}"),
        starts_at: now - chrono::Duration::seconds(1),
        ends_at: now + chrono::Duration::minutes(30),
        admission: Default::default(),
    };
    let record = seckill::stores::mysql::sales::insert_sale(app.db(), &sale, version)
        .await
        .unwrap();
    (record.sale.id, record.items[0].id)
}

#[tokio::test]
async fn a_sale_keeps_the_script_version_it_was_warmed_with_across_an_upgrade() {
    use seckill::stock::{ledger::ItemLedger, scripts::ScriptKind};
    // This release makes v6 current; a sale of the release before is pinned to v5.
    let app = spawn_app().await;
    assert_eq!(app.settings().sale.script_version, "v6");
    let (old_sale, old_item) = sale_pinned_to(&app, "v5").await;
    prewarm(&app, old_sale).await;
    let (new_sale, new_item) = app.create_live_sale(10, 2).await;
    for (sale, version) in [(old_sale, "v5"), (new_sale, "v6")] {
        let (_, body) = app.admin_get(&format!("/admin/v1/sales/{sale}")).await;
        assert_eq!(body["script_version"], version, "{body}");
    }

    // Both bought through the upgraded instance: each runs the scripts of its own version.
    for (sale, item) in [(old_sale, old_item), (new_sale, new_item)] {
        let (status, body) = app.buy(sale, item, "upgrader", 1, None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let label = |v| {
        &app.services
            .stock
            .scripts()
            .get(ScriptKind::Deduct, v)
            .unwrap()
            .label
    };
    assert_ne!(label("v5"), label("v6"));
    assert_eq!(script_calls(&app, label("v5")).await, 1);
    assert_eq!(script_calls(&app, label("v6")).await, 1);
    // Each sale's state lives under its own layout of keys: v5's tag names the sale by id,
    // v6's by id and uid.
    let mut conn = app.redis().get();
    for (sale, item, tagged) in [(old_sale, old_item, false), (new_sale, new_item, true)] {
        let keys = app.item_keys(sale, item).await;
        let (_, body) = app.admin_get(&format!("/admin/v1/sales/{sale}")).await;
        let uid = body["uid"].as_str().expect("the sale shows its uid");
        let expected = if tagged {
            format!("{{s{sale}.{uid}:i{item}}}")
        } else {
            format!("{{s{sale}:i{item}}}")
        };
        assert!(keys.stock.contains(&expected), "{} {expected}", keys.stock);
        let ledger = ItemLedger::open(&mut conn, keys, sale, item).await.unwrap();
        assert!(ledger.is_compact(), "sale {sale}");
        let buyers = ledger.all_buyers(&mut conn).await.unwrap();
        assert_eq!(buyers, [("upgrader".to_string(), 1)].into(), "sale {sale}");
        let remaining: i64 = conn.get(&ledger.keys.stock).await.unwrap();
        assert_eq!(remaining, 9);
    }
}

#[tokio::test]
async fn a_sale_pinned_to_a_retired_version_is_refused_at_prewarm_with_the_way_out() {
    let app = spawn_app().await;
    let (sale, item) = sale_pinned_to(&app, "v2").await;
    let (status, body) = app.prewarm(sale).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "script_retired", "{body}");
    let detail = body["detail"].as_str().unwrap();
    for words in ["v2", "v5 and v6", "release before", "script_version to v6"] {
        assert!(
            detail.contains(words),
            "the refusal names {words:?}: {detail}"
        );
    }
    // Nothing was written to Redis, and a buy answers 503 without reserving.
    let keys = app.item_keys(sale, item).await;
    let mut conn = app.redis().get();
    let stock: Option<i64> = redis::AsyncCommands::get(&mut conn, &keys.stock)
        .await
        .unwrap();
    assert_eq!(stock, None);
    let (status, _) = app.buy(sale, item, "too-late", 1, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn state_a_retired_version_wrote_is_not_compared_and_its_releases_settle_in_mysql() {
    // What an ended v4 sale re-pinned to v5 looks like: v5's key names (v4's), and meta
    // without the compact ledger's `buckets`, as v4 wrote it.
    let app = spawn_app().await;
    let (sale, item) = sale_pinned_to(&app, "v5").await;
    prewarm(&app, sale).await;
    let mut orders = Vec::new();
    for user in ["old-1", "old-2"] {
        let (status, body) = app.buy(sale, item, user, 1, None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        orders.push((user, body["order_id"].as_str().unwrap().to_string()));
    }
    crate::support::wait_rows(&app, item, 2).await;
    let keys = app.item_keys(sale, item).await;
    let mut conn = app.redis().get();
    let _: i64 = conn.hdel(&keys.meta, "buckets").await.unwrap();

    // A cancel settles: release.v5 finds no compact ledger and answers NOT_WARMED, so the
    // unit goes back in MySQL only.
    let (user, order) = &orders[0];
    let (status, body) = crate::support::cancel(&app, user, order).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let released: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT released_at FROM orders WHERE order_id = ?")
            .bind(uuid::Uuid::parse_str(order).unwrap())
            .fetch_one(app.db())
            .await
            .unwrap();
    assert!(released.is_some(), "the release settled");

    // Reconciliation says why Redis is not compared, and finds nothing wrong.
    let report = app.services.reconciler.run_once(sale, false).await.unwrap();
    assert!(report.ok, "{}", report.to_table());
    let state = report.items[0]
        .checks
        .iter()
        .find(|c| c.name == "redis_state_present")
        .expect("a state check");
    assert!(
        state
            .detail
            .contains("script version this release does not run"),
        "{state:?}"
    );
}
