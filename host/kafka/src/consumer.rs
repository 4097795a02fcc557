//! An actor's group consumer: one OS thread that polls librdkafka, hands
//! each event to its partition's worker, applies backpressure, stores
//! finished offsets, and runs the rebalance protocol.
//!
//! Why a thread and not a task: librdkafka runs rebalance callbacks inside
//! `poll`, and a revoke must wait (bounded) for the partition's running
//! calls and commit before the partition is released. Blocking there is
//! fine on a thread of our own and wrong on a tokio worker.
//!
//! - Assign: a worker task per new partition; it restores the partition's
//!   held events before it handles any event.
//! - Revoke (and shutdown): every revoked worker is told to stop; the
//!   thread waits for their final offsets (drain bound + margin), stores
//!   and commits them synchronously, then lets librdkafka release the
//!   partitions.
//! - Backpressure: a partition with more than `max_buffered_per_partition`
//!   events not yet started is paused, and resumed below half; a worker can
//!   also hold its partition (a held lane in `partition` mode).
//! - Offsets: every half commit interval, each worker's published offset
//!   is stored (`enable.auto.offset.store = false`); librdkafka commits
//!   stored offsets in the background.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Notify;
use wactor_manifest::StartPosition;
use wactor_store::HeldId;

use crate::actor::ActorContext;
use crate::changelog::Changelog;
use crate::error::{KafkaError, Result};
use crate::event;
use crate::recovery::{self, Recovery, ResetPolicy, WorkerFailure};
use crate::worker::{self, Control, WorkerHandle};

/// How long one poll waits for a message.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Time a revoked worker has beyond the drain bound to make its work
/// durable and answer.
const STOP_MARGIN: Duration = Duration::from_secs(15);
/// Interval of librdkafka statistics (consumer lag).
const STATS_INTERVAL_MS: &str = "5000";
/// Least interval between two identical consumer error logs.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Workers by topic, then partition.
type Workers = HashMap<String, HashMap<i32, WorkerHandle>>;

/// What the outside sees of a running consumer.
#[derive(Debug, Default)]
pub struct ConsumerStatus {
    /// Partitions assigned, with their lag (messages behind the high
    /// watermark; -1 unknown).
    partitions: Mutex<HashMap<(String, i32), i64>>,
    /// Partition workers that ended unexpectedly, and their restarts.
    pub(crate) recovery: Recovery,
}

impl ConsumerStatus {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, i32), i64>> {
        match self.partitions.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Assigned partitions and their lag, sorted.
    pub fn partitions(&self) -> Vec<(String, i32, i64)> {
        let mut all: Vec<_> = self
            .lock()
            .iter()
            .map(|((t, p), lag)| (t.clone(), *p, *lag))
            .collect();
        all.sort();
        all
    }

    /// Total lag over assigned partitions (unknown counts as 0).
    pub fn total_lag(&self) -> i64 {
        self.lock().values().filter(|&&lag| lag > 0).sum()
    }

    /// Partitions whose worker ended unexpectedly and waits for its
    /// restart, sorted (see `recovery`).
    pub fn failures(&self) -> Vec<(String, i32, WorkerFailure)> {
        self.recovery.failures()
    }
}

/// The rdkafka context: rebalance callbacks and statistics.
pub(crate) struct WactorConsumerContext {
    ctx: Arc<ActorContext>,
    changelog: Option<Arc<Changelog>>,
    runtime: tokio::runtime::Handle,
    workers: Arc<Mutex<Workers>>,
    status: Arc<ConsumerStatus>,
    /// The consumer itself, to split partition queues off it at
    /// assignment (set right after it is created).
    consumer: OnceLock<Weak<BaseConsumer<WactorConsumerContext>>>,
    /// Where a partition of the actor's own topics without a usable
    /// position starts (the user's `auto.offset.reset`; `earliest` for an
    /// actor with a manifest `start`). The group's internal topics always
    /// start at their beginning ([`policy_of`](Self::policy_of)).
    reset_policy: ResetPolicy,
    /// Partition queues split at the start of an assignment, before
    /// librdkafka fetches the partitions, taken by their workers.
    early_feeds: Mutex<HashMap<(String, i32), PartitionFeed>>,
    /// Offset resets librdkafka logged, for the consumer thread to report
    /// (`recovery::report_reset`); the log callback must not block.
    resets: Mutex<Vec<recovery::LoggedReset>>,
}

