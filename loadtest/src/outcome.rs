//! Every answer falls in exactly one bucket, so the counts add up to the requests sent.

use serde::Serialize;

/// What one request came back as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
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
    /// Anything else: other statuses, connection failures.
    Error,
}

impl Outcome {
    /// Classifies an HTTP answer by status and the body's `code`.
    pub fn classify(status: u16, body: &[u8]) -> Self {
        match status {
            200..=299 => Outcome::Reserved,
            429 => Outcome::RateLimited,
            409 => match code_of(body) {
                Some(b"sold_out" | b"insufficient_stock") => Outcome::SoldOut,
                Some(b"limit_exceeded") => Outcome::LimitExceeded,
                _ => Outcome::Error,
            },
            _ => Outcome::Error,
        }
    }

    /// Index into [`Counts`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The `code` of an error body. Read with a byte search rather than a JSON parse, and borrowed
/// rather than copied: this runs for every answer, and the load generator must stay cheaper
/// than the server it measures.
fn code_of(body: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"code\":\"";
    let start = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = body[start..].iter().position(|b| *b == b'"')?;
    Some(&body[start..start + len])
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
    pub fn add(&mut self, o: Outcome) {
        *self.slot(o) += 1;
    }

    fn slot(&mut self, o: Outcome) -> &mut u64 {
        match o {
            Outcome::Reserved => &mut self.reserved,
            Outcome::SoldOut => &mut self.sold_out,
            Outcome::LimitExceeded => &mut self.limit_exceeded,
            Outcome::RateLimited => &mut self.rate_limited,
            Outcome::Timeout => &mut self.timeouts,
            Outcome::Error => &mut self.errors,
        }
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &Counts) {
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
            Outcome::classify(409, br#"{"code":"version_conflict"}"#),
            Outcome::Error
        );
        assert_eq!(Outcome::classify(409, b"garbage"), Outcome::Error);
        assert_eq!(Outcome::classify(429, b""), Outcome::RateLimited);
        assert_eq!(
            Outcome::classify(503, br#"{"code":"unavailable"}"#),
            Outcome::Error
        );
        assert_eq!(Outcome::classify(401, b""), Outcome::Error);
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
            Outcome::Error,
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
