//! What librdkafka reports, logged so that an outage reads as a few lines, not thousands.
//!
//! While a broker is down, librdkafka reports the same global error (`AllBrokersDown`,
//! connection refused) many times a second from every client. Each distinct report is logged
//! at once, and then at most once per [`REPEAT_EVERY`] with the number of repeats in between.

use rdkafka::{ClientContext, config::RDKafkaLogLevel, error::KafkaError};

use crate::observe::log::{REPEAT_EVERY, Throttle};

/// The client context of every producer and admin client: librdkafka's reports, throttled.
#[derive(Debug, Default)]
pub(crate) struct QuietContext {
    throttle: Throttle,
}

impl QuietContext {
    /// Logs a global error unless the same one was logged within [`REPEAT_EVERY`].
    pub(crate) fn report_error(&self, error: &KafkaError, reason: &str) {
        let kind = format!("{:?}", error.rdkafka_error_code());
        if let Some(held) = self.throttle.allow(&kind, REPEAT_EVERY) {
            tracing::error!(target: "librdkafka", message = %error, reason, repeats_since_last = held, "librdkafka global error");
        }
    }

    /// Logs a librdkafka log line at its level, throttled by facility.
    pub(crate) fn report_log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let serious = matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        );
        if !serious {
            tracing::debug!(target: "librdkafka", fac, message);
            return;
        }
        if let Some(held) = self.throttle.allow(fac, REPEAT_EVERY) {
            tracing::warn!(target: "librdkafka", fac, message, repeats_since_last = held, "librdkafka");
        }
    }
}

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.report_log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.report_error(&error, reason);
    }
}