/// A partition's own librdkafka queue, read by its worker directly: no
/// hand-off through the consumer thread, and natural backpressure (a worker
/// that stops reading lets librdkafka's prefetch fill and stop fetching).
pub(crate) struct PartitionFeed {
    queue: PartitionQueue<WactorConsumerContext>,
    /// Woken when the queue becomes non-empty.
    pub(crate) ready: Arc<Notify>,
}

impl PartitionFeed {
    fn new(mut queue: PartitionQueue<WactorConsumerContext>) -> Self {
        let ready = Arc::new(Notify::new());
        let wake = ready.clone();
        queue.set_nonempty_callback(move || wake.notify_one());
        PartitionFeed { queue, ready }
    }

    /// Takes up to `max` records without blocking.
    pub(crate) fn take(&self, max: usize, mut each: impl FnMut(event::Intake)) -> usize {
        let mut taken = 0;
        while taken < max {
            match self.queue.poll(Duration::ZERO) {
                Some(Ok(message)) => {
                    each(event::from_message(&message));
                    taken += 1;
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "partition queue error");
                }
                None => break,
            }
        }
        taken
    }
}

impl WactorConsumerContext {
    fn workers(&self) -> MutexGuard<'_, Workers> {
        lock_workers(&self.workers)
    }

    /// Stops the workers of `partitions` and returns their final offsets.
    ///
    /// Each worker has the drain bound plus [`STOP_MARGIN`] to answer. One
    /// that does not (stuck in a wait) or that ended without answering (a
    /// panic) is fenced: its task is aborted, so it can take no event and
    /// write no held event, dead letter, changelog record or offset from
    /// its next await on, and the next worker of the partition on this
    /// host waits for its end and its tasks' (`fence`). The offset
    /// committed for it is the one it last published, which its durable
    /// work covers. The partitions leave the status, and their
    /// `wactor_consumer_lag` series are removed.
    fn stop_workers(&self, partitions: &[(String, i32)]) -> Vec<(String, i32, i64)> {
        let mut waiting = Vec::new();
        {
            let mut workers = self.workers();
            for (topic, partition) in partitions {
                let Some(handle) = workers
                    .get_mut(topic)
                    .and_then(|by_partition| by_partition.remove(partition))
                else {
                    continue;
                };
                let (reply, rx) = std::sync::mpsc::sync_channel(1);
                // A worker that already ended has no receiver: it is
                // treated as one that ended without answering.
                let _ = handle.control.send(Control::Stop { reply });
                waiting.push((topic.clone(), *partition, rx, handle));
            }
        }
        let bound = self.ctx.settings.drain_timeout + STOP_MARGIN;
        let deadline = Instant::now() + bound;
        let mut offsets = Vec::new();
        for (topic, partition, rx, handle) in waiting {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = rx.recv_timeout(left);
            let published = handle
                .shared
                .commit
                .load(std::sync::atomic::Ordering::Relaxed);
            match answer {
                Ok(Some(offset)) => offsets.push((topic.clone(), partition, offset)),
                Ok(None) => {}
                Err(missed) => {
                    handle.task.abort();
                    let why = match missed {
                        std::sync::mpsc::RecvTimeoutError::Timeout => {
                            format!("did not answer within {bound:?}: it is aborted and can write nothing more")
                        }
                        std::sync::mpsc::RecvTimeoutError::Disconnected => {
                            "had ended without answering".to_string()
                        }
                    };
                    tracing::error!(
                        actor = %self.ctx.name, %topic, partition,
                        published = (published >= 0).then_some(published),
                        "partition worker told to stop {why}; the offset it last published \
                         is committed and the events after it will be redelivered"
                    );
                    if published >= 0 {
                        offsets.push((topic.clone(), partition, published));
                    }
                }
            }
        }
        // Under the status lock, which the statistics callback holds while
        // it sets the gauge of a partition it finds there: once a partition
        // leaves the status, no late statistics can bring its series back.
        let mut status = self.status.lock();
        for (topic, partition) in partitions {
            status.remove(&(topic.clone(), *partition));
            // A partition this host no longer reads has no lag here: its
            // series goes (its new owner reports it), instead of keeping its
            // last value for as long as the process lives. Absent already
            // (no statistics came while it was assigned) is not an error.
            let _ = self.ctx.metrics.consumer_lag.remove_label_values(&[
                &self.ctx.name,
                topic,
                &partition.to_string(),
            ]);
        }
        offsets
    }

    /// Where a partition without a usable position starts: the actor's
    /// reset policy for its own topics, the beginning for the group's
    /// internal ones (re-drive, delayed, replay, schedule), whatever the
    /// user set. librdkafka itself always starts at the beginning
    /// (`KafkaSettings::consumer_config`); `latest` is applied here.
    fn policy_of(&self, topic: &str) -> ResetPolicy {
        if self.ctx.topics.iter().any(|t| t == topic) {
            self.reset_policy
        } else {
            ResetPolicy::Earliest
        }
    }

    /// Where the worker of a source partition its group never committed
    /// begins, by the manifest's `start` (`latest`: the partition's end
    /// now; a time: the first record at or after it), or without one by
    /// the user's `auto.offset.reset = "latest"` (librdkafka starts every
    /// partition at the beginning, so that the internal topics do). `None`
    /// for `earliest`, a committed partition, the re-drive, delayed, replay
    /// and schedule topics, and when the group's offset cannot be read
    /// (then the partition starts at the beginning: events are handled
    /// twice rather than skipped).
    fn start_skip(
        &self,
        consumer: &BaseConsumer<Self>,
        topic: &str,
        partition: i32,
    ) -> Option<worker::StartSkip> {
        if !self.ctx.topics.iter().any(|t| t == topic) {
            return None;
        }
        let start = match self.ctx.versions.current().and_then(|v| v.manifest.start) {
            Some(start) => start,
            None if self.reset_policy == ResetPolicy::Latest => StartPosition::Latest,
            None => return None,
        };
        if start == StartPosition::Earliest {
            return None;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let committed = match consumer.committed_offsets(tpl, Duration::from_secs(10)) {
            Ok(committed) => committed,
            Err(err) => {
                tracing::warn!(
                    actor = %self.ctx.name, %topic, partition, error = %err,
                    "cannot read the group's offset: the start position is not applied"
                );
                return None;
            }
        };
        let has_offset = committed
            .find_partition(topic, partition)
            .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= 0));
        if has_offset {
            return None;
        }
        let skip = match start {
            StartPosition::Earliest => return None,
            StartPosition::Latest => {
                match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
                    Ok((_, high)) => worker::StartSkip::BeforeOffset(high),
                    Err(err) => {
                        tracing::warn!(
                            actor = %self.ctx.name, %topic, partition, error = %err,
                            "cannot read the partition's end: the start position is not applied"
                        );
                        return None;
                    }
                }
            }
            StartPosition::At(ms) => worker::StartSkip::UntilTime(ms),
        };
        tracing::info!(actor = %self.ctx.name, %topic, partition, %start, ?skip, "new partition for the group: starting at the actor's start position");
        Some(skip)
    }

    fn start_workers(&self, partitions: &[(String, i32)]) {
        let consumer = self.consumer.get().and_then(Weak::upgrade);
        let mut workers = self.workers();
        let mut status = self.status.lock();
        for (topic, partition) in partitions {
            let by_partition = workers.entry(topic.clone()).or_default();
            if by_partition.contains_key(partition) {
                continue;
            }
            // Its own queue (split before the assignment took effect, or
            // now for a restart) when librdkafka gives one; otherwise its
            // events come through the consumer thread.
            let early = lock_feeds(&self.early_feeds).remove(&(topic.clone(), *partition));
            let feed = early.or_else(|| {
                consumer
                    .as_ref()
                    .and_then(|c| c.split_partition_queue(topic, *partition))
                    .map(PartitionFeed::new)
            });
            if feed.is_none() {
                tracing::warn!(actor = %self.ctx.name, %topic, partition, "no partition queue; events go through the consumer thread");
            }
            let start_skip = consumer
                .as_ref()
                .and_then(|c| self.start_skip(c, topic, *partition));
            let handle = worker::spawn(
                &self.runtime,
                self.ctx.clone(),
                self.changelog.clone(),
                topic.clone(),
                *partition,
                feed,
                start_skip,
            );
            by_partition.insert(*partition, handle);
            status.insert((topic.clone(), *partition), -1);
        }
    }
}

