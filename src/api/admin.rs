//! `/admin/v1`: operators create, inspect, change and warm sales. Every route requires the
//! admin bearer token. Handlers convert input into domain types and delegate to `SaleAdmin`.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{
    error::{ApiError, ApiResult},
    extract::{Admin, ApiJson, ApiPath, ApiQuery},
};
use crate::{
    domain::{
        FieldError, NewSale, SalePatch,
        sale::{CreateSaleRequest, PatchSaleRequest},
    },
    state::AppState,
};

/// Largest page of the sales list.
const MAX_PAGE: u32 = 100;

/// Admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/sales", post(create_sale).get(list_sales))
        .route("/admin/v1/sales/{id}", get(get_sale).patch(patch_sale))
        .route("/admin/v1/sales/{id}/prewarm", post(prewarm_sale))
        .route("/admin/v1/sales/{id}/reconcile", post(reconcile_sale))
        .route("/admin/v1/sales/{id}/reconciliation", get(reconciliation))
}

async fn create_sale(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateSaleRequest>,
) -> ApiResult<impl IntoResponse> {
    let sale = NewSale::parse(body, Utc::now())?;
    let (view, prewarm_error) = state.admin.create(sale).await?;
    let location = format!("/admin/v1/sales/{}", view.sale.id);
    let mut body = serde_json::to_value(&view).map_err(anyhow::Error::from)?;
    if let Some(e) = prewarm_error {
        body["prewarm_error"] = json!(e);
    }
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    ))
}

#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<u32>,
    offset: Option<u64>,
}

async fn list_sales(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<impl IntoResponse> {
    let limit = page.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(FieldError::new("limit", format!("must be between 1 and {MAX_PAGE}")).into());
    }
    let offset = page.offset.unwrap_or(0);
    let (sales, total) = state.admin.list(limit, offset).await?;
    Ok(Json(json!({
        "sales": sales,
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}

async fn get_sale(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(state.admin.view(id).await?))
}

async fn patch_sale(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PatchSaleRequest>,
) -> ApiResult<impl IntoResponse> {
    let version = expected_version(&headers, body.version)?;
    let patch = SalePatch::parse(body)?;
    if patch.is_empty() {
        return Err(FieldError::new("body", "the patch changes nothing").into());
    }
    let view = state.admin.patch(id, version, patch).await?;
    Ok(Json(view))
}

/// The version a PATCH is based on: `If-Match` (an ETag-style `"3"` or `3`) or the body's
/// `version`; both given must agree.
fn expected_version(headers: &HeaderMap, body: Option<i64>) -> ApiResult<u32> {
    let header = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => {
            let raw = v.to_str().unwrap_or("").trim();
            let raw = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
            Some(raw.parse::<u32>().map_err(|_| {
                FieldError::new("If-Match", format!("'{raw}' is not a sale version"))
            })?)
        }
    };
    let body = body
        .map(|v| {
            u32::try_from(v).map_err(|_| FieldError::new("version", "must be a positive number"))
        })
        .transpose()?;
    match (header, body) {
        (Some(h), Some(b)) if h != b => {
            Err(FieldError::new("version", "If-Match and version disagree").into())
        }
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(ApiError::PreconditionRequired(
            "send the version you read, as If-Match or in the body's version",
        )),
    }
}

#[derive(Debug, Deserialize)]
struct PrewarmQuery {
    force: Option<bool>,
}

async fn prewarm_sale(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(q): ApiQuery<PrewarmQuery>,
) -> ApiResult<impl IntoResponse> {
    let report = state.admin.prewarm(id, q.force.unwrap_or(false)).await?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize)]
struct ReconcileQuery {
    repair: Option<bool>,
}

async fn reconcile_sale(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(q): ApiQuery<ReconcileQuery>,
) -> ApiResult<impl IntoResponse> {
    let report = state
        .reconciler
        .run_once(id, q.repair.unwrap_or(false))
        .await?;
    Ok(Json(report))
}

/// Reports kept in the history answer.
const HISTORY: u32 = 20;

async fn reconciliation(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<impl IntoResponse> {
    if crate::store::sales::get_sale(&state.db, id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("sale"));
    }
    let latest = crate::store::reports::latest_body(&state.db, id)
        .await?
        .map(|b| serde_json::from_str::<serde_json::Value>(&b))
        .transpose()
        .map_err(anyhow::Error::from)?;
    let history = crate::store::reports::history(&state.db, id, HISTORY).await?;
    Ok(Json(json!({ "latest": latest, "history": history })))
}
