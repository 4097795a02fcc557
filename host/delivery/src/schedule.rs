//! Schedules: a cron expression in a time zone, its occurrences, what a
//! scheduler does with the occurrences it missed (the catch-up policy), and
//! the event each firing delivers (key and payload templates).
//!
//! Pure: the caller passes times (milliseconds since the Unix epoch); no
//! clock, no Kafka. The manifest's `[[schedules]]` tables deserialize into
//! [`ScheduleSpec`]; [`Schedule::parse`] checks one (the cron expression
//! with croner, seconds optional; the IANA time zone with chrono-tz; the
//! templates) and computes with it.
//!
//! # Templates
//!
//! `key` and `payload` are text with placeholders, replaced at each firing:
//!
//! | placeholder | value |
//! |---|---|
//! | `{{schedule}}` | the schedule's name |
//! | `{{scheduled_time}}` | the occurrence, RFC 3339 in the schedule's time zone (`2024-07-11T01:30:00+03:00`) |
//! | `{{scheduled_unix_ms}}` | the occurrence, ms since the Unix epoch |
//! | `{{scheduled_date}}` | its date in the time zone (`2024-07-11`) |
//! | `{{scheduled_date - 1d}}`, `{{scheduled_date + 2d}}` | that date moved by whole days |
//!
//! Anything else between `{{` and `}}` is refused when the manifest is
//! parsed. Values are inserted as they are (no JSON escaping is needed:
//! none contains a quote or a backslash).

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Days, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde::{Deserialize, Serialize};

use crate::duration_str;

/// Most occurrences a catch-up or a backfill handles at once; more are
/// refused (backfill) or the oldest dropped (catch-up, logged by the
/// caller): 10,000.
pub const MAX_OCCURRENCES: usize = 10_000;

/// An occurrence later than this after its time counts as missed (the
/// scheduler was down), so the catch-up policy applies to it: 60 s.
pub const LATE_AFTER_MS: i64 = 60_000;

/// What a scheduler does with the occurrences it missed while no host ran
/// it (the catch-up policy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Missed occurrences are dropped; the next one on time fires.
    Skip,
    /// Only the most recent missed occurrence fires (the default).
    #[default]
    Latest,
    /// Every missed occurrence within `catch_up_window` fires, oldest first.
    All,
}

/// One `[[schedules]]` table of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Its name: 1 to 64 of `a-z`, `0-9`, `-`, `_`; unique in the manifest.
    pub name: String,
    /// The cron expression: 5 fields (minute hour day-of-month month
    /// day-of-week) or 6 with seconds first; croner's syntax (`L`, `#`,
    /// `W`, names of months and days).
    pub cron: String,
    /// The IANA time zone the expression is read in; default `"UTC"`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The record key of each firing (a template); default the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The record value of each firing (a template); default
    /// `{"schedule":"{{schedule}}","scheduled_time":"{{scheduled_time}}"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// What happens to occurrences missed while no host ran the schedule.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// With `catch_up = "all"`, missed occurrences older than this are
    /// dropped; default one day.
    #[serde(default = "default_window", with = "duration_str")]
    pub catch_up_window: Duration,
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_window() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// The payload of a firing when the schedule names none.
pub const DEFAULT_PAYLOAD: &str =
    r#"{"schedule":"{{schedule}}","scheduled_time":"{{scheduled_time}}"}"#;

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The name is empty, too long or has other characters.
    #[error("schedule name {0:?}: use 1 to 64 of a-z, 0-9, - and _")]
    Name(String),
    /// The cron expression does not parse.
    #[error("schedule {name:?}: cron {cron:?}: {reason}")]
    Cron {
        /// The schedule.
        name: String,
        /// The expression.
        cron: String,
        /// croner's reason.
        reason: String,
    },
    /// The time zone is not an IANA name chrono-tz knows.
    #[error(
        "schedule {name:?}: unknown time zone {timezone:?} (an IANA name such as \"Asia/Riyadh\")"
    )]
    TimeZone {
        /// The schedule.
        name: String,
        /// The zone given.
        timezone: String,
    },
    /// A template has a placeholder this module does not know, or an
    /// unclosed `{{`.
    #[error("schedule {name:?}: {what}: {reason}")]
    Template {
        /// The schedule.
        name: String,
        /// `key` or `payload`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A range bound that is neither RFC 3339 nor a date.
    #[error("{0:?} is neither a date (2024-07-10) nor an RFC 3339 time (2024-07-10T00:00:00Z)")]
    Bound(String),
    /// A range asked of [`Schedule::occurrences`] holds too many.
    #[error("more than {MAX_OCCURRENCES} occurrences in the range")]
    TooMany,
}

