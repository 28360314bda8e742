//! Why a request failed, by cause: an unexpected HTTP status (with the body's `code` when it is
//! one the service sends), a refused or failed connection, a connection broken mid-request, or
//! no answer in time. Each cause the operator can act on carries a hint.
//!
//! Classification reads the status and one byte search in the body: it runs on every failed
//! answer (a wrong `--jwt-secret` makes that every answer) and allocates nothing.

use std::{collections::BTreeMap, fmt};

use serde::Serialize;

/// The `code` of an error body, for the codes the service sends (see its `ApiError::code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ErrorCode {
    /// No body, not JSON, or a code not listed here.
    Unknown,
    /// 401 `unauthorized`.
    Unauthorized,
    /// 403 `not_started`.
    NotStarted,
    /// 410 `ended`.
    Ended,
    /// 404 `not_found`.
    NotFound,
    /// 422 `invalid_field`.
    InvalidField,
    /// 422 `invalid_json`.
    InvalidJson,
    /// 503 `unavailable` (the server sheds load: overloaded).
    Unavailable,
    /// 503 `stock_unavailable` (Redis busy or unreachable from the server).
    StockUnavailable,
    /// 503 `unconfirmed` (replicas or Kafka did not acknowledge in time).
    Unconfirmed,
    /// 503 `recovering` (Redis state being restored).
    Recovering,
    /// 503 `database_unavailable`.
    DatabaseUnavailable,
    /// 503 `foreign_state`.
    ForeignState,
    /// 500 `internal`.
    Internal,
}

impl ErrorCode {
    /// The code of an error body.
    pub(crate) fn of(body: &[u8]) -> Self {
        match code_of(body) {
            Some(b"unauthorized") => Self::Unauthorized,
            Some(b"not_started") => Self::NotStarted,
            Some(b"ended") => Self::Ended,
            Some(b"not_found") => Self::NotFound,
            Some(b"invalid_field") => Self::InvalidField,
            Some(b"invalid_json") => Self::InvalidJson,
            Some(b"unavailable" | b"overloaded") => Self::Unavailable,
            Some(b"stock_unavailable" | b"busy") => Self::StockUnavailable,
            Some(b"unconfirmed") => Self::Unconfirmed,
            Some(b"recovering") => Self::Recovering,
            Some(b"database_unavailable") => Self::DatabaseUnavailable,
            Some(b"foreign_state") => Self::ForeignState,
            Some(b"internal") => Self::Internal,
            _ => Self::Unknown,
        }
    }

    /// The code as the service spells it (`None` for [`ErrorCode::Unknown`]).
    pub(crate) fn as_str(self) -> Option<&'static str> {
        Some(match self {
            Self::Unknown => return None,
            Self::Unauthorized => "unauthorized",
            Self::NotStarted => "not_started",
            Self::Ended => "ended",
            Self::NotFound => "not_found",
            Self::InvalidField => "invalid_field",
            Self::InvalidJson => "invalid_json",
            Self::Unavailable => "unavailable",
            Self::StockUnavailable => "stock_unavailable",
            Self::Unconfirmed => "unconfirmed",
            Self::Recovering => "recovering",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::ForeignState => "foreign_state",
            Self::Internal => "internal",
        })
    }
}

/// The `code` of an error body. Read with a byte search rather than a JSON parse, and borrowed
/// rather than copied: this runs for every answer, and the load generator must stay cheaper
/// than the server it measures.
pub(crate) fn code_of(body: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"code\":\"";
    let start = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = body[start..].iter().position(|b| *b == b'"')?;
    Some(&body[start..start + len])
}

/// Why one request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ErrorCause {
    /// An answer that is none of the expected outcomes.
    Status {
        /// HTTP status.
        status: u16,
        /// The body's `code`.
        code: ErrorCode,
    },
    /// Nothing listens at the address (TCP RST on connect).
    ConnectRefused,
    /// The connection could not be opened for another reason (unreachable, handshake).
    ConnectFailed,
    /// The connection broke while the request was under way (closed, reset, bad HTTP).
    ConnectionBroken,
    /// No answer within `--timeout`.
    Timeout,
}

impl ErrorCause {
    /// The cause of an HTTP answer that is no expected outcome.
    pub(crate) fn status(status: u16, body: &[u8]) -> Self {
        Self::Status {
            status,
            code: ErrorCode::of(body),
        }
    }

    /// True when the server may have reserved a unit although the client was not told: the
    /// request reached it and the answer was lost, or it said so (`unconfirmed`), or it failed
    /// inside (5xx other than the refusals that happen before any reservation).
    pub(crate) fn fate_unknown(self) -> bool {
        match self {
            Self::Timeout | Self::ConnectionBroken => true,
            Self::Status { status, code } => {
                code == ErrorCode::Unconfirmed || matches!(status, 500 | 502 | 504)
            }
            Self::ConnectRefused | Self::ConnectFailed => false,
        }
    }