impl ClientContext for WactorConsumerContext {
    fn stats(&self, statistics: Statistics) {
        let mut status = self.status.lock();
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                if let Some(lag) = status.get_mut(&(topic.clone(), *partition)) {
                    *lag = p.consumer_lag;
                    self.ctx
                        .metrics
                        .consumer_lag
                        .with_label_values(&[&self.ctx.name, topic, &partition.to_string()])
                        .set(p.consumer_lag.max(0));
                }
            }
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if fac == "OFFSET" {
            if let Some(reset) = recovery::parse_reset_log(log_message) {
                match self.resets.lock() {
                    Ok(mut resets) => resets.push(reset),
                    Err(poisoned) => poisoned.into_inner().push(reset),
                }
            }
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", actor = %self.ctx.name, fac, "{log_message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", actor = %self.ctx.name, fac, "{log_message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", actor = %self.ctx.name, fac, "{log_message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", actor = %self.ctx.name, fac, "{log_message}")
            }
        }
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        tracing::warn!(actor = %self.ctx.name, %error, reason, "kafka client error");
    }
}

impl ConsumerContext for WactorConsumerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // Split each new partition's queue *before* librdkafka starts
            // fetching it: a record fetched between the assignment and the
            // split would land in the consumer's main queue and reach the
            // worker through the consumer thread, after later records that
            // came through its own queue (the fault suite saw 584..604 arrive
            // after 605..624, and they were skipped).
            if let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) {
                let mut early = lock_feeds(&self.early_feeds);
                for (topic, partition) in list(tpl) {
                    if let Some(queue) = consumer.split_partition_queue(&topic, partition) {
                        early.insert((topic, partition), PartitionFeed::new(queue));
                    }
                }
            }
        }
        if let Rebalance::Revoke(tpl) = rebalance {
            let partitions = list(tpl);
            self.ctx
                .metrics
                .rebalances_total
                .with_label_values(&[&self.ctx.name, "revoke"])
                .inc();
            tracing::info!(actor = %self.ctx.name, partitions = ?partitions, "partitions revoked");
            self.status.recovery.forget(&self.ctx, &partitions);
            let offsets = self.stop_workers(&partitions);
            commit(consumer, &self.ctx.name, &offsets);
            // The partitions' held events are in the retry changelog (their
            // workers made their records durable before they answered), and
            // their next owner restores them from there: this host's copies
            // would only be stale ones (listed, counted in the gauges).
            if self.changelog.is_some() {
                for (topic, partition) in &partitions {
                    if let Err(err) = self.ctx.held.replace_partition(topic, *partition, &[]) {
                        tracing::warn!(
                            actor = %self.ctx.name, %topic, partition, error = %err,
                            "cannot drop this host's copy of a revoked partition's held events"
                        );
                    }
                }
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions = list(tpl);
                self.ctx
                    .metrics
                    .rebalances_total
                    .with_label_values(&[&self.ctx.name, "assign"])
                    .inc();
                tracing::info!(actor = %self.ctx.name, partitions = ?partitions, "partitions assigned");
                self.start_workers(&partitions);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(err) => {
                tracing::warn!(actor = %self.ctx.name, error = %err, "rebalance failed");
            }
        }
    }
}

