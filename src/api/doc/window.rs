//! The sale window in the documents. Whether a start or an end is valid depends on the clock
//! (a start at most a day before now; an end after the start, in the future and at most a year
//! ahead), which JSON Schema cannot state, and a fixed example date turns invalid once it has
//! passed. So each document is built for an hour and dates its window: examples, and patterns
//! admitting only times that are valid for 23 hours after that hour, whatever the other field
//! holds (a start in the hour before, an end in the month after next). A client that generates
//! requests from the document gets windows the service accepts, for sales already running; the
//! descriptions state the rule itself.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Timelike, Utc};
use serde_json::{Value, json};

/// The hour `now` falls in: the documents are built for it.
pub(crate) fn hour_of(now: DateTime<Utc>) -> DateTime<Utc> {
    now.with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_minute(0))
        .unwrap_or(now)
}

/// Starts the document admits: any second of the hour before `hour` (`Z` times). They are at
/// most a day before now for 23 hours after `hour`, and already past: a sale created so can be
/// bought at once.
fn starts(hour: DateTime<Utc>) -> (String, String) {
    let prefix = (hour - Duration::hours(1))
        .format("%Y-%m-%dT%H")
        .to_string();
    let pattern = format!("^{prefix}:[0-5][0-9]:[0-5][0-9](\\.[0-9]{{1,9}})?Z$");
    (pattern, format!("{prefix}:00:00Z"))
}

/// Ends the document admits: the 1st to the 28th of the month after next (`Z` times), after
/// any admitted start and well within a year.
fn ends(hour: DateTime<Utc>) -> (String, String) {
    let month = NaiveDate::from_ymd_opt(hour.year(), hour.month(), 1)
        .and_then(|d| d.checked_add_months(Months::new(2)))
        .unwrap_or_else(|| hour.date_naive());
    let prefix = month.format("%Y-%m").to_string();
    let pattern = format!(
        "^{prefix}-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{{1,9}})?Z$"
    );
    (pattern, format!("{prefix}-01T00:00:00Z"))
}

/// Dates the window fields of the sale requests for `hour`.
pub(crate) fn date_sale_windows(doc: &mut Value, hour: DateTime<Utc>) {
    let (start_pattern, start_example) = starts(hour);
    let (end_pattern, end_example) = ends(hour);
    let note = format!(
        " This document was built for {}; its pattern admits only times that are valid in any window for 23 hours after that (a start in the hour before, an end in the month after next).",
        hour.format("%Y-%m-%dT%H:00Z")
    );
    for schema in ["CreateSaleRequest", "PatchSaleRequest"] {
        for (field, pattern, example) in [
            ("starts_at", &start_pattern, &start_example),
            ("ends_at", &end_pattern, &end_example),
        ] {
            let Some(property) = doc
                .pointer_mut(&format!("/components/schemas/{schema}/properties/{field}"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            property.insert("pattern".into(), json!(pattern));
            property.insert("example".into(), json!(example));
            let described = property
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            property.insert("description".into(), json!(format!("{described}{note}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_are_valid_for_a_day_after_the_hour_they_were_built_for() {
        let hour = hour_of("2026-12-31T23:40:12Z".parse().unwrap());
        assert_eq!(hour.to_rfc3339(), "2026-12-31T23:00:00+00:00");
        let (start_pattern, start) = starts(hour);
        let (end_pattern, end) = ends(hour);
        assert_eq!(start, "2026-12-31T22:00:00Z");
        assert!(start_pattern.starts_with("^2026-12-31T22:[0-5][0-9]:"));
        assert_eq!(end, "2027-02-01T00:00:00Z");
        assert!(end_pattern.starts_with("^2027-02-(0[1-9]|1[0-9]|2[0-8])T"));
        let (start, end) = (
            start.parse::<DateTime<Utc>>().unwrap(),
            end.parse::<DateTime<Utc>>().unwrap(),
        );
        for now in [hour, hour + Duration::hours(22)] {
            crate::domain::sale::check_window(start, end, now).unwrap();
        }
    }
}
