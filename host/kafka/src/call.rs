//! One attempt at one event: call the actor, and if it is done, make its
//! effects real.
//!
//! The order of effects is what keeps at-least-once honest: emitted records
//! are produced and acknowledged first, then the state writes are produced
//! to the state changelog (`<group>.state`, when on) and acknowledged, then
//! applied to the local store in one batch, all before the event's offset
//! may be committed. A crash before the changelog is acknowledged
//! redelivers the event, which emits again (a duplicate, allowed) and finds
//! its state as before, on this host or whichever host restores the
//! partition next (no write is lost or half-applied). Producing first also
//! means an actor's idempotency marker can never exist without its emits.
//!
//! State is read and written in the scope of the event's source partition
//! (for a re-driven dead letter: its original topic and partition).
//!
//! A call runs in a tokio task of its own, inside its span:
//! `handle{actor, version, topic, partition, offset, key, attempt}`; the
//! actor's log lines become tracing events in that span, and, once the
//! outcome is known, lines of the actor's ring for `wactor logs`
//! ([`crate::actor_logs`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;
use wactor_runtime::{CallResult, Effects, Event, LogLevel, LogLine, Outcome, StateWrite};
use wactor_store::{ActorState, StateChange};

use crate::actor::{ActiveVersion, ActorContext};
use crate::actor_logs::CallCoordinates;
use crate::producer::OutRecord;
use crate::state_changelog::ScopedStateReader;

/// Header naming the source of an emitted record: `topic/partition/offset`.
pub const SOURCE_HEADER: &str = "wactor-source";
/// Header naming the actor and version that emitted a record: `name@version`.
pub const ACTOR_HEADER: &str = "wactor-actor";

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// Done, effects applied.
    Done,
    /// The actor asked for a retry.
    Retry {
        /// Its reason.
        reason: String,
        /// The delay it asked for.
        delay: Option<Duration>,
    },
    /// The actor declared the event dead.
    Dead {
        /// Its reason.
        reason: String,
    },
    /// The call trapped (panic, deadline, memory limit, ...).
    Trap {
        /// Kind and message.
        message: String,
    },
    /// The actor was done but the host could not make its effects real
    /// (producing emits failed, the state write failed), or there was no
    /// version to run. Counts as a failed attempt.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

impl CallOutcome {
    /// Position of [`label`](Self::label) in done, retry, dead, trap,
    /// failed.
    pub(crate) fn index(&self) -> usize {
        match self {
            CallOutcome::Done => 0,
            CallOutcome::Retry { .. } => 1,
            CallOutcome::Dead { .. } => 2,
            CallOutcome::Trap { .. } => 3,
            CallOutcome::Failed { .. } => 4,
        }
    }

    /// The metric label and stored outcome name.
    pub fn label(&self) -> &'static str {
        match self {
            CallOutcome::Done => "done",
            CallOutcome::Retry { .. } => "retry",
            CallOutcome::Dead { .. } => "dead",
            CallOutcome::Trap { .. } => "trap",
            CallOutcome::Failed { .. } => "failed",
        }
    }

    /// The error text kept in the attempt history (empty for done).
    pub fn error(&self) -> String {
        match self {
            CallOutcome::Done => String::new(),
            CallOutcome::Retry { reason, .. }
            | CallOutcome::Dead { reason }
            | CallOutcome::Failed { reason } => reason.clone(),
            CallOutcome::Trap { message } => message.clone(),
        }
    }
}

/// The report of one attempt.
#[derive(Debug, Clone)]
pub struct CallReport {
    /// How it ended.
    pub outcome: CallOutcome,
    /// The version that ran (0 when none could).
    pub version: u64,
    /// Wall-clock start, ms since the epoch.
    pub started_at_ms: i64,
    /// How long it took, effects included.
    pub duration: Duration,
}

/// Applies a done call's state writes atomically, in the scope of source
/// partition `topic[partition]`.
pub fn apply_state_writes(
    state: &ActorState,
    topic: &str,
    partition: i32,
    effects: &Effects,
) -> wactor_store::Result<()> {
    if effects.state_writes.is_empty() {
        return Ok(());
    }
    state.apply(
        topic,
        partition,
        effects.state_writes.iter().map(|(key, write)| {
            let change = match write {
                StateWrite::Set(value) => StateChange::Set(value),
                StateWrite::Delete => StateChange::Delete,
            };
            (key.as_str(), change)
        }),
    )
}