fn list(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

fn lock_feeds(
    feeds: &Mutex<HashMap<(String, i32), PartitionFeed>>,
) -> MutexGuard<'_, HashMap<(String, i32), PartitionFeed>> {
    match feeds.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn lock_workers(workers: &Mutex<Workers>) -> MutexGuard<'_, Workers> {
    match workers.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Stores and synchronously commits final offsets.
fn commit(
    consumer: &BaseConsumer<WactorConsumerContext>,
    actor: &str,
    offsets: &[(String, i32, i64)],
) {
    if offsets.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        if let Err(err) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::warn!(%actor, error = %err, "bad offset to commit");
        }
    }
    if let Err(err) = consumer.store_offsets(&tpl) {
        tracing::debug!(%actor, error = %err, "final offsets not stored");
    }
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => tracing::debug!(%actor, ?offsets, "final offsets committed"),
        Err(err) => {
            tracing::warn!(%actor, error = %err, "final offsets not committed; the next owner may redeliver")
        }
    }
}

/// Reaches the partition workers of a consumer to run a held event's retry
/// now; see [`ActorConsumer::retry_handle`].
#[derive(Clone)]
pub struct RetryHandle {
    workers: Arc<Mutex<Workers>>,
}

impl RetryHandle {
    /// How long the worker may take to answer.
    const ANSWER_WAIT: Duration = Duration::from_secs(5);

