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
    auth::TRUSTED_USER_HEADER,
    domain::{FieldError, UserId},
    state::AppState,
};

/// A JSON body; type errors name the field by its JSON path (`items[0].stock`).
pub struct ApiJson<T>(pub T);

/// Parses JSON, naming the offending field on failure.
///
/// # Errors
/// Malformed JSON (`invalid_json`) or a field of the wrong shape (`invalid_field`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::MalformedJson(inner.to_string());
        }
        let path = e.path().to_string();
        let message = inner.to_string();
        // serde reports a missing field at its parent; name the field itself.
        let field = match message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            Some(missing) if path == "." => missing.to_string(),
            Some(missing) => format!("{path}.{missing}"),
            None => path,
        };
        let detail = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        ApiError::Invalid(FieldError::new(field, detail))
    })
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

/// Path parameters; a malformed one is a 422 naming it.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::Invalid(FieldError::new("path", e.body_text())))
    }
}

/// Query parameters; a malformed one is a 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::Invalid(FieldError::new("query", e.body_text())))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Proof that the caller holds the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .auth
            .check_admin(header(&parts.headers, "authorization"))
            .map(|()| Admin)
            .map_err(ApiError::Unauthorized)
    }
}

/// The verified buyer of a request.
pub struct Buyer(pub UserId);

impl FromRequestParts<AppState> for Buyer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .auth
            .buyer(
                header(&parts.headers, "authorization"),
                header(&parts.headers, TRUSTED_USER_HEADER),
            )
            .map(Buyer)
            .map_err(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sale::CreateSaleRequest;

    fn field_of(json: &str) -> String {
        match parse_json::<CreateSaleRequest>(json.as_bytes()) {
            Err(ApiError::Invalid(f)) => f.field,
            other => panic!("expected a field error, got {:?}", other.err()),
        }
    }

    #[test]
    fn a_wrongly_typed_nested_field_is_named_by_its_path() {
        let json = r#"{"name":"n","starts_at":"a","ends_at":"b","items":[{"sku":"s","title":"t","price_cents":1,"stock":"many","per_user_limit":1}]}"#;
        assert_eq!(field_of(json), "items[0].stock");
    }

    #[test]
    fn a_missing_field_is_named_itself() {
        assert_eq!(
            field_of(r#"{"starts_at":"a","ends_at":"b","items":[]}"#),
            "name"
        );
        let json = r#"{"name":"n","starts_at":"a","ends_at":"b","items":[{"sku":"s","title":"t","price_cents":1,"per_user_limit":1}]}"#;
        assert_eq!(field_of(json), "items[0].stock");
    }

    #[test]
    fn broken_json_is_its_own_error() {
        assert!(matches!(
            parse_json::<CreateSaleRequest>(b"{\"name\":"),
            Err(ApiError::MalformedJson(_))
        ));
    }
}
