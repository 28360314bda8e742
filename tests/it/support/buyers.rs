//! Buyers: a buy as a user, and a row of users who each reserve one unit.

use reqwest::StatusCode;
use seckill::buy::identify::mint_token;
use serde_json::{Value, json};

use super::{JWT_SECRET, TestApp};

impl TestApp {
    /// A buy as `user`; returns status, headers and body.
    pub async fn buy(
        &self,
        sale: u64,
        item: u64,
        user: &str,
        quantity: u32,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let token = mint_token(&JWT_SECRET, user, 600).unwrap();
        let mut req = self
            .http
            .post(self.url(&format!("/api/v1/sales/{sale}/items/{item}/orders")))
            .bearer_auth(token)
            .json(&json!({ "quantity": quantity }));
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// Order id by user, for `n` users `prefix0..` who each reserve one unit; asserts all 202.
pub async fn reserve_each(
    app: &TestApp,
    sale: u64,
    item: u64,
    prefix: &str,
    n: usize,
) -> Vec<String> {
    let buys = (0..n).map(|u| async move {
        let (s, body) = app.buy(sale, item, &format!("{prefix}{u}"), 1, None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        body["order_id"].as_str().unwrap().to_string()
    });
    futures::future::join_all(buys).await
}
