//! The cheap gates in front of Redis, cheapest first: token buckets, the cached sale window,
//! and a local sold-out flag. A request turned away here costs no network round trip.

pub(crate) mod limiter;
pub mod sold_out;

pub use limiter::{Gates, Rejected};
pub use sold_out::SoldOutFlags;
