//! Durations as short human strings: `"500ms"`, `"10s"`, `"5m"`, `"1h30m"`.
//!
//! This module owns the text form of durations in configuration (actor
//! manifests, host config): [`parse`], [`format()`], and serde helpers for
//! `#[serde(with = "wactor_delivery::duration_str")]` and, for optional
//! durations, `#[serde(with = "wactor_delivery::duration_str::option")]`.
//!
//! Grammar: one or more `<integer><unit>` parts, optionally separated by
//! spaces, summed; units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, `d`.
//! A bare `0` is zero. Numbers without a unit are refused, since a bare
//! `1000` could mean seconds or milliseconds. [`format()`] writes the exact
//! value with units from hours down (`24h`, `1m30s`, `1s500ms`), which
//! [`parse`] reads back to the same duration.

use std::fmt;
use std::time::Duration;

use serde::{de, Deserializer, Serializer};

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationParseError {
    /// Nothing but whitespace.
    #[error("empty duration")]
    Empty,
    /// A part does not start with a number.
    #[error("expected a number at {0:?}")]
    ExpectedNumber(String),
    /// A number with no unit after it.
    #[error("number without a unit at {0:?} (units: ns, us, ms, s, m, h, d)")]
    MissingUnit(String),
    /// A unit that is not one of the known ones.
    #[error("unknown unit {0:?} (units: ns, us, ms, s, m, h, d)")]
    UnknownUnit(String),
    /// The total does not fit a `Duration`.
    #[error("duration too large")]
    Overflow,
}

/// Parses a duration such as `"500ms"`, `"10s"`, `"5m"`, `"1h"` or `"1h30m"`.
pub fn parse(text: &str) -> Result<Duration, DurationParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationParseError::Empty);
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(DurationParseError::ExpectedNumber(rest.to_owned()));
        }
        let (number, after) = rest.split_at(digits);
        let number: u64 = number.parse().map_err(|_| DurationParseError::Overflow)?;
        let unit_len = after.len() - after.trim_start_matches(char::is_alphabetic).len();
        if unit_len == 0 {
            return Err(DurationParseError::MissingUnit(rest.to_owned()));
        }
        let (unit, after) = after.split_at(unit_len);
        let part = match unit {
            "ns" => Some(Duration::from_nanos(number)),
            "us" | "µs" => Some(Duration::from_micros(number)),
            "ms" => Some(Duration::from_millis(number)),
            "s" => Some(Duration::from_secs(number)),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            "d" => number.checked_mul(86_400).map(Duration::from_secs),
            _ => return Err(DurationParseError::UnknownUnit(unit.to_owned())),
        };
        total = part
            .and_then(|part| total.checked_add(part))
            .ok_or(DurationParseError::Overflow)?;
        rest = after.trim_start();
    }
    Ok(total)
}

/// Writes a duration in the form [`parse`] reads, exactly: `"24h"`,
/// `"1m30s"`, `"1s500ms"`, `"0s"`.
pub fn format(duration: Duration) -> String {
    Formatted(duration).to_string()
}

/// `Display` of the text form, so serializing does not build a `String`.
struct Formatted(Duration);

impl fmt::Display for Formatted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let duration = self.0;
        if duration.is_zero() {
            return f.write_str("0s");
        }
        let secs = duration.as_secs();
        let nanos = duration.subsec_nanos();
        let parts = [
            (secs / 3600, "h"),
            (secs / 60 % 60, "m"),
            (secs % 60, "s"),
            (u64::from(nanos / 1_000_000), "ms"),
            (u64::from(nanos / 1_000 % 1_000), "us"),
            (u64::from(nanos % 1_000), "ns"),
        ];
        for (value, unit) in parts {
            if value != 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}

/// Serializes a `Duration` as its text form.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&Formatted(*duration))
}

/// Deserializes a `Duration` from its text form.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor)
}

/// Reads a duration string.
struct DurationVisitor;

impl de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"500ms\", \"10s\", \"5m\" or \"1h\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(|err| E::custom(format_args!("invalid duration {text:?}: {err}")))
    }
}

