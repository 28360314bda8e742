//! The public sale page: cache levels, penetration, breakdown, avalanche, invalidation.

use std::time::{Duration, Instant};

use chrono::Utc;
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    TestApp, answer, eventually, item_json, sale_json, spawn_app, spawn_app_with, two_instances,
};

fn mysql_loads(app: &TestApp) -> u64 {
    app.services
        .metrics
        .cache
        .hits
        .with_label_values(&["mysql"])
        .get()
}

/// What is left of the lifetime of the page of `sale` cached in Redis, in milliseconds.
async fn page_ttl_ms(app: &TestApp, sale: u64) -> i64 {
    let key = app.keys().sale_detail(sale);
    app.redis().get().pttl(key).await.unwrap()
}

/// A cold page filled once (a second query at most, if the lock's holder was slow): `queries`
/// MySQL queries `what`.
fn one_fill(queries: u64, what: &str) {
    assert!((1..=2).contains(&queries), "{queries} MySQL queries {what}");
}

async fn upcoming_sale(app: &TestApp, minutes: i64) -> u64 {
    let now = Utc::now();
    let [starts, ends] = [minutes, minutes + 60].map(|m| now + chrono::Duration::minutes(m));
    let items = json!([item_json("p", "Phone", 500, 10, 1)]);
    let (status, sale) = app
        .create_sale(sale_json("Launch", starts, ends, items))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    sale["id"].as_u64().unwrap()
}

/// The sale page of `id`: status and body.
async fn page(app: &TestApp, id: u64) -> (StatusCode, Value) {
    answer(app.get(&format!("/api/v1/sales/{id}")).await).await
}

