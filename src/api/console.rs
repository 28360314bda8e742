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
const QUEUE_SCRIPT: &str = include_str!("../../console/queue.js");
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
        .routes(routes!(console_queue_script))
        .routes(routes!(console_style))
        .routes(routes!(docs))
        .routes(routes!(docs_script))
}

/// A `GET` route serving one embedded file, documented as the admin listener's.
macro_rules! asset_route {
    ($name:ident, $path:tt, $what:tt, $media:tt, $body:expr) => {
        #[utoipa::path(get, path = $path, tag = "admin", description = $what,
            responses((status = 200, description = $what, content_type = $media, body = String)))]
        async fn $name() -> Response {
            asset($body, concat!($media, "; charset=utf-8"), CSP)
        }
    };
}

asset_route!(
    console,
    "/console",
    "The operator console.",
    "text/html",
    INDEX
);
asset_route!(
    console_queue_script,
    "/console/queue.js",
    "The console's waiting-room card.",
    "text/javascript",
    QUEUE_SCRIPT
);
asset_route!(
    console_script,
    "/console/console.js",
    "The console's script.",
    "text/javascript",
    SCRIPT
);
asset_route!(
    console_style,
    "/console/console.css",
    "The console's styles.",
    "text/css",
    STYLE
);
asset_route!(
    docs,
    "/docs",
    "The API reference: this listener's document, rendered.",
    "text/html",
    DOCS
);
asset_route!(
    docs_script,
    "/docs/docs.js",
    "The API reference's script.",
    "text/javascript",
    DOCS_SCRIPT
);

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
