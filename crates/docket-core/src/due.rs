//! Parsing of due dates: epoch seconds, small offsets, relative text and calendar dates.

use jiff::{civil::Date, tz::TimeZone, Timestamp, ToSpan};
use serde_json::Value;

/// Seconds below this are an offset from now (10 years), above it an epoch time.
const OFFSET_LIMIT: i64 = 315_360_000;

/// Turns a client's `due` value into epoch seconds (0 = no due date).
///
/// Accepted: `0`/`null`/`""` (none); epoch seconds; a number of seconds under ten years
/// (an offset from now); relative text such as `"3 days"`, `"1d"`, `"1 week"`, `"2 hours"`;
/// a calendar date `YYYY-MM-DD`. Relative values land on the start of their day in `tz`.
pub fn parse_due(value: &Value, now: Timestamp, tz: &TimeZone) -> Result<i64, String> {
    match value {
        Value::Null => Ok(0),
        Value::Bool(false) => Ok(0),
        Value::Number(n) => {
            let secs = n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or_else(|| "due must be a whole number of seconds".to_string())?;
            from_seconds(secs, now, tz)
        }
        Value::String(s) => parse_due_text(s.trim(), now, tz),
        _ => Err("due must be a number or a text like \"3 days\"".to_string()),
    }
}

fn from_seconds(secs: i64, now: Timestamp, tz: &TimeZone) -> Result<i64, String> {
    if secs < 0 {
        return Err(format!("due must not be negative (got {secs})"));
    }
    if secs == 0 {
        Ok(0)
    } else if secs < OFFSET_LIMIT {
        Ok(start_of_day(now.as_second() + secs, tz))
    } else if secs > 253_402_300_799 {
        Err(format!("due is too far in the future ({secs})"))
    } else {
        Ok(secs)
    }
}

fn parse_due_text(s: &str, now: Timestamp, tz: &TimeZone) -> Result<i64, String> {
    if s.is_empty() || s == "0" {
        return Ok(0);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return from_seconds(secs, now, tz);
    }
    if let Ok(date) = s.parse::<Date>() {
        return date
            .to_zoned(tz.clone())
            .map(|z| z.timestamp().as_second())
            .map_err(|e| format!("due date {s:?} is not valid: {e}"));
    }
    let offset = parse_relative(s).ok_or_else(|| {
        format!(
            "due {s:?} is not understood; use epoch seconds, a date like 2025-03-01, \
             or a relative time like \"3 days\""
        )
    })?;
    Ok(start_of_day(now.as_second() + offset, tz))
}

/// `"3 days"`, `"1d"`, `"2 weeks"`, `"+4 hours"` → seconds.
pub fn parse_relative(s: &str) -> Option<i64> {
    let s = s.trim_start_matches('+').to_ascii_lowercase();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix('s')
        .filter(|u| u.len() > 1)
        .unwrap_or(unit);
    let secs = match unit {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hr" | "hour" => 3600,
        "d" | "day" => 86_400,
        "w" | "wk" | "week" => 7 * 86_400,
        "mo" | "month" => 30 * 86_400,
        "y" | "yr" | "year" => 365 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs).filter(|v| *v < 100 * 365 * 86_400)
}

/// The start of the day (in `tz`) that contains `epoch`.
pub fn start_of_day(epoch: i64, tz: &TimeZone) -> i64 {
    Timestamp::from_second(epoch)
        .ok()
        .and_then(|ts| ts.to_zoned(tz.clone()).start_of_day().ok())
        .map(|z| z.timestamp().as_second())
        .unwrap_or(epoch - epoch.rem_euclid(86_400))
}

/// Used by tests and the template: now plus a span, at the start of that day.
pub fn days_from_now(days: i64, now: Timestamp, tz: &TimeZone) -> i64 {
    // Calendar days in the zone: a Timestamp cannot add days itself (it would fail).
    let later = now
        .to_zoned(tz.clone())
        .checked_add(days.days())
        .map(|z| z.timestamp())
        .unwrap_or(now)
        .as_second();
    start_of_day(later, tz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-06-15T12:34:56Z".parse().unwrap()
    }

    fn check(v: Value, expect: Result<i64, ()>) {
        let got = parse_due(&v, now(), &TimeZone::UTC).map_err(|_| ());
        assert_eq!(got, expect, "input {v}");
    }

    #[test]
    fn forms() {
        let day = 1_718_409_600; // 2024-06-15T00:00:00Z
        check(json!(0), Ok(0));
        check(json!(null), Ok(0));
        check(json!(""), Ok(0));
        check(json!(1_800_000_000), Ok(1_800_000_000));
        check(json!("1800000000"), Ok(1_800_000_000));
        check(json!(86_400), Ok(day + 86_400));
        check(json!("3 days"), Ok(day + 3 * 86_400));
        check(json!("1d"), Ok(day + 86_400));
        check(json!("1 week"), Ok(day + 7 * 86_400));
        check(json!("2024-07-01"), Ok(1_719_792_000));
        check(json!("soon"), Err(()));
        check(json!(-5), Err(()));
        check(json!([1]), Err(()));
        check(json!("3 fortnights"), Err(()));
    }

    #[test]
    fn relative_lands_on_local_day_start() {
        let tz = TimeZone::get("America/New_York").unwrap();
        let got = parse_due(&json!("1 day"), now(), &tz).unwrap();
        // 2024-06-16 00:00 in New York is 04:00 UTC.
        assert_eq!(got, 1_718_409_600 + 86_400 + 4 * 3600);
        assert_eq!(days_from_now(1, now(), &tz), got);
    }
}