    /// Asks the worker owning a held event to retry it now. False when this
    /// host does not own its partition, the event does not wait for a
    /// retry, or the worker does not answer within 5 s.
    pub async fn retry_now(&self, id: &HeldId) -> bool {
        let rx = {
            let workers = lock_workers(&self.workers);
            let Some(handle) = workers.get(&id.topic).and_then(|w| w.get(&id.partition)) else {
                return false;
            };
            let (reply, rx) = tokio::sync::oneshot::channel();
            if handle
                .control
                .send(Control::RetryNow {
                    id: id.clone(),
                    reply,
                })
                .is_err()
            {
                return false;
            }
            rx
        };
        matches!(
            tokio::time::timeout(Self::ANSWER_WAIT, rx).await,
            Ok(Ok(true))
        )
    }

    /// Asks the worker of `(topic, partition)` to act on the event blocked
    /// by the death `blocked` (`on_dead = "block"`). False when this host
    /// does not own the partition, no event there is blocked by that
    /// death, or the worker does not answer within 5 s.
    pub async fn unblock(
        &self,
        topic: &str,
        partition: i32,
        blocked: &wactor_store::BlockedBy,
        action: crate::worker::Unblock,
    ) -> bool {
        let rx = {
            let workers = lock_workers(&self.workers);
            let Some(handle) = workers.get(topic).and_then(|w| w.get(&partition)) else {
                return false;
            };
            let (reply, rx) = tokio::sync::oneshot::channel();
            if handle
                .control
                .send(Control::Unblock {
                    blocked: blocked.clone(),
                    action,
                    reply,
                })
                .is_err()
            {
                return false;
            }
            rx
        };
        matches!(
            tokio::time::timeout(Self::ANSWER_WAIT, rx).await,
            Ok(Ok(true))
        )
    }
}

/// A running actor consumer. Stop it with [`ActorConsumer::stop`]; dropping
/// it stops it too, without waiting.
pub struct ActorConsumer {
    ctx: Arc<ActorContext>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    status: Arc<ConsumerStatus>,
    workers: Arc<Mutex<Workers>>,
}

