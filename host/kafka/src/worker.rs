//! The partition worker: one tokio task per assigned partition of an actor,
//! owning everything about that partition's events.
//!
//! - It takes owned events from the consumer thread ([`WorkerHandle`]),
//!   puts them into lanes ([`LaneScheduler`]) and runs what may run, each
//!   call in a task of its own, up to the actor's `max_in_flight`.
//! - A failed attempt is decided by the retry policy. A retry *holds* the
//!   lane: the event and the lane's queued events move to the store (and
//!   the changelog), later events of the lane follow them there, and other
//!   lanes go on. A timer runs the held head when due; when it is done (or
//!   dead) the lane's next held event runs, and when none is left the lane
//!   is ordinary again. In `partition` mode the whole partition is one lane
//!   and the consumer pauses it while it is held.
//! - Offsets: an event's offset is *finished* when it is done, or when the
//!   store has taken responsibility for it (held or dead-lettered) and that
//!   is durable: sled flushed and the changelog record acknowledged. Every
//!   commit tick flushes, then publishes the committable offset (computed
//!   before the flush) for the consumer thread to store.
//! - On revoke or shutdown it stops taking events, lets running calls
//!   finish within the drain bound, makes everything durable and reports
//!   the final offset. Held events stay in the store and the changelog for
//!   whoever owns the partition next; it restores them before it starts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc;
use wactor_delivery::{
    DeadReason, Decision, Failure, LaneId, LaneScheduler, OffsetTracker, OrderingMode,
};
use wactor_manifest::ActorManifest;
use wactor_runtime::Event;
use wactor_store::{AttemptOutcome, AttemptRecord, HeldEvent, HeldId, LaneKey};

use crate::actor::ActorContext;
use crate::call::{self, CallOutcome, CallReport};
use crate::changelog::Changelog;
use crate::consumer::PartitionFeed;
use crate::dead_letter::{self, Death};
use crate::event::{from_stored, raw_to_stored, to_stored, Intake, Undecodable};
use crate::fence::{self, Fence};
use crate::held_lanes::{lane_key, Head, HeldLane, HeldLanes};
use crate::producer::{is_too_large, max_message_bytes, Delivery, OutRecord};
use crate::redrive::RedriveEnvelope;

/// Events taken from the inbox per wake-up, at most.
const INBOX_BATCH: usize = 256;

/// How long a worker waits for its queue's signal before looking anyway.
const FEED_RECHECK: Duration = Duration::from_millis(100);

/// A call in progress and what it is about.
type RunningCall = BoxFuture<'static, (Job, CallReport)>;

/// How long a worker waits between attempts to restore its held events.
const RESTORE_RETRY: Duration = Duration::from_secs(2);

/// What the consumer thread and the worker share, lock-free.
#[derive(Debug)]
pub struct WorkerShared {
    /// Events sent to the worker and not yet started, held or skipped: the
    /// consumer pauses the partition above its bound.
    pub pending: AtomicUsize,
    /// The offset to store for commit (the next offset to read); -1 when
    /// there is none yet.
    pub commit: AtomicI64,
    /// Set while the partition must not be read (a held lane in
    /// `partition` mode).
    pub hold: AtomicBool,
    /// The offset the consumer thread last stored (consumer thread only).
    pub stored: AtomicI64,
    /// Whether the consumer thread paused the partition (consumer thread
    /// only).
    pub paused: AtomicBool,
}

/// A request from outside to a worker.
pub enum Control {
    /// Stop taking events, finish or give up what runs within the drain
    /// bound, make it durable and reply with the final offset to commit.
    Stop {
        /// Where the final offset goes (`None`: nothing to commit).
        reply: std::sync::mpsc::SyncSender<Option<i64>>,
    },
    /// Run this held event's retry now instead of at its due time.
    RetryNow {
        /// The held event.
        id: HeldId,
        /// Whether it was found waiting and moved up.
        reply: tokio::sync::oneshot::Sender<bool>,
    },
}

/// The consumer thread's handle on a worker.
pub struct WorkerHandle {
    /// Events of the partition, in offset order, when the worker has no
    /// queue of its own.
    pub inbox: mpsc::UnboundedSender<Intake>,
    /// Whether the worker reads its partition's own queue.
    pub has_feed: bool,
    /// Requests.
    pub control: mpsc::UnboundedSender<Control>,
    /// Shared counters.
    pub shared: Arc<WorkerShared>,
    /// The worker's task: finished while the handle is still registered
    /// means it ended unexpectedly (see `recovery`): a panic, or
    /// `Err(reason)` (a store write failed).
    pub task: WorkerTask,
}

/// The task of a partition worker.
pub type WorkerTask = tokio::task::JoinHandle<Result<(), String>>;

/// Starts the worker of `topic[partition]` on `runtime`.
///
/// The worker first takes the partition's fence (`fence`): a worker of the
/// partition that still runs on this host (one the consumer gave up on is
/// aborted) or a task it left (its durability tick, its restore thread)
/// ends before this one restores anything, so two workers of one
/// partition never write at once on one host. It answers a stop while it
/// waits.
pub fn spawn(
    runtime: &tokio::runtime::Handle,
    ctx: Arc<ActorContext>,
    changelog: Option<Arc<Changelog>>,
    topic: String,
    partition: i32,
    feed: Option<PartitionFeed>,
) -> WorkerHandle {
    let has_feed = feed.is_some();
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let (control_tx, control) = mpsc::unbounded_channel();
    let (tick_tx, tick_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(WorkerShared {
        pending: AtomicUsize::new(0),
        commit: AtomicI64::new(-1),
        hold: AtomicBool::new(false),
        stored: AtomicI64::new(-1),
        paused: AtomicBool::new(false),
    });
    let mut worker = Worker {
        scheduler: LaneScheduler::new(ctx.ordering, usize::MAX / 2),
        ctx,
        changelog,
        topic,
        partition,
        shared: shared.clone(),
        inbox,
        feed,
        feed_full: false,
        feed_more: false,
        control,
        offsets: OffsetTracker::new(),
        held: HeldLanes::default(),
        ready_held: VecDeque::new(),
        running: FuturesUnordered::new(),
        durable: Durable::default(),
        tick_running: false,
        tick_tx,
        tick_rx,
        accepting: true,
        is_redrive: false,
        failed: None,
        rng: StdRng::from_entropy(),
        max_record_bytes: 0,
        fence: None,
        tick_task: None,
    };
    worker.max_record_bytes = max_message_bytes(&worker.ctx.settings);
    worker.is_redrive = worker.topic == worker.ctx.redrive_topic();
    let span = tracing::info_span!(
        "partition",
        actor = %worker.ctx.name,
        topic = %worker.topic,
        partition = worker.partition
    );
    let fence = fence::of(
        worker.ctx.store.id(),
        &worker.ctx.name,
        &worker.topic,
        worker.partition,
    );
    let run = async move {
        let taken = fence::take(fence);
        tokio::pin!(taken);
        loop {
            tokio::select! {
                taken = &mut taken => {
                    worker.fence = taken;
                    break;
                }
                control = worker.control.recv() => match control {
                    Some(Control::RetryNow { reply, .. }) => {
                        let _ = reply.send(false);
                    }
                    other => {
                        worker.stopped_while_restoring(other);
                        return Ok(());
                    }
                },
            }
        }
        worker.run().await
    };
    let task = runtime.spawn(tracing::Instrument::instrument(run, span));
    WorkerHandle {
        inbox: inbox_tx,
        has_feed,
        control: control_tx,
        shared,
        task,
    }
}

/// What a running call is about.
struct Job {
    /// Where the event came from.
    kind: JobKind,
    /// The record as read from this partition: what is held if the event
    /// must wait.
    raw: Arc<Event>,
    /// The event as the actor sees it (the original one for a re-drive),
    /// with its attempt number.
    presented: Arc<Event>,
    /// The re-drive this event is, if it is one.
    redrive: Option<Arc<RedriveEnvelope>>,
    /// The policy's attempt number (counted from the re-drive for one).
    attempt: u32,
}

/// Where a job came from.
enum JobKind {
    /// Read from Kafka, in the scheduler's `lane`.
    Kafka { lane: LaneId },
    /// The head of a held lane.
    Held {
        lane: LaneKey,
        record: Box<HeldEvent>,
    },
}

/// A failed attempt, for the retry decision.
struct Failed<'a> {
    raw: &'a Event,
    presented: &'a Event,
    redrive: Option<&'a RedriveEnvelope>,
    report: &'a CallReport,
    failure: Failure,
}

