//! The cheap attacks on a sale, each tried against the real servers: slow and greedy clients
//! (`connections`), floods of lookups and cancels, and of unauthenticated buys that would drain
//! the global bucket (`floods`), ambiguous identity headers and tokens from the future
//! (`identity`), and forged, stale, replayed or oversized payment notifications (`payments`).
//! docs/ARCHITECTURE.md's threat table points at these tests. The counters they read come from
//! `support::metric`.

mod connections;
mod floods;
mod identity;
mod payments;
