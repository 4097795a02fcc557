//! Partition recovery, run by the consumer thread: partition workers that
//! end unexpectedly, and offset resets.
//!
//! - **Workers that end.** A worker ends only when the consumer tells it to
//!   (revoke, shutdown); one that ends otherwise (a panic: a bug; or a
//!   store write that failed, which stops the partition rather than let it
//!   go on past an event it could not record) is found
//!   here within a pressure tick, logged at ERROR with the panic message,
//!   shown as failed (`ConsumerStatus::failures`, the actor's state
//!   `failed`, `wactor_partition_workers_failed`) and restarted from the
//!   offset it last published for commit, with exponential backoff (1 s,
//!   doubling, capped at [`MAX_RESTART_BACKOFF`]). The new worker restores
//!   the partition's held events before it takes events, as after any
//!   assignment, so nothing is skipped; events after the published offset
//!   run again (at-least-once).
//! - **Offset resets that skip records.** When a partition's position
//!   falls out of the broker's log (retention deleted records before the
//!   actor read them), librdkafka moves it to the log start (the actor
//!   consumer's librdkafka policy is always `earliest`, so that the group's
//!   internal topics never skip) and says so only in a log line. The
//!   consumer's log callback recognises that line ([`parse_reset_log`]) and
//!   queues it; the consumer thread moves a partition of the actor's own
//!   topics on to the end when the user's `auto.offset.reset` is `latest`,
//!   reads the watermarks, logs the range skipped at ERROR and counts it in
//!   `wactor_offsets_skipped_total`. (A partition with no committed offset
//!   starts by the policy too, but that skips nothing the log holds for
//!   the group; under `latest` the consumer passes over what precedes the
//!   end at assignment and counts it in
//!   `wactor_start_skipped_records_total`.) librdkafka's own
//!   `auto.offset.reset = error` would let the host move the partition
//!   itself, but a partition stopped by that error cannot be seeked, only
//!   re-assigned, which a group member cannot do on its own.
//!
//! What it does not do: decide anything about events (the worker), or run
//! on a tokio worker (it blocks on broker queries, bounded by
//! [`QUERY_TIMEOUT`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::actor::ActorContext;
use crate::consumer::WactorConsumerContext;
use crate::worker::WorkerShared;

/// Longest wait between two restarts of a failing worker.
pub const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(60);
/// Bound of each broker query made here (committed offsets, watermarks,
/// seek).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a partition without a usable position starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetPolicy {
    /// The oldest record the broker keeps.
    Earliest,
    /// The next record produced.
    Latest,
}

impl ResetPolicy {
    /// The policy named by librdkafka's `auto.offset.reset` values;
    /// `None` for a name it does not know.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "earliest" | "smallest" | "beginning" => Some(ResetPolicy::Earliest),
            "latest" | "largest" | "end" => Some(ResetPolicy::Latest),
            _ => None,
        }
    }
}

/// A worker that ended unexpectedly, as the views show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerFailure {
    /// The panic message (or how it ended).
    pub error: String,
    /// Restarts so far.
    pub restarts: u32,
    /// When it last failed, ms since the Unix epoch.
    pub failed_at_ms: i64,
}

/// A failed worker waiting for its restart.
#[derive(Debug)]
struct Pending {
    /// When to restart it.
    due: Instant,
    /// The offset it last published (-1: none), where the new one starts.
    resume_at: i64,
}

