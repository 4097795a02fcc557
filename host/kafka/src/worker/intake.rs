//! Intake: taking the partition's records (from its own librdkafka queue
//! or the consumer thread's inbox) into lanes, dead-lettering records the
//! contract cannot carry, and starting the calls that may run, up to
//! `max_in_flight`.
//!
//! It does not decide what a failed call does (`decide`), keep held lanes
//! (`held`) or make anything durable (`durability`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use wactor_delivery::LaneId;
use wactor_runtime::Event;

use crate::call::{self, CallOutcome, CallReport};
use crate::dead_letter::{self, Death};
use crate::event::{raw_to_stored, Intake, Undecodable};
use crate::held_lanes::lane_key;
use crate::redrive::RedriveEnvelope;

use super::held::{waiting_record, Hold};
use super::{Job, JobKind, Worker, INBOX_BATCH};
use crate::actor::ActiveVersion;

/// Most events in one `handle-batch` call. A batch is one call with one
/// deadline; larger batches would gain little (the per-call cost is spread
/// thin already at this size) and make a fallback to single calls, after
/// a trap, longer.
pub const MAX_BATCH_EVENTS: usize = 64;

/// The report of an attempt whose call panicked in host code (a bug): the
/// attempt counts as failed, so the event is not lost.
fn host_panic(clock: &Arc<dyn crate::clock::Clock>) -> CallReport {
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

impl Worker {
    /// Reads the partition's own queue, as far as the buffer bound allows
    /// (and not while the partition is held).
    pub(super) fn pull(&mut self) {
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
    pub(super) fn holding(&self) -> bool {
        self.shared.hold.load(Ordering::Relaxed)
    }

    /// Takes one record from the consumer.
    pub(super) fn intake(&mut self, intake: Intake) {
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
        if self.is_delayed {
            self.shared.pending.fetch_sub(1, Ordering::Relaxed);
            self.hold_delayed(&event);
            return;
        }
        if let Some(skip) = self.start_skip {
            let before = match skip {
                super::StartSkip::BeforeOffset(end) => offset < end,
                super::StartSkip::UntilTime(at) => event.timestamp_ms.is_none_or(|ts| ts < at),
            };
            if before {
                self.ctx
                    .metrics
                    .start_skipped_total
                    .with_label_values(&[&self.ctx.name])
                    .inc();
                self.shared.pending.fetch_sub(1, Ordering::Relaxed);
                self.offsets.finish(offset);
                return;
            }
            tracing::info!(
                actor = %self.ctx.name, topic = %self.topic, partition = self.partition, offset,
                "first event after the actor's start position"
            );
            self.start_skip = None;
        }
        if self.is_schedule && !self.firings.take(&event, self.ctx.clock.now_ms()) {
            // A firing written twice: its occurrence ran (or waits) already.
            tracing::info!(
                actor = %self.ctx.name, offset,
                "duplicate schedule firing skipped"
            );
            self.shared.pending.fetch_sub(1, Ordering::Relaxed);
            self.offsets.finish(offset);
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
                let record = waiting_record(&event, lane.clone());
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
        // The lane is found by the key the event itself carries: no copy
        // of the key per event (measured in docs/benchmarks.md, "Where the
        // time goes").
        let event = Arc::new(event);
        let item = Arc::clone(&event);
        self.scheduler.push(event.key.as_deref(), item);
    }

    /// Starts what may run: due held heads first (they are older), then
    /// ready Kafka events, up to `max_in_flight`. When the active version
    /// takes batches ([`LoadedActor::takes_batches`]) and this is a
    /// partition of the actor's own topics, the ready Kafka events (heads
    /// of distinct lanes, so events that could run side by side anyway) go
    /// to it in batches of at most [`MAX_BATCH_EVENTS`].
    ///
    /// [`LoadedActor::takes_batches`]: wactor_runtime::LoadedActor::takes_batches
    pub(super) fn start_ready(&mut self) {
        if !self.accepting {
            return;
        }
        let batching = self.batching_version();
        let mut batch: Vec<Job> = Vec::new();
        while self.in_flight() + batch.len() < self.ctx.max_in_flight {
            if let Some(lane) = self.ready_held.pop_front() {
                self.start_held(lane);
                continue;
            }
            let Some((lane, raw)) = self.scheduler.next_ready() else {
                break;
            };
            self.shared.pending.fetch_sub(1, Ordering::Relaxed);
            match self.present(&raw, 1) {
                Ok((_, Some(envelope)))
                    if !self
                        .redriven
                        .first_time(&envelope.dead_letter.id, envelope.dead_letter.redrives) =>
                {
                    tracing::info!(
                        offset = raw.offset, id = %envelope.dead_letter.id,
                        redrives = envelope.dead_letter.redrives,
                        "a second re-drive of the same death skipped"
                    );
                    self.complete_lane(lane);
                    self.offsets.finish(raw.offset);
                }
                Ok((presented, redrive)) => {
                    let job = Job {
                        kind: JobKind::Kafka { lane },
                        raw,
                        presented,
                        redrive,
                        attempt: 1,
                    };
                    match &batching {
                        Some(version) if job.redrive.is_none() => {
                            batch.push(job);
                            if batch.len() == MAX_BATCH_EVENTS {
                                self.spawn_batch(std::mem::take(&mut batch), version.clone());
                            }
                        }
                        _ => self.spawn_call(job),
                    }
                }
                Err(err) => {
                    tracing::error!(offset = raw.offset, error = %err, "unreadable re-drive or replay record skipped");
                    self.complete_lane(lane);
                    self.offsets.finish(raw.offset);
                }
            }
        }
        if let Some(version) = batching.filter(|_| !batch.is_empty()) {
            self.spawn_batch(batch, version);
        }
    }

    /// The active version, when it takes batches and this partition's
    /// events may go to it in batches: a partition of the actor's own
    /// topics (not re-drive, replay, schedule or delayed records, whose
    /// events are presented one by one, may name another version or are
    /// not handled at all).
    fn batching_version(&self) -> Option<Arc<ActiveVersion>> {
        if self.is_redrive || self.is_replay || self.is_schedule || self.is_delayed {
            return None;
        }
        self.ctx
            .versions
            .current()
            .filter(|version| version.actor.takes_batches())
    }

    /// The event the actor sees for `raw` at policy attempt `attempt`, and
    /// the re-drive it is if it came through the re-drive topic. A record
    /// of the replay topic is presented as the original it copies.
    pub(super) fn present(
        &self,
        raw: &Arc<Event>,
        attempt: u32,
    ) -> Result<(Arc<Event>, Option<Arc<RedriveEnvelope>>), String> {
        if self.is_replay {
            return crate::replay::presented(raw, attempt).map(|event| (Arc::new(event), None));
        }
        if !self.is_redrive {
            if crate::replay::has_replay_headers(raw) {
                tracing::debug!(
                    topic = %raw.topic, partition = raw.partition, offset = raw.offset,
                    "a live record carries wactor-replay headers; they are dropped"
                );
                let mut event = crate::replay::strip_forged(raw);
                event.attempt = attempt;
                return Ok((Arc::new(event), None));
            }
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

    pub(super) fn spawn_call(&mut self, job: Job) {
        let wanted = job
            .redrive
            .as_ref()
            .and_then(|r| r.version)
            .or_else(|| {
                self.is_replay
                    .then(|| crate::replay::version_of(&job.raw))
                    .flatten()
            })
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
        let reader = self.state_reader(&event);
        let call: super::RunningCall = Box::pin(async move {
            let call = std::panic::AssertUnwindSafe(call::run_scoped(ctx, version, event, reader));
            let report = match call.catch_unwind().await {
                Ok(report) => report,
                Err(_) => host_panic(&clock),
            };
            smallvec::smallvec![(job, report)]
        });
        self.start_call(call, 1);
    }

    /// Starts one `handle-batch` call of `version` on `jobs` (first
    /// attempts of Kafka events of this partition, heads of distinct
    /// lanes); one job goes through [`spawn_call`](Self::spawn_call).
    fn spawn_batch(&mut self, mut jobs: Vec<Job>, version: Arc<ActiveVersion>) {
        if jobs.len() < 2 {
            if let Some(job) = jobs.pop() {
                self.spawn_call(job);
            }
            return;
        }
        let ctx = self.ctx.clone();
        let clock = self.ctx.clock.clone();
        let reader = self.state_reader(&jobs[0].presented);
        let count = jobs.len();
        let call: super::RunningCall = Box::pin(async move {
            let events: Vec<Arc<Event>> = jobs.iter().map(|job| job.presented.clone()).collect();
            let batch = std::panic::AssertUnwindSafe(call::run_batch(ctx, version, events, reader));
            let reports = match batch.catch_unwind().await {
                Ok(reports) if reports.len() == jobs.len() => reports,
                // A panic in host code (or a report missing, which would be
                // a bug too): every attempt of the batch counts as failed,
                // so no event is lost.
                _ => jobs.iter().map(|_| host_panic(&clock)).collect(),
            };
            jobs.into_iter().zip(reports).collect()
        });
        self.start_call(call, count);
    }

    /// Polls `call` (running `jobs` jobs) once here: a call that never
    /// waits (a warm instance, no host I/O) is done at once and skips the
    /// `FuturesUnordered`. A pending one is polled again by it straight
    /// away with this task's waker, so the no-op waker of this first poll
    /// is never relied on.
    fn start_call(&mut self, mut call: super::RunningCall, jobs: usize) {
        let mut first = std::task::Context::from_waker(futures::task::noop_waker_ref());
        match call.as_mut().poll(&mut first) {
            std::task::Poll::Ready(done) => self.finished_now.extend(done),
            std::task::Poll::Pending => self.push_running(call, jobs),
        }
    }

    /// The state reader of `event`'s scope: the last one made, while calls
    /// stay in its scope.
    fn state_reader(&mut self, event: &Event) -> Arc<dyn wactor_runtime::StateReader> {
        match &self.state_reader {
            Some((topic, partition, reader))
                if *partition == event.partition && *topic == event.topic =>
            {
                reader.clone()
            }
            _ => {
                let reader = crate::state_changelog::ScopedStateReader::shared(
                    self.ctx.state.clone(),
                    &event.topic,
                    event.partition,
                );
                self.state_reader = Some((event.topic.clone(), event.partition, reader.clone()));
                reader
            }
        }
    }

    pub(super) fn complete_lane(&mut self, lane: LaneId) {
        if let Err(err) = self.scheduler.complete(lane) {
            tracing::error!(error = %err, "scheduler out of step");
        }
    }
}
