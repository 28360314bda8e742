//! Who is buying, and which retry belongs to which first attempt.

use super::FieldError;

/// Longest user id accepted; ids come from the login system's token `sub` and are opaque.
pub(crate) const MAX_USER_ID_LEN: usize = 128;
/// Longest idempotency key accepted.
pub(crate) const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// A buyer's id: 1–128 bytes, no control characters (they would corrupt logs and the
/// `user \0 key` fields of the idempotency hash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// Validates a raw id.
    ///
    /// # Errors
    /// Empty, too long, or containing control characters.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new("user", "the user id is empty"));
        }
        if raw.len() > MAX_USER_ID_LEN {
            return Err(FieldError::new(
                "user",
                format!("the user id is longer than {MAX_USER_ID_LEN} bytes"),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(FieldError::new(
                "user",
                "the user id contains control characters",
            ));
        }
        Ok(Self(raw.to_string()))
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A client-chosen key that makes a retried buy return the first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates the `Idempotency-Key` header value.
    ///
    /// # Errors
    /// Empty, too long, or not visible ASCII.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let field = "Idempotency-Key";
        if raw.is_empty() || raw.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(FieldError::new(
                field,
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
            ));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FieldError::new(
                field,
                "must be visible ASCII characters without spaces",
            ));
        }
        Ok(Self(raw.to_string()))
    }
}

impl AsRef<str> for IdempotencyKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_user_id_is_accepted() {
        assert_eq!(UserId::parse("user-42").unwrap().as_ref(), "user-42");
        assert!(UserId::parse("名前").is_ok());
    }

    #[test]
    fn empty_long_and_control_user_ids_are_refused() {
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"x".repeat(129)).is_err());
        assert!(UserId::parse("a\0b").is_err());
        assert!(UserId::parse("a\nb").is_err());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("retry-1:abc").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
    }
}
