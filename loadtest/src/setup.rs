//! Before the load: the sale to hit (created now, or the one given), the request every worker
//! sends, and a signed token for each simulated buyer.

use std::{
    net::{SocketAddr, ToSocketAddrs},
    time::Duration,
};

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Method};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    admin::Admin,
    args::{Args, Endpoint, Plan},
    client::RequestTemplate,
    run::{self, Target},
};

/// The sale and item a run targets (none for `--endpoint healthz`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SaleItem {
    /// The sale.
    pub(crate) sale: Option<u64>,
    /// Its item.
    pub(crate) item: Option<u64>,
}

/// The sale of `--create-sale`, created now, or the one `--sale` and `--item` name.
///
/// # Errors
/// The sale could not be created.
pub(crate) async fn sale_item(http: &reqwest::Client, plan: &Plan) -> anyhow::Result<SaleItem> {
    let a = &plan.args;
    if !a.create_sale {
        return Ok(SaleItem {
            sale: a.sale,
            item: a.item,
        });
    }
    let lasts = plan.duration.unwrap_or(Duration::from_secs(600)) + Duration::from_secs(3600);
    let sale = Admin::new(http, &a.admin_url, &a.admin_token)
        .create_sale(&sale_body(a, lasts))
        .await?;
    Ok(SaleItem {
        sale: Some(sale["id"].as_u64().context("sale id")?),
        item: Some(sale["items"][0]["id"].as_u64().context("item id")?),
    })
}

/// A one-item sale of `--stock` that started a second ago and lasts `lasts`.
pub(crate) fn sale_body(a: &Args, lasts: Duration) -> Value {
    let now = chrono::Utc::now();
    let mut body = json!({
        "name": format!("loadtest {}", now.format("%Y-%m-%d %H:%M:%S")),
        "starts_at": (now - chrono::Duration::seconds(1)).to_rfc3339(),
        "ends_at": (now + chrono::Duration::seconds(lasts.as_secs() as i64)).to_rfc3339(),
        "items": [{"sku": "loadtest-item", "title": "Loadtest item", "price_cents": 100,
                   "stock": a.stock, "per_user_limit": a.per_user_limit}],
    });
    if let Some(w) = a.payment_window_secs {
        body["items"][0]["payment_window_secs"] = json!(w);
    }
    if let Some(n) = a.shards {
        body["items"][0]["shards"] = json!(n);
    }
    body
}

/// What every worker sends: where, the request, and the buyers' tokens.
///
/// # Errors
/// The host of `--base-url` does not resolve, or a token cannot be signed.
pub(crate) fn target(a: &Args, ids: SaleItem) -> anyhow::Result<Target> {
    let (addr, host) = resolve(&a.base_url)?;
    let (method, path, body) = request(a.endpoint, ids, a.ticket.as_deref());
    Ok(Target {
        addr,
        template: RequestTemplate {
            method,
            path,
            host,
            body,
        },
        tokens: tokens(a)?,
        run_id: run_id(),
    })
}

/// The method, path and body of the endpoint's request.
fn request(endpoint: Endpoint, ids: SaleItem, ticket: Option<&str>) -> (Method, String, Bytes) {
    let (sale, item) = (ids.sale.unwrap_or(0), ids.item.unwrap_or(0));
    match endpoint {
        Endpoint::Buy => (
            Method::POST,
            format!("/api/v1/sales/{sale}/items/{item}/orders"),
            Bytes::from_static(br#"{"quantity":1}"#),
        ),
        Endpoint::Healthz => (Method::GET, "/healthz".into(), Bytes::new()),
        Endpoint::SalePage => (Method::GET, format!("/api/v1/sales/{sale}"), Bytes::new()),
        Endpoint::QueuePoll => (
            Method::GET,
            format!("/api/v1/sales/{sale}/queue/{}", ticket.unwrap_or_default()),
            Bytes::new(),
        ),
    }
}

/// The address of `--base-url`'s host and its `Host` header.
pub(crate) fn resolve(base_url: &str) -> anyhow::Result<(SocketAddr, HeaderValue)> {
    let host = base_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let with_port = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    Ok((addr, HeaderValue::from_str(host)?))
}

/// One `Authorization` header per user for a buy run (the loadtest acts as the login
/// system); none for the other endpoints.
pub(crate) fn tokens(a: &Args) -> anyhow::Result<Vec<HeaderValue>> {
    if a.endpoint != Endpoint::Buy {
        return Ok(Vec::new());
    }
    (0..a.users)
        .map(|u| {
            let t = mint(&a.jwt_secret, &format!("lt-{u}"))?;
            Ok(HeaderValue::from_str(&format!("Bearer {t}"))?)
        })
        .collect()
}

/// A buyer's token for `user`, valid for a day.
fn mint(secret: &str, user: &str) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        exp: u64,
    }
    let exp = jsonwebtoken::get_current_timestamp() + 24 * 3600;
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &Claims { sub: user, exp },
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// A number unique to this run (time and process), so its idempotency keys are fresh.
pub(crate) fn run_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    run::user_of(nanos ^ (u64::from(std::process::id()) << 40), u64::MAX)
}
