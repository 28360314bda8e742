//! How buyers are let into a sale: `open` (anyone may buy in the window) or `queue` (a
//! waiting room hands out signed admissions at a set rate). The request shape as sent, its
//! rules, and the validated policy stored with the sale.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::FieldError;

/// Admissions per second when the request does not say.
pub const DEFAULT_ADMIT_PER_SEC: u32 = 100;
/// Admitted buyers who have not yet bought, when the request does not say.
pub const DEFAULT_MAX_ACTIVE: u32 = 1_000;
/// Seconds an admission stays valid, when the request does not say.
pub const DEFAULT_ADMISSION_TTL_SECS: u32 = 120;
/// Admitted-but-unbought buyers per remaining unit, at most, when the request does not say.
pub const DEFAULT_OVERBOOKING: f64 = 1.5;
/// Bounds of the settings.
const ADMIT_PER_SEC: (i64, i64) = (1, 100_000);
const MAX_ACTIVE: (i64, i64) = (1, 1_000_000);
const TTL_SECS: (i64, i64) = (5, 600);
const POW_BITS: (i64, i64) = (0, 24);
const OVERBOOKING: (f64, f64) = (1.0, 10.0);
/// Longest pre-queue: the queue opens at most a week before the start.
const MAX_PRE_QUEUE_SECS: i64 = 7 * 86_400;

/// `open` or `queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdmissionMode {
    /// Anyone may buy inside the window (the token buckets still apply).
    #[default]
    Open,
    /// A buy needs an admission token from the sale's waiting room.
    Queue,
}

/// A sale's admission policy, validated; stored as JSON with the sale and returned by GET.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Admission {
    /// `open` or `queue`.
    pub mode: AdmissionMode,
    /// Admissions per second the waiting room hands out, at most.
    pub admit_per_sec: u32,
    /// Admitted buyers who have neither bought nor expired, at most.
    pub max_active: u32,
    /// Seconds an admission stays valid.
    pub admission_ttl_secs: u32,
    /// When joins open (before the start): joins until the start form the pre-queue, shuffled
    /// at the start. `null`: the queue opens at the start.
    pub queue_opens_at: Option<DateTime<Utc>>,
    /// Leading zero bits a join's proof of work must have (0: no challenge).
    pub pow_bits: u8,
    /// Admitted-but-unbought buyers per remaining unit, at most.
    pub overbooking: f64,
}

// Validation keeps `overbooking` finite, so equality is an equivalence.
impl Eq for Admission {}

impl Default for Admission {
    fn default() -> Self {
        Self {
            mode: AdmissionMode::Open,
            admit_per_sec: DEFAULT_ADMIT_PER_SEC,
            max_active: DEFAULT_MAX_ACTIVE,
            admission_ttl_secs: DEFAULT_ADMISSION_TTL_SECS,
            queue_opens_at: None,
            pow_bits: 0,
            overbooking: DEFAULT_OVERBOOKING,
        }
    }
}

impl Admission {
    /// True when buys need an admission token.
    pub fn queued(&self) -> bool {
        self.mode == AdmissionMode::Queue
    }

    /// When joins open: `queue_opens_at`, or the start.
    pub fn opens_at(&self, starts_at: DateTime<Utc>) -> DateTime<Utc> {
        self.queue_opens_at.unwrap_or(starts_at).min(starts_at)
    }

    /// The policy as stored (JSON).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"mode\":\"open\"}".into())
    }

    /// Validates a request against the sale's start (`None`: a patch that may move the start;
    /// the opening is then checked with [`Admission::check_start`]).
    ///
    /// # Errors
    /// The first setting out of bounds, named `admission.<field>`.
    pub fn parse(
        req: AdmissionRequest,
        starts_at: Option<DateTime<Utc>>,
    ) -> Result<Self, FieldError> {
        let d = Self::default();
        let ranged = |field: &str, v: Option<i64>, (min, max): (i64, i64), default: i64| {
            let v = v.unwrap_or(default);
            if v < min || v > max {
                return Err(FieldError::new(
                    format!("admission.{field}"),
                    format!("must be between {min} and {max}, got {v}"),
                ));
            }
            Ok(v)
        };
        let overbooking = req.overbooking.unwrap_or(d.overbooking);
        if !(OVERBOOKING.0..=OVERBOOKING.1).contains(&overbooking) {
            return Err(FieldError::new(
                "admission.overbooking",
                format!(
                    "must be between {} and {}, got {overbooking}",
                    OVERBOOKING.0, OVERBOOKING.1
                ),
            ));
        }
        let queue_opens_at = req
            .queue_opens_at
            .as_deref()
            .map(|raw| opening(raw, starts_at))
            .transpose()?;
        Ok(Self {
            mode: req.mode,
            admit_per_sec: ranged(
                "admit_per_sec",
                req.admit_per_sec,
                ADMIT_PER_SEC,
                d.admit_per_sec.into(),
            )? as u32,
            max_active: ranged(
                "max_active",
                req.max_active,
                MAX_ACTIVE,
                d.max_active.into(),
            )? as u32,
            admission_ttl_secs: ranged(
                "admission_ttl_secs",
                req.admission_ttl_secs,
                TTL_SECS,
                d.admission_ttl_secs.into(),
            )? as u32,
            queue_opens_at,
            pow_bits: ranged("pow_bits", req.pow_bits, POW_BITS, 0)? as u8,
            overbooking,
        })
    }

    /// Checks a stored policy against a new start (a PATCH that moves the start).
    ///
    /// # Errors
    /// The queue would open after the start or too long before it.
    pub fn check_start(&self, starts_at: DateTime<Utc>) -> Result<(), FieldError> {
        match self.queue_opens_at {
            Some(at) => check_opening(at, starts_at),
            None => Ok(()),
        }
    }
}

