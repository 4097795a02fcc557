//! Held lanes and restore: the events that wait in the store (and the
//! retry changelog) behind a lane's failed head. Restoring them when the
//! worker starts (from the changelog when there is one, honouring a stop
//! meanwhile), moving them when the ordering mode changed, holding new
//! ones (or dead-lettering one too large to hold), starting a due head or
//! one an operator asked to retry now, moving on to the next when it
//! finishes, and telling the consumer when a `partition`-mode partition is
//! held.
//!
//! It does not decide retries (`decide`) or wait for durability
//! (`durability`): a held record's changelog write is queued there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wactor_delivery::{DeadReason, OrderingMode};
use wactor_store::{BlockedBy, HeldEvent, HeldId, LaneKey};

use crate::call::{CallOutcome, CallReport};
use crate::changelog::Changelog;
use crate::dead_letter::{self, Death};
use crate::event::{from_stored, to_stored};
use crate::fence::Fence;
use crate::held_lanes::{lane_key, Head, HeldLane};
use crate::state_changelog::{restore_scope, StateSource};
use wactor_runtime::Event;

use super::durability::store_write_fault;
use super::{Control, Job, JobKind, Worker, RESTORE_RETRY};

/// What an operator does to a lane blocked by a dead letter
/// ([`Worker::unblock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblock {
    /// Only say whether the letter blocks a lane here.
    Check,
    /// Run the blocked event now (on this version, if given).
    Redrive {
        /// The version a re-drive asked for.
        version: Option<u64>,
    },
    /// Drop the blocked event; the lane goes on.
    Discard,
}

/// What became of [`Worker::hold_record`].
pub(super) enum Hold {
    /// In the store, its changelog record on its way.
    Held,
    /// Not written: its changelog record would be too large (says how).
    TooLarge(String),
    /// The store refused it (logged).
    Failed,
}

/// The held record of an event that waits behind its lane's head: not
/// attempted yet, so no history and no due time of its own.
pub(super) fn waiting_record(event: &Event, lane: LaneKey) -> HeldEvent {
    HeldEvent {
        event: to_stored(event),
        lane,
        attempts: Vec::new(),
        first_attempt_at_ms: None,
        next_attempt_at_ms: None,
        version_override: None,
        blocked_by: None,
    }
}

