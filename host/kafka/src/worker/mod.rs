//! The partition worker: one tokio task per assigned partition of an actor,
//! owning everything about that partition's events.
//!
//! - It takes owned events from the consumer thread ([`WorkerHandle`]),
//!   puts them into lanes ([`LaneScheduler`]) and runs what may run, up to
//!   the actor's `max_in_flight`: each call a future polled by the worker's
//!   own task (no task and no channel hop per call).
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
//!
//! The parts: this module owns the worker's state, its start (the fence)
//! and its event loop; `intake` takes records into lanes and starts
//! calls; `held` keeps held lanes and restores them; `decide` applies a
//! finished call (done, held for a retry, dead-lettered); `durability`
//! makes it all durable and stops. The state machine can be driven without
//! a librdkafka queue: a worker spawned by [`spawn_with_inbox`] takes its
//! records from [`WorkerHandle::offer`] (the tests drive it that way).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc;
use wactor_delivery::{LaneId, LaneScheduler, OffsetTracker};
use wactor_manifest::ActorManifest;
use wactor_runtime::Event;
use wactor_store::{HeldEvent, HeldId, LaneKey};

use crate::actor::ActorContext;
use crate::call::CallReport;
use crate::changelog::Changelog;
use crate::consumer::PartitionFeed;
use crate::event::Intake;
use crate::fence::{self, Fence};
use crate::held_lanes::HeldLanes;
use crate::producer::max_message_bytes;
use crate::redrive::RedriveEnvelope;

mod decide;
mod durability;
mod held;
pub use held::Unblock;
mod intake;

use durability::{Durable, Tick};

/// Events taken from the inbox per wake-up, at most.
const INBOX_BATCH: usize = 256;

/// How long a worker waits for its queue's signal before looking anyway.
const FEED_RECHECK: Duration = Duration::from_millis(100);

/// The jobs of a finished call with their reports: one, or those of a
/// batch (no allocation for one).
type Finished = smallvec::SmallVec<[(Job, CallReport); 1]>;

/// A call in progress and what it is about.
type RunningCall = BoxFuture<'static, Finished>;

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
    /// An operator's re-drive or discard of a dead letter that may block a
    /// lane of this partition (`on_dead = "block"`).
    Unblock {
        /// The death (dead letter and time of death).
        blocked: wactor_store::BlockedBy,
        /// What to do.
        action: Unblock,
        /// Whether a lane here was blocked by it (and the action done).
        reply: tokio::sync::oneshot::Sender<bool>,
    },
}

