//! seckill: a flash-sale engine. Its modules, in the order data flows through them:
//!
//! - `config`: the settings (defaults, a TOML file, `SECKILL_*` variables), checked at start.
//! - `domain`: validated values: sales, buyers, order ids, the reservation record.
//! - `observe`: metrics, logs, and the pause points fault tests use.
//! - `stores`: the servers: `redis` (connections, every key name, locks, script calls),
//!   `kafka`, `mysql`.
//! - `stock`: the Lua scripts by version, the batching lanes, the ledger in Redis.
//! - `sales`: an operator creates a sale in MySQL (the source of truth); it is warmed into
//!   Redis, every key expiring with the sale, and rebuilt from MySQL after a loss; the catalog
//!   and the public page read it.
//! - `buy`: a queued sale's waiting room (joins, tickets polled from memory, the usher that
//!   admits at the sale's rate within `max_active` and the stock, admission tokens), gate
//!   (token buckets, sold-out flags), identify (the buyer's token), reserve (one
//!   atomic script call deducts stock, enforces the per-user limit and idempotency, and appends
//!   the reservation to the ledger), confirm.
//! - `outbox`: the ledger is the outbox; reservations go to Kafka, and the relay re-sends what
//!   Kafka did not acknowledge.
//! - `consumer`: Kafka to MySQL, under row locks, exactly once in effect.
//! - `orders`: a buyer's orders: lookup, pay, cancel, expire, units back, lifecycle events.
//! - `reconcile`: proves Redis, Kafka and MySQL agree.
//! - The edges: `api` (HTTP), `app` (the roles of a process), `cli`.
#![forbid(unsafe_code)]

pub mod config;

pub mod domain;

pub mod observe;

pub mod stores;

pub mod stock;

pub mod sales;

pub mod buy;

pub mod outbox;

pub mod consumer;

pub mod orders;

pub mod reconcile;

pub mod api;

pub mod app;

pub mod cli;