impl ActorConsumer {
    /// Prepares the actor's topics (changelog, re-drive topic) and starts
    /// its consumer thread, subscribed to its topics and its re-drive
    /// topic. Must be called inside a tokio runtime.
    pub async fn start(ctx: Arc<ActorContext>) -> Result<Self> {
        ctx.settings.validate()?;
        let changelog = match ctx.changelog_topic() {
            Some(topic) => Some(Arc::new(
                Changelog::open(&ctx.settings, topic, &ctx.store, &ctx.held).await?,
            )),
            None => None,
        };
        if let Some(topic) = ctx.state_changelog_topic() {
            if ctx.state_changelog.get().is_none() {
                let opened =
                    crate::state_changelog::StateChangelog::open(&ctx.settings, topic).await?;
                let _ = ctx.state_changelog.set(Arc::new(opened));
            }
        }
        let redrive = ctx.redrive_topic();
        let delayed = crate::delayed::delayed_topic(&ctx.group);
        let replay = crate::replay::replay_topic(&ctx.group);
        crate::admin::ensure_topics(
            &ctx.settings,
            &[
                crate::admin::TopicSpec::plain(&redrive, ctx.settings.changelog_partitions),
                crate::admin::TopicSpec::plain(&delayed, ctx.settings.changelog_partitions),
                crate::admin::TopicSpec::plain(&replay, ctx.settings.changelog_partitions),
            ],
        )
        .await?;
        let mut topics = ctx.topics.clone();
        topics.push(redrive);
        topics.push(delayed);
        topics.push(replay);
        // The schedule topic, when the active version has schedules (a
        // deploy that adds or drops them restarts the consumer).
        let schedules = ctx
            .versions
            .current()
            .is_some_and(|v| !v.manifest.schedules.is_empty());
        if schedules {
            let topic = crate::schedule::schedule_topic(&ctx.group);
            crate::admin::ensure_topics(
                &ctx.settings,
                &[crate::admin::TopicSpec::plain(&topic, 1)],
            )
            .await?;
            topics.push(topic);
        }

        // librdkafka starts every partition without a usable position at its
        // beginning (`consumer_config`): one policy covers all the topics of
        // a consumer, and the group's internal topics must never skip what
        // was written before the group first committed. The user's `latest`
        // applies to the actor's own topics only, here: a new partition
        // passes over what precedes its end (`start_skip`), a position out
        // of the log is moved to the end (`recover`). An actor with a
        // `start` passes over what precedes its start; its offsets that
        // fall out of the log go back to the beginning.
        let explicit_start = ctx
            .versions
            .current()
            .is_some_and(|v| v.manifest.start.is_some());
        let reset_policy = if explicit_start {
            ResetPolicy::Earliest
        } else {
            ctx.settings.reset_policy()?
        };
        let status = Arc::new(ConsumerStatus::default());
        let workers: Arc<Mutex<Workers>> = Arc::default();
        let context = WactorConsumerContext {
            ctx: ctx.clone(),
            changelog,
            runtime: tokio::runtime::Handle::current(),
            workers: workers.clone(),
            status: status.clone(),
            consumer: OnceLock::new(),
            reset_policy,
            early_feeds: Mutex::default(),
            resets: Mutex::default(),
        };
        let mut config = ctx.settings.consumer_config(&ctx.group);
        config.set("statistics.interval.ms", STATS_INTERVAL_MS);
        // librdkafka's warnings must reach the log callback, whatever the
        // `log` crate's level: an offset reset is only reported there.
        if matches!(
            config.log_level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
        ) {
            config.set_log_level(RDKafkaLogLevel::Warning);
        }
        let consumer: Arc<BaseConsumer<WactorConsumerContext>> =
            Arc::new(config.create_with_context(context)?);
        let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names)?;

        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let ctx = ctx.clone();
            let workers = workers.clone();
            std::thread::Builder::new()
                .name(format!("wactor-consumer-{}", ctx.name))
                .spawn(move || poll_loop(consumer, ctx, workers, stop))
                .map_err(|e| {
                    KafkaError::Consumer(format!("cannot start the consumer thread: {e}"))
                })?
        };
        tracing::info!(actor = %ctx.name, group = %ctx.group, topics = ?topics, "consumer started");
        Ok(ActorConsumer {
            ctx,
            stop,
            thread: Some(thread),
            status,
            workers,
        })
    }

    /// The actor this consumer serves.
    pub fn context(&self) -> &Arc<ActorContext> {
        &self.ctx
    }

    /// Assigned partitions and lag.
    pub fn status(&self) -> &ConsumerStatus {
        &self.status
    }

    /// A shared handle on [`status`](Self::status), readable after the
    /// consumer is gone.
    pub fn status_handle(&self) -> Arc<ConsumerStatus> {
        self.status.clone()
    }

    /// Asks the worker owning a held event to retry it now. False when this
    /// host does not own its partition or the event does not wait for a
    /// retry.
    pub async fn retry_now(&self, id: &HeldId) -> bool {
        self.retry_handle().retry_now(id).await
    }

    /// A handle for [`retry_now`](Self::retry_now) that outlives a borrow
    /// of the consumer (callers need not hold their own locks while the
    /// worker answers).
    pub fn retry_handle(&self) -> RetryHandle {
        RetryHandle {
            workers: self.workers.clone(),
        }
    }

    /// Drains every partition (running calls finish within the drain
    /// bound), commits, leaves the group and ends the thread.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!(actor = %self.ctx.name, "the consumer thread ended abnormally");
            }
        }
        tracing::info!(actor = %self.ctx.name, "consumer stopped");
    }
}

