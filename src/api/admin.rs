//! `/admin/v1`: operators create, inspect, change and warm sales. Every route requires the
//! admin bearer token. Handlers convert input into domain types and delegate to `SaleAdmin`.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::{ApiError, ApiResult},
    extract::{Admin, ApiJson, ApiPath, ApiQuery},
};
use crate::{
    api::state::AppState,
    domain::{
        FieldError, NewSale, SalePatch,
        sale::{CreateSaleRequest, PatchSaleRequest},
    },
    reconcile::SaleReport,
    sales::{PrewarmReport, SaleListed, view::SaleView},
    stores::mysql::reports::ReportSummary,
};

/// Largest page of the sales list.
const MAX_PAGE: u32 = 100;

/// Admin routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_sale, list_sales))
        .routes(routes!(get_sale, patch_sale))
        .routes(routes!(prewarm_sale))
        .routes(routes!(reconcile_sale))
        .routes(routes!(reconciliation))
}

/// A created sale: the sale as `GET` shows it, and why warming it failed, if it did (the sale
/// stands; the scheduler or a `prewarm` call warms it later).
#[derive(Serialize, ToSchema)]
struct CreatedSale {
    #[serde(flatten)]
    sale: SaleView,
    /// Why the immediate prewarm failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    prewarm_error: Option<String>,
}

/// Largest id a client can name (ids are assigned from 1 upwards; this bound keeps them exact
/// in every JSON implementation).
pub(crate) const MAX_ID: u64 = 9_007_199_254_740_991;

#[utoipa::path(
    post,
    path = "/admin/v1/sales",
    tag = "admin",
    description = "Creates a sale with its items; a sale starting within SECKILL_SALE_PREWARM_LEAD_SECS is warmed into Redis at once.",
    request_body = CreateSaleRequest,
    responses(
        (status = 201, description = "created; buyers buy its items at `POST /api/v1/sales/{id}/items/{item_id}/orders` and see its page at `GET /api/v1/sales/{id}`, on the buyers' listener", body = CreatedSale,
            headers(("Location" = String, description = "the sale's URL")),
            links(
                ("GetSale" = (operation_id = "get_sale", parameters(("id" = "$response.body#/id")))),
                ("Prewarm" = (operation_id = "prewarm_sale", parameters(("id" = "$response.body#/id")))),
                ("Reconcile" = (operation_id = "reconcile_sale", parameters(("id" = "$response.body#/id")))),
                ("Reconciliation" = (operation_id = "reconciliation", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 401, description = "missing or wrong admin token (`unauthorized`)", body = super::doc::ErrorDoc),
        (status = 409, description = "the sale would be warmed at once, and its ids meet another sale's state in Redis (`foreign_state`: another database shares this Redis and key prefix); nothing is written", body = super::doc::ErrorDoc),
        (status = 422, description = "a field is invalid (`invalid_field` names it) or the body is not JSON (`invalid_json`)", body = super::doc::ErrorDoc),
        (status = 500, description = "`internal`", body = super::doc::ErrorDoc),
    ),
    security(("adminToken" = []))
)]
async fn create_sale(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateSaleRequest>,
) -> ApiResult<impl IntoResponse> {
    let sale = NewSale::parse(body, Utc::now())?;
    let (view, prewarm_error) = state.admin.create(sale).await?;
    let location = format!("/admin/v1/sales/{}", view.sale.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(CreatedSale {
            sale: view,
            prewarm_error,
        }),
    ))
}

/// A page of the sales list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// Sales per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
    /// Sales to skip.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_i64, default = 0)]
    offset: Option<u64>,
}

/// A page of sales, newest first.
#[derive(Serialize, ToSchema)]
struct SalesPage {
    sales: Vec<SaleListed>,
    /// Sales in all.
    total: u64,
    limit: u32,
    offset: u64,
}

#[utoipa::path(
    get,
    path = "/admin/v1/sales",
    tag = "admin",
    params(Page),
    responses(
        (status = 200, description = "a page of sales, newest first", body = SalesPage),
        (status = 401, description = "`unauthorized`", body = super::doc::ErrorDoc),
        (status = 422, description = "a bad limit or offset (`invalid_field` names it)", body = super::doc::ErrorDoc),
    ),
    security(("adminToken" = []))
)]
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
    if offset > MAX_ID {
        return Err(FieldError::new("offset", format!("must be at most {MAX_ID}")).into());
    }
    let (sales, total) = state.admin.list(limit, offset).await?;
    Ok(Json(SalesPage {
        sales,
        total,
        limit,
        offset,
    }))
}

#[utoipa::path(
    get,
    path = "/admin/v1/sales/{id}",
    tag = "admin",
    params(("id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64)),
    responses(
        (status = 200, description = "the sale with each item's Redis and MySQL figures", body = SaleView),
        (status = 401, description = "`unauthorized`", body = super::doc::ErrorDoc),
        (status = 404, description = "no such sale (`not_found`)", body = super::doc::ErrorDoc),
        (status = 422, description = "the id is not a number (`invalid_field`)", body = super::doc::ErrorDoc),
    ),
    security(("adminToken" = []))
)]
async fn get_sale(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(state.admin.view(id).await?))
}

