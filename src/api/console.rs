//! `GET /console`: the operator console; `GET /docs`: the API reference, rendered from the admin
//! listener's `/openapi.json` by a script of our own. Files compiled into the binary (no CDN,
//! no build step), served on the admin listener with headers that keep them from being framed
//! or from loading anything but themselves.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::api::state::AppState;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");
const DOCS: &str = include_str!("../../console/docs.html");
const DOCS_SCRIPT: &str = include_str!("../../console/docs.js");

/// Content security policy of every console and docs file: their own scripts, styles and API
/// only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The console's and the docs page's routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(console))
        .routes(routes!(console_script))
        .routes(routes!(console_style))
        .routes(routes!(docs))
        .routes(routes!(docs_script))
}

#[utoipa::path(get, path = "/console", tag = "admin", description = "The operator console.",
    responses((status = 200, description = "the console", content_type = "text/html", body = String)))]
async fn console() -> Response {
    asset(INDEX, "text/html; charset=utf-8", CSP)
}

#[utoipa::path(get, path = "/console/console.js", tag = "admin",
    responses((status = 200, description = "the console's script", content_type = "text/javascript", body = String)))]
async fn console_script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8", CSP)
}

#[utoipa::path(get, path = "/console/console.css", tag = "admin",
    responses((status = 200, description = "the console's styles", content_type = "text/css", body = String)))]
async fn console_style() -> Response {
    asset(STYLE, "text/css; charset=utf-8", CSP)
}

#[utoipa::path(get, path = "/docs", tag = "admin", description = "The API reference: this listener's document, rendered.",
    responses((status = 200, description = "the API reference", content_type = "text/html", body = String)))]
async fn docs() -> Response {
    asset(DOCS, "text/html; charset=utf-8", CSP)
}

#[utoipa::path(get, path = "/docs/docs.js", tag = "admin",
    responses((status = 200, description = "the API reference's script", content_type = "text/javascript", body = String)))]
async fn docs_script() -> Response {
    asset(DOCS_SCRIPT, "text/javascript; charset=utf-8", CSP)
}

fn asset(body: &'static str, content_type: &'static str, csp: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
