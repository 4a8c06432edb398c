//! Event timestamps to microseconds since the Unix epoch, UTC.
//!
//! CloudTrail writes `2023-07-10T11:45:38Z`, GCP writes nanoseconds
//! (`2025-03-17T22:51:40.457123456Z`); both are handled by a fast path without
//! allocation. Anything else RFC 3339 allows (offsets, lowercase separators) goes through
//! chrono.

/// Parses an RFC 3339 timestamp, and the forms SIEM and data-lake exports write: a
/// space instead of `T`, no zone (UTC). The error says what is wrong with it.
pub(crate) fn parse_timestamp_micros(text: &str) -> Result<(i64, Leniencies), String> {
    if let Some(micros) = fast_utc(text.as_bytes()) {
        return Ok((micros, Leniencies::default()));
    }
    // RFC 3339 allows a space for readability, but the providers never write one.
    let spaced = text.as_bytes().get(10) == Some(&b' ');
    let mut lenient = Leniencies::default();
    if spaced {
        lenient = lenient.with(LenientReason::TimeSpaceSeparator);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok((t.timestamp_micros(), lenient));
    }
    let with_zone = if spaced {
        "%Y-%m-%d %H:%M:%S%.f%#z"
    } else {
        "%Y-%m-%dT%H:%M:%S%.f%#z"
    };
    // Its error is the one reported: it names what is wrong with a date or a time.
    let zoned = match chrono::DateTime::parse_from_str(text, with_zone) {
        Ok(t) => return Ok((t.timestamp_micros(), lenient)),
        Err(e) => e,
    };
    let without_zone = if spaced {
        "%Y-%m-%d %H:%M:%S%.f"
    } else {
        "%Y-%m-%dT%H:%M:%S%.f"
    };
    match chrono::NaiveDateTime::parse_from_str(text, without_zone) {
        Ok(t) => Ok((
            t.and_utc().timestamp_micros(),
            lenient.with(LenientReason::TimeWithoutZone),
        )),
        Err(_) => Err(format!(
            "`{}` is not an RFC 3339 timestamp: {zoned}",
            excerpt(text)
        )),
    }
}

use crate::outcome::{Leniencies, LenientReason};

fn excerpt(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, validated; `None` sends the text to the slow path.
fn fast_utc(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    let fraction = &b[19..b.len() - 1];
    let micros = match fraction {
        [] => 0,
        [b'.', rest @ ..] if (1..=9).contains(&rest.len()) => {
            let mut value = 0i64;
            for i in 0..6 {
                let d = match rest.get(i) {
                    Some(c) if c.is_ascii_digit() => i64::from(c - b'0'),
                    Some(_) => return None,
                    None => 0,
                };
                value = value * 10 + d;
            }
            if !rest.iter().all(u8::is_ascii_digit) {
                return None;
            }
            value
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000_000 + micros)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_micros(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("valid")
            .timestamp_micros()
    }

    #[test]
    fn fast_path_agrees_with_chrono() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2023-07-10T11:45:38Z",
            "2000-02-29T23:59:59Z",
            "2025-03-17T22:51:40.457123456Z",
            "2025-03-17T22:51:40.4Z",
            "1969-12-31T23:59:59.999999Z",
            "2100-03-01T00:00:00Z",
        ] {
            assert_eq!(
                fast_utc(text.as_bytes()),
                Some(chrono_micros(text)),
                "{text}"
            );
        }
    }

    fn reasons(text: &str) -> (i64, Vec<LenientReason>) {
        let (micros, lenient) = parse_timestamp_micros(text).expect(text);
        (micros, lenient.iter().collect())
    }

    #[test]
    fn offsets_and_lowercase_go_through_the_slow_path() {
        let expected = chrono_micros("2023-07-10T11:45:38Z");
        assert_eq!(reasons("2023-07-10T13:45:38+02:00"), (expected, vec![]));
        assert_eq!(reasons("2023-07-10t11:45:38z"), (expected, vec![]));
    }

    #[test]
    fn exporters_forms_are_accepted_and_named() {
        use LenientReason::{TimeSpaceSeparator, TimeWithoutZone};
        let expected = chrono_micros("2023-07-10T11:45:38.123456Z");
        assert_eq!(
            reasons("2023-07-10 11:45:38.123456Z"),
            (expected, vec![TimeSpaceSeparator])
        );
        assert_eq!(
            reasons("2023-07-10 13:45:38.123456+02:00"),
            (expected, vec![TimeSpaceSeparator])
        );
        assert_eq!(
            reasons("2023-07-10T11:45:38.123456"),
            (expected, vec![TimeWithoutZone])
        );
        // Nine fractional digits, as data-lake exports write them, without a zone.
        assert_eq!(
            reasons("2023-07-10 11:45:38.123456789"),
            (expected, vec![TimeSpaceSeparator, TimeWithoutZone])
        );
        assert_eq!(
            reasons("2023-07-10T11:45:38.123456789Z"),
            (expected, vec![])
        );
    }

    #[test]
    fn impossible_dates_are_rejected_with_the_text() {
        for text in [
            "ThisIsAWrongEventTime",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-07-10T24:00:00Z",
            "2023-07-10",
            "2023-07-10 11:45",
            "10/07/2023 11:45:38",
            "",
        ] {
            let err = parse_timestamp_micros(text).expect_err(text);
            assert!(err.contains("not an RFC 3339 timestamp"), "{err}");
        }
    }
}
