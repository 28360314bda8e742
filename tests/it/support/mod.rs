//! What the integration tests share, by job: the stack's servers and an isolated app's settings
//! ([`stack`]), an app in-process ([`app`]) and the requests sent to it ([`http`]), sales
//! ([`sales`]), buyers and orders ([`buyers`], [`orders`]), `seckill` child processes
//! ([`processes`], [`remote`]), private servers for fault injection ([`private`]), a
//! fault-proof client ([`shoppers`]), waiting ([`wait`]), and reading the stores and metrics back
//! ([`sql`], [`ledger`], [`kafka`], [`metrics`]). Everything is re-exported here, so a test
//! imports `crate::support::{spawn_app, eventually, ...}`.
//!
//! Each test gets its own app on port 0, its own MySQL database, its own Redis key prefix and
//! its own Kafka topic and consumer group, all on the real servers of the local stack
//! (`deploy/local/stack.sh up`). Tests therefore run in parallel and never FLUSHALL.

#![allow(dead_code)]

pub mod app;
pub mod buyers;
pub mod http;
pub mod kafka;
pub mod ledger;
pub mod metrics;
pub mod orders;
pub mod private;
pub mod processes;
pub mod remote;
pub mod sales;
pub mod shoppers;
pub mod sql;
pub mod stack;
pub mod wait;

pub use app::*;
pub use buyers::*;
pub use http::*;
pub use kafka::*;
pub use ledger::*;
pub use metrics::*;
pub use orders::*;
pub use private::*;
pub use processes::*;
pub use remote::*;
pub use sales::*;
pub use shoppers::*;
pub use sql::*;
pub use stack::*;
pub use wait::*;
