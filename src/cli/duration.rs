//! Durations on the command line: `90` (seconds), `90s`, `15m`, `2h`, `1d`, `500ms`.

use std::time::Duration;

/// Parses a duration as written on a command line.
///
/// # Errors
/// A message naming what was expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration such as 30s, 15m, 1h or 500ms"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3_600),
        "d" => Duration::from_secs(n * 86_400),
        _ => return Err(format!("'{text}': the unit must be ms, s, m, h or d")),
    };
    if d.is_zero() {
        return Err(format!("'{text}' is zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bad_input() {
        assert_eq!(parse("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3_600));
        assert_eq!(parse("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        for bad in ["", "h", "1y", "-1s", "0s", "1.5h"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
