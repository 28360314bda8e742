//! Buyers: a buyer's token, a buy as a user, rows of users who each reserve one unit (at once, or
//! one after another), and an app behind a gateway that names the buyer in a header.

use reqwest::{RequestBuilder, StatusCode};
use seckill::{buy::identify::mint_token, config::UserIdentity};
use serde_json::{Value, json};

use super::{JWT_SECRET, TestApp, answer, send, spawn_app_with};

/// A token for `user`, signed with the test apps' secret, valid ten minutes.
pub fn token(user: &str) -> String {
    mint_token(&JWT_SECRET, user, 600).unwrap()
}

impl TestApp {
    /// The buy URL of an item.
    pub fn buy_url(&self, sale: u64, item: u64) -> String {
        self.url(&format!("/api/v1/sales/{sale}/items/{item}/orders"))
    }

    /// A buy of `item` with nothing else set: no token, no body.
    pub fn buy_request(&self, sale: u64, item: u64) -> RequestBuilder {
        self.http.post(self.buy_url(sale, item))
    }

    /// A buy as `user`; returns status and body.
    pub async fn buy(
        &self,
        sale: u64,
        item: u64,
        user: &str,
        quantity: u32,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .buy_request(sale, item)
            .bearer_auth(token(user))
            .json(&json!({ "quantity": quantity }));
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        answer(send(req).await).await
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

/// Like [`reserve_each`], one buy after another.
pub async fn reserve_in_turn(
    app: &TestApp,
    (sale, item): (u64, u64),
    prefix: &str,
    n: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for u in 0..n {
        let (s, body) = app.buy(sale, item, &format!("{prefix}{u}"), 1, None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        ids.push(body["order_id"].as_str().unwrap().to_string());
    }
    ids
}

/// An app whose buckets give each buyer `per_sec` requests a second, `burst` at once.
pub async fn app_with_user_bucket(per_sec: u64, burst: u64) -> TestApp {
    spawn_app_with(|s| {
        s.limits.per_user_per_sec = per_sec;
        s.limits.per_user_burst = burst;
    })
    .await
}

/// An app that takes the buyer from `X-User-Id`, believed from `trusted_proxies` only.
pub async fn gateway_app(trusted_proxies: &str) -> TestApp {
    spawn_app_with(|s| {
        s.user_identity = UserIdentity::TrustedHeader;
        s.trusted_proxies = trusted_proxies.into();
    })
    .await
}
