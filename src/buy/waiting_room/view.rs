//! What the console shows of a queued sale's waiting room: the board in figures, and the wait
//! estimated at each join against the wait buyers really had (this instance's histograms).

use serde::Serialize;

use super::{QueueError, WaitingRoom, rooms::read_board};

/// A waiting room in figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    /// Joins in all.
    pub joined: u64,
    /// Places not yet admitted.
    pub waiting: u64,
    /// Positions below this have been admitted.
    pub now_serving: u64,
    /// Admitted places neither lapsed nor bought.
    pub active: u64,
    /// Admissions per second, smoothed.
    pub admit_rate: f64,
    /// Estimated seconds until the last in line is admitted (`null`: not moving, or sold out).
    pub eta_last_secs: Option<u64>,
    /// Units left, as the usher last read them.
    pub remaining: Option<i64>,
    /// No units left: every poll answers `sold_out`.
    pub sold_out: bool,
    /// Mean wait estimated at join, in seconds, on this instance (`null`: no join yet).
    pub estimated_wait_secs: Option<f64>,
    /// Mean wait buyers really had, join to admission, on this instance (`null`: no buyer yet).
    pub real_wait_secs: Option<f64>,
}

fn mean(h: &prometheus::Histogram) -> Option<f64> {
    let n = h.get_sample_count();
    (n > 0).then(|| h.get_sample_sum() / n as f64)
}

impl WaitingRoom {
    /// The waiting room of `sale_id` in figures, read from Redis now.
    ///
    /// # Errors
    /// No such queued sale, or MySQL or Redis failed.
    pub async fn view(&self, sale_id: u64) -> Result<QueueView, QueueError> {
        let room = self
            .room(sale_id, chrono::Utc::now().timestamp_millis())
            .await?;
        let board = read_board(&self.inner.redis, &room.keys).await?;
        let waiting = board.joined.saturating_sub(board.now_serving);
        let m = &self.inner.metrics.queue;
        Ok(QueueView {
            joined: board.joined,
            waiting,
            now_serving: board.now_serving,
            active: board.active,
            admit_rate: board.rate,
            eta_last_secs: (board.rate > 0.5 && !board.sold_out)
                .then(|| (waiting as f64 / board.rate).ceil() as u64),
            remaining: board.remaining,
            sold_out: board.sold_out,
            estimated_wait_secs: mean(&m.eta),
            real_wait_secs: mean(&m.waited),
        })
    }
}
