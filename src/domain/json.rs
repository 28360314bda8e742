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

/// Parses JSON, naming the offending field on failure. A whole number written with a fraction
/// (`3.0`) is a number like `3`, as JSON Schema's `integer` has it.
///
/// # Errors
/// Malformed JSON, or a field of the wrong shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(de) {
        Ok(value) => Ok(value),
        Err(e)
            if e.inner()
                .to_string()
                .starts_with("invalid type: floating point") =>
        {
            let mut value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| JsonError::Malformed(e.to_string()))?;
            whole_numbers_as_integers(&mut value);
            serde_path_to_error::deserialize(value).map_err(field_error)
        }
        Err(e) => Err(field_error(e)),
    }
}

/// `3.0` as `3`, everywhere in `value` (numbers within what an `i64` or a `u64` holds).
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if f >= 0.0 && f < u64::MAX as f64 {
                    *value = Value::from(f as u64);
                } else if f < 0.0 && f >= i64::MIN as f64 {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// What a deserialisation error says, with the offending field named.
fn field_error(e: serde_path_to_error::Error<serde_json::Error>) -> JsonError {
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
    fn a_whole_number_written_with_a_fraction_is_an_integer_and_a_fraction_is_not() {
        let json = r#"{"name":"n","starts_at":"a","ends_at":"b","items":[{"sku":"s","title":"t","price_cents":1.0,"stock":66651154336.0,"per_user_limit":-2.0}]}"#;
        let req = parse::<CreateSaleRequest>(json.as_bytes()).unwrap();
        assert_eq!(req.items[0].stock, 66_651_154_336);
        assert_eq!(req.items[0].per_user_limit, -2);
        let json = json.replace("66651154336.0", "2.5");
        assert_eq!(field_of(&json), "items[0].stock");
    }

    #[test]
    fn broken_json_is_its_own_error() {
        assert!(matches!(
            parse::<CreateSaleRequest>(b"{\"name\":"),
            Err(JsonError::Malformed(_))
        ));
    }
}
