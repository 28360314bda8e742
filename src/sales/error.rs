//! What the sale operations can fail with. The HTTP answer of each is decided at the edge
//! (`api::error`), not here.

use crate::{domain::FieldError, stock::StockError};

/// A sale operation refused, or a store failed.
#[derive(Debug, thiserror::Error)]
pub enum SaleError {
    /// No such sale.
    #[error("sale not found")]
    NotFound,
    /// A field of the request is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The sale's state does not allow the operation (`kind` says why).
    #[error("{detail}")]
    Refused {
        /// Why, for machines.
        kind: Refusal,
        /// Why, in words an operator can act on.
        detail: String,
    },
    /// The sale's Redis state is being rebuilt from MySQL; try again shortly.
    #[error("the sale is recovering from a storage fault; retry shortly")]
    Recovering,
    /// A script answered outside its contract (a bug; logged, never shown).
    #[error("{0}")]
    Unexpected(String),
    /// MySQL failed.
    #[error("database error")]
    Db(#[from] sqlx::Error),
    /// Redis failed.
    #[error("stock store error")]
    Stock(#[from] StockError),
}

/// Why a sale operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The caller's version of the sale is not the current one.
    VersionConflict,
    /// The sale has started; it can no longer be changed or force-warmed.
    Started,
    /// Stock cannot change once the sale is warmed.
    StockLocked,
    /// Another instance is warming the sale.
    PrewarmInProgress,
    /// The sale and its grace period are over.
    Expired,
    /// The item has reservations; a forced warm would lose them.
    HasReservations,
    /// The item's Redis keys hold another sale's state.
    ForeignState,
    /// Another rebuild of the item took over.
    RecoverySuperseded,
    /// The sale is pinned to a script version this release no longer runs.
    ScriptRetired,
}

impl Refusal {
    /// The machine-readable code of the refusal.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::VersionConflict => "version_conflict",
            Refusal::Started => "sale_started",
            Refusal::StockLocked => "stock_locked",
            Refusal::PrewarmInProgress => "prewarm_in_progress",
            Refusal::Expired => "sale_expired",
            Refusal::HasReservations => "has_reservations",
            Refusal::ForeignState => "foreign_state",
            Refusal::RecoverySuperseded => "recovery_superseded",
            Refusal::ScriptRetired => "script_retired",
        }
    }
}

impl SaleError {
    /// A refusal of `kind`, with the words an operator reads.
    pub fn refused(kind: Refusal, detail: impl Into<String>) -> Self {
        Self::Refused {
            kind,
            detail: detail.into(),
        }
    }

    /// True for a refusal of `kind`.
    pub fn is(&self, kind: Refusal) -> bool {
        matches!(self, SaleError::Refused { kind: k, .. } if *k == kind)
    }
}
