//! seckill: a flash-sale engine.
//!
//! Data flow: an operator creates a sale (`sales`, MySQL is the source of truth); its stock is
//! warmed into Redis (`stock`), every key expiring with the sale. Buyers pass cheap in-memory
//! gates (`gate`) and one atomic Lua script (`stock::scripts`) that deducts stock, enforces the
//! per-user limit and idempotency, and appends the reservation to a Redis ledger. The ledger is
//! the outbox (`outbox`): reservations go to Kafka (`kafka`) and a consumer persists them into
//! MySQL under row locks (`consumer`). Reconciliation (`reconcile`) proves the stores agree.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod buy;
pub mod cli;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod observe;
pub mod orders;
pub mod outbox;
pub mod reconcile;
pub mod sales;

pub mod stock;
pub mod stores;