/// The consumer thread's handle on a worker.
pub struct WorkerHandle {
    /// Events of the partition, in offset order, when the worker has no
    /// queue of its own.
    pub(crate) inbox: mpsc::UnboundedSender<Intake>,
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

impl WorkerHandle {
    /// Hands `intake` to the worker through its inbox (for a worker with
    /// no queue of its own, and for tests that drive a worker directly)
    /// and counts it as pending. Returns the pending count with it, or
    /// `None` when the worker is gone (the record is dropped: the
    /// partition's next owner reads it again from the committed offset).
    pub fn offer(&self, intake: Intake) -> Option<usize> {
        let pending = self.shared.pending.fetch_add(1, Ordering::Relaxed) + 1;
        if self.inbox.send(intake).is_err() {
            self.shared.pending.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(pending)
    }
}

/// The task of a partition worker.
pub type WorkerTask = tokio::task::JoinHandle<Result<(), String>>;

/// Starts the worker of `topic[partition]` on `runtime` with no queue of
/// its own: it takes its records from [`WorkerHandle::offer`], in offset
/// order, as the consumer thread hands them over when librdkafka gives no
/// partition queue. Tests drive the state machine this way.
pub fn spawn_with_inbox(
    runtime: &tokio::runtime::Handle,
    ctx: Arc<ActorContext>,
    changelog: Option<Arc<Changelog>>,
    topic: String,
    partition: i32,
) -> WorkerHandle {
    spawn(runtime, ctx, changelog, topic, partition, None, None)
}

/// Records a worker passes over before its first event, because its
/// actor starts later than the partition's beginning (the manifest's
/// `start`) and its group never committed the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartSkip {
    /// Records at offsets below this (the partition's end when it was
    /// assigned: `start = "latest"`).
    BeforeOffset(i64),
    /// Records until the first whose timestamp is at or after this (ms
    /// since the epoch: `start = "<time>"`); every record after that one
    /// is handled, whatever its timestamp.
    UntilTime(i64),
}

/// Starts the worker of `topic[partition]` on `runtime`, reading `feed`
/// when there is one (else its inbox).
///
/// The worker first takes the partition's fence (`fence`): a worker of the
/// partition that still runs on this host (one the consumer gave up on is
/// aborted) or a task it left (its durability tick, its restore thread)
/// ends before this one restores anything, so two workers of one
/// partition never write at once on one host. It answers a stop while it
/// waits.
pub(crate) fn spawn(
    runtime: &tokio::runtime::Handle,
    ctx: Arc<ActorContext>,
    changelog: Option<Arc<Changelog>>,
    topic: String,
    partition: i32,
    feed: Option<PartitionFeed>,
    start_skip: Option<StartSkip>,
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
        running_jobs: 0,
        finished_now: Vec::new(),
        state_reader: None,
        durable: Durable::default(),
        tick_running: false,
        tick_tx,
        tick_rx,
        accepting: true,
        is_redrive: false,
        is_schedule: false,
        is_delayed: false,
        is_replay: false,
        deferred: Vec::new(),
        start_skip,
        firing: None,
        firings: crate::schedule::Firings::default(),
        redriven: RecentDeaths::default(),
        failed: None,
        rng: StdRng::from_entropy(),
        max_record_bytes: 0,
        fence: None,
        tick_task: None,
    };
    worker.max_record_bytes = max_message_bytes(&worker.ctx.settings);
    worker.is_redrive = worker.topic == worker.ctx.redrive_topic();
    worker.is_schedule = worker.topic == crate::schedule::schedule_topic(&worker.ctx.group);
    worker.is_delayed = worker.topic == crate::delayed::delayed_topic(&worker.ctx.group);
    worker.is_replay = worker.topic == crate::replay::replay_topic(&worker.ctx.group);
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
                control = worker.control.recv() => {
                    if let Some(other) = worker.not_a_stop(control) {
                        worker.stopped_while_restoring(other);
                        return Ok(());
                    }
                }
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
    /// The jobs in `running` (a batch call holds several): what counts
    /// towards `max_in_flight`.
    running_jobs: usize,
    /// Calls that were done at their first poll (a warm instance that
    /// never waited: most calls), finished at the next round of the loop
    /// like any other. They count towards `max_in_flight` until then and
    /// cost no `FuturesUnordered` task (a heap task and atomics per call).
    finished_now: Vec<(Job, CallReport)>,
    /// The state reader of the last scope a call read (the partition's own;
    /// a re-drive worker's events have the scope of their source
    /// partition), reused while calls stay in it.
    state_reader: Option<(String, i32, Arc<dyn wactor_runtime::StateReader>)>,
    durable: Durable,
    tick_running: bool,
    tick_tx: mpsc::UnboundedSender<Tick>,
    tick_rx: mpsc::UnboundedReceiver<Tick>,
    /// False once stopping: nothing new starts.
    accepting: bool,
    /// This partition belongs to the actor's re-drive topic.
    is_redrive: bool,
    /// This partition belongs to the actor's schedule topic.
    is_schedule: bool,
    /// This partition belongs to the actor's delayed-records topic: its
    /// records are held until due and delivered, not handled.
    is_delayed: bool,
    /// This partition belongs to the actor's replay topic: its records are
    /// presented as the originals they copy (`replay::presented`).
    is_replay: bool,
    /// Unblocks that came while the worker was restoring.
    deferred: Vec<Control>,
    /// Records to pass over before the first event (the actor's `start`);
    /// `None` once the first event to handle came.
    start_skip: Option<StartSkip>,
    /// The schedules' firing loop, run by the worker of the schedule
    /// topic's partition 0.
    firing: Option<crate::schedule::FiringLoop>,
    /// The last occurrence handled per schedule (schedule partitions): a
    /// firing record written twice is skipped.
    firings: crate::schedule::Firings,
    /// Deaths (dead-letter id, re-drives) this re-drive partition started
    /// lately: a second re-drive of the same death (sent by two hosts at
    /// once, or retried by a client) is skipped, not run twice.
    redriven: RecentDeaths,
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

impl Worker {
    /// Ends with `Err(reason)` when the worker must stop on its own (a
    /// store write failed); `recovery` restarts it.
    async fn run(mut self) -> Result<(), String> {
        if !self.restore().await {
            return Ok(());
        }
        // Unblocks asked for while restoring, now that the held events are
        // known.
        for control in std::mem::take(&mut self.deferred) {
            if let Control::Unblock {
                blocked,
                action,
                reply,
            } = control
            {
                let _ = reply.send(self.unblock(&blocked, action));
            }
        }
        // The owner of the schedule topic's partition 0 fires the actor's
        // schedules for as long as this worker runs (`stop` ends it first;
        // any other end drops, so aborts, it).
        if self.is_schedule && self.partition == crate::schedule::SCHEDULE_PARTITION {
            self.firing = Some(crate::schedule::spawn(self.ctx.clone()));
        }
        let mut commit_tick = tokio::time::interval(self.ctx.settings.commit_interval);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // One unit of tokio's cooperative budget per round, yielding to
            // the scheduler when it is spent. Without it a worker whose
            // calls finish at once (a backlog, a fast actor) never returns
            // to the scheduler: the loop goes round inside one poll, its
            // budget stays spent, and every tokio branch below (the commit
            // tick, its result, due retries, stops) answers "pending" until
            // the backlog is gone. Found by the million-event backlog test:
            // no commit for the whole backlog.
            tokio::task::consume_budget().await;
            if let Some(reason) = self.failed.take() {
                // Nothing more is taken or published: the partition starts
                // again from the offset published last, which never passed
                // the event whose write failed.
                self.accepting = false;
                self.feed = None;
                self.running = FuturesUnordered::new();
                self.running_jobs = 0;
                self.finished_now.clear();
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
            let recheck = self.running.is_empty() && self.finished_now.is_empty();
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
                    Some(Control::Unblock { blocked, action, reply }) => {
                        let _ = reply.send(self.unblock(&blocked, action));
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
                Some(finished) = self.running.next(), if !self.running.is_empty() => {
                    self.finish_running(finished);
                    // Collect the other calls that are done too, before the
                    // next round of the loop.
                    for _ in 0..INBOX_BATCH {
                        match self.running.next().now_or_never() {
                            Some(Some(finished)) => self.finish_running(finished),
                            _ => break,
                        }
                    }
                }
                // Calls done at their first poll: after the running ones,
                // which are polled every round (with this task's waker)
                // before these are taken. Before the fix of issue 15's
                // review this branch came first: under a backlog it was
                // ready every round, and a call that waited (HTTP, a long
                // computation) was not polled again until the backlog was
                // gone, holding back the partition's commits all along.
                () = std::future::ready(()), if !self.finished_now.is_empty() => {
                    for (job, report) in std::mem::take(&mut self.finished_now) {
                        self.finish(job, report);
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

    /// Starts polling `call`, which runs `jobs` jobs.
    fn push_running(&mut self, call: RunningCall, jobs: usize) {
        self.running_jobs += jobs;
        self.running.push(call);
    }

    /// Finishes the jobs of a call that came out of `running`.
    fn finish_running(&mut self, finished: Finished) {
        self.running_jobs = self.running_jobs.saturating_sub(finished.len());
        for (job, report) in finished {
            self.finish(job, report);
        }
    }

    /// Jobs started and not finished: what `max_in_flight` bounds.
    fn in_flight(&self) -> usize {
        self.running_jobs + self.finished_now.len()
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

    /// The manifest that decides retries: the active version's.
    fn manifest(&self) -> Option<Arc<ActorManifest>> {
        self.ctx.versions.current().map(|v| v.manifest.clone())
    }
}

/// How many re-driven deaths a re-drive partition remembers.
const RECENT_DEATHS: usize = 100_000;

/// The deaths (dead-letter id, re-drives) a re-drive partition started
/// lately, at most [`RECENT_DEATHS`] (the oldest are forgotten). In
/// memory: a re-drive sent twice on either side of a rebalance or restart
/// of this partition can still run twice.
#[derive(Default)]
pub(crate) struct RecentDeaths {
    seen: std::collections::HashSet<(String, u32)>,
    order: VecDeque<(String, u32)>,
}

impl RecentDeaths {
    /// Records a death; false when it was recorded already.
    pub(crate) fn first_time(&mut self, id: &str, redrives: u32) -> bool {
        let entry = (id.to_string(), redrives);
        if !self.seen.insert(entry.clone()) {
            return false;
        }
        self.order.push_back(entry);
        while self.order.len() > RECENT_DEATHS {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}
