//! The OpenAPI documents, generated from the handlers' `#[utoipa::path]` annotations and the
//! types they take and return: whatever is routed is documented, with the statuses and error
//! codes each route can answer. Each listener serves its own at `/openapi.json` (the buyers'
//! listener documents only its routes, the admin listener only its own); `/docs` on the admin
//! listener renders the admin one. `seckill openapi` prints them.

mod fixups;
mod served;
mod window;

use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        self, Components, RefOr, ResponseBuilder,
        content::ContentBuilder,
        header::HeaderBuilder,
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

pub use served::{Listener, admin_router, document, json, public_router, served};

/// Every error answer: `{"code", "detail", "field"?, "order_id"?}`.
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)] // a schema only: the real body is `error::ErrorBody`
pub(crate) struct ErrorDoc {
    /// What went wrong, for programs to switch on.
    code: ErrorCode,
    /// What went wrong, for people.
    detail: String,
    /// The request field at fault (`invalid_field` only), e.g. `items[0].stock`.
    field: Option<String>,
    /// The order an `unconfirmed` answer is about.
    order_id: Option<uuid::Uuid>,
}

/// Every `code` the service answers with.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // a schema only
pub enum ErrorCode {
    InvalidField,
    InvalidJson,
    AmbiguousHeader,
    BodyTooLarge,
    Replayed,
    Unauthorized,
    BadSignature,
    NotFound,
    SoldOut,
    InsufficientStock,
    LimitExceeded,
    VersionConflict,
    SaleStarted,
    StockLocked,
    PrewarmInProgress,
    HasReservations,
    SaleExpired,
    NotStarted,
    Ended,
    VersionRequired,
    RateLimited,
    Unavailable,
    StockUnavailable,
    DatabaseUnavailable,
    Internal,
    Unconfirmed,
    Recovering,
    StockMoving,
    ForeignState,
    ScriptRetired,
    RecoverySuperseded,
    AlreadyPaid,
    OrderClosed,
    NotPersisted,
    CancelUnsupported,
    NotReady,
    AdmissionRequired,
    AdmissionInvalid,
    AdmissionForeign,
    AdmissionExpired,
    QueueNotUsed,
    QueueNotOpen,
    ChallengeRequired,
    ChallengeFailed,
}

/// The documents' frame; paths come from the routers (`api::public_document`,
/// `api::admin_document`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "seckill",
        description = "A flash-sale engine. Each listener serves the document of its own routes: the buyers' listener (SECKILL_HTTP_ADDR, port 8080 by default) buying, orders, sale pages, payment notifications and probes; the admin listener (SECKILL_ADMIN_ADDR, 127.0.0.1:8081 by default) the admin API, its live events, the console, this reference and /metrics. Every error is an `Error` body; every answer carries an `X-Request-Id`.",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(ErrorDoc, ErrorCode)),
    modifiers(&Common),
    tags(
        (name = "buyers", description = "Buying and a buyer's orders (buyer JWT)"),
        (name = "payments", description = "The payment provider's notifications (HMAC-signed)"),
        (name = "public", description = "Sale pages and probes, no credentials"),
        (name = "admin", description = "Operators (admin token), on the admin listener"),
    )
)]
pub(crate) struct ApiDoc;

/// What every operation shares: credentials schemes.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Components::new);
        components.add_security_scheme(
            "adminToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("SECKILL_ADMIN_TOKEN"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "buyerToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256, signed with SECKILL_JWT_SECRET; `sub` is the buyer, `exp` required",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "paymentSignature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Signature",
                "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\" with SECKILL_PAYMENT_SECRET>",
            ))),
        );
    }
}

/// Answers the layers give any route: shed load and request timeouts.
pub(crate) fn add_layer_answers(doc: &mut openapi::OpenApi) {
    let overloaded = ResponseBuilder::new()
        .description(
            "overloaded (too many requests in flight) or timed out; retry shortly (`unavailable`)",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(openapi::Ref::from_schema_name("Error"))))
                .build(),
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .description(Some("seconds to wait"))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            op.responses
                .responses
                .entry("503".into())
                .or_insert_with(|| RefOr::T(overloaded.clone()));
        }
    }
}

fn operations(item: &mut openapi::PathItem) -> impl Iterator<Item = &mut openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// utoipa 5.5 writes Link objects' fields in snake case (`operation_id`); OpenAPI spells them
/// `operationId`, `operationRef`, `requestBody`.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for item in paths.values_mut().filter_map(|i| i.as_object_mut()) {
        for op in item.values_mut() {
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
                continue;
            };
            for response in responses.values_mut() {
                let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else {
                    continue;
                };
                for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
                    for (from, to) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(v) = link.remove(from) {
                            link.insert(to.into(), v);
                        }
                    }
                }
            }
        }
    }
}