/// What waits for the next durability point.
#[derive(Default)]
struct Durable {
    /// Offsets to finish once durable.
    offsets: Vec<i64>,
    /// Changelog records to produce once the store has flushed, with their
    /// size. Never earlier: a changelog record (a tombstone above all) may
    /// describe local writes (a dead letter, the call's state writes) that a
    /// crash before the flush would lose, and the next owner would then
    /// trust the changelog and lose the event.
    writes: Vec<(HeldId, usize, OutRecord)>,
}

/// The result of a durability tick.
struct Tick {
    /// The committable offset computed before the flush.
    candidate: Option<i64>,
    /// Offsets that are durable if `flushed` and nothing `failed`.
    offsets: Vec<i64>,
    /// Whether sled flushed.
    flushed: bool,
    /// Changelog writes that were not acknowledged, to write again.
    failed: Vec<HeldId>,
    /// Changelog writes refused as too large (by the broker: the client's
    /// limit is checked before writing), with their size and the error:
    /// writing them again cannot work.
    refused: Vec<(HeldId, usize, String)>,
}

struct Worker {
    ctx: Arc<ActorContext>,
    changelog: Option<Arc<Changelog>>,
    topic: String,
    partition: i32,
    shared: Arc<WorkerShared>,
    inbox: mpsc::UnboundedReceiver<Intake>,
    /// The partition's own queue (see `PartitionFeed`).
    feed: Option<PartitionFeed>,
    /// The last pull stopped at the buffer bound (for the pause metric).
    feed_full: bool,
    /// The last pull stopped at its batch size: the queue may hold more.
    feed_more: bool,
    control: mpsc::UnboundedReceiver<Control>,
    /// Kafka events not held, in lanes.
    scheduler: LaneScheduler<Arc<Event>>,
    offsets: OffsetTracker,
    /// Lanes whose events are in the store.
    held: HeldLanes,
    /// Held lanes whose head is due and waits for a call slot.
    ready_held: VecDeque<LaneKey>,
    /// Calls in progress, polled by this task: no hand-off to another
    /// thread per event. Calls of other partitions run in their workers,
    /// on other threads.
    running: FuturesUnordered<RunningCall>,
    durable: Durable,
    tick_running: bool,
    tick_tx: mpsc::UnboundedSender<Tick>,
    tick_rx: mpsc::UnboundedReceiver<Tick>,
    /// False once stopping: nothing new starts.
    accepting: bool,
    /// This partition belongs to the actor's re-drive topic.
    is_redrive: bool,
    /// Set when a store write failed: the worker ends (its partition is
    /// restarted from its published offset by `recovery`, with backoff and
    /// shown failed meanwhile) rather than go on past an event whose state
    /// it could not record.
    failed: Option<String>,
    rng: StdRng,
    /// The largest changelog record this worker writes: the producer's
    /// `message.max.bytes`, lowered if the broker refuses a smaller record.
    /// A held event whose record is larger is dead-lettered instead.
    max_record_bytes: usize,
    /// The partition's fence, held for the worker's life and by every task
    /// it starts that can still write (see `fence`).
    fence: Option<Fence>,
    /// The durability tick in flight: aborted when the worker is dropped
    /// (it ended, or the consumer aborted it), so a tick cannot produce a
    /// changelog record after its worker is gone.
    tick_task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(tick) = self.tick_task.take() {
            tick.abort();
        }
    }
}

/// What became of [`Worker::hold_record`].
enum Hold {
    /// In the store, its changelog record on its way.
    Held,
    /// Not written: its changelog record would be too large (says how).
    TooLarge(String),
    /// The store refused it (logged).
    Failed,
}

/// What a failed Kafka event does next.
enum Next {
    /// It is held until `due`; `len` of its lane's events were held.
    Hold { due: i64, len: usize },
    /// It is dead-lettered for this reason.
    Dead(DeadReason),
}

