//! Retry decisions: what a finished call means for its event. Done
//! finishes the offset (or moves a held lane on); a failure is decided by
//! the retry policy of the active version: held until its due time (with
//! the lane's queued events behind it) or dead-lettered, with the attempt
//! history, metrics, a log line and the Kafka mirror.
//!
//! It does not run calls (`intake`) or hold records itself (`held`).

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wactor_delivery::{DeadReason, Decision, Failure, LaneId};
use wactor_runtime::Event;
use wactor_store::{AttemptOutcome, AttemptRecord, BlockedBy, HeldEvent, LaneKey};

use crate::call::{CallOutcome, CallReport};
use crate::dead_letter::{self, Death};
use crate::event::to_stored;
use crate::held_lanes::{lane_key, Head, HeldLane};
use crate::redrive::RedriveEnvelope;

use super::durability::store_write_fault;
use super::held::{waiting_record, Hold};
use super::{Job, JobKind, Worker};

/// A failed attempt, for the retry decision.
struct Failed<'a> {
    raw: &'a Event,
    presented: &'a Event,
    redrive: Option<&'a RedriveEnvelope>,
    report: &'a CallReport,
    failure: Failure,
}

/// What a failed Kafka event does next.
enum Next {
    /// It is held until `due`; `len` of its lane's events were held.
    Hold { due: i64, len: usize },
    /// It is dead and held as its lane's blocked head (`on_dead =
    /// "block"`); `len` of its lane's events were held.
    Block { len: usize },
    /// It is dead-lettered for this reason.
    Dead(DeadReason),
}

