//! The buyer's view: their own orders, page by page.

use reqwest::{Method, StatusCode};

use super::{app, as_buyer, sale, wait_rows};
use crate::helpers::unique;

#[tokio::test]
async fn a_buyer_lists_only_their_own_orders_page_by_page() {
    let app = app(None).await;
    let (sale, item) = sale(&app, 10, 3, 900).await;
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
    let first: Vec<&str> = page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
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
