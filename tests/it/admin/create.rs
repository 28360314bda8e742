//! Creating, showing and listing sales; what a bad request or a missing token gets.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{create, keys_of, sale_body, sale_rows};
use crate::support::{TestApp, send, spawn_app};

/// Every Redis key of the sale created from `body` expires within a second of its end plus the
/// grace (read as an absolute time, so a slow machine cannot stretch it).
async fn every_key_expires_with_the_sale(app: &TestApp, body: &Value) {
    let ends_at = chrono::DateTime::parse_from_rfc3339(body["ends_at"].as_str().unwrap()).unwrap();
    let expected_ms = ends_at.timestamp_millis() + app.settings().sale.grace_secs as i64 * 1000;
    let keys = keys_of(app).await;
    assert_eq!(keys.len(), 4, "stock and meta of two items: {keys:?}");
    let mut conn = app.redis().get();
    for key in keys {
        let at: i64 = redis::cmd("PEXPIRETIME")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(at > 0, "{key} must expire, pexpiretime {at}");
        assert!(
            (at - expected_ms).abs() < 1_000,
            "{key}: expires at {at} ms vs expected {expected_ms}"
        );
    }
}

/// GET shows the same numbers as the creation; the list shows the sale.
async fn shown_and_listed(app: &TestApp, id: u64) {
    let (status, shown) = app.admin_get(&format!("/admin/v1/sales/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["items"][0]["redis_remaining"], 100);
    assert_eq!(shown["items"][0]["stock"], 100);
    let (status, list) = app.admin_get("/admin/v1/sales?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["sales"][0]["id"], id);
}

/// Paging: with three sales, two per page, the pages do not overlap.
async fn two_sales_more_page_by_two(app: &TestApp) {
    for _ in 0..2 {
        let (status, _) = create(app, Duration::minutes(5), Duration::hours(1)).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let page = |offset: u32| async move {
        let (status, list) = app
            .admin_get(&format!("/admin/v1/sales?limit=2&offset={offset}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["total"], 3);
        list["sales"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let (first, second) = (page(0).await, page(2).await);
    assert_eq!((first.len(), second.len()), (2, 1));
    assert!(
        first.iter().all(|id| !second.contains(id)),
        "pages do not overlap"
    );
}

#[tokio::test]
async fn creating_a_sale_writes_mysql_and_redis_with_ttls_aligned_to_its_end() {
    let app = spawn_app().await;
    let body = sale_body(Duration::minutes(5), Duration::hours(1));
    let (status, sale) = app.create_sale(body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["status"], "warmed");
    assert_eq!(sale["phase"], "upcoming");
    assert_eq!(
        sale["script_version"],
        seckill::domain::script_version::CURRENT,
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

    every_key_expires_with_the_sale(&app, &body).await;
    shown_and_listed(&app, id).await;
    two_sales_more_page_by_two(&app).await;
}

type Mutation = Box<dyn Fn(&mut Value)>;

/// Each validation rule broken once: the field it names, and how a good body breaks it.
fn broken_rules(now: chrono::DateTime<Utc>) -> Vec<(&'static str, Mutation)> {
    vec![
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
            "admission.admit_per_sec",
            Box::new(|b| b["admission"] = json!({"mode": "queue", "admit_per_sec": 0})),
        ),
        (
            "admission.queue_opens_at",
            Box::new(move |b| {
                let late = b["starts_at"]
                    .as_str()
                    .unwrap()
                    .parse::<chrono::DateTime<Utc>>();
                let late = late.unwrap() + Duration::seconds(1);
                b["admission"] = json!({"mode": "queue", "queue_opens_at": late.to_rfc3339()});
            }),
        ),
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
    ]
}

#[tokio::test]
async fn every_validation_rule_answers_422_naming_its_field_and_writes_nothing() {
    let app = spawn_app().await;
    let now = Utc::now();
    let good = sale_body(Duration::minutes(5), Duration::hours(1));
    let cases = broken_rules(now);
    for (field, mutate) in cases {
        let mut body = good.clone();
        mutate(&mut body);
        let (status, err) = app.create_sale(body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {err}");
        assert_eq!(err["code"], "invalid_field", "{err}");
        assert_eq!(err["field"], field, "{err}");
        assert!(err["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // Broken JSON is a 422 too.
    let r = send(
        app.http
            .post(app.admin_url("/admin/v1/sales"))
            .bearer_auth(&*crate::support::ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_json");

    assert_eq!(sale_rows(&app).await, 0, "no sale row written");
    assert!(keys_of(&app).await.is_empty(), "no Redis key written");
}

#[tokio::test]
async fn missing_or_wrong_admin_tokens_get_401_and_write_nothing() {
    let app = spawn_app().await;
    let body = sale_body(Duration::minutes(5), Duration::hours(1));
    let r = send(app.http.post(app.admin_url("/admin/v1/sales")).json(&body)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
    let r = send(
        app.http
            .post(app.admin_url("/admin/v1/sales"))
            .bearer_auth("test-admin-tokeN")
            .json(&body),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app.get_admin("/admin/v1/sales").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sale_rows(&app).await, 0);
}

#[tokio::test]
async fn unknown_sales_and_bad_paths_are_json_errors() {
    let app = spawn_app().await;
    let (status, err) = app.admin_get("/admin/v1/sales/424242").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["code"], "not_found");
    let (status, err) = app.admin_get("/admin/v1/sales/abc").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "path");
    let (status, err) = app.admin_get("/admin/v1/sales?limit=0").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "limit");
}
