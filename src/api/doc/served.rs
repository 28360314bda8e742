//! Each listener's document: built from its router, rendered as JSON with its sale window dated
//! for the hour, cached for that hour, and served at `/openapi.json`.

use std::{collections::BTreeSet, sync::Mutex};

use axum::{
    body::Bytes,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use utoipa::{
    OpenApi,
    openapi::{self, Server, ServerBuilder},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiDoc, add_layer_answers, camel_case_links, fixups, operations, window};
use crate::api::state::AppState;

/// Which listener a document describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// SECKILL_HTTP_ADDR: buyers, the payment provider, probes.
    Public,
    /// SECKILL_ADMIN_ADDR: operators, the console, the API reference, `/metrics`.
    Admin,
}

impl Listener {
    fn server(self) -> Server {
        let (url, description) = match self {
            Listener::Public => (
                "http://127.0.0.1:8080",
                "the buyers' listener (SECKILL_HTTP_ADDR)",
            ),
            Listener::Admin => (
                "http://127.0.0.1:8081",
                "the admin listener (SECKILL_ADMIN_ADDR)",
            ),
        };
        ServerBuilder::new()
            .url(url)
            .description(Some(description))
            .build()
    }
}

/// One listener's document: the frame, the routes its router serves, the answers of the layers
/// every request passes, and the listener as its server. Tags and credentials no operation of
/// the listener uses are dropped.
pub fn document(routes: openapi::OpenApi, listener: Listener) -> openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(routes);
    doc.servers = Some(vec![listener.server()]);
    add_layer_answers(&mut doc);
    let mut tags = BTreeSet::new();
    let mut schemes = BTreeSet::new();
    for op in doc.paths.paths.values_mut().flat_map(operations) {
        tags.extend(op.tags.iter().flatten().cloned());
        for requirement in op.security.iter().flatten() {
            let value = serde_json::to_value(requirement).unwrap_or_default();
            schemes.extend(
                value
                    .as_object()
                    .into_iter()
                    .flat_map(|o| o.keys().cloned()),
            );
        }
    }
    if let Some(declared) = doc.tags.as_mut() {
        declared.retain(|t| tags.contains(&t.name));
    }
    if let Some(components) = doc.components.as_mut() {
        components
            .security_schemes
            .retain(|name, _| schemes.contains(name));
    }
    doc
}

/// A listener's document as JSON at `now` (its sale windows are dated for the hour).
pub fn json(listener: Listener, now: DateTime<Utc>) -> String {
    let doc = match listener {
        Listener::Public => crate::api::public_document(),
        Listener::Admin => crate::api::admin_document(),
    };
    let mut value = serde_json::to_value(doc).unwrap_or_else(|e| {
        tracing::error!(error.message = %e, "the OpenAPI document does not serialise");
        serde_json::Value::Null
    });
    camel_case_links(&mut value);
    window::date_sale_windows(&mut value, window::hour_of(now));
    fixups::patch_changes_something(&mut value);
    serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into())
}

/// A document as served, and the hour it was built for.
type Built = Option<(DateTime<Utc>, Bytes)>;

/// The documents served, each rebuilt when the hour changes.
static SERVED: Mutex<[Built; 2]> = Mutex::new([None, None]);

/// A listener's document as served at `now` (what `seckill openapi` prints then too).
pub fn served(listener: Listener, now: DateTime<Utc>) -> Bytes {
    let hour = window::hour_of(now);
    let slot = listener as usize;
    let mut cache = SERVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &cache[slot] {
        Some((built, doc)) if *built == hour => doc.clone(),
        _ => {
            let doc = Bytes::from(json(listener, hour));
            cache[slot] = Some((hour, doc.clone()));
            doc
        }
    }
}

/// `/openapi.json` on the buyers' listener.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(public_openapi))
}

/// `/openapi.json` on the admin listener.
pub fn admin_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(admin_openapi))
}

/// `GET /openapi.json` of one listener.
macro_rules! openapi_route {
    ($name:ident, $what:tt, $listener:expr) => {
        #[utoipa::path(
            get,
            path = "/openapi.json",
            operation_id = "openapi",
            tag = "public",
            description = "This listener's API document (generated from the code).",
            responses((status = 200, description = $what, content_type = "application/json", body = Object)),
        )]
        async fn $name() -> Response {
            served_json($listener)
        }
    };
}

openapi_route!(
    public_openapi,
    "the OpenAPI 3.1 document of the buyers' listener",
    Listener::Public
);
openapi_route!(
    admin_openapi,
    "the OpenAPI 3.1 document of the admin listener",
    Listener::Admin
);

fn served_json(listener: Listener) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        served(listener, Utc::now()),
    )
        .into_response()
}