/// A checked schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    spec: ScheduleSpec,
    cron: Cron,
    tz: Tz,
}

/// What one firing delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The schedule.
    pub schedule: String,
    /// The occurrence (ms since the Unix epoch).
    pub scheduled_at_ms: i64,
    /// Its id, `<schedule>@<scheduled_at_ms>`: the same for every host
    /// and every retry of this occurrence.
    pub id: String,
    /// The record key.
    pub key: String,
    /// The record value.
    pub payload: String,
    /// The occurrence in RFC 3339, in the schedule's time zone.
    pub scheduled_time: String,
}

impl Schedule {
    /// Checks `spec`.
    ///
    /// # Errors
    /// [`ScheduleError`] naming what is wrong.
    pub fn parse(spec: ScheduleSpec) -> Result<Self, ScheduleError> {
        let name_ok = !spec.name.is_empty()
            && spec.name.len() <= 64
            && spec
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(ScheduleError::Name(spec.name));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(&spec.cron)
            .map_err(|e| ScheduleError::Cron {
                name: spec.name.clone(),
                cron: spec.cron.clone(),
                reason: e.to_string(),
            })?;
        let tz: Tz = spec.timezone.parse().map_err(|_| ScheduleError::TimeZone {
            name: spec.name.clone(),
            timezone: spec.timezone.clone(),
        })?;
        let schedule = Schedule { spec, cron, tz };
        // Every placeholder must be known: render once.
        schedule.render(0)?;
        Ok(schedule)
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &ScheduleSpec {
        &self.spec
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// `ms` in the schedule's zone, cut to the whole second (occurrences
    /// are whole seconds, and croner keeps a start's fraction).
    fn at(&self, ms: i64) -> DateTime<Tz> {
        let utc = Utc
            .timestamp_millis_opt(ms.div_euclid(1000) * 1000)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        utc.with_timezone(&self.tz)
    }

    /// The first occurrence strictly after `after_ms`; `None` when there
    /// is none (a pattern that never matches again).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        self.cron
            .find_next_occurrence(&self.at(after_ms), false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The occurrences in `(after_ms, until_ms]`, oldest first.
    ///
    /// # Errors
    /// [`ScheduleError::TooMany`] beyond [`MAX_OCCURRENCES`].
    pub fn occurrences(&self, after_ms: i64, until_ms: i64) -> Result<Vec<i64>, ScheduleError> {
        let mut out = Vec::new();
        let mut at = after_ms;
        while let Some(next) = self.next_after(at) {
            if next > until_ms {
                break;
            }
            if out.len() == MAX_OCCURRENCES {
                return Err(ScheduleError::TooMany);
            }
            out.push(next);
            at = next;
        }
        Ok(out)
    }

    /// The occurrences to fire at `now_ms` when the last one fired was at
    /// `last_ms`: those in `(last_ms, now_ms]`, the late ones (older than
    /// [`LATE_AFTER_MS`]) filtered by the catch-up policy. Oldest first;
    /// at most [`MAX_OCCURRENCES`] (the oldest dropped).
    pub fn due(&self, last_ms: i64, now_ms: i64) -> Vec<i64> {
        // Only the occurrences the policy could keep are computed: a
        // per-second schedule down for a month is not walked.
        let floor = match self.spec.catch_up {
            CatchUp::All => now_ms.saturating_sub(millis(self.spec.catch_up_window)),
            CatchUp::Skip | CatchUp::Latest => now_ms.saturating_sub(LATE_AFTER_MS),
        };
        let start = last_ms.max(floor.saturating_sub(1));
        let mut due = match self.occurrences(start, now_ms) {
            Ok(due) => due,
            Err(_) => {
                // Too many: keep the newest MAX_OCCURRENCES.
                let mut all = Vec::new();
                let mut at = now_ms;
                while all.len() < MAX_OCCURRENCES {
                    // `now_ms` itself may be an occurrence: inclusive first.
                    let inclusive = all.is_empty();
                    match self.cron.find_previous_occurrence(&self.at(at), inclusive) {
                        Ok(prev) if prev.timestamp_millis() > start => {
                            at = prev.timestamp_millis();
                            all.push(at);
                        }
                        _ => break,
                    }
                }
                all.reverse();
                all
            }
        };
        if self.spec.catch_up == CatchUp::Latest {
            // The latest missed one, if any occurrence was missed.
            let late = (last_ms < floor)
                .then(|| {
                    self.cron
                        .find_previous_occurrence(&self.at(floor), true)
                        .ok()
                })
                .flatten()
                .map(|t| t.timestamp_millis())
                .filter(|t| *t > last_ms);
            if let Some(latest_missed) = late {
                if due.first().is_none_or(|first| *first > latest_missed) {
                    due.insert(0, latest_missed);
                }
            }
        }
        due
    }

    /// Reads a bound of a range of occurrences: RFC 3339 (`2024-07-10T00:00:00Z`),
    /// or a date (`2024-07-10`) in the schedule's time zone, which as a
    /// start means the day's first instant and as an end (`end`) its last
    /// millisecond.
    ///
    /// # Errors
    /// [`ScheduleError::Bound`] for text that is neither.
    pub fn bound_ms(&self, text: &str, end: bool) -> Result<i64, ScheduleError> {
        let text = text.trim();
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(at.timestamp_millis());
        }
        let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| ScheduleError::Bound(text.to_string()))?;
        let day = if end { date.succ_opt() } else { Some(date) }
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or_else(|| ScheduleError::Bound(text.to_string()))?;
        // The day's first instant in the zone (the earliest, should the
        // zone repeat midnight; the next valid one should it skip it).
        let start = self
            .tz
            .from_local_datetime(&day)
            .earliest()
            .or_else(|| {
                self.tz
                    .from_local_datetime(&(day + chrono::Duration::hours(1)))
                    .earliest()
            })
            .ok_or_else(|| ScheduleError::Bound(text.to_string()))?
            .timestamp_millis();
        Ok(if end { start - 1 } else { start })
    }

    /// The firing of the occurrence at `at_ms`.
    ///
    /// # Errors
    /// [`ScheduleError::Template`] for an unknown placeholder.
    pub fn render(&self, at_ms: i64) -> Result<Firing, ScheduleError> {
        let at = self.at(at_ms);
        let key = match &self.spec.key {
            Some(template) => self.fill(template, &at, "key")?,
            None => self.spec.name.clone(),
        };
        let payload = self.fill(
            self.spec.payload.as_deref().unwrap_or(DEFAULT_PAYLOAD),
            &at,
            "payload",
        )?;
        Ok(Firing {
            schedule: self.spec.name.clone(),
            scheduled_at_ms: at_ms,
            id: firing_id(&self.spec.name, at_ms),
            key,
            payload,
            scheduled_time: at.to_rfc3339(),
        })
    }

    fn fill(
        &self,
        template: &str,
        at: &DateTime<Tz>,
        what: &'static str,
    ) -> Result<String, ScheduleError> {
        let bad = |reason: String| ScheduleError::Template {
            name: self.spec.name.clone(),
            what,
            reason,
        };
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| bad("a {{ with no }}".into()))?;
            let name = after[..close].trim();
            self.placeholder(name, at, &mut out)
                .map_err(|reason| bad(format!("{{{{{name}}}}}: {reason}")))?;
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn placeholder(&self, name: &str, at: &DateTime<Tz>, out: &mut String) -> Result<(), String> {
        match name {
            "schedule" => out.push_str(&self.spec.name),
            "scheduled_time" => out.push_str(&at.to_rfc3339()),
            "scheduled_unix_ms" => {
                let _ = write!(out, "{}", at.timestamp_millis());
            }
            "scheduled_date" => {
                let _ = write!(out, "{}", at.date_naive());
            }
            other => {
                let shift = other
                    .strip_prefix("scheduled_date")
                    .map(str::trim)
                    .ok_or("unknown placeholder (see the schedules reference)")?;
                let (sign, days) = match shift.split_at_checked(1) {
                    Some(("-", days)) => (-1, days),
                    Some(("+", days)) => (1, days),
                    _ => return Err("expected scheduled_date - Nd or + Nd".into()),
                };
                let days: u64 = days
                    .trim()
                    .strip_suffix('d')
                    .and_then(|n| n.trim().parse().ok())
                    .filter(|n| *n <= 36_600)
                    .ok_or("expected a whole number of days, e.g. 1d")?;
                let date = at.date_naive();
                let moved = if sign < 0 {
                    date.checked_sub_days(Days::new(days))
                } else {
                    date.checked_add_days(Days::new(days))
                }
                .ok_or("date out of range")?;
                let _ = write!(out, "{moved}");
            }
        }
        Ok(())
    }
}

/// The id of the firing of `schedule` at `at_ms`: `<schedule>@<at_ms>`.
pub fn firing_id(schedule: &str, at_ms: i64) -> String {
    format!("{schedule}@{at_ms}")
}

/// Parses a firing id back to (schedule, ms); `None` if it is not one.
pub fn parse_firing_id(id: &str) -> Option<(&str, i64)> {
    let (name, at) = id.rsplit_once('@')?;
    Some((name, at.parse().ok()?))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(cron: &str) -> ScheduleSpec {
        ScheduleSpec {
            name: "nightly".into(),
            cron: cron.into(),
            timezone: "UTC".into(),
            key: None,
            payload: None,
            catch_up: CatchUp::Latest,
            catch_up_window: default_window(),
        }
    }

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    const MIN: i64 = 60_000;

    #[test]
    fn five_and_six_field_expressions_in_a_time_zone() {
        let every_minute = Schedule::parse(spec("* * * * *")).unwrap();
        let t = ms("2024-07-10T00:00:30Z");
        assert_eq!(every_minute.next_after(t), Some(ms("2024-07-10T00:01:00Z")));
        let every_10s = Schedule::parse(spec("*/10 * * * * *")).unwrap();
        assert_eq!(every_10s.next_after(t), Some(ms("2024-07-10T00:00:40Z")));
        // 01:30 in Riyadh (UTC+3) is 22:30 UTC the day before.
        let riyadh = Schedule::parse(ScheduleSpec {
            timezone: "Asia/Riyadh".into(),
            ..spec("30 1 * * *")
        })
        .unwrap();
        assert_eq!(
            riyadh.next_after(ms("2024-07-10T12:00:00Z")),
            Some(ms("2024-07-10T22:30:00Z"))
        );
        assert_eq!(
            riyadh
                .occurrences(ms("2024-07-01T00:00:00Z"), ms("2024-07-31T00:00:00Z"))
                .unwrap()
                .len(),
            30
        );
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        for (bad, want) in [
            (spec("not cron"), "cron"),
            (spec("61 * * * *"), "cron"),
            (
                ScheduleSpec {
                    timezone: "Mars/Olympus".into(),
                    ..spec("* * * * *")
                },
                "time zone",
            ),
            (
                ScheduleSpec {
                    name: "Bad Name".into(),
                    ..spec("* * * * *")
                },
                "name",
            ),
            (
                ScheduleSpec {
                    payload: Some("{{nope}}".into()),
                    ..spec("* * * * *")
                },
                "placeholder",
            ),
            (
                ScheduleSpec {
                    payload: Some("{{scheduled_date - x}}".into()),
                    ..spec("* * * * *")
                },
                "days",
            ),
            (
                ScheduleSpec {
                    key: Some("{{schedule".into()),
                    ..spec("* * * * *")
                },
                "no }}",
            ),
        ] {
            let err = Schedule::parse(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should mention {want}");
        }
    }

    #[test]
    fn templates_give_the_scheduled_date_moved_by_days_in_the_time_zone() {
        let s = Schedule::parse(ScheduleSpec {
            timezone: "Asia/Riyadh".into(),
            key: Some("day-{{scheduled_date}}".into()),
            payload: Some(
                r#"{"date":"{{scheduled_date - 1d}}","next":"{{ scheduled_date + 1d }}","at":"{{scheduled_time}}","ms":{{scheduled_unix_ms}},"s":"{{schedule}}"}"#
                    .into(),
            ),
            ..spec("30 1 * * *")
        })
        .unwrap();
        // 2024-07-10T22:30Z is 01:30 on the 11th in Riyadh.
        let at = ms("2024-07-10T22:30:00Z");
        let firing = s.render(at).unwrap();
        assert_eq!(firing.key, "day-2024-07-11");
        assert_eq!(firing.id, format!("nightly@{at}"));
        assert_eq!(firing.scheduled_time, "2024-07-11T01:30:00+03:00");
        let payload: serde_json::Value = serde_json::from_str(&firing.payload).unwrap();
        assert_eq!(payload["date"], "2024-07-10");
        assert_eq!(payload["next"], "2024-07-12");
        assert_eq!(payload["at"], "2024-07-11T01:30:00+03:00");
        assert_eq!(payload["ms"], at);
        assert_eq!(payload["s"], "nightly");
        let default = Schedule::parse(spec("* * * * *"))
            .unwrap()
            .render(0)
            .unwrap();
        assert_eq!(
            default.payload,
            r#"{"schedule":"nightly","scheduled_time":"1970-01-01T00:00:00+00:00"}"#
        );
        assert_eq!(parse_firing_id(&firing.id), Some(("nightly", at)));
        assert_eq!(parse_firing_id("x"), None);
    }

    #[test]
    fn the_catch_up_policy_decides_what_missed_occurrences_fire() {
        let t0 = ms("2024-07-10T00:00:00Z");
        let now = t0 + 10 * MIN + 5_000; // 10 minutes down, 5 s after 00:10
        let with = |catch_up| {
            Schedule::parse(ScheduleSpec {
                catch_up,
                ..spec("* * * * *")
            })
            .unwrap()
        };
        // On time: the occurrence of this minute fires, whatever the policy.
        for policy in [CatchUp::Skip, CatchUp::Latest, CatchUp::All] {
            assert_eq!(with(policy).due(t0 + 9 * MIN, now), [t0 + 10 * MIN]);
        }
        assert_eq!(with(CatchUp::Skip).due(t0, now), [t0 + 10 * MIN]);
        assert_eq!(
            with(CatchUp::Latest).due(t0, now),
            [t0 + 9 * MIN, t0 + 10 * MIN],
            "the latest missed one, then this minute's"
        );
        let all: Vec<i64> = (1..=10).map(|i| t0 + i * MIN).collect();
        assert_eq!(with(CatchUp::All).due(t0, now), all);
        // The window bounds `all`.
        let windowed = Schedule::parse(ScheduleSpec {
            catch_up: CatchUp::All,
            catch_up_window: Duration::from_secs(3 * 60),
            ..spec("* * * * *")
        })
        .unwrap();
        assert_eq!(
            windowed.due(t0, now),
            [t0 + 8 * MIN, t0 + 9 * MIN, t0 + 10 * MIN]
        );
        // Nothing due.
        assert_eq!(with(CatchUp::All).due(now, now + 1), Vec::<i64>::new());
        // Down for a year on a per-second schedule: bounded.
        let busy = Schedule::parse(ScheduleSpec {
            catch_up: CatchUp::All,
            catch_up_window: Duration::from_secs(365 * 86_400),
            ..spec("* * * * * *")
        })
        .unwrap();
        let due = busy.due(t0, t0 + 365 * 86_400_000);
        assert_eq!(due.len(), MAX_OCCURRENCES);
        assert_eq!(due.last(), Some(&(t0 + 365 * 86_400_000)));
    }

    #[test]
    fn range_bounds_are_dates_in_the_time_zone_or_rfc3339() {
        let riyadh = Schedule::parse(ScheduleSpec {
            timezone: "Asia/Riyadh".into(),
            ..spec("30 1 * * *")
        })
        .unwrap();
        assert_eq!(
            riyadh.bound_ms("2024-07-10", false).unwrap(),
            ms("2024-07-09T21:00:00Z")
        );
        assert_eq!(
            riyadh.bound_ms("2024-07-10", true).unwrap(),
            ms("2024-07-10T21:00:00Z") - 1
        );
        assert_eq!(
            riyadh.bound_ms("2024-07-10T05:00:00Z", true).unwrap(),
            ms("2024-07-10T05:00:00Z")
        );
        assert!(riyadh.bound_ms("10/07/2024", false).is_err());
        // "Re-run 2024-07-10": its one occurrence (01:30 Riyadh).
        let (from, to) = (
            riyadh.bound_ms("2024-07-10", false).unwrap(),
            riyadh.bound_ms("2024-07-10", true).unwrap(),
        );
        assert_eq!(
            riyadh.occurrences(from - 1, to).unwrap(),
            [ms("2024-07-09T22:30:00Z")]
        );
    }

    #[test]
    fn a_time_daylight_saving_skips_fires_at_the_next_valid_one_and_a_repeated_one_once() {
        let in_new_york = |cron: &str| {
            Schedule::parse(ScheduleSpec {
                timezone: "America/New_York".into(),
                ..spec(cron)
            })
            .unwrap()
        };
        let times = |s: &Schedule, from: &str, to: &str| -> Vec<String> {
            s.occurrences(ms(from), ms(to))
                .unwrap()
                .into_iter()
                .map(|at| s.render(at).unwrap().scheduled_time)
                .collect()
        };
        // 2024-03-10: 02:00-03:00 does not exist.
        assert_eq!(
            times(
                &in_new_york("30 2 * * *"),
                "2024-03-09T00:00:00Z",
                "2024-03-12T00:00:00Z"
            ),
            [
                "2024-03-09T02:30:00-05:00",
                "2024-03-10T03:00:00-04:00",
                "2024-03-11T02:30:00-04:00"
            ]
        );
        // 2024-11-03: 01:00-02:00 happens twice.
        assert_eq!(
            times(
                &in_new_york("30 1 * * *"),
                "2024-11-02T00:00:00Z",
                "2024-11-05T00:00:00Z"
            ),
            [
                "2024-11-02T01:30:00-04:00",
                "2024-11-03T01:30:00-04:00",
                "2024-11-04T01:30:00-05:00"
            ]
        );
    }

    #[test]
    fn a_backfill_range_is_bounded() {
        let s = Schedule::parse(spec("* * * * * *")).unwrap();
        assert_eq!(
            s.occurrences(0, 2 * 86_400_000).unwrap_err(),
            ScheduleError::TooMany
        );
        let daily = Schedule::parse(spec("0 0 * * *")).unwrap();
        let t0 = ms("2024-06-10T00:00:00Z");
        assert_eq!(
            daily
                .occurrences(t0 - 1, t0 + 29 * 86_400_000)
                .unwrap()
                .len(),
            30
        );
    }
}
