//! The actors' own log lines kept in memory for `wactor logs` (the admin
//! API's `GET /v1/actors/{name}/logs`): one bounded ring per actor, each
//! line with its event's coordinates, the version that ran and the call's
//! outcome. This module owns the rings and their queries; the lines still
//! go to the host's tracing output too (call.rs).
//!
//! Limits:
//! - [`LINES_PER_ACTOR`] lines per actor; at the limit the oldest line is
//!   dropped and counted ([`LogPage::dropped`]).
//! - Each line is already cut by the runtime at
//!   [`wactor_runtime::MAX_LOG_LINE_BYTES`] (and a call keeps at most
//!   `Limits::max_log_lines` lines).
//!
//! Nothing survives a restart and nothing is shared between hosts: each
//! host keeps the lines of the calls it ran. Sequence numbers are per
//! actor, start at 1 and only grow, so a follower polls with `after`.
//! Lines are the guest's untrusted text, kept as text (the CLI escapes
//! control characters when it prints them).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use wactor_runtime::{LogLevel, LogLine};

/// Lines kept per actor.
pub const LINES_PER_ACTOR: usize = 1000;

/// One kept line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorLogLine {
    /// Per-actor sequence number, from 1.
    pub sequence: u64,
    /// Severity.
    pub level: LogLevel,
    /// The call it came from (shared by that call's lines).
    pub call: Arc<CallCoordinates>,
    /// The text.
    pub message: String,
}

/// What one call's lines share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCoordinates {
    /// When the call started, ms since the epoch.
    pub time_ms: i64,
    /// The version that ran.
    pub version: u64,
    /// The event's topic.
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its display key.
    pub key: Arc<str>,
    /// The attempt number.
    pub attempt: u32,
    /// The call's outcome.
    pub outcome: &'static str,
}

/// Which lines a query wants.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only lines at this level or above.
    pub min_level: Option<LogLevel>,
    /// Only lines of calls started at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only lines with a sequence above this one; then the first `limit`
    /// lines are returned (for following), otherwise the last `limit`.
    pub after: Option<u64>,
    /// At most this many lines.
    pub limit: usize,
}

/// A query's answer.
#[derive(Debug, Clone, Default)]
pub struct LogPage {
    /// Matching lines, oldest first.
    pub lines: Vec<ActorLogLine>,
    /// The last sequence number given so far to any line of this actor
    /// (0: none yet); poll with `after` = the last line's sequence.
    pub last_sequence: u64,
    /// Lines dropped from the ring since the host started.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Ring {
    lines: VecDeque<ActorLogLine>,
    last_sequence: u64,
    dropped: u64,
}

/// One actor's ring.
#[derive(Debug)]
pub struct ActorLogRing {
    capacity: usize,
    ring: Mutex<Ring>,
}

impl Default for ActorLogRing {
    fn default() -> Self {
        ActorLogRing::with_capacity(LINES_PER_ACTOR)
    }
}

impl ActorLogRing {
    /// A ring keeping `capacity` lines (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        ActorLogRing {
            capacity,
            ring: Mutex::new(Ring::default()),
        }
    }

    /// Keeps one call's lines (one lock for all of them), taking their
    /// text without copying it.
    pub fn push_call(&self, call: CallCoordinates, lines: Vec<LogLine>) {
        if lines.is_empty() {
            return;
        }
        let call = Arc::new(call);
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        for line in lines {
            if ring.lines.len() >= self.capacity {
                ring.lines.pop_front();
                ring.dropped += 1;
            }
            ring.last_sequence += 1;
            let sequence = ring.last_sequence;
            ring.lines.push_back(ActorLogLine {
                sequence,
                level: line.level,
                call: call.clone(),
                message: line.message,
            });
        }
    }

    /// The lines matching `filter`, oldest first.
    pub fn query(&self, filter: &LogFilter) -> LogPage {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let matches = |line: &&ActorLogLine| {
            filter.min_level.is_none_or(|min| line.level >= min)
                && filter
                    .since_ms
                    .is_none_or(|since| line.call.time_ms >= since)
                && filter.after.is_none_or(|after| line.sequence > after)
        };
        let lines = if filter.after.is_some() {
            ring.lines
                .iter()
                .filter(matches)
                .take(filter.limit)
                .cloned()
                .collect()
        } else {
            let mut last: Vec<ActorLogLine> = ring
                .lines
                .iter()
                .rev()
                .filter(matches)
                .take(filter.limit)
                .cloned()
                .collect();
            last.reverse();
            last
        };
        LogPage {
            lines,
            last_sequence: ring.last_sequence,
            dropped: ring.dropped,
        }
    }
}

