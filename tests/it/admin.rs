//! The admin API: create, show, list, change and warm sales.

use chrono::{Duration, Utc};
use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn sale_body(starts_in: Duration, lasts: Duration) -> Value {
    let now = Utc::now();
    json!({
        "name": "Singles' Day",
        "starts_at": (now + starts_in).to_rfc3339(),
        "ends_at": (now + starts_in + lasts).to_rfc3339(),
        "items": [
            {"sku": "phone", "title": "Phone", "price_cents": 99900, "stock": 100, "per_user_limit": 2},
            {"sku": "case", "title": "Case", "price_cents": 1500, "stock": 5000, "per_user_limit": 5}
        ]
    })
}

/// Every key of a sale (not the instance-wide Bloom filter or locks) under the app's prefix.
async fn keys_of(app: &TestApp) -> Vec<String> {
    all_keys_of(app)
        .await
        .into_iter()
        .filter(|k| !k.contains(":lock:") && !k.contains("{sales}:bloom"))
        .collect()
}

/// Every key under the app's prefix.
async fn all_keys_of(app: &TestApp) -> Vec<String> {
    let mut conn = app.redis().get();
    let pattern = format!("{}*", app.keys().prefix());
    let mut cursor: u64 = 0;
    let mut all = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        all.extend(batch);
        if next == 0 {
            return all;
        }
        cursor = next;
    }
}

async fn sale_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sales")
        .fetch_one(app.db())
        .await
        .unwrap()
}

