//! `GET /v1/actors/{name}/logs`: an actor's own log lines (its `logging`
//! import) from the calls this host ran, each with its event's
//! coordinates, the version and the call's outcome, from the host's
//! bounded per-actor ring (wactor-kafka's `actor_logs`: the last 1000
//! lines per actor, oldest dropped and counted in `dropped`).
//!
//! Lines carry a per-actor `sequence` that only grows: `wactor logs
//! --follow` polls with `after` = the last sequence it printed.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use wactor_kafka::actor_logs::{ActorLogLine, LogFilter};
use wactor_runtime::LogLevel;

use crate::error::{ApiError, ApiResult};
use crate::extract::{non_empty, PathParams, Query};
use crate::ApiState;

/// How many lines a request gets when it gives no limit.
pub const DEFAULT_LIMIT: usize = 200;
/// Largest `limit` (a ring holds no more).
pub const MAX_LIMIT: usize = wactor_kafka::actor_logs::LINES_PER_ACTOR;

/// The query of `GET /v1/actors/{name}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Only lines of calls started since then: RFC 3339, milliseconds
    /// since the epoch, or a duration back from now (`10m`, `1h30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only lines at this level or above: trace, debug, info, warn, error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Only lines after this sequence number; then the oldest `limit`
    /// such lines, otherwise the newest `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// At most this many lines, 1 to 1000; default 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// One line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLineView {
    /// Per-actor sequence number.
    pub sequence: u64,
    /// When the call started, ms since the epoch.
    pub time_ms: i64,
    /// Severity.
    pub level: LogLevel,
    /// The version that ran.
    pub version: u64,
    /// The event's topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key as text (hex when not printable; `(none)`), cut at 64
    /// characters.
    pub key: String,
    /// The attempt number (1 for the first).
    pub attempt: u32,
    /// How the call ended: done, retry, dead, trap, failed.
    pub outcome: String,
    /// The actor's text, as it wrote it (at most 4096 bytes).
    pub message: String,
}

impl From<&ActorLogLine> for LogLineView {
    fn from(line: &ActorLogLine) -> Self {
        LogLineView {
            sequence: line.sequence,
            time_ms: line.call.time_ms,
            level: line.level,
            version: line.call.version,
            topic: line.call.topic.to_string(),
            partition: line.call.partition,
            offset: line.call.offset,
            key: line.call.key.to_string(),
            attempt: line.call.attempt,
            outcome: line.call.outcome.to_string(),
            message: line.message.clone(),
        }
    }
}

/// The answer of `GET /v1/actors/{name}/logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsView {
    /// Matching lines, oldest first.
    pub lines: Vec<LogLineView>,
    /// The newest sequence number of the actor (0: no line yet).
    pub last_sequence: u64,
    /// Lines dropped from the ring (it was full) since the host started.
    pub dropped: u64,
}

/// The routes of this module.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/actors/{name}/logs", get(list))
}

/// Parses a level name.
pub fn parse_level(text: &str) -> Result<LogLevel, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "trace" => Ok(LogLevel::Trace),
        "debug" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        "warn" | "warning" => Ok(LogLevel::Warn),
        "error" => Ok(LogLevel::Error),
        _ => Err(format!(
            "level {text:?} is not one of trace, debug, info, warn, error"
        )),
    }
}

/// Parses `since`: a duration back from `now_ms`, or a point in time.
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(back) = wactor_delivery::duration_str::parse(text) {
        let back = i64::try_from(back.as_millis()).unwrap_or(i64::MAX);
        return Ok(now_ms.saturating_sub(back));
    }
    crate::time::parse_time(text).map_err(|_| {
        format!(
            "since {text:?} is neither a duration (10m, 1h30m) nor RFC 3339 (2026-05-01T12:00:00Z)"
        )
    })
}

async fn list(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Json<LogsView>> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let min_level = non_empty(query.level)
        .map(|level| parse_level(&level))
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let now_ms = state.registry.parts().clock.now_ms();
    let since_ms = non_empty(query.since)
        .map(|since| parse_since(&since, now_ms))
        .transpose()
        .map_err(ApiError::BadRequest)?;
    // 404 for an actor the registry does not know.
    state.registry.actor(&name)?;
    let filter = LogFilter {
        min_level,
        since_ms,
        after: query.after,
        limit,
    };
    let page = state.registry.actor_logs().query(&name, &filter);
    Ok(Json(LogsView {
        lines: page.lines.iter().map(LogLineView::from).collect(),
        last_sequence: page.last_sequence,
        dropped: page.dropped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        assert_eq!(parse_since("10m", 1_000_000), Ok(400_000));
        assert_eq!(parse_since("1970-01-01T00:00:01Z", 5), Ok(1000));
        assert!(parse_since("yesterday", 5).is_err());
        assert_eq!(parse_level("WARN"), Ok(LogLevel::Warn));
        assert!(parse_level("loud").is_err());
    }
}