impl Worker {
    /// Ends with `Err(reason)` when the worker must stop on its own (a
    /// store write failed); `recovery` restarts it.
    async fn run(mut self) -> Result<(), String> {
        if !self.restore().await {
            return Ok(());
        }
        let mut commit_tick = tokio::time::interval(self.ctx.settings.commit_interval);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(reason) = self.failed.take() {
                // Nothing more is taken or published: the partition starts
                // again from the offset published last, which never passed
                // the event whose write failed.
                self.accepting = false;
                self.feed = None;
                self.running = FuturesUnordered::new();
                return Err(reason);
            }
            self.pull();
            self.start_ready();
            let due = self.held.next_due();
            let sleep = due.map(|at| self.ctx.clock.sleep_until_ms(at));
            let ready = self
                .feed
                .as_ref()
                .filter(|_| self.accepting && !self.feed_full && !self.holding())
                .map(|feed| feed.ready.clone());
            // With calls running, their completions bring the loop back to
            // the queue anyway; only an idle worker needs the safety net.
            let recheck = self.running.is_empty();
            tokio::select! {
                biased;
                control = self.control.recv() => match control {
                    Some(Control::Stop { reply }) => {
                        let offset = self.stop().await;
                        let _ = reply.send(offset);
                        return Ok(());
                    }
                    Some(Control::RetryNow { id, reply }) => {
                        let _ = reply.send(self.retry_now(&id));
                    }
                    None => {
                        self.stop().await;
                        return Ok(());
                    }
                },
                // The timers and the durability results come before the
                // work, which under a steady backlog is always ready: a
                // biased select would otherwise starve the commit tick, its
                // result and due retries until the backlog is gone. Each is
                // ready once per period, so they starve nothing in turn.
                _ = commit_tick.tick() => self.tick(),
                Some(tick) = self.tick_rx.recv() => self.on_tick(tick),
                () = async { if let Some(sleep) = sleep { sleep.await } }, if due.is_some() => {
                    let now = self.ctx.clock.now_ms();
                    self.ready_held.extend(self.held.take_due(now));
                }
                Some((job, report)) = self.running.next(), if !self.running.is_empty() => {
                    self.finish(job, report);
                    // Collect the other calls that are done too, before the
                    // next round of the loop.
                    for _ in 0..INBOX_BATCH {
                        match self.running.next().now_or_never() {
                            Some(Some((job, report))) => self.finish(job, report),
                            _ => break,
                        }
                    }
                }
                event = self.inbox.recv(), if self.accepting => match event {
                    Some(intake) => {
                        self.intake(intake);
                        // Take what else is queued in one go: one wake-up
                        // for a burst, not one per event.
                        for _ in 0..INBOX_BATCH {
                            match self.inbox.try_recv() {
                                Ok(intake) => self.intake(intake),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        self.stop().await;
                        return Ok(());
                    }
                },
                () = async {
                    if let Some(ready) = ready {
                        // librdkafka signals a queue that becomes non-empty;
                        // the timeout is a safety net, not the mechanism.
                        if recheck {
                            let _ = tokio::time::timeout(FEED_RECHECK, ready.notified()).await;
                        } else {
                            ready.notified().await;
                        }
                    }
                }, if ready.is_some() => {}
                // More may wait in the queue: come back at once, but through
                // the scheduler. An always-ready branch would keep this task
                // in one endless poll, and once its tokio budget is spent
                // every tokio branch above (the commit tick, due retries)
                // answers "pending" until the backlog is gone.
                () = tokio::task::yield_now(), if self.feed_more => {}
            }
        }
    }

    /// Loads the held events of this partition (from the changelog when
    /// there is one) and rebuilds the held lanes. Retries until it works:
    /// handling events before would break the order of held keys.
    ///
    /// Honours a stop while it waits (a slow changelog, a leader down): it
    /// answers at once and returns false, and the restore it gave up may not
    /// write to the store any more (`cancel`), so a worker that lost its
    /// partition never runs on as a zombie beside the partition's next
    /// worker on this host.
    async fn restore(&mut self) -> bool {
        let cancel = Arc::new(AtomicBool::new(false));
        let Loaded { records, migrate } = loop {
            let load = self.load_held(cancel.clone());
            tokio::pin!(load);
            let result = loop {
                tokio::select! {
                    result = &mut load => break result,
                    control = self.control.recv() => {
                        if let Some(control) = self.not_a_stop(control) {
                            cancel.store(true, Ordering::Relaxed);
                            self.stopped_while_restoring(control);
                            return false;
                        }
                    }
                }
            };
            match result {
                Ok(loaded) => break loaded,
                Err(err) => {
                    tracing::error!(
                        actor = %self.ctx.name, topic = %self.topic, partition = self.partition,
                        error = %err,
                        "cannot restore held events; retrying"
                    );
                    let pause = tokio::time::sleep(RESTORE_RETRY);
                    tokio::pin!(pause);
                    loop {
                        tokio::select! {
                            () = &mut pause => break,
                            control = self.control.recv() => {
                                if let Some(control) = self.not_a_stop(control) {
                                    cancel.store(true, Ordering::Relaxed);
                                    self.stopped_while_restoring(control);
                                    return false;
                                }
                            }
                        }
                    }
                }
            }
        };
        let records = self.relane(records);
        let now = self.ctx.clock.now_ms();
        let mut lanes: HashMap<LaneKey, HeldLane> = HashMap::new();
        // Records come sorted by offset, so the first of a lane is its head.
        for record in &records {
            let entry = lanes.entry(record.lane.clone()).or_insert(HeldLane {
                len: 0,
                max_offset: record.event.offset,
                head: Head::Due(record.next_attempt_at_ms.unwrap_or(now)),
            });
            entry.len += 1;
            entry.max_offset = entry.max_offset.max(record.event.offset);
        }
        if !lanes.is_empty() {
            tracing::info!(
                actor = %self.ctx.name, topic = %self.topic, partition = self.partition,
                held = records.len(), lanes = lanes.len(),
                "restored held events"
            );
        }
        for (lane, held) in lanes {
            self.held.insert(lane, held);
        }
        if migrate && !records.is_empty() {
            tracing::info!(
                actor = %self.ctx.name, topic = %self.topic, partition = self.partition,
                held = records.len(),
                "the changelog has no record of this partition: keeping its local held events and writing them to the changelog"
            );
            for record in &records {
                self.write_changelog(&record.id(), Some(record));
            }
        }
        self.update_hold();
        true
    }

    /// Moves held events recorded under another ordering mode (the actor's
    /// `ordering` changed, e.g. `partition` to `key`) to the lane the
    /// current mode gives them, in the store and the changelog, so that a
    /// key's new events wait behind its held ones whatever the change.
    /// Returns the records, in offset order.
    fn relane(&mut self, records: Vec<HeldEvent>) -> Vec<HeldEvent> {
        let mut out = Vec::with_capacity(records.len());
        let mut moved = 0usize;
        for mut record in records {
            let lane = lane_key(self.ctx.ordering, &from_stored(&record.event, 1));
            if lane == record.lane {
                out.push(record);
                continue;
            }
            let old = record.id();
            record.lane = lane;
            let written = self
                .ctx
                .held
                .remove(&old)
                .and_then(|_| self.ctx.held.put(&record));
            if let Err(err) = written {
                self.store_failed("a held event moved to its new lane", err);
            }
            self.write_changelog(&old, None);
            self.write_changelog(&record.id(), Some(&record));
            moved += 1;
            out.push(record);
        }
        if moved > 0 {
            tracing::info!(
                actor = %self.ctx.name, topic = %self.topic, partition = self.partition,
                moved, ordering = ?self.ctx.ordering,
                "held events moved to the lanes of the actor's new ordering"
            );
        }
        out.sort_by_key(|r| r.event.offset);
        out
    }

    /// A store write failed: logged at ERROR, and the worker ends at the top
    /// of its next round (see `failed`).
    fn store_failed(&mut self, what: &str, err: impl std::fmt::Display) {
        tracing::error!(
            actor = %self.ctx.name, topic = %self.topic, partition = self.partition,
            error = %err,
            "cannot write {what} to the store: stopping the partition; it restarts from its last committed offset"
        );
        if self.failed.is_none() {
            self.failed = Some(format!("store write failed ({what}): {err}"));
        }
    }

    /// A request that came while restoring: a retry-now is answered at once
    /// (nothing is held yet) and `None` returned, so the restore goes on;
    /// anything else (a stop, the consumer gone) is given back to end it.
    #[allow(clippy::option_option)]
    fn not_a_stop(&mut self, control: Option<Control>) -> Option<Option<Control>> {
        match control {
            Some(Control::RetryNow { reply, .. }) => {
                let _ = reply.send(false);
                None
            }
            other => Some(other),
        }
    }

    /// A request that came while restoring: a stop (or the consumer gone)
    /// ends the worker before it took anything, so there is no offset to
    /// commit; a retry-now finds nothing held yet.
    fn stopped_while_restoring(&mut self, control: Option<Control>) {
        self.feed = None;
        match control {
            Some(Control::Stop { reply }) => {
                let _ = reply.send(None);
            }
            Some(Control::RetryNow { reply, .. }) => {
                let _ = reply.send(false);
            }
            None => {}
        }
        tracing::info!(
            actor = %self.ctx.name, topic = %self.topic, partition = self.partition,
            "partition worker stopped while restoring its held events"
        );
    }

    /// What `load_held` needs, taken before awaiting (the worker is not
    /// `Sync`).
    fn load_held(
        &self,
        cancel: Arc<AtomicBool>,
    ) -> impl std::future::Future<Output = Result<Loaded, String>> + Send + 'static {
        load_held(
            self.ctx.held.clone(),
            self.topic.clone(),
            self.partition,
            self.changelog.clone(),
            self.ctx.settings.clone(),
            cancel,
            self.fence.clone(),
        )
    }

