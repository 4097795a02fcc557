//! Durability: when an offset may be committed. Every commit tick flushes
//! the store, then produces the queued changelog records and awaits them
//! (never before the flush: a changelog record may describe local writes a
//! crash would lose), then publishes the offset that was committable
//! before the flush. Also the worker's stop (drain, last durability point,
//! final offset) and a changelog record the broker refuses as too large.
//!
//! It does not decide which offsets are finished (`decide`, `intake`,
//! `held` push them here).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use wactor_delivery::DeadReason;
use wactor_store::{HeldEvent, HeldId};

use super::Worker;
use crate::dead_letter::{self, Death};
use crate::held_lanes::Head;
use crate::producer::{is_too_large, Delivery, OutRecord};

/// What waits for the next durability point.
#[derive(Default)]
pub(super) struct Durable {
    /// Offsets to finish once durable.
    pub(super) offsets: Vec<i64>,
    /// Changelog records to produce once the store has flushed, with their
    /// size. Never earlier: a changelog record (a tombstone above all) may
    /// describe local writes (a dead letter, the call's state writes) that a
    /// crash before the flush would lose, and the next owner would then
    /// trust the changelog and lose the event.
    pub(super) writes: Vec<(HeldId, usize, OutRecord)>,
}

/// The result of a durability tick.
pub(super) struct Tick {
    /// The committable offset computed before the flush.
    pub(super) candidate: Option<i64>,
    /// Offsets that are durable if `flushed` and nothing `failed`.
    pub(super) offsets: Vec<i64>,
    /// Whether sled flushed.
    pub(super) flushed: bool,
    /// Changelog writes that were not acknowledged, to write again.
    pub(super) failed: Vec<HeldId>,
    /// Changelog writes refused as too large (by the broker: the client's
    /// limit is checked before writing), with their size and the error:
    /// writing them again cannot work.
    pub(super) refused: Vec<(HeldId, usize, String)>,
}

impl Worker {
    /// Writes the current value of a held event to the changelog (`None`: a
    /// tombstone, the event is finished).
    pub(super) fn write_changelog(&mut self, id: &HeldId, record: Option<&HeldEvent>) {
        if let Some(changelog) = &self.changelog {
            match changelog.record(id, record) {
                Ok(out) => {
                    self.durable.writes.push((id.clone(), out.wire_size(), out));
                }
                Err(err) => tracing::error!(error = %err, %id, "cannot encode a changelog record"),
            }
        }
    }

    /// Starts a durability point: flush the store and await the changelog,
    /// then publish the offset that was committable before the flush.
    pub(super) fn tick(&mut self) {
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
    pub(super) fn on_tick(&mut self, tick: Tick) {
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
    pub(super) async fn stop(&mut self) -> Option<i64> {
        // The fault point of a worker slow to stop (a durability wait, a
        // leader down): `return(MS)` delays the stop by MS milliseconds.
        #[cfg(feature = "failpoints")]
        if let Some(ms) = fail::eval("wactor-worker-stop", |arg| {
            arg.and_then(|ms| ms.parse::<u64>().ok()).unwrap_or(0)
        }) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        // Firings stop first (one being written is acknowledged), so the
        // schedule partition's next owner reads every firing this host
        // wrote when it starts.
        if let Some(firing) = self.firing.take() {
            firing.stop().await;
        }
        self.accepting = false;
        // The queue holds a reference to the consumer: let it go before the
        // consumer thread is told the partition is released.
        self.feed = None;
        let dropped = self.scheduler.drain_pending().len();
        self.shared.pending.store(0, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + self.ctx.settings.drain_timeout;
        for (job, report) in std::mem::take(&mut self.finished_now) {
            self.finish(job, report);
        }
        while !self.running.is_empty() {
            tokio::select! {
                finished = self.running.next() => match finished {
                    Some(finished) => self.finish_running(finished),
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
                    self.running_jobs = 0;
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

/// The fault point of store writes (fault tests make them fail).
pub(super) fn store_write_fault() -> Result<(), String> {
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
