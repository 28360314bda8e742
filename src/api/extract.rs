//! Extractors whose rejections are [`ApiError`]s, so bad input always gets a JSON body naming
//! the problem instead of axum's plain-text defaults.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{HeaderMap, request::Parts},
};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::{
    api::state::AppState,
    buy::identify::{AuthError, TRUSTED_USER_HEADER, bearer},
    domain::{FieldError, UserId},
};

/// A JSON body; type errors name the field by its JSON path (`items[0].stock`).
pub(crate) struct ApiJson<T>(pub T);

/// Parses JSON, naming the offending field on failure.
///
/// # Errors
/// Malformed JSON (`invalid_json`) or a field of the wrong shape (`invalid_field`).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Ok(crate::domain::json::parse(bytes)?)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::MalformedJson(e.body_text()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// An extractor that reads like axum's `$inner` but answers a malformed value with a 422
/// naming `$field`.
macro_rules! field_extractor {
    ($(#[$doc:meta])* $name:ident, $inner:ident, $field:literal) => {
        $(#[$doc])*
        pub(crate) struct $name<T>(pub T);

        impl<T, S> FromRequestParts<S> for $name<T>
        where
            T: DeserializeOwned + Send,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                $inner::<T>::from_request_parts(parts, state)
                    .await
                    .map(|$inner(v)| $name(v))
                    .map_err(|e| ApiError::Invalid(FieldError::new($field, e.body_text())))
            }
        }
    };
}

field_extractor!(
    /// Path parameters; a malformed one is a 422 naming it.
    ApiPath,
    Path,
    "path"
);
field_extractor!(
    /// Query parameters; a malformed one is a 422 naming it.
    ApiQuery,
    Query,
    "query"
);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The headers that say who a buyer is and where the request came from, each read once.
pub(crate) struct IdentityHeaders<'a> {
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// `X-User-Id` (trusted-header mode).
    pub trusted_user: Option<&'a str>,
    /// `X-Forwarded-For`.
    pub forwarded_for: Option<&'a str>,
}

impl<'a> IdentityHeaders<'a> {
    /// Reads them. Where the service believes a header (`X-User-Id` in trusted-header mode,
    /// `X-Forwarded-For` from trusted proxies), a second line of it is refused rather than
    /// read by its first: a proxy that appends its own line after the client's would
    /// otherwise leave the client's word in charge.
    ///
    /// # Errors
    /// 400 `ambiguous_header` for a believed header sent more than once.
    pub fn read(headers: &'a HeaderMap, state: &AppState) -> Result<Self, ApiError> {
        let once = |name: &'static str, believed: bool| {
            let mut lines = headers.get_all(name).iter();
            let first = lines.next().and_then(|v| v.to_str().ok());
            if believed && lines.next().is_some() {
                return Err(ApiError::AmbiguousHeader(name));
            }
            Ok(first)
        };
        let trusted_mode = state.auth.reads_user_header();
        Ok(Self {
            authorization: header(headers, "authorization"),
            trusted_user: once(TRUSTED_USER_HEADER, trusted_mode)?,
            forwarded_for: once(
                FORWARDED_FOR_HEADER,
                trusted_mode || !state.auth.proxies().is_empty(),
            )?,
        })
    }
}

/// Header in which proxies name the client.
pub(crate) const FORWARDED_FOR_HEADER: &str = "x-forwarded-for";

/// Proof that the caller holds the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        check_admin(
            state.settings.admin_token.expose(),
            header(&parts.headers, "authorization"),
        )
        .map(|()| Admin)
        .map_err(ApiError::Unauthorized)
    }
}

/// Checks an `Authorization` header value against the admin token, in constant time.
///
/// # Errors
/// Missing or wrong token.
fn check_admin(admin_token: &str, authorization: Option<&str>) -> Result<(), AuthError> {
    use subtle::ConstantTimeEq;
    let token = bearer(authorization).ok_or(AuthError::Missing)?;
    let ok: bool = token.as_bytes().ct_eq(admin_token.as_bytes()).into();
    if ok { Ok(()) } else { Err(AuthError::Invalid) }
}

/// The verified buyer of a request.
pub(crate) struct Buyer(pub UserId);

impl FromRequestParts<AppState> for Buyer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let identity = IdentityHeaders::read(&parts.headers, state)?;
        state
            .auth
            .buyer(identity.authorization, identity.trusted_user, peer)
            .map(Buyer)
            .map_err(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_must_match_exactly() {
        let token = "change-me-admin";
        assert!(check_admin(token, Some("Bearer change-me-admin")).is_ok());
        assert_eq!(
            check_admin(token, Some("Bearer change-me-admiN")),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            check_admin(token, Some("change-me-admin")),
            Err(AuthError::Missing)
        );
        assert_eq!(check_admin(token, None), Err(AuthError::Missing));
    }
}