    /// Reads the partition's own queue, as far as the buffer bound allows
    /// (and not while the partition is held).
    fn pull(&mut self) {
        if !self.accepting || self.holding() {
            return;
        }
        let Some(feed) = self.feed.take() else {
            return;
        };
        let bound = self.ctx.settings.max_buffered_per_partition;
        let room = bound.saturating_sub(self.scheduler.buffered());
        let limit = room.min(INBOX_BATCH);
        let taken = feed.take(limit, |intake| {
            self.shared.pending.fetch_add(1, Ordering::Relaxed);
            self.intake(intake);
        });
        self.feed = Some(feed);
        // A full batch may have left more in the queue, and librdkafka only
        // signals a queue that *becomes* non-empty: come back at once.
        self.feed_more = taken > 0 && taken == limit;
        let full = taken == room;
        if full && !self.feed_full {
            self.ctx.counters.partition_pauses.inc();
        }
        self.feed_full = full;
    }

    /// Whether the partition waits for a held lane (`partition` mode).
    fn holding(&self) -> bool {
        self.shared.hold.load(Ordering::Relaxed)
    }

    /// Takes one record from the consumer.
    fn intake(&mut self, intake: Intake) {
        // Fault tests make a worker end here (`recovery`'s restart path).
        fail::fail_point!("wactor-worker-intake");
        match intake {
            Intake::Event(event) => self.accept(event),
            Intake::Undecodable(bad) => self.reject(*bad),
        }
    }

    /// Dead-letters a record the contract cannot carry, at once: no attempt
    /// could ever succeed. Its offset finishes when the dead letter is
    /// durable, like any other.
    fn reject(&mut self, bad: Undecodable) {
        self.shared.pending.fetch_sub(1, Ordering::Relaxed);
        let offset = bad.record.offset;
        if let Err(err) = self.offsets.track(offset) {
            tracing::warn!(error = %err, "record skipped: offsets must increase");
            return;
        }
        let now = self.ctx.clock.now_ms();
        let stored = raw_to_stored(&bad.record);
        let version = self.ctx.versions.current().map_or(0, |v| v.version);
        let mut dead = dead_letter::build(
            &self.ctx,
            Death {
                event: &stored,
                attempts: Vec::new(),
                kind: wactor_delivery::DeadReason::Undecodable,
                version,
                first_attempt_at_ms: now,
                now_ms: now,
                redrives: 0,
                detail: None,
            },
        );
        // The reason says it all (`undecodable header: ...`).
        dead.reason = bad.reason;
        match self.ctx.dead_letters.put(&dead) {
            Ok(()) => {
                self.after_death(&dead);
                self.durable.offsets.push(offset);
            }
            Err(err) => self.store_failed("the dead letter of an undecodable record", err),
        }
    }

