//! The servers the service keeps its state in, each behind the handful of calls the rest of
//! the crate makes: `redis` (connections to a server, a Cluster or a Sentinel-watched master;
//! every key name; locks and leader election), `kafka` (the endpoint, the producer, lag), and
//! `mysql` (migrations and every SQL statement).

pub mod kafka;
pub mod mysql;
pub mod redis;
