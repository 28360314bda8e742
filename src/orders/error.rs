//! What the order operations can be refused with, or fail with. The HTTP answer of each is
//! decided at the edge (`api::error`), not here.

use std::sync::Arc;

use uuid::Uuid;

use crate::{stock::StockError, stores::mysql::orders::OrderRow};

/// An order operation refused, or a store failed.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// No such order (or not the caller's: the two answer alike).
    #[error("order not found")]
    NotFound,
    /// The order is reserved and on its way to MySQL; it can be acted on in a moment.
    #[error("the order is reserved and on its way to the database; retry in a moment")]
    NotPersisted,
    /// Paid already (by another payment, for a payment).
    #[error("the order is paid")]
    AlreadyPaid(Box<OrderRow>),
    /// Cancelled, expired or rejected: nothing can change it.
    #[error("the order is {}; nothing can change it", .0.status)]
    Closed(Box<OrderRow>),
    /// The amount is not the order's total.
    #[error("the order's total is {expected} cents")]
    WrongAmount {
        /// The order's total.
        expected: u64,
    },
    /// The order has no payment window (a sale from before windows existed), so it cannot be
    /// cancelled either.
    #[error("this order has no payment window and cannot be cancelled")]
    CancelUnsupported,
    /// A ledger entry that does not parse (a bug; logged, never shown).
    #[error("ledger entry {0} unreadable")]
    UnreadableEntry(Uuid),
    /// MySQL failed while the live items were listed (shared by the lookups waiting for the
    /// same read).
    #[error("listing live items: {0}")]
    LiveItems(Arc<sqlx::Error>),
    /// MySQL failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Redis failed.
    #[error("stock store error")]
    Stock(#[from] StockError),
}