impl Drop for ActorConsumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The consumer thread.
fn poll_loop(
    consumer: Arc<BaseConsumer<WactorConsumerContext>>,
    ctx: Arc<ActorContext>,
    workers: Arc<Mutex<Workers>>,
    stop: Arc<AtomicBool>,
) {
    let max_buffered = ctx.settings.max_buffered_per_partition;
    let store_every = ctx.settings.commit_interval / 2;
    let mut last_store = Instant::now();
    let mut last_pressure = Instant::now();
    let mut last_error: Option<(String, Instant)> = None;

    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(POLL_WAIT) {
            Some(Ok(message)) => {
                let (topic, partition) = (message.topic().to_string(), message.partition());
                let intake = event::from_message(&message);
                drop(message);
                let workers = lock_workers(&workers);
                let Some(handle) = workers.get(&topic).and_then(|w| w.get(&partition)) else {
                    // A partition just revoked: its next owner reads it.
                    continue;
                };
                let shared = &handle.shared;
                let Some(pending) = handle.offer(intake) else {
                    continue;
                };
                if pending > max_buffered
                    && !shared.paused.load(Ordering::Relaxed)
                    && pause(&consumer, &topic, partition, true)
                {
                    shared.paused.store(true, Ordering::Relaxed);
                    ctx.counters.partition_pauses.inc();
                }
            }
            Some(Err(err)) => {
                let text = err.to_string();
                let repeat = last_error
                    .as_ref()
                    .is_some_and(|(last, at)| *last == text && at.elapsed() < ERROR_LOG_INTERVAL);
                if !repeat {
                    tracing::warn!(actor = %ctx.name, error = %text, "consumer error");
                    last_error = Some((text, Instant::now()));
                }
            }
            None => {}
        }

        if last_pressure.elapsed() >= Duration::from_millis(20) {
            last_pressure = Instant::now();
            recover(&consumer, &ctx, &workers);
            let workers = lock_workers(&workers);
            let mut buffered = 0usize;
            for (topic, by_partition) in workers.iter() {
                for (partition, handle) in by_partition {
                    let shared = &handle.shared;
                    let pending = shared.pending.load(Ordering::Relaxed);
                    buffered += pending;
                    // A worker with its own queue applies backpressure by
                    // not reading; the partition is paused only while held.
                    let hold = shared.hold.load(Ordering::Relaxed);
                    let is_paused = shared.paused.load(Ordering::Relaxed);
                    let crowded = !handle.has_feed && pending > max_buffered / 2;
                    if hold && !is_paused && pause(&consumer, topic, *partition, true) {
                        shared.paused.store(true, Ordering::Relaxed);
                    } else if !hold
                        && is_paused
                        && !crowded
                        && pause(&consumer, topic, *partition, false)
                    {
                        shared.paused.store(false, Ordering::Relaxed);
                    }
                }
            }
            ctx.counters
                .buffered_events
                .set(i64::try_from(buffered).unwrap_or(i64::MAX));
        }

        if last_store.elapsed() >= store_every {
            last_store = Instant::now();
            store_offsets(&consumer, &ctx, &workers);
        }
    }

    // Shutdown: drain every partition, commit, leave the group. Every
    // partition of the status too, not only those with a worker: one whose
    // worker failed and waits for its restart (`recover`) has none, and it
    // must leave the status, its lag series and the failure list as well.
    let all: Vec<(String, i32)> = {
        let workers = lock_workers(&workers);
        let mut all: std::collections::BTreeSet<(String, i32)> = workers
            .iter()
            .flat_map(|(t, w)| w.keys().map(move |p| (t.clone(), *p)))
            .collect();
        all.extend(
            consumer
                .context()
                .status
                .partitions()
                .into_iter()
                .map(|(topic, partition, _)| (topic, partition)),
        );
        all.into_iter().collect()
    };
    consumer.context().status.recovery.forget(&ctx, &all);
    let offsets = consumer.context().stop_workers(&all);
    commit(&consumer, &ctx.name, &offsets);
    consumer.unsubscribe();
    drop(consumer);
}