#[utoipa::path(
    patch,
    path = "/admin/v1/sales/{id}",
    tag = "admin",
    description = "Changes a sale before it starts. The version read (`version` of `GET /admin/v1/sales/{id}`) must be sent, as `version` in the body or as `If-Match`; one of the two is required (the body's `version` is marked required, as JSON Schema cannot say \"this field or that header\"), and when both are sent they must agree.",
    params(
        ("id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(W/)?"?[0-9]{1,9}"?$"#,
            description = "the version read, as an entity tag: `\"3\"` (`3` and `W/\"3\"` are read too); instead of the body's `version`, or equal to it"),
    ),
    request_body = PatchSaleRequest,
    responses(
        (status = 200, description = "the changed sale", body = SaleView),
        (status = 401, description = "`unauthorized`", body = super::doc::ErrorDoc),
        (status = 404, description = "no such sale (`not_found`)", body = super::doc::ErrorDoc),
        (status = 409, description = "stale version, or If-Match and the body's version disagree (`version_conflict`), started (`sale_started`), stock locked by reservations (`stock_locked`), a prewarm running (`prewarm_in_progress`)", body = super::doc::ErrorDoc),
        (status = 422, description = "an invalid field, an item that is not the sale's or one named twice (`invalid_field` names it), or a body that is not JSON (`invalid_json`)", body = super::doc::ErrorDoc),
        (status = 428, description = "neither If-Match nor the body's version sent (`version_required`)", body = super::doc::ErrorDoc),
    ),
    security(("adminToken" = []))
)]
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
        (Some(h), Some(b)) if h != b => Err(ApiError::conflict(
            "version_conflict",
            format!("If-Match names version {h} and the body version {b}"),
        )),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(ApiError::PreconditionRequired(
            "send the version you read, as If-Match or in the body's version",
        )),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PrewarmQuery {
    /// Warm again even if warmed (refused once it has reservations).
    force: Option<bool>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/sales/{id}/prewarm",
    tag = "admin",
    description = "Copies the sale into Redis now; a started sale whose Redis state was lost is rebuilt from MySQL instead.",
    params(("id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64), PrewarmQuery),
    responses(
        (status = 200, description = "what each item got", body = PrewarmReport),
        (status = 401, description = "`unauthorized`", body = super::doc::ErrorDoc),
        (status = 404, description = "`not_found`", body = super::doc::ErrorDoc),
        (status = 409, description = "ended (`sale_expired`), already selling (`has_reservations`), another sale's state in Redis (`foreign_state`), a prewarm running (`prewarm_in_progress`), a rebuild superseded (`recovery_superseded`), a sale pinned to a script version this release no longer runs (`script_retired`)", body = super::doc::ErrorDoc),
        (status = 422, description = "`invalid_field`", body = super::doc::ErrorDoc),
    ),
    security(("adminToken" = []))
)]
async fn prewarm_sale(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(q): ApiQuery<PrewarmQuery>,
) -> ApiResult<impl IntoResponse> {
    let report = state.admin.prewarm(id, q.force.unwrap_or(false)).await?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReconcileQuery {
    /// Re-send to Kafka the reservations MySQL lacks, where that is safe.
    repair: Option<bool>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/sales/{id}/reconcile",
    tag = "admin",
    params(("id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64), ReconcileQuery),
    responses(
        (status = 200, description = "the report (also stored)", body = SaleReport),
        (status = 401, description = "`unauthorized`", body = super::doc::ErrorDoc),
        (status = 404, description = "`not_found`", body = super::doc::ErrorDoc),
        (status = 422, description = "`invalid_field`", body = super::doc::ErrorDoc),
    ),
    security(("adminToken" = []))
)]
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

/// The latest report and the newest summaries.
#[derive(Serialize, ToSchema)]
struct ReconciliationHistory {
    /// The newest report (`null` before the first run).
    latest: Option<SaleReport>,
    /// The newest summaries, newest first.
    history: Vec<ReportSummary>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/sales/{id}/reconciliation",
    tag = "admin",
    params(("id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64)),
    responses(
        (status = 200, description = "the latest report and the 20 newest summaries", body = ReconciliationHistory),
        (status = 401, description = "`unauthorized`", body = super::doc::ErrorDoc),
        (status = 404, description = "`not_found`", body = super::doc::ErrorDoc),
        (status = 422, description = "`invalid_field`", body = super::doc::ErrorDoc),
    ),
    security(("adminToken" = []))
)]
async fn reconciliation(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<impl IntoResponse> {
    if crate::stores::mysql::sales::get_sale(&state.db, id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("sale"));
    }
    let latest = crate::stores::mysql::reports::latest_body(&state.db, id)
        .await?
        .map(|b| serde_json::from_str::<SaleReport>(&b))
        .transpose()
        .map_err(anyhow::Error::from)?;
    let history = crate::stores::mysql::reports::history(&state.db, id, HISTORY).await?;
    Ok(Json(ReconciliationHistory { latest, history }))
}
