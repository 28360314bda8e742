//! The order lifecycle end to end: payments, cancellation, expiry, units that return to the
//! sale exactly once, and the buyer's view of it. The helpers they share are in
//! `support::orders`; the payment-expiry race and a release asked twice are in `faults`.

mod events;
mod orders;
mod payment;
mod returns;