impl Worker {
    /// Loads the held events of this partition (from the changelog when
    /// there is one) and rebuilds the held lanes. Retries until it works:
    /// handling events before would break the order of held keys.
    ///
    /// Honours a stop while it waits (a slow changelog, a leader down): it
    /// answers at once and returns false, and the restore it gave up may not
    /// write to the store any more (`cancel`), so a worker that lost its
    /// partition never runs on as a zombie beside the partition's next
    /// worker on this host.
    pub(super) async fn restore(&mut self) -> bool {
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
                        "cannot restore the partition (held events, actor state); retrying"
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
                head: if record.blocked_by.is_some() {
                    Head::Blocked
                } else {
                    Head::Due(record.next_attempt_at_ms.unwrap_or(now))
                },
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
        if self.is_delayed {
            // Each delayed record is a lane of its own, whatever the
            // actor's ordering.
            let mut records = records;
            records.sort_by_key(|r| r.event.offset);
            return records;
        }
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

    /// A request that came while restoring: a retry-now is answered at once
    /// (nothing is held yet) and `None` returned, so the restore goes on;
    /// an operator's unblock waits for the restore (the blocked event is
    /// not known before), answered by `run` right after it; anything else
    /// (a stop, the consumer gone) is given back to end it.
    #[allow(clippy::option_option)]
    pub(super) fn not_a_stop(&mut self, control: Option<Control>) -> Option<Option<Control>> {
        match control {
            Some(Control::RetryNow { reply, .. }) => {
                let _ = reply.send(false);
                None
            }
            Some(unblock @ Control::Unblock { .. }) => {
                // At most a few: each caller waits 5 s for its answer.
                if self.deferred.len() < 64 {
                    self.deferred.push(unblock);
                }
                None
            }
            other => Some(other),
        }
    }

    /// A request that came while restoring: a stop (or the consumer gone)
    /// ends the worker before it took anything, so there is no offset to
    /// commit; a retry-now finds nothing held yet.
    pub(super) fn stopped_while_restoring(&mut self, control: Option<Control>) {
        self.feed = None;
        match control {
            Some(Control::Stop { reply }) => {
                let _ = reply.send(None);
            }
            Some(Control::RetryNow { reply, .. } | Control::Unblock { reply, .. }) => {
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
    /// `Sync`): the held events, then (for a source partition, not the
    /// re-drive topic, whose events are scoped by their original
    /// partition) the actor's state scope.
    fn load_held(
        &self,
        cancel: Arc<AtomicBool>,
    ) -> impl std::future::Future<Output = Result<Loaded, String>> + Send + 'static {
        let held = load_held(
            self.ctx.clone(),
            self.topic.clone(),
            self.partition,
            self.changelog.clone(),
            cancel.clone(),
            self.fence.clone(),
        );
        let scope = (!self.is_redrive && !self.is_replay).then(|| {
            let ctx = self.ctx.clone();
            let topic = self.topic.clone();
            let partition = self.partition;
            let fence = self.fence.clone();
            move || {
                // Held until the thread ends, as the held restore's.
                let _fence = fence;
                restore_scope(
                    &ctx.state,
                    ctx.state_changelog.get().map(|c| &**c),
                    &ctx.settings,
                    &ctx.producer,
                    &topic,
                    partition,
                    &cancel,
                )
            }
        });
        let actor = self.ctx.name.clone();
        let topic = self.topic.clone();
        let partition = self.partition;
        let metrics = self.ctx.metrics.clone();
        async move {
            let loaded = held.await?;
            if let Some(scope) = scope {
                let restored = tokio::task::spawn_blocking(scope)
                    .await
                    .map_err(|e| e.to_string())??;
                metrics
                    .state_restore_seconds
                    .with_label_values(&[&actor])
                    .observe(restored.took.as_secs_f64());
                if restored.keys > 0 || restored.source != StateSource::Changelog {
                    tracing::info!(
                        %actor, %topic, partition, keys = restored.keys,
                        source = ?restored.source,
                        took_ms = u64::try_from(restored.took.as_millis()).unwrap_or(u64::MAX),
                        "restored the partition's state"
                    );
                }
            }
            Ok(loaded)
        }
    }

    /// A record of `<group>.delayed`: held (lane of its own, due at its
    /// time) until [`start_held`](Self::start_held) delivers it; one that
    /// cannot be delivered is dropped (logged, counted).
    pub(super) fn hold_delayed(&mut self, event: &Event) {
        let offset = event.offset;
        let now = self.ctx.clock.now_ms();
        let pending = match crate::delayed::pending_of(event, now) {
            Ok(pending) => pending,
            Err(why) => {
                tracing::warn!(
                    actor = %self.ctx.name, topic = %self.topic, partition = self.partition,
                    offset, reason = %why, "delayed record dropped: it cannot be delivered"
                );
                self.ctx
                    .metrics
                    .delayed_total
                    .with_label_values(&[&self.ctx.name, "dropped"])
                    .inc();
                self.offsets.finish(offset);
                return;
            }
        };
        let lane = LaneKey::Own(offset);
        if self.held.get(&lane).is_some() {
            // A re-read copy of a record held already.
            self.offsets.finish(offset);
            return;
        }
        let record = HeldEvent {
            event: to_stored(event),
            lane: lane.clone(),
            attempts: Vec::new(),
            first_attempt_at_ms: None,
            next_attempt_at_ms: Some(pending.due_ms),
            version_override: None,
            blocked_by: None,
        };
        match self.hold_record(&record) {
            Hold::Held => {
                self.durable.offsets.push(offset);
                self.held.insert(
                    lane,
                    HeldLane {
                        len: 1,
                        max_offset: offset,
                        head: Head::Due(pending.due_ms),
                    },
                );
            }
            Hold::TooLarge(why) => self.dead_unheld(&record.event, why),
            Hold::Failed => {}
        }
    }

    /// Delivers a due delayed record to its target; the job finishes like
    /// a held event's (done: forgotten; failed: tried again in 5 s).
    fn deliver_delayed(&mut self, lane: LaneKey, record: HeldEvent) {
        let raw = Arc::new(from_stored(&record.event, 1));
        let target = crate::delayed::pending_of(&raw, self.ctx.clock.now_ms()).map(|p| p.target);
        let out = target.map(|t| crate::delayed::delivery(&record.event, &t));
        let producer = self.ctx.producer.clone();
        let clock = self.ctx.clock.clone();
        let version = self.ctx.versions.current().map_or(0, |v| v.version);
        let job = Job {
            kind: JobKind::Held {
                lane,
                record: Box::new(record),
            },
            presented: raw.clone(),
            raw,
            redrive: None,
            attempt: 1,
        };
        let call: super::RunningCall = Box::pin(async move {
            let started_at_ms = clock.now_ms();
            let outcome = match out {
                Ok(out) => match producer.send(&out).await {
                    Ok(_) => CallOutcome::Done,
                    Err(err) => CallOutcome::Retry {
                        reason: format!("delivery failed: {err}"),
                        delay: None,
                    },
                },
                Err(why) => CallOutcome::Dead { reason: why },
            };
            let report = CallReport {
                outcome,
                version,
                started_at_ms,
                duration: std::time::Duration::ZERO,
            };
            smallvec::smallvec![(job, report)]
        });
        self.push_running(call, 1);
    }

    pub(super) fn start_held(&mut self, lane: LaneKey) {
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
        if self.is_delayed {
            self.deliver_delayed(lane, record);
            return;
        }
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
                tracing::error!(error = %err, "unreadable held re-drive or replay record dropped");
                let id = record.id();
                if self.ctx.held.remove(&id).is_ok() {
                    self.write_changelog(&id, None);
                }
                self.advance(&lane);
            }
        }
    }

    /// The head of held `lane` is finished: the next held event of the lane
    /// runs now, or the lane is ordinary again.
    pub(super) fn advance(&mut self, lane: &LaneKey) {
        match self.ctx.held.lane_first(&self.topic, self.partition, lane) {
            Ok(Some(next)) => {
                let now = self.ctx.clock.now_ms();
                if let Some(held) = self.held.get_mut(lane) {
                    held.len = held.len.saturating_sub(1);
                }
                // A dead event next (a change of ordering merged it behind
                // this one) blocks the lane in its turn.
                let head = if next.blocked_by.is_some() {
                    Head::Blocked
                } else {
                    Head::Due(next.next_attempt_at_ms.unwrap_or(now))
                };
                self.held.set_head(lane, head);
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
    pub(super) fn hold_record(&mut self, record: &HeldEvent) -> Hold {
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

    /// Dead-letters an event that had to be held behind its lane's head but
    /// cannot be (its record is too large): it was never attempted. Its
    /// offset finishes once the dead letter is durable.
    pub(super) fn dead_unheld(&mut self, event: &wactor_store::StoredEvent, why: String) {
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
    pub(super) fn update_hold(&self) {
        // Delayed records are lanes of their own: reading goes on.
        let hold = self.ctx.ordering == OrderingMode::Partition
            && !self.is_delayed
            && !self.held.is_empty();
        self.shared.hold.store(hold, Ordering::Relaxed);
    }

    /// Runs a held head now: one waiting for its retry, or one blocked by
    /// its dead letter (then it runs as a re-drive would, with a new retry
    /// budget; its dead letter stays in the set).
    pub(super) fn retry_now(&mut self, id: &HeldId) -> bool {
        if id.topic != self.topic || id.partition != self.partition {
            return false;
        }
        let Some(held) = self.held.get(&id.lane) else {
            return false;
        };
        let blocked = match held.head {
            Head::Due(_) => false,
            Head::Blocked => true,
            Head::Running => return false,
        };
        match self
            .ctx
            .held
            .lane_first(&self.topic, self.partition, &id.lane)
        {
            Ok(Some(head)) if head.id() == *id => {
                if blocked {
                    return self.release(head, None, true);
                }
                let now = self.ctx.clock.now_ms();
                self.held.set_head(&id.lane, Head::Due(now));
                true
            }
            _ => false,
        }
    }

    /// An operator's re-drive or discard of the death `blocked` (a dead
    /// letter and when it died), if it holds a lane of this partition
    /// (`on_dead = "block"`): `Check` only says whether it does; `Redrive`
    /// releases the event with a new retry budget (on `version` if given):
    /// it runs now if it heads its lane, else when its turn comes;
    /// `Discard` drops it (and the lane goes on if it was the head). False
    /// when no held event here is blocked by that death.
    pub(super) fn unblock(&mut self, blocked: &BlockedBy, action: Unblock) -> bool {
        // Every held record of the partition, not only the heads: a change
        // of ordering can put a blocked event behind another lane's.
        let records = match self.ctx.held.partition(&self.topic, self.partition) {
            Ok(records) => records,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the held events of a partition");
                return false;
            }
        };
        let Some(record) = records
            .into_iter()
            .find(|r| r.blocked_by.as_ref() == Some(blocked))
        else {
            return false;
        };
        let lane = record.lane.clone();
        let is_head = matches!(
            self.ctx.held.lane_first(&self.topic, self.partition, &lane),
            Ok(Some(ref first)) if first.id() == record.id()
        );
        match action {
            Unblock::Check => true,
            Unblock::Redrive { version } => self.release(record, version, is_head),
            Unblock::Discard => {
                let id = record.id();
                match self.ctx.held.remove(&id) {
                    Ok(_) => {
                        tracing::info!(
                            actor = %self.ctx.name, %id, dead_letter = %blocked.dead_letter,
                            "blocked event discarded: its lane goes on"
                        );
                        self.write_changelog(&id, None);
                        if is_head {
                            self.advance(&lane);
                        } else if let Some(held) = self.held.get_mut(&lane) {
                            held.len = held.len.saturating_sub(1);
                        }
                        true
                    }
                    Err(err) => {
                        self.store_failed("the removal of a blocked event", err.to_string());
                        false
                    }
                }
            }
        }
    }

    /// Unblocks a held event with a new retry budget: due now when it
    /// heads its lane, else waiting for its turn like any held event.
    fn release(&mut self, mut record: HeldEvent, version: Option<u64>, is_head: bool) -> bool {
        let now = self.ctx.clock.now_ms();
        let dead_letter = record
            .blocked_by
            .take()
            .map(|b| b.dead_letter)
            .unwrap_or_default();
        record.attempts.clear();
        record.first_attempt_at_ms = None;
        record.next_attempt_at_ms = is_head.then_some(now);
        record.version_override = version;
        let lane = record.lane.clone();
        match self.hold_record(&record) {
            Hold::Held => {
                tracing::info!(
                    actor = %self.ctx.name, id = %record.id(), dead_letter,
                    "blocked event released: it runs in its turn, then its lane goes on"
                );
                if is_head {
                    self.held.set_head(&lane, Head::Due(now));
                }
                true
            }
            Hold::Failed | Hold::TooLarge(_) => false,
        }
    }
}

/// Loads the held events of a partition: from the changelog (replacing the
/// local copy) when there is one, else from the store.
/// `cancel` set means the worker gave up waiting (its partition was
/// revoked): the restore then leaves the store alone.
async fn load_held(
    ctx: Arc<crate::ActorContext>,
    topic: String,
    partition: i32,
    changelog: Option<Arc<Changelog>>,
    cancel: Arc<AtomicBool>,
    fence: Option<Fence>,
) -> Result<Loaded, String> {
    let held = ctx.held.clone();
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
                    .restore(&ctx.settings, &ctx.producer, &topic, partition)
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