#[tokio::test]
async fn creating_a_sale_writes_mysql_and_redis_with_ttls_aligned_to_its_end() {
    let app = spawn_app().await;
    let body = sale_body(Duration::minutes(5), Duration::hours(1));
    let (status, sale) = app
        .admin(Method::POST, "/admin/v1/sales", Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["status"], "warmed");
    assert_eq!(sale["phase"], "upcoming");
    assert_eq!(
        sale["script_version"], "v4",
        "pinned to the configured version"
    );
    assert_eq!(sale["version"], 1);
    let id = sale["id"].as_u64().unwrap();
    let items = sale["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["redis_remaining"], 100);
    assert_eq!(items[1]["redis_remaining"], 5000);
    assert_eq!(items[0]["reserved_units"], 0);
    assert_eq!(items[0]["persisted_units"], 0);

    // MySQL holds the sale and its items.
    let (stock, initial): (u32, u32) = sqlx::query_as(
        "SELECT stock, initial_stock FROM sale_items WHERE sale_id = ? AND sku = 'phone'",
    )
    .bind(id)
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!((stock, initial), (100, 100));

    // Every Redis key expires within a second of ends_at + grace.
    let ends_at = chrono::DateTime::parse_from_rfc3339(body["ends_at"].as_str().unwrap()).unwrap();
    let expected_ms = (ends_at.timestamp_millis() + app.settings().sale.grace_secs as i64 * 1000)
        - Utc::now().timestamp_millis();
    let keys = keys_of(&app).await;
    assert_eq!(keys.len(), 4, "stock and meta of two items: {keys:?}");
    let mut conn = app.redis().get();
    for key in keys {
        let pttl: i64 = conn.pttl(&key).await.unwrap();
        assert!(pttl > 0, "{key} must expire, pttl {pttl}");
        assert!(
            (pttl - expected_ms).abs() < 1_000,
            "{key}: pttl {pttl} vs expected {expected_ms}"
        );
    }

    // GET shows the same numbers; the list shows the sale.
    let (status, shown) = app
        .admin(Method::GET, &format!("/admin/v1/sales/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["items"][0]["redis_remaining"], 100);
    assert_eq!(shown["items"][0]["stock"], 100);
    let (status, list) = app
        .admin(Method::GET, "/admin/v1/sales?limit=10", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["sales"][0]["id"], id);

    // Paging: three sales, two per page.
    for _ in 0..2 {
        let (status, _) = app
            .admin(
                Method::POST,
                "/admin/v1/sales",
                Some(sale_body(Duration::minutes(5), Duration::hours(1))),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let page = |offset: u32| {
        let app = &app;
        async move {
            let (status, list) = app
                .admin(
                    Method::GET,
                    &format!("/admin/v1/sales?limit=2&offset={offset}"),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{list}");
            assert_eq!(list["total"], 3);
            list["sales"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_u64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    let (first, second) = (page(0).await, page(2).await);
    assert_eq!((first.len(), second.len()), (2, 1));
    assert!(
        first.iter().all(|id| !second.contains(id)),
        "pages do not overlap"
    );
}

#[tokio::test]
async fn every_validation_rule_answers_422_naming_its_field_and_writes_nothing() {
    let app = spawn_app().await;
    let now = Utc::now();
    let good = sale_body(Duration::minutes(5), Duration::hours(1));
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("name", Box::new(|b| b["name"] = json!(""))),
        ("name", Box::new(|b| b["name"] = json!("x".repeat(201)))),
        (
            "starts_at",
            Box::new(|b| b["starts_at"] = json!("next tuesday")),
        ),
        (
            "ends_at",
            Box::new(move |b| {
                b["starts_at"] = json!((now + Duration::hours(2)).to_rfc3339());
                b["ends_at"] = json!((now + Duration::hours(1)).to_rfc3339());
            }),
        ),
        (
            "ends_at",
            Box::new(move |b| {
                b["starts_at"] = json!((now - Duration::hours(2)).to_rfc3339());
                b["ends_at"] = json!((now - Duration::hours(1)).to_rfc3339());
            }),
        ),
        ("items", Box::new(|b| b["items"] = json!([]))),
        (
            "items[0].stock",
            Box::new(|b| b["items"][0]["stock"] = json!(0)),
        ),
        (
            "items[0].stock",
            Box::new(|b| b["items"][0]["stock"] = json!(1_000_000_001_i64)),
        ),
        (
            "items[0].stock",
            Box::new(|b| b["items"][0]["stock"] = json!("ten")),
        ),
        (
            "items[1].per_user_limit",
            Box::new(|b| b["items"][1]["per_user_limit"] = json!(0)),
        ),
        (
            "items[1].sku",
            Box::new(|b| b["items"][1]["sku"] = json!("phone")),
        ),
        (
            "items[0].price_cents",
            Box::new(|b| b["items"][0]["price_cents"] = json!(-1)),
        ),
        (
            "items[0].title",
            Box::new(|b| {
                b["items"][0].as_object_mut().unwrap().remove("title");
            }),
        ),
    ];
    for (field, mutate) in cases {
        let mut body = good.clone();
        mutate(&mut body);
        let (status, err) = app.admin(Method::POST, "/admin/v1/sales", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {err}");
        assert_eq!(err["code"], "invalid_field", "{err}");
        assert_eq!(err["field"], field, "{err}");
        assert!(err["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // Broken JSON is a 422 too.
    let r = app
        .http
        .post(app.admin_url("/admin/v1/sales"))
        .bearer_auth(&*crate::helpers::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_json");

    assert_eq!(sale_rows(&app).await, 0, "no sale row written");
    assert!(keys_of(&app).await.is_empty(), "no Redis key written");
}

#[tokio::test]
async fn missing_or_wrong_admin_tokens_get_401_and_write_nothing() {
    let app = spawn_app().await;
    let body = sale_body(Duration::minutes(5), Duration::hours(1));
    let r = app
        .http
        .post(app.admin_url("/admin/v1/sales"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
    let r = app
        .http
        .post(app.admin_url("/admin/v1/sales"))
        .bearer_auth("test-admin-tokeN")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .http
        .get(app.admin_url("/admin/v1/sales"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sale_rows(&app).await, 0);
}

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

#[tokio::test]
async fn two_patches_with_the_same_version_give_one_200_and_one_409() {
    let app = spawn_app().await;
    let (status, sale) = app
        .admin(
            Method::POST,
            "/admin/v1/sales",
            Some(sale_body(Duration::hours(2), Duration::hours(1))),
        )
        .await;
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
    let (_, now) = app.admin(Method::GET, &path, None).await;
    assert_eq!(now["version"], 2);

    // If-Match works as well, and a missing version is a 428.
    let r = app
        .http
        .patch(app.admin_url(&path))
        .bearer_auth(&*crate::helpers::ADMIN_TOKEN)
        .header("If-Match", "\"2\"")
        .json(&json!({"name": "C"}))
        .send()
        .await
        .unwrap();
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
    let (_, sale) = app
        .admin(
            Method::POST,
            "/admin/v1/sales",
            Some(sale_body(Duration::minutes(30), Duration::hours(1))),
        )
        .await;
    assert_eq!(sale["status"], "warmed");
    let id = sale["id"].as_u64().unwrap();
    let item = sale["items"][0]["id"].as_u64().unwrap();
    let new_end = Utc::now() + Duration::hours(5);
    let (status, body) = app
        .admin(
            Method::PATCH,
            &format!("/admin/v1/sales/{id}"),
            Some(json!({"version": 1, "ends_at": new_end.to_rfc3339(),
                        "items": [{"id": item, "price_cents": 89900}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["price_cents"], 89900);
    let keys = app.keys().item(id, item);
    let mut conn = app.redis().get();
    let pttl: i64 = conn.pttl(&keys.stock).await.unwrap();
    let expected = (new_end.timestamp_millis() + app.settings().sale.grace_secs as i64 * 1000)
        - Utc::now().timestamp_millis();
    assert!((pttl - expected).abs() < 1_000, "pttl {pttl} vs {expected}");
    let price: i64 = conn.hget(&keys.meta, "price_cents").await.unwrap();
    assert_eq!(price, 89900);

    // Stock cannot change once warmed; an unknown item is named.
    let (status, err) = app
        .admin(
            Method::PATCH,
            &format!("/admin/v1/sales/{id}"),
            Some(json!({"version": 2, "items": [{"id": item, "stock": 5}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "stock_locked");
    let (status, err) = app
        .admin(
            Method::PATCH,
            &format!("/admin/v1/sales/{id}"),
            Some(json!({"version": 2, "items": [{"id": 999999, "title": "x"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "items[0].id");
}

#[tokio::test]
async fn a_started_sale_cannot_be_patched_or_force_warmed() {
    let app = spawn_app().await;
    let (sale, _) = app.create_live_sale(10, 1).await;
    let (status, err) = app
        .admin(
            Method::PATCH,
            &format!("/admin/v1/sales/{sale}"),
            Some(json!({"version": 1, "name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["code"], "sale_started");
    let (status, err) = app
        .admin(
            Method::POST,
            &format!("/admin/v1/sales/{sale}/prewarm?force=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["code"], "sale_started");
}

#[tokio::test]
async fn a_sale_far_ahead_is_warmed_later_and_prewarm_is_idempotent() {
    let app = spawn_app().await;
    // Starts beyond the prewarm lead time: created, not warmed.
    let lead = app.settings().sale.prewarm_lead_secs as i64;
    let (status, sale) = app
        .admin(
            Method::POST,
            "/admin/v1/sales",
            Some(sale_body(Duration::seconds(lead + 600), Duration::hours(1))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sale["status"], "created");
    assert!(sale["items"][0]["redis_remaining"].is_null());
    let id = sale["id"].as_u64().unwrap();
    let item = sale["items"][0]["id"].as_u64().unwrap();

    // Stock may still change before warming.
    let (status, body) = app
        .admin(
            Method::PATCH,
            &format!("/admin/v1/sales/{id}"),
            Some(json!({"version": 1, "items": [{"id": item, "stock": 7}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let path = format!("/admin/v1/sales/{id}/prewarm");
    let (status, first) = app.admin(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["items"][0]["outcome"], "warmed");
    assert_eq!(first["items"][0]["remaining"], 7);
    let (status, second) = app.admin(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["items"][0]["outcome"], "already_warmed");
    // Force before the start overwrites (no reservations can exist yet).
    let (status, forced) = app
        .admin(Method::POST, &format!("{path}?force=true"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(forced["items"][0]["outcome"], "warmed");
    let (_, shown) = app
        .admin(Method::GET, &format!("/admin/v1/sales/{id}"), None)
        .await;
    assert_eq!(shown["status"], "warmed");
}

#[tokio::test]
async fn unknown_sales_and_bad_paths_are_json_errors() {
    let app = spawn_app().await;
    let (status, err) = app.admin(Method::GET, "/admin/v1/sales/424242", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["code"], "not_found");
    let (status, err) = app.admin(Method::GET, "/admin/v1/sales/abc", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "path");
    let (status, err) = app
        .admin(Method::GET, "/admin/v1/sales?limit=0", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "limit");
}

#[tokio::test]
async fn prewarm_waits_for_another_instances_lock_and_then_gives_up_with_409() {
    let app = spawn_app().await;
    let lead = app.settings().sale.prewarm_lead_secs as i64;
    let (_, sale) = app
        .admin(
            Method::POST,
            "/admin/v1/sales",
            Some(sale_body(Duration::seconds(lead + 600), Duration::hours(1))),
        )
        .await;
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
    let (status, err) = app
        .admin(Method::POST, &format!("/admin/v1/sales/{id}/prewarm"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "prewarm_in_progress");
    let keys = keys_of(&app).await;
    assert!(
        keys.is_empty(),
        "nothing warmed while the lock is held: {keys:?}"
    );
    assert!(all_keys_of(&app).await.iter().any(|k| k.contains(":lock:")));
    app.services.lock.release(&guard).await.unwrap();
    let (status, _) = app
        .admin(Method::POST, &format!("/admin/v1/sales/{id}/prewarm"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
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
    let held: i64 = conn.hget(&keys.buyers, "upgrader").await.unwrap();
    assert_eq!((remaining, held), (9, 1));
}

#[tokio::test]
async fn the_scheduler_warms_a_sale_once_its_start_comes_within_the_lead_time() {
    use crate::helpers::{STACK, eventually, spawn_with, test_settings};
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    // The scheduler looks every 5 s: with an 8 s lead, a sale starting in 14 s is due 6 s after
    // creation and warmed by 11 s at the latest, before it starts.
    settings.sale.prewarm_lead_secs = 8;
    let app = spawn_with(settings).await;
    let (status, sale) = app
        .admin(
            Method::POST,
            "/admin/v1/sales",
            Some(sale_body(Duration::seconds(14), Duration::hours(1))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["status"], "created", "not warmed at creation");
    let id = sale["id"].as_u64().unwrap();
    let item = sale["items"][0]["id"].as_u64().unwrap();
    let ends_at = chrono::DateTime::parse_from_rfc3339(sale["ends_at"].as_str().unwrap()).unwrap();

    let warmed = eventually(std::time::Duration::from_secs(30), || {
        let app = &app;
        async move {
            let (_, s) = app
                .admin(Method::GET, &format!("/admin/v1/sales/{id}"), None)
                .await;
            (s["status"] == "warmed").then_some(s)
        }
    })
    .await;
    assert_eq!(warmed["items"][0]["redis_remaining"], 100);
    let started =
        chrono::DateTime::parse_from_rfc3339(warmed["starts_at"].as_str().unwrap()).unwrap();
    assert!(Utc::now() < started, "warmed before the sale starts");
    let keys = app.keys().item(id, item);
    let ttl_ms: i64 = app.redis().get().pttl(&keys.stock).await.unwrap();
    let expected = (ends_at.with_timezone(&Utc) - Utc::now()).num_milliseconds()
        + app.settings().sale.grace_secs as i64 * 1000;
    assert!(
        (ttl_ms - expected).abs() < 2_000,
        "stock key expires with the sale: pttl {ttl_ms} vs {expected}"
    );
}
