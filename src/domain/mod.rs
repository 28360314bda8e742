//! Validated domain types. Request bodies are converted into these first, so everything past
//! the HTTP layer works with values that are known to be well-formed.

pub mod identity;
pub mod json;
pub mod net;
pub mod order_id;
pub mod order_reserved;
pub mod redis_url;
pub mod sale;
pub mod script_version;

pub use identity::{IdempotencyKey, UserId};
pub use sale::{NewItem, NewSale, SalePatch};

/// A rejected input: which field and why. Mapped to a 422 in one place (`api::error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct FieldError {
    /// JSON path of the field (`items[2].stock`), or the header name.
    pub field: String,
    /// What is wrong, in words an operator can act on.
    pub detail: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }
}