/// Serde helpers for `Option<Duration>`: `None` is written `"none"` (TOML has
/// no null, and an omitted field would read back as its default), and read
/// from `"none"` or a null.
pub mod option {
    use super::*;

    /// The text form of `None`.
    pub const NONE: &str = "none";

    /// Serializes an optional duration; `None` as `"none"`.
    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, serializer),
            None => serializer.serialize_str(NONE),
        }
    }

    /// Deserializes an optional duration from its text form, `"none"` or a
    /// null.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_option(OptionVisitor)
    }

    /// Reads a duration string, `"none"` or a null.
    struct OptionVisitor;

    impl<'de> de::Visitor<'de> for OptionVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"10s\" or \"1h\", or \"none\"")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_str(self)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            if text.trim() == NONE {
                return Ok(None);
            }
            DurationVisitor.visit_str(text).map(Some)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[test]
    fn every_unit_parses() {
        assert_eq!(parse("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse("7us"), Ok(Duration::from_micros(7)));
        assert_eq!(parse("7µs"), Ok(Duration::from_micros(7)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn parts_add_up_and_may_be_spaced() {
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse(" 1m 30s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1s500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn malformed_durations_are_refused_with_a_reason() {
        assert_eq!(parse(""), Err(DurationParseError::Empty));
        assert_eq!(parse("  "), Err(DurationParseError::Empty));
        assert_eq!(
            parse("1000"),
            Err(DurationParseError::MissingUnit("1000".into()))
        );
        assert_eq!(
            parse("5 s"),
            Err(DurationParseError::MissingUnit("5 s".into()))
        );
        assert_eq!(
            parse("ms"),
            Err(DurationParseError::ExpectedNumber("ms".into()))
        );
        assert_eq!(
            parse("-1s"),
            Err(DurationParseError::ExpectedNumber("-1s".into()))
        );
        assert_eq!(
            parse("1.5s"),
            Err(DurationParseError::MissingUnit("1.5s".into()))
        );
        assert_eq!(
            parse("3sec"),
            Err(DurationParseError::UnknownUnit("sec".into()))
        );
        assert_eq!(
            parse("99999999999999999999s"),
            Err(DurationParseError::Overflow)
        );
        assert_eq!(
            parse("18446744073709551615d"),
            Err(DurationParseError::Overflow)
        );
    }

    #[test]
    fn format_is_exact_and_reads_back() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(86_400), "24h"),
            (Duration::from_millis(1500), "1s500ms"),
            (Duration::new(3661, 1_001_001), "1h1m1s1ms1us1ns"),
        ];
        for (duration, text) in cases {
            assert_eq!(format(duration), text);
            assert_eq!(parse(text), Ok(duration));
        }
        assert_eq!(parse(&format(Duration::MAX)), Ok(Duration::MAX));
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Config {
        #[serde(with = "crate::duration_str")]
        every: Duration,
        #[serde(with = "crate::duration_str::option")]
        limit: Option<Duration>,
    }

    #[test]
    fn serde_reads_and_writes_the_text_form() {
        let config: Config = toml::from_str("every = \"10s\"\nlimit = \"none\"").unwrap();
        assert_eq!(
            config,
            Config {
                every: Duration::from_secs(10),
                limit: None
            }
        );
        let text = toml::to_string(&config).unwrap();
        assert_eq!(text, "every = \"10s\"\nlimit = \"none\"\n");
        let config: Config = serde_json::from_str(r#"{"every": "1m", "limit": "2h"}"#).unwrap();
        assert_eq!(config.limit, Some(Duration::from_secs(7200)));
        let config: Config = serde_json::from_str(r#"{"every": "1m", "limit": null}"#).unwrap();
        assert_eq!(config.limit, None);
    }

    #[test]
    fn serde_errors_name_the_bad_duration() {
        let err = toml::from_str::<Config>("every = \"10\"\nlimit = \"none\"").unwrap_err();
        assert!(err.to_string().contains("invalid duration \"10\""), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"every": 10, "limit": null}"#).unwrap_err();
        assert!(err.to_string().contains("a duration such as"), "{err}");
    }
}
