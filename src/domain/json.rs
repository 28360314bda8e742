//! JSON bodies into typed values, with errors that name the offending field by its JSON path
//! (`items[0].stock`). No HTTP here: the buy service and the extractors both use it, and
//! `api::error` maps [`JsonError`] to a 422.

use serde::de::DeserializeOwned;

use super::FieldError;

/// Why a body did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all (syntax error, truncated body).
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    /// JSON, but a field has the wrong shape or is missing.
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// Parses JSON, naming the offending field on failure.
///
/// # Errors
/// Malformed JSON, or a field of the wrong shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return JsonError::Malformed(inner.to_string());
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
        JsonError::Field(FieldError::new(field, detail))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sale::CreateSaleRequest;

    fn field_of(json: &str) -> String {
        match parse::<CreateSaleRequest>(json.as_bytes()) {
            Err(JsonError::Field(f)) => f.field,
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
            parse::<CreateSaleRequest>(b"{\"name\":"),
            Err(JsonError::Malformed(_))
        ));
    }
}