/// The consumer thread's recovery state: failed workers and their
/// restarts. Shared with the rebalance callbacks (same thread), which
/// forget revoked partitions.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    pending: Mutex<HashMap<(String, i32), Pending>>,
    /// Workers failed and not restarted yet.
    failures: Mutex<HashMap<(String, i32), WorkerFailure>>,
    /// Restarts so far of partitions still assigned.
    restarts: Mutex<HashMap<(String, i32), u32>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Recovery {
    /// Failed workers, sorted by topic and partition.
    pub(crate) fn failures(&self) -> Vec<(String, i32, WorkerFailure)> {
        let mut all: Vec<_> = lock(&self.failures)
            .iter()
            .map(|((t, p), f)| (t.clone(), *p, f.clone()))
            .collect();
        all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        all
    }

    /// Forgets partitions that are no longer this host's.
    pub(crate) fn forget(&self, ctx: &ActorContext, partitions: &[(String, i32)]) {
        let mut pending = lock(&self.pending);
        let mut failures = lock(&self.failures);
        let mut restarts = lock(&self.restarts);
        for key in partitions {
            pending.remove(key);
            failures.remove(key);
            restarts.remove(key);
        }
        set_failed_gauge(ctx, failures.len());
    }

    /// Records that the worker of `topic[partition]` ended with `error`
    /// and schedules its restart.
    pub(crate) fn worker_ended(
        &self,
        ctx: &ActorContext,
        topic: &str,
        partition: i32,
        error: String,
        shared: &WorkerShared,
    ) {
        let key = (topic.to_string(), partition);
        let mut pending = lock(&self.pending);
        let mut failures = lock(&self.failures);
        let restarts = lock(&self.restarts).get(&key).copied().unwrap_or(0);
        let backoff = restart_backoff(restarts);
        tracing::error!(
            actor = %ctx.name, %topic, partition, %error, restarts,
            retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
            "partition worker ended unexpectedly; restarting it from its last committed offset"
        );
        ctx.metrics
            .partition_worker_restarts_total
            .with_label_values(&[&ctx.name])
            .inc();
        let resume_at = shared
            .commit
            .load(Ordering::Relaxed)
            .max(shared.stored.load(Ordering::Relaxed));
        pending.insert(
            key.clone(),
            Pending {
                due: Instant::now() + backoff,
                resume_at,
            },
        );
        failures.insert(
            key,
            WorkerFailure {
                error,
                restarts,
                failed_at_ms: now_ms(),
            },
        );
        set_failed_gauge(ctx, failures.len());
    }

    /// Partitions whose restart is due, with the offset to resume at (-1:
    /// the committed one). They stay listed as failed until
    /// [`restarted`](Self::restarted).
    pub(crate) fn due(&self) -> Vec<(String, i32, i64)> {
        let now = Instant::now();
        let mut pending = lock(&self.pending);
        let due: Vec<(String, i32)> = pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter()
            .filter_map(|key| pending.remove(&key).map(|p| (key.0, key.1, p.resume_at)))
            .collect()
    }

    /// A restarted worker: shown running again. Its restart count is kept
    /// until the partition moves away, so a worker that keeps failing backs
    /// off longer each time.
    pub(crate) fn restarted(&self, ctx: &ActorContext, topic: &str, partition: i32) {
        let key = (topic.to_string(), partition);
        let mut failures = lock(&self.failures);
        if let Some(failure) = failures.remove(&key) {
            lock(&self.restarts).insert(key, failure.restarts.saturating_add(1));
        }
        set_failed_gauge(ctx, failures.len());
    }
}

/// The backoff before restart number `restarts + 1`.
fn restart_backoff(restarts: u32) -> Duration {
    let secs = 1u64.checked_shl(restarts.min(16)).unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX_RESTART_BACKOFF)
}