impl Worker {
    /// Applies the report of a finished call.
    pub(super) fn finish(&mut self, job: Job, report: CallReport) {
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
                if self.is_delayed {
                    self.ctx
                        .metrics
                        .delayed_total
                        .with_label_values(&[&self.ctx.name, "delivered"])
                        .inc();
                }
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
            (JobKind::Held { lane, record }, Some(_)) if self.is_delayed => {
                self.delivery_failed(lane, *record, &report);
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
                    blocked_by: None,
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
        let next = match next {
            Next::Dead(kind) if detail.is_none() && self.blocks_on_dead(&lane_key) => {
                self.block_new(&failed, attempt.clone(), kind, first_at, now, &lane_key)
            }
            other => other,
        };
        let held_as = match next {
            Next::Hold { due, len } => {
                self.ctx.counters.retries_scheduled.inc();
                Ok((Head::Due(due), len))
            }
            Next::Block { len } => Ok((Head::Blocked, len)),
            Next::Dead(kind) => Err(kind),
        };
        match held_as {
            Ok((head, mut len)) => {
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
                    let record = waiting_record(&waiting, lane_key.clone());
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
                        head,
                    },
                );
                self.update_hold();
            }
            Err(kind) => {
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
        let blocks = detail.is_none() && self.blocks_on_dead(&lane);
        let mut dead = self.death(
            &failed,
            record.attempts.clone(),
            kind,
            detail,
            first_at,
            now,
        );
        if blocks {
            // The dead head stays its lane's head, blocked, until its
            // dead letter is re-driven or discarded.
            dead.blocking = true;
            record.blocked_by = Some(BlockedBy {
                dead_letter: dead.id.clone(),
                dead_at_ms: dead.dead_at_ms,
            });
            record.next_attempt_at_ms = None;
            match self.hold_record(&record) {
                Hold::Held => {
                    self.store_death(&dead);
                    self.held.set_head(&lane, Head::Blocked);
                    return;
                }
                Hold::Failed => {
                    self.held.set_head(&lane, Head::Due(now + 1_000));
                    return;
                }
                // Too large to keep: dead-lettered and the lane goes on.
                Hold::TooLarge(why) => {
                    dead.blocking = false;
                    tracing::warn!(
                        actor = %self.ctx.name, %id, reason = %why,
                        "a dead event cannot block its lane (on_dead = \"block\"): the lane goes on"
                    );
                }
            }
        }
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

    /// A delayed record whose delivery failed: tried again after
    /// [`RETRY_AFTER`](crate::delayed::RETRY_AFTER), never dead-lettered;
    /// one that can never be delivered (its target is refused) is dropped.
    fn delivery_failed(&mut self, lane: LaneKey, record: HeldEvent, report: &CallReport) {
        let id = record.id();
        if let CallOutcome::Dead { reason } = &report.outcome {
            tracing::warn!(actor = %self.ctx.name, %id, %reason, "delayed record dropped: it cannot be delivered");
            self.ctx
                .metrics
                .delayed_total
                .with_label_values(&[&self.ctx.name, "dropped"])
                .inc();
            match self.ctx.held.remove(&id) {
                Ok(_) => self.write_changelog(&id, None),
                Err(err) => self.store_failed("the removal of a delayed record", err),
            }
            self.advance(&lane);
            return;
        }
        tracing::warn!(
            actor = %self.ctx.name, %id, error = %report.outcome.error(),
            "delayed record not delivered; trying again in 5 s"
        );
        let at =
            self.ctx.clock.now_ms().saturating_add(
                i64::try_from(crate::delayed::RETRY_AFTER.as_millis()).unwrap_or(5000),
            );
        self.held.set_head(&lane, Head::Due(at));
    }

    /// Whether a death in `lane` blocks it: the manifest says `on_dead =
    /// "block"`, the lane can have events behind it (not `none`
    /// ordering), and the event is from a source partition (a re-drive
    /// through the re-drive topic, or a replayed record, dies as usual).
    fn blocks_on_dead(&self, lane: &LaneKey) -> bool {
        !self.is_redrive
            && !self.is_replay
            && !matches!(lane, LaneKey::Own(_))
            && self
                .manifest()
                .is_some_and(|m| m.dead_letter.on_dead == wactor_manifest::OnDead::Block)
    }

    /// A Kafka event dead on its first attempt in a lane that blocks:
    /// held as the lane's blocked head, with its dead letter. Falls back to
    /// an ordinary death when it cannot be held.
    fn block_new(
        &mut self,
        failed: &Failed<'_>,
        attempt: AttemptRecord,
        kind: DeadReason,
        first_at: i64,
        now: i64,
        lane_key: &LaneKey,
    ) -> Next {
        let mut dead = self.death(failed, vec![attempt.clone()], kind, None, first_at, now);
        dead.blocking = true;
        let head = HeldEvent {
            event: to_stored(failed.raw),
            lane: lane_key.clone(),
            attempts: vec![attempt],
            first_attempt_at_ms: Some(first_at),
            next_attempt_at_ms: None,
            version_override: None,
            blocked_by: Some(BlockedBy {
                dead_letter: dead.id.clone(),
                dead_at_ms: dead.dead_at_ms,
            }),
        };
        match self.hold_record(&head) {
            Hold::Held => {
                self.durable.offsets.push(failed.raw.offset);
                self.store_death(&dead);
                Next::Block { len: 1 }
            }
            Hold::Failed => Next::Dead(kind),
            Hold::TooLarge(why) => {
                tracing::warn!(
                    actor = %self.ctx.name, offset = failed.raw.offset, reason = %why,
                    "a dead event cannot block its lane (on_dead = \"block\"): the lane goes on"
                );
                Next::Dead(kind)
            }
        }
    }

    /// Stores the dead letter of an event that blocks its lane (the
    /// held record is its durable part).
    fn store_death(&mut self, dead: &wactor_store::DeadLetter) {
        match store_write_fault()
            .and_then(|()| self.ctx.dead_letters.put(dead).map_err(|e| e.to_string()))
        {
            Ok(()) => {
                tracing::warn!(
                    actor = %self.ctx.name, id = %dead.id,
                    "its lane is blocked behind this dead letter until it is re-driven or discarded"
                );
                self.after_death(dead);
            }
            Err(err) => self.store_failed("a dead letter", err),
        }
    }

    /// The dead letter of a failed job. For a re-drive it is the original
    /// event's, with the earlier history in front and one more re-drive;
    /// otherwise the event as the actor saw it: for a replay the original's
    /// topic, partition and offset with its `wactor-replay` header, so a
    /// re-drive runs the original event in its own partition's scope.
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
                // What the actor saw: the raw record for a live event
                // (forged replay headers dropped), the original for a replay.
                let stored = to_stored(failed.presented);
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
    pub(super) fn after_death(&mut self, dead: &wactor_store::DeadLetter) {
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
        if self.ctx.settings.shared_dead_letters {
            crate::dead_letter_log::publish(&self.ctx.settings, &self.ctx.producer, dead);
        }
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
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
