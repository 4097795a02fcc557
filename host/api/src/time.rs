//! Times on the wire: the API takes a point in time as RFC 3339 text
//! (`2026-05-01T12:00:00Z`, `2026-05-01T14:00:00+02:00`, a bare date
//! `2026-05-01` meaning its midnight UTC) or as milliseconds since the Unix
//! epoch, and shows times as milliseconds (`*_ms` fields). The CLI formats
//! those milliseconds with [`format_ms`].
//!
//! A few lines of calendar arithmetic (Howard Hinnant's civil-date
//! algorithms) instead of a date-time crate: only UTC, only the Gregorian
//! calendar, nothing about time zones beyond fixed offsets.

/// Parses a point in time: digits (optionally signed) are milliseconds
/// since the Unix epoch; anything else must be RFC 3339 (or a bare date).
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map_err(|_| format!("time {text:?} is out of range"));
    }
    parse_rfc3339(text).ok_or_else(|| {
        format!(
            "time {text:?} is neither RFC 3339 (2026-05-01T12:00:00Z) nor milliseconds since the epoch"
        )
    })
}

/// Formats milliseconds since the Unix epoch as RFC 3339 in UTC, with
/// milliseconds when they are not zero: `2026-05-01T12:00:00.250Z`.
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    if millis == 0 {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
    }
}

fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<i64> {
        let part = text.get(from..from + len)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if bytes.len() < 10 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if bytes.len() == 10 {
        return Some(days * 86_400_000);
    }
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        || bytes.get(13) != Some(&b':')
        || bytes.get(16) != Some(&b':')
    {
        return None;
    }
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    // 60 allows a leap second, which is folded into the next minute.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if bytes.get(at) == Some(&b'.') {
        let start = at + 1;
        let mut end = start;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        // Milliseconds: the first three digits, padded; finer digits dropped.
        let mut digits: String = text[start..end.min(start + 3)].to_string();
        while digits.len() < 3 {
            digits.push('0');
        }
        millis = digits.parse::<i64>().ok()?;
        at = end;
    }
    let offset_minutes = match bytes.get(at) {
        Some(b'Z' | b'z') if at + 1 == bytes.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == bytes.len() && bytes.get(at + 3) == Some(&b':') => {
            let (h, m) = (number(at + 1, 2)?, number(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
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

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_pass_through() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("1714564800000"), Ok(1_714_564_800_000));
        assert_eq!(parse_time("-5"), Ok(-5));
    }

    #[test]
    fn rfc3339_in_utc_and_with_offsets_is_understood() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2024-05-01T12:00:00Z"), Ok(1_714_564_800_000));
        assert_eq!(
            parse_time("2024-05-01T14:00:00+02:00"),
            Ok(1_714_564_800_000)
        );
        assert_eq!(
            parse_time("2024-05-01T11:30:00-00:30"),
            Ok(1_714_564_800_000)
        );
        assert_eq!(parse_time("2024-05-01t12:00:00.25z"), Ok(1_714_564_800_250));
        assert_eq!(
            parse_time("2024-05-01 12:00:00.123456Z"),
            Ok(1_714_564_800_123)
        );
        assert_eq!(parse_time("2024-05-01"), Ok(1_714_521_600_000));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
    }

    #[test]
    fn malformed_times_are_refused_with_the_expected_forms() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2023-02-29",
            "2024-05-01T25:00:00Z",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00+0200",
            "2024-05-01T12:00:00.Z",
            "99999999999999999999",
        ] {
            let err = parse_time(bad).err();
            assert!(err.is_some(), "{bad:?} was accepted");
        }
        let err = parse_time("soon").err().unwrap_or_default();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn formatting_round_trips() {
        for ms in [
            0,
            1_714_564_800_000,
            1_714_564_800_250,
            951_782_400_000,
            -86_400_000,
        ] {
            assert_eq!(parse_time(&format_ms(ms)), Ok(ms), "{}", format_ms(ms));
        }
        assert_eq!(format_ms(1_714_564_800_000), "2024-05-01T12:00:00Z");
        assert_eq!(format_ms(1_714_564_800_250), "2024-05-01T12:00:00.250Z");
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
    }
}