fn set_failed_gauge(ctx: &ActorContext, failed: usize) {
    ctx.metrics
        .partition_workers_failed
        .with_label_values(&[&ctx.name])
        .set(i64::try_from(failed).unwrap_or(i64::MAX));
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A reset librdkafka logged: the partition and the offset it was at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoggedReset {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// The offset the partition was to read next.
    pub(crate) at: i64,
}

/// Parses librdkafka's warning of an offset reset caused by an error
/// (`rd_kafka_offset_reset`, facility `OFFSET`):
/// `[thrd:main]: TOPIC [P]: offset reset (at offset X (leader epoch E),
/// broker B) to ...` (the thread prefix is optional). `None` for any other
/// line, and for a reset from a logical offset.
pub(crate) fn parse_reset_log(message: &str) -> Option<LoggedReset> {
    let message = match message.strip_prefix("[thrd:") {
        Some(rest) => rest.split_once("]: ")?.1,
        None => message,
    };
    let (topic, rest) = message.split_once(" [")?;
    let (partition, rest) = rest.split_once("]: offset reset (at offset ")?;
    let at = rest.split(' ').next()?.parse().ok()?;
    Some(LoggedReset {
        topic: topic.to_string(),
        partition: partition.parse().ok()?,
        at,
    })
}

/// Records a partition moved by an offset reset: how many records lie
/// between where it was and where the policy moved it.
///
/// `low`/`high` are the broker's watermarks (first kept offset, next offset
/// to be written) read after the reset; with `latest` records produced
/// since the reset are counted too.
pub(crate) fn skipped_by_reset(at: i64, low: i64, high: i64, policy: ResetPolicy) -> i64 {
    let target = match policy {
        ResetPolicy::Earliest => low,
        ResetPolicy::Latest => high,
    };
    (target - at).max(0)
}

/// Reports a reset librdkafka made: reads the watermarks and, when records
/// were skipped, logs the range at ERROR and counts it. Blocks up to
/// [`QUERY_TIMEOUT`].
pub(crate) fn report_reset(
    consumer: &BaseConsumer<WactorConsumerContext>,
    ctx: &ActorContext,
    reset: &LoggedReset,
    policy: ResetPolicy,
) {
    let LoggedReset {
        topic,
        partition,
        at,
    } = reset;
    let (low, high) = match consumer.fetch_watermarks(topic, *partition, QUERY_TIMEOUT) {
        Ok(marks) => marks,
        Err(err) => {
            tracing::error!(
                actor = %ctx.name, %topic, partition, from = at, error = %err,
                "the partition's position fell out of the broker's log and was reset; \
                 how many records were skipped is unknown (watermarks unavailable)"
            );
            return;
        }
    };
    let skipped = skipped_by_reset(*at, low, high, policy);
    if skipped > 0 {
        tracing::error!(
            actor = %ctx.name, %topic, partition, from = at, to = at + skipped - 1, skipped,
            log_start = low, log_end = high, ?policy,
            "records were skipped: the partition's position fell out of the broker's log \
             (retention deleted them before the actor read them)"
        );
        ctx.metrics
            .offsets_skipped_total
            .with_label_values(&[&ctx.name, topic, &partition.to_string()])
            .inc_by(u64::try_from(skipped).unwrap_or(0));
    } else {
        tracing::warn!(
            actor = %ctx.name, %topic, partition, position = at, log_start = low, log_end = high,
            "the partition's position was out of the broker's log (topic truncated or recreated?) \
             and was reset by the policy; nothing was skipped"
        );
    }
}

/// Seeks `topic[partition]` to `offset`.
pub(crate) fn seek(
    consumer: &BaseConsumer<WactorConsumerContext>,
    ctx: &ActorContext,
    topic: &str,
    partition: i32,
    offset: Offset,
) {
    if let Err(err) = consumer.seek(topic, partition, offset, QUERY_TIMEOUT) {
        tracing::error!(actor = %ctx.name, %topic, partition, ?offset, error = %err, "cannot seek the partition");
    }
}

/// The group's committed offset of `topic[partition]`, if it has one.
pub(crate) fn committed_offset(
    consumer: &BaseConsumer<WactorConsumerContext>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer.committed_offsets(tpl, QUERY_TIMEOUT).ok()?;
    let element = committed.find_partition(topic, partition)?;
    match element.offset() {
        Offset::Offset(o) if o >= 0 => Some(o),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafkas_offset_reset_warning_is_recognised() {
        // As librdkafka 2.12 logs it.
        let line = "[thrd:main]: burst [3]: offset reset (at offset 5 (leader epoch 0), broker \
                    1) to cached BEGINNING offset offset 23 (leader epoch -1): fetch failed due \
                    to requested offset not available on the broker: Broker: Offset out of range";
        let expected = Some(LoggedReset {
            topic: "burst".into(),
            partition: 3,
            at: 5,
        });
        assert_eq!(parse_reset_log(line), expected);
        let bare = line.trim_start_matches("[thrd:main]: ");
        assert_eq!(parse_reset_log(bare), expected);
    }

    #[test]
    fn other_lines_and_logical_offsets_are_not_resets() {
        assert_eq!(parse_reset_log("orders [0]: fetch backoff"), None);
        assert_eq!(
            parse_reset_log(
                "t [0]: offset reset (at offset INVALID (leader epoch -1), broker 1) to x"
            ),
            None
        );
        assert_eq!(parse_reset_log(""), None);
    }

    #[test]
    fn skipped_records_are_counted_up_to_the_policys_target() {
        assert_eq!(skipped_by_reset(100, 250, 400, ResetPolicy::Earliest), 150);
        assert_eq!(skipped_by_reset(100, 250, 400, ResetPolicy::Latest), 300);
        assert_eq!(skipped_by_reset(1_000, 0, 10, ResetPolicy::Earliest), 0);
    }

    #[test]
    fn restart_backoff_doubles_and_is_capped() {
        assert_eq!(restart_backoff(0), Duration::from_secs(1));
        assert_eq!(restart_backoff(1), Duration::from_secs(2));
        assert_eq!(restart_backoff(5), Duration::from_secs(32));
        assert_eq!(restart_backoff(6), MAX_RESTART_BACKOFF);
        assert_eq!(restart_backoff(40), MAX_RESTART_BACKOFF);
    }
}
