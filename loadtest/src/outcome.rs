//! Every answer falls in exactly one bucket, so the counts add up to the requests sent.

use serde::Serialize;

use crate::errors::{ErrorCause, code_of};

/// What one request came back as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    /// 2xx on a buy: a reservation (or healthz/sale page answered).
    Reserved,
    /// 409 `sold_out` or `insufficient_stock`.
    SoldOut,
    /// 409 `limit_exceeded`.
    LimitExceeded,
    /// 429.
    RateLimited,
    /// No answer within the timeout.
    Timeout,
    /// Anything else: other statuses, connection failures, and why.
    Error(ErrorCause),
}

/// The outcome classes that get their own latency histogram. Timeouts count as errors (their
/// latency is the timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// 2xx.
    Reserved,
    /// 409 sold out.
    SoldOut,
    /// 409 over the per-user limit.
    LimitExceeded,
    /// 429.
    RateLimited,
    /// Errors and timeouts.
    Error,
}

impl Kind {
    /// Every kind, in [`Kind::index`] order.
    pub(crate) const ALL: [Kind; 5] = [
        Kind::Reserved,
        Kind::SoldOut,
        Kind::LimitExceeded,
        Kind::RateLimited,
        Kind::Error,
    ];

    /// Position in [`Kind::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The name used in the summary and the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Reserved => "reserved",
            Kind::SoldOut => "sold_out",
            Kind::LimitExceeded => "limit_exceeded",
            Kind::RateLimited => "rate_limited",
            Kind::Error => "error",
        }
    }
}

impl Outcome {
    /// Classifies an HTTP answer by status and the body's `code`.
    pub(crate) fn classify(status: u16, body: &[u8]) -> Self {
        match status {
            200..=299 => Outcome::Reserved,
            429 => Outcome::RateLimited,
            409 => match code_of(body) {
                Some(b"sold_out" | b"insufficient_stock") => Outcome::SoldOut,
                Some(b"limit_exceeded") => Outcome::LimitExceeded,
                _ => Outcome::Error(ErrorCause::status(status, body)),
            },
            _ => Outcome::Error(ErrorCause::status(status, body)),
        }
    }

    /// Its latency class.
    pub(crate) fn kind(self) -> Kind {
        match self {
            Outcome::Reserved => Kind::Reserved,
            Outcome::SoldOut => Kind::SoldOut,
            Outcome::LimitExceeded => Kind::LimitExceeded,
            Outcome::RateLimited => Kind::RateLimited,
            Outcome::Timeout | Outcome::Error(_) => Kind::Error,
        }
    }

    /// The failure's cause, for errors and timeouts.
    pub(crate) fn cause(self) -> Option<ErrorCause> {
        match self {
            Outcome::Timeout => Some(ErrorCause::Timeout),
            Outcome::Error(c) => Some(c),
            _ => None,
        }
    }
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// 2xx.
    pub reserved: u64,
    /// 409 sold out.
    pub sold_out: u64,
    /// 409 over the per-user limit.
    pub limit_exceeded: u64,
    /// 429.
    pub rate_limited: u64,
    /// No answer in time.
    pub timeouts: u64,
    /// Everything else.
    pub errors: u64,
}

impl Counts {
    /// Counts one outcome.
    pub(crate) fn add(&mut self, o: Outcome) {
        *self.slot(o) += 1;
    }

    fn slot(&mut self, o: Outcome) -> &mut u64 {
        match o {
            Outcome::Reserved => &mut self.reserved,
            Outcome::SoldOut => &mut self.sold_out,
            Outcome::LimitExceeded => &mut self.limit_exceeded,
            Outcome::RateLimited => &mut self.rate_limited,
            Outcome::Timeout => &mut self.timeouts,
            Outcome::Error(_) => &mut self.errors,
        }
    }

    /// Adds another set of counts.
    pub(crate) fn merge(&mut self, other: &Counts) {
        self.reserved += other.reserved;
        self.sold_out += other.sold_out;
        self.limit_exceeded += other.limit_exceeded;
        self.rate_limited += other.rate_limited;
        self.timeouts += other.timeouts;
        self.errors += other.errors;
    }

    /// All requests counted.
    pub fn total(&self) -> u64 {
        self.reserved
            + self.sold_out
            + self.limit_exceeded
            + self.rate_limited
            + self.timeouts
            + self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_by_status_and_code() {
        assert_eq!(Outcome::classify(202, b"{}"), Outcome::Reserved);
        assert_eq!(Outcome::classify(200, b"ok"), Outcome::Reserved);
        assert_eq!(
            Outcome::classify(409, br#"{"code":"sold_out"}"#),
            Outcome::SoldOut
        );
        assert_eq!(
            Outcome::classify(409, br#"{"code":"insufficient_stock"}"#),
            Outcome::SoldOut
        );
        assert_eq!(
            Outcome::classify(409, br#"{"code":"limit_exceeded"}"#),
            Outcome::LimitExceeded
        );
        assert_eq!(
            Outcome::classify(409, br#"{"code":"version_conflict"}"#).cause(),
            Some(ErrorCause::status(409, b""))
        );
        assert_eq!(Outcome::classify(409, b"garbage").kind(), Kind::Error);
        assert_eq!(Outcome::classify(429, b""), Outcome::RateLimited);
        assert_eq!(
            Outcome::classify(503, br#"{"code":"unavailable"}"#)
                .cause()
                .map(|c| c.to_string()),
            Some("503 unavailable".into())
        );
        assert_eq!(
            Outcome::classify(401, br#"{"code":"unauthorized"}"#)
                .cause()
                .map(|c| c.to_string()),
            Some("401 unauthorized".into())
        );
        assert_eq!(Outcome::Timeout.cause(), Some(ErrorCause::Timeout));
        assert_eq!(Outcome::SoldOut.cause(), None);
    }

    #[test]
    fn counts_add_up_to_the_requests() {
        let mut c = Counts::default();
        for o in [
            Outcome::Reserved,
            Outcome::SoldOut,
            Outcome::SoldOut,
            Outcome::LimitExceeded,
            Outcome::RateLimited,
            Outcome::Timeout,
            Outcome::Error(ErrorCause::ConnectRefused),
        ] {
            c.add(o);
        }
        assert_eq!(c.total(), 7);
        assert_eq!(c.sold_out, 2);
        let mut d = Counts::default();
        d.merge(&c);
        d.merge(&c);
        assert_eq!(d.total(), 14);
        assert_eq!(d.reserved, 2);
    }
}
