//! Integration tests against the real Redis, MariaDB and Kafka broker of the local stack.

mod support;

mod abuse;
mod admin;
mod benches;
mod browser;
mod buy;
mod cli;
mod cluster;
mod console;
mod consumer;
mod contract;
mod deploy;
mod docs;
mod faults;
mod hardening;
mod health;
mod house;
mod lifecycle;
mod loadtest;
mod lua;
mod ops;
mod outbox;
mod queue;
mod reconcile;
mod sale_page;
mod shards;
mod stack;
mod tls;