    /// What to check, for the causes an operator commonly meets.
    pub(crate) fn hint(self) -> Option<&'static str> {
        Some(match self {
            Self::ConnectRefused => "nothing listens at --base-url: is the server running there?",
            Self::ConnectFailed => "cannot connect to --base-url (unreachable host or port?)",
            Self::ConnectionBroken => {
                "the server closed connections mid-request (restarting, crashing, or a proxy limit?)"
            }
            Self::Timeout => "no answer within --timeout: the server is saturated or stalled",
            Self::Status { status, code } => match (status, code) {
                (401, _) => "tokens rejected: does --jwt-secret match SECKILL_JWT_SECRET?",
                (403, _) => "the sale has not started yet (its starts_at is in the future)",
                (410, _) => "the sale has ended (its ends_at is past)",
                (404, _) => "no such sale or item: check --sale and --item (and --base-url)",
                (422, _) => "the server refused the request as invalid (body or Idempotency-Key)",
                (503, ErrorCode::Unconfirmed) => {
                    "reservations not confirmed in time: Redis replicas (or Kafka, in kafka mode) are not acknowledging; the units may be reserved"
                }
                (503, ErrorCode::Unavailable) => {
                    "the server sheds load (overloaded): lower --rate or --concurrency, or add instances"
                }
                (503, ErrorCode::StockUnavailable) => {
                    "the server cannot reach Redis in time (its stock queue is full or Redis is down)"
                }
                (503, ErrorCode::Recovering) => {
                    "the server is restoring its Redis state after a failover; retry shortly"
                }
                (503, ErrorCode::DatabaseUnavailable) => "the server cannot reach MySQL",
                (500, _) => "the server failed internally: see its log",
                _ => return None,
            },
        })
    }
}

impl fmt::Display for ErrorCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { status, code } => match code.as_str() {
                Some(c) => write!(f, "{status} {c}"),
                None => write!(f, "{status}"),
            },
            Self::ConnectRefused => f.write_str("connect refused"),
            Self::ConnectFailed => f.write_str("connect failed"),
            Self::ConnectionBroken => f.write_str("connection broken"),
            Self::Timeout => f.write_str("timeout"),
        }
    }
}

/// Failed requests counted by cause. Timeouts are here too, so the counts add up to the
/// summary's `errors + timeouts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorCounts(pub BTreeMap<ErrorCause, u64>);

impl ErrorCounts {
    /// Counts one failure.
    pub(crate) fn add(&mut self, cause: ErrorCause, n: u64) {
        *self.0.entry(cause).or_default() += n;
    }

    /// Adds another set of counts.
    pub(crate) fn merge(&mut self, other: &ErrorCounts) {
        for (cause, n) in &other.0 {
            self.add(*cause, *n);
        }
    }

    /// All failures counted.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The count of one cause.
    #[cfg(test)]
    pub(crate) fn get(&self, cause: ErrorCause) -> u64 {
        self.0.get(&cause).copied().unwrap_or(0)
    }

    /// Rows for the summary, the most frequent first.
    pub(crate) fn rows(&self) -> Vec<ErrorRow> {
        let mut rows: Vec<ErrorRow> = self
            .0
            .iter()
            .map(|(cause, n)| ErrorRow {
                cause: cause.to_string(),
                status: match cause {
                    ErrorCause::Status { status, .. } => Some(*status),
                    _ => None,
                },
                count: *n,
                hint: cause.hint(),
            })
            .collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.cause.cmp(&b.cause)));
        rows
    }

    /// `401 unauthorized 12, timeout 3` (the most frequent first), or empty.
    pub(crate) fn compact(&self) -> String {
        self.rows()
            .iter()
            .map(|r| format!("{} {}", r.cause, r.count))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One cause in the summary and the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorRow {
    /// `401 unauthorized`, `503 unconfirmed`, `connect refused`, `timeout`, ...
    pub cause: String,
    /// The HTTP status, when the cause is an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Requests that failed so.
    pub count: u64,
    /// What to check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_the_status_and_the_services_code() {
        let c = ErrorCause::status(401, br#"{"code":"unauthorized","detail":"bad token"}"#);
        assert_eq!(c.to_string(), "401 unauthorized");
        assert!(c.hint().unwrap().contains("--jwt-secret"));
        let c = ErrorCause::status(503, br#"{"code":"unconfirmed","detail":"x"}"#);
        assert_eq!(c.to_string(), "503 unconfirmed");
        assert!(c.hint().unwrap().contains("replicas"));
        assert!(c.fate_unknown());
        let c = ErrorCause::status(503, br#"{"code":"unavailable"}"#);
        assert!(c.hint().unwrap().contains("overloaded") && !c.fate_unknown());
        assert_eq!(ErrorCause::status(418, b"teapot").to_string(), "418");
        assert_eq!(ErrorCause::status(418, b"").hint(), None);
        assert!(
            ErrorCause::ConnectRefused
                .hint()
                .unwrap()
                .contains("--base-url")
        );
        assert!(!ErrorCause::ConnectRefused.fate_unknown());
        assert!(ErrorCause::Timeout.fate_unknown());
    }

    #[test]
    fn counts_by_cause_merge_and_sort_the_most_frequent_first() {
        let mut a = ErrorCounts::default();
        a.add(ErrorCause::Timeout, 1);
        a.add(ErrorCause::status(401, b""), 5);
        let mut b = ErrorCounts::default();
        b.merge(&a);
        b.add(ErrorCause::Timeout, 9);
        assert_eq!(b.total(), 15);
        assert_eq!(b.get(ErrorCause::Timeout), 10);
        let rows = b.rows();
        assert_eq!(rows[0].cause, "timeout");
        assert_eq!(rows[1].status, Some(401));
        assert_eq!(b.compact(), "timeout 10, 401 5");
    }
}
