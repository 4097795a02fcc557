//! The delay directive of an emitted record: the headers with which an
//! actor asks that a record be delivered later (wactor-kafka's `delayed`
//! module delivers it), and their check at emit time.
//!
//! - `wactor-delay-ms: <ms>`: deliver this many ms after the call ends;
//! - `wactor-deliver-at: <ms since the Unix epoch>`: deliver at that time
//!   (a time past means at once).
//!
//! At most [`MAX_DELAY`] (7 days) ahead; one of the two, not both.

use std::time::Duration;

/// Header an actor sets on an emit: deliver it this many ms after the call.
pub const HEADER_DELAY_MS: &str = "wactor-delay-ms";
/// Header an actor sets on an emit: deliver it at this time (ms since the
/// Unix epoch).
pub const HEADER_DELIVER_AT: &str = "wactor-deliver-at";

/// Longest delay: 7 days.
pub const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

fn max_delay_ms() -> i64 {
    i64::try_from(MAX_DELAY.as_millis()).unwrap_or(i64::MAX)
}

fn header<'a>(headers: &'a [(String, Option<Vec<u8>>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

fn parse_ms(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// What an emit's headers ask for: `Ok(None)` to deliver at once,
/// `Ok(Some(due_ms))` to deliver at that time (the call ending at
/// `now_ms`).
///
/// # Errors
/// A sentence for the actor: a directive that is not a whole number of
/// ms, both directives, or one beyond [`MAX_DELAY`].
pub fn due_of(headers: &[(String, Option<Vec<u8>>)], now_ms: i64) -> Result<Option<i64>, String> {
    let delay = header(headers, HEADER_DELAY_MS);
    let at = header(headers, HEADER_DELIVER_AT);
    let due = match (delay, at) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(format!(
                "emit: give {HEADER_DELAY_MS} or {HEADER_DELIVER_AT}, not both"
            ))
        }
        (Some(delay), None) => {
            let delay = parse_ms(delay)
                .filter(|d| *d >= 0)
                .ok_or_else(|| format!("emit: {HEADER_DELAY_MS} must be a whole number of ms"))?;
            if delay > max_delay_ms() {
                return Err(format!(
                    "emit: {HEADER_DELAY_MS} {delay} is more than 7 days ({} ms)",
                    max_delay_ms()
                ));
            }
            now_ms.saturating_add(delay)
        }
        (None, Some(at)) => {
            let at = parse_ms(at).ok_or_else(|| {
                format!("emit: {HEADER_DELIVER_AT} must be ms since the Unix epoch")
            })?;
            if at.saturating_sub(now_ms) > max_delay_ms() {
                return Err(format!(
                    "emit: {HEADER_DELIVER_AT} {at} is more than 7 days away"
                ));
            }
            at
        }
    };
    Ok(Some(due))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> (String, Option<Vec<u8>>) {
        (name.to_string(), Some(value.as_bytes().to_vec()))
    }

    #[test]
    fn a_delay_or_a_time_gives_the_due_time_within_seven_days() {
        let now = 1_000_000;
        assert_eq!(due_of(&[], now), Ok(None));
        assert_eq!(
            due_of(&[h(HEADER_DELAY_MS, "600000")], now),
            Ok(Some(now + 600_000))
        );
        assert_eq!(
            due_of(&[h(HEADER_DELIVER_AT, "5000000")], now),
            Ok(Some(5_000_000))
        );
        // In the past: due at once.
        assert_eq!(due_of(&[h(HEADER_DELIVER_AT, "5")], now), Ok(Some(5)));
        let week = max_delay_ms();
        assert_eq!(
            due_of(&[h(HEADER_DELAY_MS, &week.to_string())], now),
            Ok(Some(now + week))
        );
        for bad in [
            vec![h(HEADER_DELAY_MS, &(week + 1).to_string())],
            vec![h(HEADER_DELAY_MS, "-5")],
            vec![h(HEADER_DELAY_MS, "ten")],
            vec![h(HEADER_DELIVER_AT, &(now + week + 1).to_string())],
            vec![h(HEADER_DELAY_MS, "1"), h(HEADER_DELIVER_AT, "1")],
        ] {
            assert!(due_of(&bad, now).is_err(), "{bad:?}");
        }
    }
}
