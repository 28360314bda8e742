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

/// Parses JSON, naming the offending field on failure. A whole number written with a zero
/// fraction (`3.0`) is the integer `3`, as JSON Schema's `integer` has it.
///
/// # Errors
/// Malformed JSON, or a field of the wrong shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    match deserialize(bytes) {
        Err(e)
            if e.inner()
                .to_string()
                .starts_with("invalid type: floating point") =>
        {
            deserialize(&without_zero_fractions(bytes)).map_err(field_error)
        }
        parsed => parsed.map_err(field_error),
    }
}

fn deserialize<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes))
}

/// The JSON text with every zero fraction of a number dropped (`3.0` -> `3`, `1.50` stays),
/// strings untouched. Done on the text, since a float can hold no integer beyond 2^53 and the
/// parser need not round `2123822691053023.0` to a whole number.
fn without_zero_fractions(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            let escaped = b == b'\\' && i + 1 < bytes.len();
            out.extend_from_slice(&bytes[i..if escaped { i + 2 } else { i + 1 }]);
            in_string = b != b'"' || escaped;
            i += if escaped { 2 } else { 1 };
            continue;
        }
        if b == b'.' && out.last().is_some_and(u8::is_ascii_digit) {
            let zeros = bytes[i + 1..].iter().take_while(|c| **c == b'0').count();
            let next = bytes.get(i + 1 + zeros);
            if zeros > 0 && !next.is_some_and(|c| c.is_ascii_digit() || matches!(c, b'e' | b'E')) {
                i += 1 + zeros;
                continue;
            }
        }
        in_string = b == b'"';
        out.push(b);
        i += 1;
    }
    out
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
        let json = r#"{"name":"n 1.0 \" 2.0","starts_at":"a","ends_at":"b","items":[{"sku":"s","title":"t","price_cents":2123822691053023.0,"stock":66651154336.00,"per_user_limit":-2.0}]}"#;
        let req = parse::<CreateSaleRequest>(json.as_bytes()).unwrap();
        assert_eq!(req.items[0].price_cents, 2_123_822_691_053_023);
        assert_eq!(req.items[0].stock, 66_651_154_336);
        assert_eq!(req.items[0].per_user_limit, -2);
        assert_eq!(req.name, "n 1.0 \" 2.0", "strings are left alone");
        for fraction in ["2.5", "2.05", "2.0e1"] {
            let json = json.replace("66651154336.00", fraction);
            assert_eq!(field_of(&json), "items[0].stock", "{fraction}");
        }
    }

    #[test]
    fn broken_json_is_its_own_error() {
        assert!(matches!(
            parse::<CreateSaleRequest>(b"{\"name\":"),
            Err(JsonError::Malformed(_))
        ));
    }
}