/// Every actor's ring on this host.
#[derive(Debug, Default)]
pub struct ActorLogs {
    rings: Mutex<HashMap<String, Arc<ActorLogRing>>>,
}

impl ActorLogs {
    /// The ring of `actor`, made on first use and kept until the host
    /// stops (across restarts of its consumer and removal, so sequence
    /// numbers never go back; memory stays bounded by actors x
    /// [`LINES_PER_ACTOR`]).
    pub fn ring(&self, actor: &str) -> Arc<ActorLogRing> {
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings.entry(actor.to_string()).or_default().clone()
    }

    /// The lines of `actor` matching `filter` (empty when it logged
    /// nothing on this host).
    pub fn query(&self, actor: &str, filter: &LogFilter) -> LogPage {
        let ring = {
            let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
            rings.get(actor).cloned()
        };
        ring.map(|ring| ring.query(filter)).unwrap_or_default()
    }

    /// Forgets an actor's lines (when it is removed).
    pub fn forget(&self, actor: &str) {
        self.rings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(actor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(time_ms: i64, offset: i64) -> CallCoordinates {
        CallCoordinates {
            time_ms,
            version: 2,
            topic: "orders".into(),
            partition: 1,
            offset,
            key: "k".into(),
            attempt: 1,
            outcome: "done",
        }
    }

    fn line(level: LogLevel, message: &str) -> LogLine {
        LogLine {
            level,
            message: message.into(),
        }
    }

    fn all() -> LogFilter {
        LogFilter {
            limit: usize::MAX,
            ..LogFilter::default()
        }
    }

    #[test]
    fn the_ring_is_bounded_and_counts_what_it_drops() {
        let ring = ActorLogRing::with_capacity(3);
        for i in 0..5 {
            ring.push_call(call(i, i), vec![line(LogLevel::Info, &format!("line {i}"))]);
        }
        let page = ring.query(&all());
        let messages: Vec<_> = page.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["line 2", "line 3", "line 4"]);
        assert_eq!(page.dropped, 2);
        assert_eq!(page.last_sequence, 5);
        assert_eq!(page.lines[0].sequence, 3);
        assert_eq!(page.lines[0].call.offset, 2);
        assert_eq!(&*page.lines[0].call.topic, "orders");
    }

    #[test]
    fn filters_by_level_since_and_after() {
        let ring = ActorLogRing::default();
        ring.push_call(
            call(1000, 1),
            vec![line(LogLevel::Debug, "a"), line(LogLevel::Warn, "b")],
        );
        ring.push_call(
            call(2000, 2),
            vec![line(LogLevel::Error, "c"), line(LogLevel::Info, "d")],
        );
        let messages = |filter: LogFilter| -> Vec<String> {
            ring.query(&filter)
                .lines
                .into_iter()
                .map(|l| l.message)
                .collect()
        };
        let warn = LogFilter {
            min_level: Some(LogLevel::Warn),
            ..all()
        };
        assert_eq!(messages(warn), ["b", "c"]);
        let since = LogFilter {
            since_ms: Some(2000),
            ..all()
        };
        assert_eq!(messages(since), ["c", "d"]);
        let after = LogFilter {
            after: Some(2),
            ..all()
        };
        assert_eq!(messages(after), ["c", "d"]);
        // With after: the first `limit`; without: the last `limit`.
        let first = LogFilter {
            after: Some(0),
            limit: 1,
            ..all()
        };
        assert_eq!(messages(first), ["a"]);
        let last = LogFilter { limit: 1, ..all() };
        assert_eq!(messages(last), ["d"]);
    }

    #[test]
    fn unknown_actors_have_no_lines_and_rings_are_shared() {
        let logs = ActorLogs::default();
        assert!(logs.query("nobody", &all()).lines.is_empty());
        logs.ring("a")
            .push_call(call(1, 1), vec![line(LogLevel::Info, "x")]);
        assert_eq!(logs.query("a", &all()).lines.len(), 1);
        assert_eq!(logs.ring("a").query(&all()).last_sequence, 1);
    }
}
