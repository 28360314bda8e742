//! The admin API as the loadtest calls it: create the sale, read its view, take a
//! reconciliation report. Each call carries the admin token.

use anyhow::Context;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

/// The admin listener of one service.
#[derive(Clone, Copy)]
pub(crate) struct Admin<'a> {
    http: &'a reqwest::Client,
    url: &'a str,
    token: &'a str,
}

impl<'a> Admin<'a> {
    /// The admin API at `url` (no trailing slash), called with `token`.
    pub(crate) fn new(http: &'a reqwest::Client, url: &'a str, token: &'a str) -> Self {
        Self { http, url, token }
    }

    /// Creates a sale from `body` and returns the service's view of it, which must say it is
    /// warmed.
    ///
    /// # Errors
    /// The service could not be reached, or refused the sale, or did not warm it.
    pub(crate) async fn create_sale(&self, body: &Value) -> anyhow::Result<Value> {
        let sale = self.create(body).await?;
        anyhow::ensure!(
            sale["status"] == "warmed",
            "the sale was not warmed: {sale}"
        );
        Ok(sale)
    }

    /// Creates a sale from `body` and returns the service's view of it, whatever its status
    /// (a sale that starts later may be warmed later).
    ///
    /// # Errors
    /// The service could not be reached, or refused the sale.
    pub(crate) async fn create(&self, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .request(Method::POST, "/admin/v1/sales")
            .json(body)
            .send()
            .await
            .context("creating the sale")?;
        let status = resp.status();
        let sale: Value = resp.json().await?;
        anyhow::ensure!(
            status.as_u16() == 201,
            "creating the sale answered {status}: {sale}"
        );
        Ok(sale)
    }

    /// The sale's view: its items with their stock, reservations and orders by state.
    ///
    /// # Errors
    /// The service could not be reached or did not answer 2xx.
    pub(crate) async fn sale(&self, sale: u64) -> anyhow::Result<Value> {
        self.fetch(Method::GET, &format!("/admin/v1/sales/{sale}"))
            .await
    }

    /// A fresh reconciliation report of the sale.
    ///
    /// # Errors
    /// The service could not be reached or did not answer 2xx.
    pub(crate) async fn reconcile(&self, sale: u64) -> anyhow::Result<Value> {
        self.fetch(Method::POST, &format!("/admin/v1/sales/{sale}/reconcile"))
            .await
    }

    async fn fetch(&self, method: Method, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .request(method, path)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(self.token)
    }
}