impl TryFrom<String> for Admission {
    type Error = serde_json::Error;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&raw)
    }
}

fn opening(raw: &str, starts_at: Option<DateTime<Utc>>) -> Result<DateTime<Utc>, FieldError> {
    let at = DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            FieldError::new(
                "admission.queue_opens_at",
                format!("'{raw}' is not an RFC 3339 time such as 2026-11-23T19:45:00Z ({e})"),
            )
        })?;
    if let Some(starts_at) = starts_at {
        check_opening(at, starts_at)?;
    }
    Ok(at)
}

fn check_opening(at: DateTime<Utc>, starts_at: DateTime<Utc>) -> Result<(), FieldError> {
    if at > starts_at {
        return Err(FieldError::new(
            "admission.queue_opens_at",
            "must not be after starts_at",
        ));
    }
    if at < starts_at - chrono::Duration::seconds(MAX_PRE_QUEUE_SECS) {
        return Err(FieldError::new(
            "admission.queue_opens_at",
            "must be at most a week before starts_at",
        ));
    }
    Ok(())
}

/// The `admission` object of a create or patch body, as sent; absent settings take their
/// defaults.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdmissionRequest {
    /// `open` (the default) or `queue`.
    #[serde(default)]
    pub mode: AdmissionMode,
    /// Admissions per second, at most (default 100).
    #[schema(minimum = 1, maximum = 100_000)]
    pub admit_per_sec: Option<i64>,
    /// Admitted buyers who have neither bought nor expired, at most (default 1000).
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_active: Option<i64>,
    /// Seconds an admission stays valid (default 120).
    #[schema(minimum = 5, maximum = 600)]
    pub admission_ttl_secs: Option<i64>,
    /// RFC 3339 time joins open, at most a week before and not after `starts_at` (default:
    /// the start; no pre-queue).
    #[schema(format = DateTime)]
    pub queue_opens_at: Option<String>,
    /// Leading zero bits of a join's proof of work (default 0: none).
    #[schema(minimum = 0, maximum = 24)]
    pub pow_bits: Option<i64>,
    /// Admitted-but-unbought buyers per remaining unit, at most (default 1.5).
    #[schema(minimum = 1.0, maximum = 10.0)]
    pub overbooking: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        "2026-12-07T20:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_empty_request_is_an_open_sale_with_the_defaults() {
        let a = Admission::parse(AdmissionRequest::default(), Some(start())).unwrap();
        assert_eq!(a, Admission::default());
        assert!(!a.queued());
        assert_eq!(a.opens_at(start()), start());
    }

    #[test]
    fn each_setting_out_of_bounds_is_named() {
        let cases = [
            (
                AdmissionRequest {
                    admit_per_sec: Some(0),
                    ..Default::default()
                },
                "admission.admit_per_sec",
            ),
            (
                AdmissionRequest {
                    admission_ttl_secs: Some(4),
                    ..Default::default()
                },
                "admission.admission_ttl_secs",
            ),
            (
                AdmissionRequest {
                    pow_bits: Some(25),
                    ..Default::default()
                },
                "admission.pow_bits",
            ),
            (
                AdmissionRequest {
                    overbooking: Some(0.5),
                    ..Default::default()
                },
                "admission.overbooking",
            ),
            (
                AdmissionRequest {
                    queue_opens_at: Some("2026-12-07T20:00:01Z".into()),
                    ..Default::default()
                },
                "admission.queue_opens_at",
            ),
        ];
        for (req, field) in cases {
            let e = Admission::parse(req, Some(start())).unwrap_err();
            assert_eq!(e.field, field, "{e:?}");
        }
    }

    #[test]
    fn a_stored_policy_reads_back_as_written() {
        let a = Admission {
            mode: AdmissionMode::Queue,
            queue_opens_at: Some("2026-12-07T19:45:00Z".parse().unwrap()),
            pow_bits: 8,
            ..Default::default()
        };
        assert_eq!(Admission::try_from(a.to_json()).unwrap(), a);
        assert!(a.check_start(start()).is_ok());
        assert!(
            a.check_start("2026-12-07T19:00:00Z".parse().unwrap())
                .is_err()
        );
    }
}
