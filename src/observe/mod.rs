//! What an operator watches: the metrics Prometheus scrapes, the log lines (and a throttle for
//! faults that repeat many times a second), and the pause points fault tests stop a process at.

pub mod failpoint;
pub mod log;
pub mod metrics;