/// Restarts workers that ended unexpectedly (when their backoff is over)
/// and handles the offset resets workers reported. See `recovery`.
fn recover(
    consumer: &BaseConsumer<WactorConsumerContext>,
    ctx: &ActorContext,
    workers: &Mutex<Workers>,
) {
    let context = consumer.context();
    let recovery = &context.status.recovery;
    let ended = {
        let mut workers = lock_workers(workers);
        let mut ended = Vec::new();
        for (topic, by_partition) in workers.iter_mut() {
            let gone: Vec<i32> = by_partition
                .iter()
                .filter(|(_, h)| h.task.is_finished())
                .map(|(p, _)| *p)
                .collect();
            for partition in gone {
                if let Some(handle) = by_partition.remove(&partition) {
                    ended.push((topic.clone(), partition, handle));
                }
            }
        }
        ended
    };
    for (topic, partition, handle) in ended {
        let shared = handle.shared.clone();
        let error = match context.runtime.block_on(handle.task) {
            Ok(Ok(())) => "the worker returned without being told to stop".to_string(),
            Ok(Err(reason)) => reason,
            Err(err) if err.is_panic() => panic_message(err.into_panic()),
            Err(err) => err.to_string(),
        };
        recovery.worker_ended(ctx, &topic, partition, error, &shared);
    }
    for (topic, partition, resume_at) in recovery.due() {
        if !context
            .status
            .lock()
            .contains_key(&(topic.clone(), partition))
        {
            continue;
        }
        context.start_workers(&[(topic.clone(), partition)]);
        // Back to where the failed worker's work is durable: its published
        // offset, else the group's committed one, else the policy's.
        let offset = if resume_at >= 0 {
            Offset::Offset(resume_at)
        } else {
            match recovery::committed_offset(consumer, &topic, partition) {
                Some(committed) => Offset::Offset(committed),
                None => match context.policy_of(&topic) {
                    ResetPolicy::Earliest => Offset::Beginning,
                    ResetPolicy::Latest => Offset::End,
                },
            }
        };
        recovery::seek(consumer, ctx, &topic, partition, offset);
        recovery.restarted(ctx, &topic, partition);
        tracing::warn!(actor = %ctx.name, %topic, partition, ?offset, "partition worker restarted");
    }
    let resets = std::mem::take(&mut *match context.resets.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    });
    for reset in resets {
        // librdkafka moved the partition to its beginning; `latest` on the
        // actor's own topics moves it on to the end (records fetched
        // meanwhile may be handled: more, never fewer, than the policy).
        let policy = context.policy_of(&reset.topic);
        if policy == ResetPolicy::Latest {
            recovery::seek(consumer, ctx, &reset.topic, reset.partition, Offset::End);
        }
        recovery::report_reset(consumer, ctx, &reset, policy);
    }
}

/// The message of a panic payload.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        format!("panicked: {text}")
    } else if let Some(text) = payload.downcast_ref::<String>() {
        format!("panicked: {text}")
    } else {
        "panicked".to_string()
    }
}

/// Pauses or resumes one partition; true when it worked.
fn pause(
    consumer: &BaseConsumer<WactorConsumerContext>,
    topic: &str,
    partition: i32,
    on: bool,
) -> bool {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let result = if on {
        consumer.pause(&tpl)
    } else {
        consumer.resume(&tpl)
    };
    match result {
        Ok(()) => {
            tracing::debug!(topic, partition, paused = on, "partition flow control");
            true
        }
        Err(err) => {
            tracing::warn!(topic, partition, error = %err, "cannot pause/resume a partition");
            false
        }
    }
}

/// Stores the offsets workers published since the last call.
fn store_offsets(
    consumer: &BaseConsumer<WactorConsumerContext>,
    ctx: &ActorContext,
    workers: &Mutex<Workers>,
) {
    let workers = lock_workers(workers);
    let mut tpl = TopicPartitionList::new();
    let mut advanced = Vec::new();
    for (topic, by_partition) in workers.iter() {
        for (partition, handle) in by_partition {
            let shared = &handle.shared;
            let offset = shared.commit.load(Ordering::Relaxed);
            if offset < 0 || shared.stored.load(Ordering::Relaxed) >= offset {
                continue;
            }
            if tpl
                .add_partition_offset(topic, *partition, Offset::Offset(offset))
                .is_ok()
            {
                advanced.push((shared, offset));
            }
        }
    }
    if advanced.is_empty() {
        return;
    }
    match consumer.store_offsets(&tpl) {
        Ok(()) => {
            ctx.counters.commits.inc();
            for (shared, offset) in advanced {
                shared.stored.store(offset, Ordering::Relaxed);
            }
        }
        Err(err) => {
            tracing::debug!(actor = %ctx.name, error = %err, "offsets not stored (partition moving?)")
        }
    }
}
