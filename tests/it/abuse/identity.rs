//! Who the buyer is must not be ambiguous: a believed header sent twice is refused, and a token
//! that claims to be issued in the future cannot stretch its lifetime.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{JWT_SECRET, gateway_app, send, spawn_with, test_settings};

#[tokio::test]
async fn behind_a_gateway_a_repeated_user_or_forwarded_header_is_refused() {
    let app = gateway_app("127.0.0.1").await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let buy = |headers: &[(&str, &str)]| {
        let mut req = app.buy_request(sale, item);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    for (headers, named) in [
        (
            vec![("x-user-id", "mallory"), ("x-user-id", "alice")],
            "x-user-id",
        ),
        (
            vec![
                ("x-user-id", "bob"),
                ("x-forwarded-for", "198.51.100.1"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
            "x-forwarded-for",
        ),
    ] {
        let r = buy(&headers).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{headers:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "ambiguous_header", "{body}");
        assert!(body["detail"].as_str().unwrap().contains(named), "{body}");
    }
    // The order routes read the same headers the same way.
    let r = send(
        app.http
            .get(app.url("/api/v1/orders"))
            .header("x-user-id", "mallory")
            .header("x-user-id", "alice"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Once each, the gateway's word stands.
    let r = buy(&[("x-user-id", "carol"), ("x-forwarded-for", "198.51.100.1")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let persisted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(app.db())
        .await
        .unwrap_or(0);
    assert!(persisted <= 1, "nothing but carol's order was written");
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let app = spawn_with(test_settings("embedded").await).await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({"sub": "time-traveller", "iat": now + 86_400 * 30, "exp": now + 86_400 * 30 + 600});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let r = send(
        app.http
            .post(app.url(&format!("/api/v1/sales/{sale}/items/{item}/orders")))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("future"),
        "{body}"
    );
}