/// Runs one attempt of `event` (whose `attempt` field is set) on
/// `version`, or reports `Failed` when there is no version.
pub async fn run(
    ctx: Arc<ActorContext>,
    version: Option<Arc<ActiveVersion>>,
    event: Arc<Event>,
) -> CallReport {
    let started_at_ms = ctx.clock.now_ms();
    let started = Instant::now();
    let Some(version) = version else {
        return CallReport {
            outcome: CallOutcome::Failed {
                reason: "the actor has no active version".into(),
            },
            version: 0,
            started_at_ms,
            duration: started.elapsed(),
        };
    };
    let span = tracing::info_span!(
        "handle",
        messaging.system = "kafka",
        actor = %ctx.name,
        version = version.version,
        topic = %event.topic,
        partition = event.partition,
        offset = event.offset,
        key = %display_key(event.key.as_deref()),
        attempt = event.attempt,
        outcome = tracing::field::Empty,
    );
    let (outcome, logs) = attempt(&ctx, &version, &event)
        .instrument(span.clone())
        .await;
    span.record("outcome", outcome.label());
    let duration = started.elapsed();
    if !logs.is_empty() {
        let call = CallCoordinates {
            time_ms: started_at_ms,
            version: version.version,
            topic: Arc::from(event.topic.as_str()),
            partition: event.partition,
            offset: event.offset,
            key: Arc::from(display_key(event.key.as_deref())),
            attempt: event.attempt,
            outcome: outcome.label(),
        };
        ctx.logs.push_call(call, logs);
    }
    // One line per call, for `wactor dev` (its default filter shows
    // `wactor::events` at debug) and for anyone who turns it on.
    match &outcome {
        CallOutcome::Done => tracing::debug!(
            target: "wactor::events",
            parent: &span,
            "done in {:.1} ms",
            duration.as_secs_f64() * 1e3
        ),
        other => tracing::debug!(
            target: "wactor::events",
            parent: &span,
            "{} in {:.1} ms: {}",
            other.label(),
            duration.as_secs_f64() * 1e3,
            other.error()
        ),
    }
    let metrics = version.call_metrics(&ctx.metrics);
    metrics.duration.observe(duration.as_secs_f64());
    metrics.outcomes[outcome.index()].inc();
    CallReport {
        outcome,
        version: version.version,
        started_at_ms,
        duration,
    }
}

/// Runs the call and makes its effects real; returns its outcome and the
/// actor's log lines (already given to tracing).
async fn attempt(
    ctx: &ActorContext,
    version: &ActiveVersion,
    event: &Event,
) -> (CallOutcome, Vec<LogLine>) {
    let reader = ScopedStateReader::shared(ctx.state.clone(), &event.topic, event.partition);
    let mut invocation = version.actor.invoke(event, reader).await;
    for line in &invocation.logs {
        log_actor_line(line.level, &line.message);
    }
    let logs = std::mem::take(&mut invocation.logs);
    let outcome = effects_of(ctx, event, version, invocation).await;
    (outcome, logs)
}

async fn effects_of(
    ctx: &ActorContext,
    event: &Event,
    version: &ActiveVersion,
    invocation: wactor_runtime::Invocation,
) -> CallOutcome {
    match invocation.result {
        CallResult::Returned(Outcome::Done) => {
            if let Err(reason) = produce_emits(ctx, version, event, &invocation.effects).await {
                ctx.counters.emit_failures.inc();
                return CallOutcome::Failed { reason };
            }
            if let Err(reason) = write_state_changelog(ctx, event, &invocation.effects).await {
                return CallOutcome::Failed { reason };
            }
            if let Err(err) = apply_state_writes(
                &ctx.state,
                &event.topic,
                event.partition,
                &invocation.effects,
            ) {
                return CallOutcome::Failed {
                    reason: format!("cannot apply the actor's state writes: {err}"),
                };
            }
            CallOutcome::Done
        }
        CallResult::Returned(Outcome::Retry { reason, delay }) => {
            CallOutcome::Retry { reason, delay }
        }
        CallResult::Returned(Outcome::Dead { reason }) => CallOutcome::Dead { reason },
        CallResult::Trapped(trap) => CallOutcome::Trap {
            message: trap.to_string(),
        },
    }
}

