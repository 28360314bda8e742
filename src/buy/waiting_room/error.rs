//! What joining or polling a waiting room can be refused with, or fail with. The HTTP answer
//! of each is decided in `api::error`.

use chrono::{DateTime, Utc};

use super::challenge::ChallengeError;

/// Why a join, poll or challenge was not answered.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// No such sale.
    #[error("sale not found")]
    NotFound,
    /// The sale is open: buy directly, no queue.
    #[error("this sale has no queue: buy directly")]
    NotQueued,
    /// The queue opens later.
    #[error("the queue opens at {0}")]
    NotOpen(DateTime<Utc>),
    /// The sale has ended.
    #[error("the sale has ended")]
    Ended,
    /// Not a ticket of this sale that this service signed.
    #[error("no such ticket for this sale")]
    UnknownTicket,
    /// The proof of work is missing, foreign or wrong.
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    /// The room holds as many joins as a place can number.
    #[error("the queue is full")]
    Full,
    /// MySQL failed while the sale was loaded.
    #[error("loading the sale: {0}")]
    Db(#[from] sqlx::Error),
    /// Redis failed.
    #[error("waiting room store: {0}")]
    Redis(#[from] redis::RedisError),
}
