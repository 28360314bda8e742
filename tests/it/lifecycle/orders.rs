//! The buyer's view: their own orders, page by page.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{as_buyer, lifecycle_app, sale_with_window, unique, wait_rows};

/// The order ids of a page of `GET /api/v1/orders`, in its order.
fn order_ids_of(page: &Value) -> Vec<&str> {
    let orders = page["orders"].as_array().unwrap();
    orders
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_buyer_lists_only_their_own_orders_page_by_page() {
    let app = lifecycle_app(None).await;
    let (sale, item) = sale_with_window(&app, 10, 3, 900).await;
    let alice = format!("alice-{}", unique());
    for _ in 0..3 {
        let (s, _) = app.buy(sale, item, &alice, 1, None).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    let (s, _) = app.buy(sale, item, "bob", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    wait_rows(&app, item, 4).await;

    let (s, page) = as_buyer(&app, Method::GET, &alice, "/api/v1/orders?limit=2").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let first = order_ids_of(&page);
    assert_eq!(first.len(), 2);
    assert!(first[0] > first[1], "newest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = as_buyer(
        &app,
        Method::GET,
        &alice,
        &format!("/api/v1/orders?limit=2&cursor={cursor}&sale_id={sale}"),
    )
    .await;
    assert_eq!(rest["orders"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    for o in page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["orders"].as_array().unwrap())
    {
        assert_eq!(o["status"], "pending_payment");
        assert!(o["expires_at"].is_string(), "{o}");
    }
    let (_, bobs) = as_buyer(&app, Method::GET, "bob", "/api/v1/orders").await;
    let bobs = bobs["orders"].as_array().unwrap();
    assert_eq!(bobs.len(), 1, "never another buyer's orders");
    let (_, paid) = as_buyer(&app, Method::GET, &alice, "/api/v1/orders?status=paid").await;
    assert!(paid["orders"].as_array().unwrap().is_empty());
    for bad in [
        "limit=0",
        "limit=101",
        "status=gone",
        "cursor=nope",
        "colour=red",
    ] {
        let (s, body) = as_buyer(&app, Method::GET, &alice, &format!("/api/v1/orders?{bad}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (s, _) = app
        .http
        .get(app.url("/api/v1/orders"))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_order_bought_with_an_idempotency_key_is_found_by_its_id_before_and_after_mysql() {
    let app = crate::support::spawn_with(
        crate::support::test_settings(&crate::support::STACK.kafka_brokers).await,
    )
    .await;
    let (sale, item) = app.create_live_sale(10, 2).await;
    let (status, body) = app.buy(sale, item, "keyed", 1, Some("key-1")).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    let id: uuid::Uuid = body["order_id"].as_str().unwrap().parse().unwrap();
    // On a compact-ledger sale the key derives the id: a UUIDv8.
    assert_eq!(id.get_version_num(), 8);
    let token =
        seckill::buy::identify::mint_token(&crate::support::JWT_SECRET, "keyed", 600).unwrap();
    let get = |user_token: String| {
        app.http
            .get(app.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(user_token)
            .send()
    };
    let r = get(token.clone()).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let status = r.json::<serde_json::Value>().await.unwrap()["status"].clone();
    assert!(
        status == "reserved" || status == "pending_payment",
        "{status}"
    );
    let persisted = crate::support::eventually(std::time::Duration::from_secs(30), || async {
        let r = get(token.clone()).await.ok()?;
        let body: serde_json::Value = r.json().await.ok()?;
        (body["status"] == "pending_payment").then_some(body)
    })
    .await;
    assert_eq!(persisted["order_id"], id.to_string());
    // Another buyer is told it does not exist.
    let other =
        seckill::buy::identify::mint_token(&crate::support::JWT_SECRET, "other", 600).unwrap();
    assert_eq!(
        get(other).await.unwrap().status(),
        reqwest::StatusCode::NOT_FOUND
    );
}