#[tokio::test]
async fn the_page_shows_the_sale_and_its_approximate_remaining_stock() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let (status, body) = page(&app, sale).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "test sale");
    assert_eq!(body["phase"], "active");
    assert_eq!(body["items"][0]["remaining"], 10);
    assert_eq!(body["items"][0]["price_cents"], 1999);
    app.buy(sale, item, "a", 1, None).await;
    // Refreshed within about 100 ms.
    eventually(Duration::from_secs(5), || async {
        (page(&app, sale).await.1["items"][0]["remaining"] == 9).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_thousand_concurrent_cold_requests_cost_at_most_two_mysql_queries() {
    let app = spawn_app().await;
    let sale = upcoming_sale(&app, 30).await;
    let before = mysql_loads(&app);
    let mut tasks = Vec::new();
    for _ in 0..1_000 {
        let (http, url) = (app.http.clone(), app.url(&format!("/api/v1/sales/{sale}")));
        tasks.push(tokio::spawn(async move {
            let r = http.get(url).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], sale);
    }
    one_fill(mysql_loads(&app) - before, "for 1000 cold requests");
}

#[tokio::test]
async fn unknown_ids_are_answered_404_almost_without_mysql() {
    let app = spawn_app().await;
    upcoming_sale(&app, 30).await;
    let before = mysql_loads(&app);
    let mut tasks = Vec::new();
    for chunk in 0..50u64 {
        let (http, base) = (app.http.clone(), app.base.clone());
        tasks.push(tokio::spawn(async move {
            let mut not_found = 0;
            for i in 0..200u64 {
                let id = 1_000_000 + chunk * 7_919 + i * 104_729; // spread, never a real id
                let r = http
                    .get(format!("{base}/api/v1/sales/{id}"))
                    .send()
                    .await
                    .unwrap();
                if r.status() == StatusCode::NOT_FOUND {
                    not_found += 1;
                }
            }
            not_found
        }));
    }
    let mut not_found = 0;
    for t in tasks {
        not_found += t.await.unwrap();
    }
    assert_eq!(not_found, 10_000);
    let queries = mysql_loads(&app) - before;
    assert!(
        queries <= 100,
        "{queries} MySQL queries for 10,000 unknown ids"
    );
    let rejected = app
        .services
        .metrics
        .cache
        .rejections
        .with_label_values(&["bloom"])
        .get();
    assert!(rejected >= 9_900, "the Bloom filter turned away {rejected}");
}

#[tokio::test]
async fn a_change_through_one_instance_is_served_by_another_within_a_second() {
    let (a, b) = two_instances(|_| {}).await;
    let sale = upcoming_sale(&a, 30).await;
    assert_eq!(
        page(&b, sale).await.1["name"],
        "Launch",
        "b has the page cached"
    );
    let (status, _) = a
        .patch_sale(sale, json!({"version": 1, "name": "Launch (moved)"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let changed = Instant::now();
    loop {
        if page(&b, sale).await.1["name"] == "Launch (moved)" {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "b still serves the old name after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn cached_lifetimes_are_jittered_and_never_outlive_the_sale() {
    let app = spawn_app_with(|s| {
        s.cache.redis_ttl_secs = 600;
        s.sale.grace_secs = 5;
    })
    .await;
    let mut ttls = Vec::new();
    for _ in 0..12 {
        let sale = upcoming_sale(&app, 30).await;
        page(&app, sale).await;
        ttls.push(page_ttl_ms(&app, sale).await);
    }
    let (min, max) = (*ttls.iter().min().unwrap(), *ttls.iter().max().unwrap());
    assert!(
        min >= 480_000 - 2_000 && max <= 720_000,
        "{ttls:?} within 600 s ± 20%"
    );
    assert!(max - min > 10_000, "lifetimes are spread: {ttls:?}");

    // A sale ending in 20 s with 5 s of grace is cached at most 25 s, despite the 600 s base.
    let now = Utc::now();
    let items = json!([item_json("s", "S", 1, 1, 1)]);
    let ends = now + chrono::Duration::seconds(20);
    let (_, short) = app.create_sale(sale_json("short", now, ends, items)).await;
    let id = short["id"].as_u64().unwrap();
    page(&app, id).await;
    let ttl = page_ttl_ms(&app, id).await;
    assert!(ttl > 0 && ttl <= 25_000, "ttl {ttl} ms");
}

#[tokio::test]
async fn two_cold_instances_share_one_fill_through_the_redis_mutex() {
    let (a, b) = two_instances(|_| {}).await;
    let sale = upcoming_sale(&a, 30).await;
    let before = mysql_loads(&a) + mysql_loads(&b);
    let mut tasks = Vec::new();
    for i in 0..1_000 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (http, url) = (app.http.clone(), app.url(&format!("/api/v1/sales/{sale}")));
        tasks.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    one_fill(
        mysql_loads(&a) + mysql_loads(&b) - before,
        "across two instances",
    );
}

#[tokio::test]
async fn a_lost_bloom_filter_does_not_hide_existing_sales() {
    let app = spawn_app().await;
    let sale = upcoming_sale(&app, 30).await;
    let _: i64 = app
        .redis()
        .get()
        .del(app.keys().sale_bloom())
        .await
        .unwrap();
    app.services.sale_pages.forget_locally(sale).await;
    let _: i64 = app
        .redis()
        .get()
        .del(app.keys().sale_detail(sale))
        .await
        .unwrap();
    let (status, body) = page(&app, sale).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = page(&app, 987_654).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_level_counts_its_hits_and_misses() {
    let app = spawn_app().await;
    let sale = upcoming_sale(&app, 30).await;
    // Cold everywhere: whatever creation left in Redis goes.
    let _: () = app
        .redis()
        .get()
        .del(app.keys().sale_detail(sale))
        .await
        .unwrap();
    let m = &app.services.metrics;
    let count = |v: &prometheus::IntCounterVec, level: &str| v.with_label_values(&[level]).get();
    let before = [
        count(&m.cache.misses, "page"),
        count(&m.cache.misses, "local"),
        count(&m.cache.misses, "redis"),
        count(&m.cache.hits, "mysql"),
        count(&m.cache.hits, "page"),
    ];
    assert_eq!(page(&app, sale).await.0, StatusCode::OK);
    assert_eq!(page(&app, sale).await.0, StatusCode::OK);
    let after = [
        count(&m.cache.misses, "page"),
        count(&m.cache.misses, "local"),
        count(&m.cache.misses, "redis"),
        count(&m.cache.hits, "mysql"),
        count(&m.cache.hits, "page"),
    ];
    let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    // The first request missed every level down to MySQL; the second was a page hit.
    assert_eq!(
        delta,
        [1, 1, 1, 1, 1],
        "page, local, redis misses; mysql and page hits"
    );
}