/// Produces a done call's state writes to the state changelog (when it is
/// on) and waits for every acknowledgement.
async fn write_state_changelog(
    ctx: &ActorContext,
    event: &Event,
    effects: &Effects,
) -> Result<(), String> {
    if effects.state_writes.is_empty() {
        return Ok(());
    }
    let Some(changelog) = ctx.state_changelog.get() else {
        return Ok(());
    };
    let mut deliveries = Vec::with_capacity(effects.state_writes.len());
    for (key, write) in &effects.state_writes {
        let value = match write {
            StateWrite::Set(value) => Some(value.as_slice()),
            StateWrite::Delete => None,
        };
        let record = changelog
            .entry_record(&event.topic, event.partition, key, value)
            .map_err(|e| format!("state not written: {e}"))?;
        deliveries.push(ctx.producer.enqueue(&record));
    }
    for result in futures::future::join_all(deliveries).await {
        if let Err(err) = result {
            return Err(format!("state changelog record not produced: {err}"));
        }
    }
    Ok(())
}

/// Produces every emitted record and waits for all acknowledgements.
async fn produce_emits(
    ctx: &ActorContext,
    version: &ActiveVersion,
    event: &Event,
    effects: &Effects,
) -> Result<(), String> {
    if effects.emits.is_empty() {
        return Ok(());
    }
    let source = format!("{}/{}/{}", event.topic, event.partition, event.offset);
    let actor = format!("{}@{}", ctx.name, version.version);
    // The emits of a replayed event say so (and which replay).
    let replay = event
        .headers
        .iter()
        .find(|(name, _)| name == crate::replay::REPLAY_HEADER)
        .map(|(_, value)| value.clone());
    let deliveries: Vec<_> = effects
        .emits
        .iter()
        .map(|record| {
            let mut headers = record.headers.clone();
            headers.push((SOURCE_HEADER.to_string(), Some(source.clone().into_bytes())));
            headers.push((ACTOR_HEADER.to_string(), Some(actor.clone().into_bytes())));
            if let Some(replay) = &replay {
                if !headers
                    .iter()
                    .any(|(n, _)| n == crate::replay::REPLAY_HEADER)
                {
                    headers.push((crate::replay::REPLAY_HEADER.to_string(), replay.clone()));
                }
            }
            let key = record.key.clone().or_else(|| event.key.clone());
            // A delayed emit goes to `<group>.delayed` until it is due
            // (checked at emit; a directive refused now cannot happen).
            let out = match crate::delayed::due_of(&headers, ctx.clock.now_ms()) {
                Ok(Some(due)) => {
                    ctx.metrics
                        .delayed_total
                        .with_label_values(&[&ctx.name, "scheduled"])
                        .inc();
                    crate::delayed::delayed_record(
                        &ctx.group,
                        &record.topic,
                        key,
                        record.payload.clone(),
                        &headers,
                        due,
                    )
                }
                Ok(None) | Err(_) => OutRecord {
                    topic: record.topic.clone(),
                    partition: None,
                    key,
                    // `None` is a tombstone the actor asked for.
                    payload: record.payload.clone(),
                    headers,
                },
            };
            ctx.producer.enqueue(&out)
        })
        .collect();
    let count = deliveries.len();
    for result in futures::future::join_all(deliveries).await {
        if let Err(err) = result {
            return Err(format!("emitted record not produced: {err}"));
        }
    }
    ctx.counters.emitted_records.inc_by(count as u64);
    Ok(())
}

fn log_actor_line(level: LogLevel, message: &str) {
    match level {
        LogLevel::Trace => tracing::trace!(target: "wactor::actor", "{message}"),
        LogLevel::Debug => tracing::debug!(target: "wactor::actor", "{message}"),
        LogLevel::Info => tracing::info!(target: "wactor::actor", "{message}"),
        LogLevel::Warn => tracing::warn!(target: "wactor::actor", "{message}"),
        LogLevel::Error => tracing::error!(target: "wactor::actor", "{message}"),
    }
}

/// A key for logs: its text when printable, hex otherwise, cut at 64
/// characters.
pub fn display_key(key: Option<&[u8]>) -> String {
    let Some(key) = key else {
        return "(none)".into();
    };
    let text = match std::str::from_utf8(key) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    };
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_display_as_text_or_hex() {
        assert_eq!(display_key(None), "(none)");
        assert_eq!(display_key(Some(b"user-1")), "user-1");
        assert_eq!(display_key(Some(&[0, 255])), "00ff");
        assert_eq!(display_key(Some(&[b'a'; 100])).chars().count(), 65);
    }
}
