//! Requests a test sends an app: a GET on either listener, a call of the admin API, and the
//! status and JSON body of an answer.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use super::{ADMIN_TOKEN, TestApp};

/// Sends `req`; the connection itself must not fail.
pub async fn send(req: RequestBuilder) -> Response {
    req.send().await.expect("request sent")
}

/// An answer's status and JSON body (`null` when it has none).
pub async fn answer(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

impl TestApp {
    /// A GET of `path` on the buyers' listener, without a token.
    pub async fn get(&self, path: &str) -> Response {
        send(self.http.get(self.url(path))).await
    }

    /// A GET of `path` on the admin listener, without a token.
    pub async fn get_admin(&self, path: &str) -> Response {
        send(self.http.get(self.admin_url(path))).await
    }

    /// The JSON body of a GET of `url`.
    pub async fn get_json(&self, url: &str) -> Value {
        send(self.http.get(url)).await.json().await.unwrap()
    }

    /// The admin listener's `/metrics`, as text.
    pub async fn metrics_text(&self) -> String {
        self.get_admin("/metrics").await.text().await.unwrap()
    }

    /// A call of the admin API with the admin token; returns status and body.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.admin_url(path))
            .bearer_auth(&*ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(send(req).await).await
    }

    /// A GET of the admin API.
    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        self.admin(Method::GET, path, None).await
    }

    /// A POST to the admin API without a body.
    pub async fn admin_post(&self, path: &str) -> (StatusCode, Value) {
        self.admin(Method::POST, path, None).await
    }

    /// `POST /admin/v1/sales` with `body`.
    pub async fn create_sale(&self, body: Value) -> (StatusCode, Value) {
        self.admin(Method::POST, "/admin/v1/sales", Some(body))
            .await
    }

    /// `POST /admin/v1/sales/{sale}/prewarm`.
    pub async fn prewarm(&self, sale: u64) -> (StatusCode, Value) {
        self.admin_post(&format!("/admin/v1/sales/{sale}/prewarm"))
            .await
    }

    /// `PATCH /admin/v1/sales/{id}` with `body`.
    pub async fn patch_sale(&self, id: u64, body: Value) -> (StatusCode, Value) {
        let path = format!("/admin/v1/sales/{id}");
        self.admin(Method::PATCH, &path, Some(body)).await
    }
}