    /// Takes one event from the consumer.
    fn accept(&mut self, event: Event) {
        let offset = event.offset;
        if let Err(err) = self.offsets.track(offset) {
            // A record arriving after a later one: a redelivery of one this
            // worker has seen (harmless), or records out of order from
            // librdkafka (a bug to report: the event is not handled here).
            tracing::error!(error = %err, "record out of order skipped");
            self.shared.pending.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if !self.held.is_empty() {
            let lane = lane_key(self.ctx.ordering, &event);
            if let Some(held) = self.held.get(&lane).copied() {
                self.shared.pending.fetch_sub(1, Ordering::Relaxed);
                if offset <= held.max_offset {
                    // A re-read copy of an event handled or held already.
                    self.offsets.finish(offset);
                    return;
                }
                let record = HeldEvent {
                    event: to_stored(&event),
                    lane: lane.clone(),
                    attempts: Vec::new(),
                    first_attempt_at_ms: None,
                    next_attempt_at_ms: None,
                    version_override: None,
                };
                match self.hold_record(&record) {
                    Hold::Held => {
                        self.durable.offsets.push(offset);
                        if let Some(held) = self.held.get_mut(&lane) {
                            held.len += 1;
                            held.max_offset = offset;
                        }
                    }
                    Hold::TooLarge(why) => {
                        self.dead_unheld(&record.event, why);
                        if let Some(held) = self.held.get_mut(&lane) {
                            held.max_offset = offset;
                        }
                    }
                    Hold::Failed => {}
                }
                return;
            }
        }
        let key = event.key.clone();
        self.scheduler.push(key.as_deref(), Arc::new(event));
    }

    /// Starts what may run: due held heads first (they are older), then
    /// ready Kafka events, up to `max_in_flight`.
    fn start_ready(&mut self) {
        if !self.accepting {
            return;
        }
        while self.running.len() < self.ctx.max_in_flight {
            if let Some(lane) = self.ready_held.pop_front() {
                self.start_held(lane);
                continue;
            }
            let Some((lane, raw)) = self.scheduler.next_ready() else {
                break;
            };
            self.shared.pending.fetch_sub(1, Ordering::Relaxed);
            match self.present(&raw, 1) {
                Ok((presented, redrive)) => self.spawn_call(Job {
                    kind: JobKind::Kafka { lane },
                    raw,
                    presented,
                    redrive,
                    attempt: 1,
                }),
                Err(err) => {
                    tracing::error!(offset = raw.offset, error = %err, "unreadable re-drive record skipped");
                    self.complete_lane(lane);
                    self.offsets.finish(raw.offset);
                }
            }
        }
    }

    /// The event the actor sees for `raw` at policy attempt `attempt`, and
    /// the re-drive it is if it came through the re-drive topic.
    fn present(
        &self,
        raw: &Arc<Event>,
        attempt: u32,
    ) -> Result<(Arc<Event>, Option<Arc<RedriveEnvelope>>), String> {
        if !self.is_redrive {
            if raw.attempt == attempt {
                return Ok((raw.clone(), None));
            }
            let mut event = (**raw).clone();
            event.attempt = attempt;
            return Ok((Arc::new(event), None));
        }
        let envelope = RedriveEnvelope::decode(raw.payload.as_deref())?;
        let presented = Arc::new(envelope.presented(attempt));
        Ok((presented, Some(Arc::new(envelope))))
    }

    fn start_held(&mut self, lane: LaneKey) {
        let record = match self.ctx.held.lane_first(&self.topic, self.partition, &lane) {
            Ok(Some(record)) => record,
            Ok(None) => {
                self.held.remove(&lane);
                self.update_hold();
                return;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot read a held event; retrying in a while");
                let at = self.ctx.clock.now_ms() + 1_000;
                self.held.set_head(&lane, Head::Due(at));
                return;
            }
        };
        let attempt = u32::try_from(record.attempts.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let raw = Arc::new(from_stored(&record.event, 1));
        match self.present(&raw, attempt) {
            Ok((presented, redrive)) => {
                self.ctx.counters.retries_fired.inc();
                self.spawn_call(Job {
                    kind: JobKind::Held {
                        lane,
                        record: Box::new(record),
                    },
                    raw,
                    presented,
                    redrive,
                    attempt,
                });
            }
            Err(err) => {
                tracing::error!(error = %err, "unreadable held re-drive record dropped");
                let id = record.id();
                if self.ctx.held.remove(&id).is_ok() {
                    self.write_changelog(&id, None);
                }
                self.advance(&lane);
            }
        }
    }

    fn spawn_call(&mut self, job: Job) {
        let wanted = job
            .redrive
            .as_ref()
            .and_then(|r| r.version)
            .or(match &job.kind {
                JobKind::Held { record, .. } => record.version_override,
                JobKind::Kafka { .. } => None,
            });
        let version = match wanted {
            Some(n) => self.ctx.versions.get(n),
            None => self.ctx.versions.current(),
        };
        let ctx = self.ctx.clone();
        let event = job.presented.clone();
        let clock = self.ctx.clock.clone();
        self.running.push(Box::pin(async move {
            let call = std::panic::AssertUnwindSafe(call::run(ctx, version, event));
            let report = match call.catch_unwind().await {
                Ok(report) => report,
                Err(_) => {
                    // A panic in host code while handling the event: a bug.
                    // The attempt counts as failed, so the event is not lost.
                    tracing::error!("an actor call panicked in the host");
                    CallReport {
                        outcome: CallOutcome::Failed {
                            reason: "host error: the call panicked".into(),
                        },
                        version: 0,
                        started_at_ms: clock.now_ms(),
                        duration: Duration::ZERO,
                    }
                }
            };
            (job, report)
        }));
    }

    /// Applies the report of a finished call.
    fn finish(&mut self, job: Job, report: CallReport) {
        let failure = match &report.outcome {
            CallOutcome::Done => None,
            CallOutcome::Retry { delay, .. } => Some(Failure::Retry {
                requested_delay: *delay,
            }),
            CallOutcome::Dead { .. } => Some(Failure::Dead),
            CallOutcome::Trap { .. } | CallOutcome::Failed { .. } => Some(Failure::Trap),
        };
        let Job {
            kind,
            raw,
            presented,
            redrive,
            attempt,
        } = job;
        match (kind, failure) {
            (JobKind::Kafka { lane }, None) => {
                self.complete_lane(lane);
                self.offsets.finish(raw.offset);
            }
            (JobKind::Kafka { lane }, Some(failure)) => {
                let failed = Failed {
                    raw: &raw,
                    presented: &presented,
                    redrive: redrive.as_deref(),
                    report: &report,
                    failure,
                };
                self.kafka_failed(lane, failed);
            }
            (JobKind::Held { lane, record }, None) => {
                // Usually finished long ago (a no-op then); not if its
                // changelog record was refused while it ran.
                self.durable.offsets.push(raw.offset);
                let id = record.id();
                match self.ctx.held.remove(&id) {
                    Ok(_) => self.write_changelog(&id, None),
                    Err(err) => self.store_failed("the removal of a finished held event", err),
                }
                self.advance(&lane);
            }
            (JobKind::Held { lane, record }, Some(failure)) => {
                self.durable.offsets.push(raw.offset);
                let failed = Failed {
                    raw: &raw,
                    presented: &presented,
                    redrive: redrive.as_deref(),
                    report: &report,
                    failure,
                };
                self.held_failed(lane, *record, attempt, failed);
            }
        }
    }

    fn complete_lane(&mut self, lane: LaneId) {
        if let Err(err) = self.scheduler.complete(lane) {
            tracing::error!(error = %err, "scheduler out of step");
        }
    }

    /// The manifest that decides retries: the active version's.
    fn manifest(&self) -> Option<Arc<ActorManifest>> {
        self.ctx.versions.current().map(|v| v.manifest.clone())
    }

    fn attempt_record(report: &CallReport, attempt: u32) -> AttemptRecord {
        AttemptRecord {
            attempt,
            started_at_ms: report.started_at_ms,
            duration_ms: report.duration.as_secs_f64() * 1000.0,
            version: report.version,
            outcome: match report.outcome {
                CallOutcome::Done => AttemptOutcome::Done,
                CallOutcome::Retry { .. } => AttemptOutcome::Retry,
                CallOutcome::Dead { .. } => AttemptOutcome::Dead,
                CallOutcome::Trap { .. } => AttemptOutcome::Trap,
                CallOutcome::Failed { .. } => AttemptOutcome::Failed,
            },
            error: report.outcome.error(),
        }
    }

    fn decide(&mut self, attempt: u32, first_at_ms: i64, failure: Failure) -> (Decision, i64) {
        let policy = self.manifest().map(|m| m.retry.clone()).unwrap_or_default();
        let now = self.ctx.clock.now_ms();
        let decision = policy.decide(
            attempt,
            to_system_time(first_at_ms),
            to_system_time(now),
            failure,
            &mut self.rng,
        );
        (decision, now)
    }

    /// A Kafka event's first attempt failed.
    fn kafka_failed(&mut self, lane: LaneId, failed: Failed<'_>) {
        let attempt = Self::attempt_record(failed.report, failed.presented.attempt);
        let first_at = failed.report.started_at_ms;
        let (decision, now) = self.decide(1, first_at, failed.failure);
        let lane_key = lane_key(self.ctx.ordering, failed.raw);
        let mut detail = None;
        let next = match decision {
            Decision::RetryAfter(delay) => {
                let due = now.saturating_add(millis(delay));
                let head = HeldEvent {
                    event: to_stored(failed.raw),
                    lane: lane_key.clone(),
                    attempts: vec![attempt.clone()],
                    first_attempt_at_ms: Some(first_at),
                    next_attempt_at_ms: Some(due),
                    version_override: None,
                };
                match self.hold_record(&head) {
                    Hold::Held => {
                        self.durable.offsets.push(failed.raw.offset);
                        Next::Hold { due, len: 1 }
                    }
                    Hold::Failed => Next::Hold { due, len: 0 },
                    Hold::TooLarge(why) => {
                        // It cannot wait for its retry: dead now, and the
                        // lane goes on as after any death.
                        detail = Some(why);
                        Next::Dead(DeadReason::TooLargeToHold)
                    }
                }
            }
            Decision::DeadLetter(kind) => Next::Dead(kind),
        };
        match next {
            Next::Hold { due, mut len } => {
                let queued = match self.scheduler.complete_and_take(lane) {
                    Ok(queued) => queued,
                    Err(err) => {
                        tracing::error!(error = %err, "scheduler out of step");
                        Vec::new()
                    }
                };
                let mut max_offset = failed.raw.offset;
                for waiting in queued {
                    self.shared.pending.fetch_sub(1, Ordering::Relaxed);
                    let record = HeldEvent {
                        event: to_stored(&waiting),
                        lane: lane_key.clone(),
                        attempts: Vec::new(),
                        first_attempt_at_ms: None,
                        next_attempt_at_ms: None,
                        version_override: None,
                    };
                    match self.hold_record(&record) {
                        Hold::Held => {
                            self.durable.offsets.push(waiting.offset);
                            len += 1;
                            max_offset = max_offset.max(waiting.offset);
                        }
                        Hold::TooLarge(why) => {
                            self.dead_unheld(&record.event, why);
                            max_offset = max_offset.max(waiting.offset);
                        }
                        Hold::Failed => {}
                    }
                }
                self.held.insert(
                    lane_key,
                    HeldLane {
                        len,
                        max_offset,
                        head: Head::Due(due),
                    },
                );
                self.update_hold();
                self.ctx.counters.retries_scheduled.inc();
            }
            Next::Dead(kind) => {
                let dead = self.death(&failed, vec![attempt], kind, detail, first_at, now);
                match store_write_fault()
                    .and_then(|()| self.ctx.dead_letters.put(&dead).map_err(|e| e.to_string()))
                {
                    Ok(()) => {
                        self.after_death(&dead);
                        self.durable.offsets.push(failed.raw.offset);
                    }
                    Err(err) => self.store_failed("a dead letter", err),
                }
                self.complete_lane(lane);
            }
        }
    }

    /// A held head's attempt failed; `attempt` is the policy's number.
    fn held_failed(
        &mut self,
        lane: LaneKey,
        mut record: HeldEvent,
        attempt: u32,
        failed: Failed<'_>,
    ) {
        let first_at = *record
            .first_attempt_at_ms
            .get_or_insert(failed.report.started_at_ms);
        record.attempts.push(Self::attempt_record(
            failed.report,
            failed.presented.attempt,
        ));
        let (decision, now) = self.decide(attempt, first_at, failed.failure);
        let mut detail = None;
        let kind = match decision {
            Decision::RetryAfter(delay) => {
                let due = now.saturating_add(millis(delay));
                record.next_attempt_at_ms = Some(due);
                match self.hold_record(&record) {
                    Hold::Held => {
                        self.held.set_head(&lane, Head::Due(due));
                        self.ctx.counters.retries_scheduled.inc();
                        return;
                    }
                    Hold::Failed => {
                        self.held.set_head(&lane, Head::Due(now + 1_000));
                        self.ctx.counters.retries_scheduled.inc();
                        return;
                    }
                    // Its history grew past what the changelog takes.
                    Hold::TooLarge(why) => {
                        detail = Some(why);
                        DeadReason::TooLargeToHold
                    }
                }
            }
            Decision::DeadLetter(kind) => kind,
        };
        let id = record.id();
        let dead = self.death(
            &failed,
            record.attempts.clone(),
            kind,
            detail,
            first_at,
            now,
        );
        match self
            .ctx
            .held
            .move_to_dead_letters(&id, &dead, &self.ctx.dead_letters)
        {
            Ok(()) => {
                self.write_changelog(&id, None);
                self.after_death(&dead);
                self.advance(&lane);
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot move a held event to the dead letters; retrying in a while");
                self.held.set_head(&lane, Head::Due(now + 1_000));
            }
        }
    }

    /// The dead letter of a failed job. For a re-drive it is the original
    /// event's, with the earlier history in front and one more re-drive.
    fn death(
        &self,
        failed: &Failed<'_>,
        attempts: Vec<AttemptRecord>,
        kind: wactor_delivery::DeadReason,
        detail: Option<String>,
        first_at: i64,
        now: i64,
    ) -> wactor_store::DeadLetter {
        match failed.redrive {
            None => {
                let stored = to_stored(failed.raw);
                dead_letter::build(
                    &self.ctx,
                    Death {
                        event: &stored,
                        attempts,
                        kind,
                        version: failed.report.version,
                        first_attempt_at_ms: first_at,
                        now_ms: now,
                        redrives: 0,
                        detail,
                    },
                )
            }
            Some(envelope) => {
                let earlier = &envelope.dead_letter;
                let mut all = earlier.attempts.clone();
                all.extend(attempts);
                dead_letter::build(
                    &self.ctx,
                    Death {
                        event: &earlier.event,
                        attempts: all,
                        kind,
                        version: failed.report.version,
                        first_attempt_at_ms: earlier.first_attempt_at_ms,
                        now_ms: now,
                        redrives: earlier.redrives.saturating_add(1),
                        detail,
                    },
                )
            }
        }
    }

    /// Metrics, a log line and the Kafka mirror of a new dead letter.
    fn after_death(&mut self, dead: &wactor_store::DeadLetter) {
        tracing::warn!(
            actor = %self.ctx.name,
            topic = %dead.event.topic,
            partition = dead.event.partition,
            offset = dead.event.offset,
            id = %dead.id,
            reason = %dead.reason,
            "event dead-lettered"
        );
        self.ctx
            .metrics
            .dead_letters_total
            .with_label_values(&[&self.ctx.name, &dead.kind])
            .inc();
        if let Some(manifest) = self.manifest() {
            if let Some(delivery) = dead_letter::mirror(&self.ctx, &manifest, dead) {
                let metrics = self.ctx.metrics.clone();
                let actor = self.ctx.name.clone();
                tokio::spawn(async move {
                    if let Err(err) = delivery.await {
                        tracing::warn!(error = %err, "dead letter not mirrored to Kafka");
                        metrics
                            .emit_failures_total
                            .with_label_values(&[&actor])
                            .inc();
                    }
                });
            }
        }
    }

    /// The head of held `lane` is finished: the next held event of the lane
    /// runs now, or the lane is ordinary again.
    fn advance(&mut self, lane: &LaneKey) {
        match self.ctx.held.lane_first(&self.topic, self.partition, lane) {
            Ok(Some(next)) => {
                let now = self.ctx.clock.now_ms();
                let due = next.next_attempt_at_ms.unwrap_or(now);
                if let Some(held) = self.held.get_mut(lane) {
                    held.len = held.len.saturating_sub(1);
                }
                self.held.set_head(lane, Head::Due(due));
            }
            Ok(None) => {
                self.held.remove(lane);
                self.update_hold();
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot read a held lane; retrying in a while");
                let at = self.ctx.clock.now_ms() + 1_000;
                self.held.set_head(lane, Head::Due(at));
            }
        }
    }

    /// Puts a held record into the store and the changelog.
    ///
    /// [`Hold::TooLarge`] (nothing written) when its changelog record
    /// would exceed the message size limit: the caller dead-letters the
    /// event instead, so one record can never stall the partition's
    /// commits. [`Hold::Failed`] when the store refused it (logged): the
    /// caller then leaves its offset unfinished, so the event is read again
    /// after a restart.
    fn hold_record(&mut self, record: &HeldEvent) -> Hold {
        let id = record.id();
        let out = match &self.changelog {
            Some(changelog) => match changelog.record(&id, Some(record)) {
                Ok(out) => {
                    let size = out.wire_size();
                    if size > self.max_record_bytes {
                        return Hold::TooLarge(format!(
                            "its retry changelog record is {size} bytes, over the limit of {} bytes \
                             (kafka message.max.bytes)",
                            self.max_record_bytes
                        ));
                    }
                    Some((changelog.clone(), out))
                }
                Err(err) => {
                    tracing::error!(error = %err, offset = record.event.offset, "cannot encode a held event");
                    return Hold::Failed;
                }
            },
            None => None,
        };
        if let Err(err) =
            store_write_fault().and_then(|()| self.ctx.held.put(record).map_err(|e| e.to_string()))
        {
            self.store_failed("a held event", err);
            return Hold::Failed;
        }
        if let Some((_, out)) = out {
            self.durable.writes.push((id, out.wire_size(), out));
        }
        Hold::Held
    }

    /// Writes the current value of a held event to the changelog (`None`: a
    /// tombstone, the event is finished).
    fn write_changelog(&mut self, id: &HeldId, record: Option<&HeldEvent>) {
        if let Some(changelog) = &self.changelog {
            match changelog.record(id, record) {
                Ok(out) => {
                    self.durable.writes.push((id.clone(), out.wire_size(), out));
                }
                Err(err) => tracing::error!(error = %err, %id, "cannot encode a changelog record"),
            }
        }
    }

    /// Dead-letters an event that had to be held behind its lane's head but
    /// cannot be (its record is too large): it was never attempted. Its
    /// offset finishes once the dead letter is durable.
    fn dead_unheld(&mut self, event: &wactor_store::StoredEvent, why: String) {
        let now = self.ctx.clock.now_ms();
        let version = self.ctx.versions.current().map_or(0, |v| v.version);
        let dead = dead_letter::build(
            &self.ctx,
            Death {
                event,
                attempts: Vec::new(),
                kind: DeadReason::TooLargeToHold,
                version,
                first_attempt_at_ms: now,
                now_ms: now,
                redrives: 0,
                detail: Some(why),
            },
        );
        match self.ctx.dead_letters.put(&dead) {
            Ok(()) => {
                self.after_death(&dead);
                self.durable.offsets.push(event.offset);
            }
            Err(err) => self.store_failed("a dead letter", err),
        }
    }

    /// In `partition` mode the consumer stops reading while the partition's
    /// lane is held.
    fn update_hold(&self) {
        let hold = self.ctx.ordering == OrderingMode::Partition && !self.held.is_empty();
        self.shared.hold.store(hold, Ordering::Relaxed);
    }

    fn retry_now(&mut self, id: &HeldId) -> bool {
        if id.topic != self.topic || id.partition != self.partition {
            return false;
        }
        let Some(held) = self.held.get(&id.lane) else {
            return false;
        };
        if !matches!(held.head, Head::Due(_)) {
            return false;
        }
        match self
            .ctx
            .held
            .lane_first(&self.topic, self.partition, &id.lane)
        {
            Ok(Some(head)) if head.id() == *id => {
                let now = self.ctx.clock.now_ms();
                self.held.set_head(&id.lane, Head::Due(now));
                true
            }
            _ => false,
        }
    }

    /// Starts a durability point: flush the store and await the changelog,
    /// then publish the offset that was committable before the flush.
    fn tick(&mut self) {
        if self.tick_running {
            return;
        }
        let candidate = self.offsets.committable();
        let nothing_new = self.durable.offsets.is_empty() && self.durable.writes.is_empty();
        let published = self.shared.commit.load(Ordering::Relaxed);
        let unchanged = nothing_new && candidate.is_none_or(|c| c == published);
        if unchanged {
            return;
        }
        self.tick_running = true;
        let batch = std::mem::take(&mut self.durable);
        let store = self.ctx.store.clone();
        let producer = self.ctx.producer.clone();
        let tx = self.tick_tx.clone();
        let fence = self.fence.clone();
        self.tick_task = Some(tokio::spawn(async move {
            let _fence = fence;
            let tick = make_durable(store, &producer, candidate, batch).await;
            let _ = tx.send(tick);
        }));
    }

    /// Applies a durability point. Offsets whose own writes are durable
    /// finish; the candidate (computed from offsets finished before the
    /// tick) is published whenever the store flushed: a failed changelog
    /// write holds back only the offset of its own event, never the
    /// partition's commits.
    fn on_tick(&mut self, tick: Tick) {
        self.tick_running = false;
        // Offsets whose record the broker refused: they finish when their
        // event is dead-lettered (or done), not with this tick.
        let refused: HashSet<i64> = tick.refused.iter().map(|(id, _, _)| id.offset).collect();
        for (id, size, error) in tick.refused {
            self.refused(id, size, error);
        }
        if !tick.flushed {
            // Nothing written since the last tick is known to be on disk.
            for id in tick.failed {
                let current = self.ctx.held.get(&id).ok().flatten();
                self.write_changelog(&id, current.as_ref());
            }
            self.durable
                .offsets
                .extend(tick.offsets.into_iter().filter(|o| !refused.contains(o)));
            return;
        }
        // Offsets whose changelog record is not acknowledged yet.
        let mut waiting: HashSet<i64> = HashSet::new();
        if !tick.failed.is_empty() {
            tracing::warn!(
                count = tick.failed.len(),
                "changelog writes failed; writing again"
            );
        }
        for id in tick.failed {
            waiting.insert(id.offset);
            let current = self.ctx.held.get(&id).ok().flatten();
            self.write_changelog(&id, current.as_ref());
        }
        for offset in tick.offsets {
            if waiting.contains(&offset) {
                self.durable.offsets.push(offset);
            } else if !refused.contains(&offset) {
                self.offsets.finish(offset);
            }
        }
        if let Some(candidate) = tick.candidate {
            self.shared.commit.store(candidate, Ordering::Relaxed);
        }
    }

    /// A changelog record the broker refused as too large (its limit, or
    /// the topic's `max.message.bytes`, is below the producer's): writing
    /// it again cannot work. Records of this size and above are from now
    /// on treated as too large to hold, and the event is dead-lettered
    /// now unless it is running (then its next hold fails the size check,
    /// or it finishes). Its offset finishes with it.
    fn refused(&mut self, id: HeldId, size: usize, error: String) {
        self.max_record_bytes = self.max_record_bytes.min(size.saturating_sub(1));
        tracing::error!(
            %id, size, limit = self.max_record_bytes, %error,
            "the broker refused a retry changelog record as too large; \
             raise the changelog topic's max.message.bytes to match kafka message.max.bytes"
        );
        let record = match self.ctx.held.get(&id) {
            Ok(Some(record)) => record,
            Ok(None) => {
                // Finished meanwhile: make sure the changelog forgets it.
                self.write_changelog(&id, None);
                self.durable.offsets.push(id.offset);
                return;
            }
            Err(err) => {
                tracing::error!(error = %err, %id, "cannot read a held event");
                return;
            }
        };
        let is_head = matches!(
            self.ctx.held.lane_first(&self.topic, self.partition, &id.lane),
            Ok(Some(ref first)) if first.id() == id
        );
        let lane = self.held.get(&id.lane).copied();
        if is_head && lane.is_some_and(|l| l.head == Head::Running) {
            return;
        }
        let now = self.ctx.clock.now_ms();
        let version = self.ctx.versions.current().map_or(0, |v| v.version);
        let dead = dead_letter::build(
            &self.ctx,
            Death {
                event: &record.event,
                attempts: record.attempts.clone(),
                kind: DeadReason::TooLargeToHold,
                version,
                first_attempt_at_ms: record.first_attempt_at_ms.unwrap_or(now),
                now_ms: now,
                redrives: 0,
                detail: Some(format!(
                    "the broker refused its {size}-byte retry changelog record: {error}"
                )),
            },
        );
        match self
            .ctx
            .held
            .move_to_dead_letters(&id, &dead, &self.ctx.dead_letters)
        {
            Ok(()) => {
                self.write_changelog(&id, None);
                self.after_death(&dead);
                self.durable.offsets.push(id.offset);
                if is_head {
                    self.advance(&id.lane);
                } else if let Some(held) = self.held.get_mut(&id.lane) {
                    held.len = held.len.saturating_sub(1);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, %id, "cannot move a held event to the dead letters");
            }
        }
    }

    /// Stops: no new calls; running ones get the drain bound; everything is
    /// made durable; returns the offset to commit.
    async fn stop(&mut self) -> Option<i64> {
        // The fault point of a worker slow to stop (a durability wait, a
        // leader down): `return(MS)` delays the stop by MS milliseconds.
        #[cfg(feature = "failpoints")]
        if let Some(ms) = fail::eval("wactor-worker-stop", |arg| {
            arg.and_then(|ms| ms.parse::<u64>().ok()).unwrap_or(0)
        }) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        self.accepting = false;
        // The queue holds a reference to the consumer: let it go before the
        // consumer thread is told the partition is released.
        self.feed = None;
        let dropped = self.scheduler.drain_pending().len();
        self.shared.pending.store(0, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + self.ctx.settings.drain_timeout;
        while !self.running.is_empty() {
            tokio::select! {
                finished = self.running.next() => match finished {
                    Some((job, report)) => self.finish(job, report),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        actor = %self.ctx.name, topic = %self.topic, partition = self.partition,
                        calls = self.running.len(),
                        "calls still running at the drain bound are given up; their events will be redelivered"
                    );
                    // Dropping the calls abandons them.
                    self.running = FuturesUnordered::new();
                    break;
                }
            }
        }
        // An earlier tick may still be out.
        if self.tick_running {
            if let Ok(Some(tick)) =
                tokio::time::timeout_at(deadline + Duration::from_secs(5), self.tick_rx.recv())
                    .await
            {
                self.on_tick(tick);
            }
        }
        let batch = std::mem::take(&mut self.durable);
        let tick = make_durable(self.ctx.store.clone(), &self.ctx.producer, None, batch).await;
        let durable = tick.flushed && tick.failed.is_empty() && tick.refused.is_empty();
        if durable {
            for offset in tick.offsets {
                self.offsets.finish(offset);
            }
        }
        tracing::debug!(
            actor = %self.ctx.name, topic = %self.topic, partition = self.partition,
            dropped, durable,
            "partition worker stopped"
        );
        if durable {
            self.offsets.committable()
        } else {
            let published = self.shared.commit.load(Ordering::Relaxed);
            (published >= 0).then_some(published)
        }
    }
}

/// Flushes the store and awaits the changelog writes of `batch`.
/// The fault point of store writes (fault tests make them fail).
fn store_write_fault() -> Result<(), String> {
    fail::fail_point!("wactor-store-write", |_| Err("fail point".to_string()));
    Ok(())
}

/// Flushes the store, then produces the changelog records of `batch` and
/// awaits them: in that order, so that nothing reaches the changelog before
/// the local writes it depends on are on disk. When the flush fails nothing
/// is produced and every record is reported failed (written again from the
/// store's current state at the next tick).
async fn make_durable(
    store: wactor_store::Store,
    producer: &crate::producer::Producer,
    candidate: Option<i64>,
    batch: Durable,
) -> Tick {
    // Fault tests make the flush fail here (a crash before the flush, as
    // far as the changelog can tell).
    let flush_fault = || -> Result<(), String> {
        fail::fail_point!("wactor-store-flush", |_| Err("fail point".to_string()));
        Ok(())
    };
    let flushed = match flush_fault() {
        Err(err) => {
            tracing::error!(error = %err, "store flush failed");
            false
        }
        Ok(()) => match store.flush_async().await {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(error = %err, "store flush failed");
                false
            }
        },
    };
    let mut failed = Vec::new();
    let mut refused = Vec::new();
    if !flushed {
        failed.extend(batch.writes.into_iter().map(|(id, _, _)| id));
    } else {
        // Enqueued in order (one partition per source partition, idempotent
        // producer): the changelog keeps the order of the changes.
        let deliveries: Vec<(HeldId, usize, Delivery)> = batch
            .writes
            .into_iter()
            .map(|(id, size, out)| {
                let delivery = producer.enqueue(&out);
                (id, size, delivery)
            })
            .collect();
        for (id, size, delivery) in deliveries {
            if let Err(err) = delivery.await {
                if is_too_large(&err) {
                    refused.push((id, size, err.to_string()));
                } else {
                    tracing::warn!(error = %err, "changelog write not acknowledged");
                    failed.push(id);
                }
            }
        }
    }
    Tick {
        candidate,
        offsets: batch.offsets,
        flushed,
        failed,
        refused,
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Loads the held events of a partition: from the changelog (replacing the
/// local copy) when there is one, else from the store.
/// `cancel` set means the worker gave up waiting (its partition was
/// revoked): the restore then leaves the store alone.
async fn load_held(
    held: wactor_store::HeldEvents,
    topic: String,
    partition: i32,
    changelog: Option<Arc<Changelog>>,
    settings: crate::settings::KafkaSettings,
    cancel: Arc<AtomicBool>,
    fence: Option<Fence>,
) -> Result<Loaded, String> {
    match &changelog {
        Some(changelog) => {
            let changelog = changelog.clone();
            tokio::task::spawn_blocking(move || {
                // Held until the thread ends, abandoned or not: the
                // partition's next worker waits for it (see `fence`).
                let _fence = fence;
                // Fault tests make the changelog slow here.
                fail::fail_point!("wactor-restore-read");
                let restored = changelog
                    .restore(&settings, &topic, partition)
                    .map_err(|e| e.to_string())?;
                if cancel.load(Ordering::Relaxed) {
                    return Err("restore abandoned: the partition was revoked".to_string());
                }
                if !restored.seen {
                    // The changelog never knew this partition (just switched
                    // on, or a new group's): the local held events are the
                    // truth; they are written to the changelog by the worker.
                    let mut records = held
                        .partition(&topic, partition)
                        .map_err(|e| e.to_string())?;
                    records.sort_by_key(|r| r.event.offset);
                    return Ok(Loaded {
                        records,
                        migrate: true,
                    });
                }
                let mut records = restored.records;
                held.replace_partition(&topic, partition, &records)
                    .map_err(|e| e.to_string())?;
                records.sort_by_key(|r| r.event.offset);
                Ok(Loaded {
                    records,
                    migrate: false,
                })
            })
            .await
            .map_err(|e| e.to_string())?
        }
        None => {
            let mut records = held
                .partition(&topic, partition)
                .map_err(|e| e.to_string())?;
            records.sort_by_key(|r| r.event.offset);
            Ok(Loaded {
                records,
                migrate: false,
            })
        }
    }
}

/// The held events a worker starts with.
struct Loaded {
    /// In offset order.
    records: Vec<HeldEvent>,
    /// They come from the local store because the changelog never knew the
    /// partition: write them to the changelog.
    migrate: bool,
}
