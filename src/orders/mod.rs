//! A buyer's orders after the reservation: where one stands (`lookup`), paying, cancelling and
//! expiring it with its units given back (`lifecycle`), the events those changes publish
//! (`events`), and the payment provider's signed notifications (`signature`, `replay`).

mod error;
pub mod events;
pub mod lifecycle;
pub mod lookup;
pub mod replay;
pub mod signature;

pub use error::OrderError;
