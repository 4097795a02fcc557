//! Operations on dead letters and retries: list, show, re-drive, discard;
//! list retrying events and run one now.
//!
//! A re-drive sends the dead letter, with its history, through the actor's
//! re-drive topic (`<group>.redrive`), which the actor's consumer reads
//! like its other topics. So a re-drive is durable the moment it is
//! acknowledged, works from any host of the group, and is retried and
//! dead-lettered like any event. The dead letter leaves the set once its
//! re-drive record is acknowledged; if it dies again it comes back with
//! the same id, its earlier attempts, and one more re-drive counted.
//!
//! Races, and how they end:
//! - the re-driven event dies again before the re-drive removes the letter
//!   it sent: the removal is a compare-and-delete against what was sent,
//!   so the new letter stays (none is ever lost);
//! - two re-drives of one letter at once on one host: the second skips it
//!   (reported as failed, "already being re-driven"), so it runs once;
//! - a discard while the letter's re-drive is being sent: the letter is
//!   gone, the re-driven event still runs once, and if it dies again it is
//!   a dead letter again;
//! - re-drives go out a window at a time ([`REDRIVE_WINDOW`]): whatever
//!   ends the request (an error of the store or of an owner's answer), the
//!   window handed to the producer is settled first, so no letter whose
//!   record was sent stays in the set to be sent again; the API runs a
//!   re-drive as a task of its own, so a client that hangs up does not
//!   drop a window half done (a host that stops or crashes mid-window
//!   does: its letters stay and may be re-driven again, at least once);
//! - a re-drive of the same letter from another host while this one's
//!   window is in flight (claims are per host): the letter is sent twice;
//!   other hosts forget it when its window is settled.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wactor_kafka::actor::redrive_topic;
use wactor_kafka::producer::max_message_bytes;
use wactor_kafka::redrive::RedriveEnvelope;
use wactor_kafka::worker::Unblock;
use wactor_kafka::OutRecord;
use wactor_manifest::ActorManifest;
use wactor_store::{
    DeadLetter, DeadLetterFilter, DeadLetterPage, Evicted, HeldEvent, HeldFilter, Retention,
};

use crate::error::{RegistryError, Result};
use crate::owner_requests::Blocking;
use crate::registry::Registry;

/// Most dead letters one re-drive or discard request may touch.
pub const MAX_BATCH: usize = 100_000;

/// Re-drive records handed to the producer before their acknowledgements
/// are awaited together: 512 (or [`REDRIVE_WINDOW_BYTES`], whichever
/// comes first). One letter at a time waited a produce round trip
/// (librdkafka's `linger.ms` and the broker's answer) per letter, about
/// 400 letters a second on the mock broker; a window keeps the producer's
/// batches full. Claims on the letters of a window are held until it is
/// settled, so a second re-drive of them on this host is refused
/// meanwhile.
pub const REDRIVE_WINDOW: usize = 512;

/// Bytes of re-drive records in flight at most: 16 MiB (a record larger
/// than that goes alone). The producer is shared with the actors' emits;
/// a window of large letters must not fill its queue.
pub const REDRIVE_WINDOW_BYTES: usize = 16 << 20;

/// Under a rate limit, the letters already sent are settled (awaited and
/// removed) before any wait for the next send slot longer than this:
/// 20 ms. At up to about 50 letters a second each letter leaves the set
/// soon after its send, not a window later.
const SETTLE_BEFORE_WAIT: Duration = Duration::from_millis(20);

/// How often the host applies dead-letter retention
/// ([`Registry::sweep_dead_letters`]): every minute.
pub const DEAD_LETTER_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// What a retention sweep evicted, per actor (only actors that lost some).
pub type Swept = Vec<(String, Evicted)>;

/// Which version a re-drive runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "version")]
pub enum RedriveTarget {
    /// The version active when the event runs.
    #[default]
    Active,
    /// A given version of the actor.
    Version(u64),
}

/// What to re-drive.
#[derive(Debug, Clone, Default)]
pub struct RedriveRequest {
    /// The dead letters: those matching the filter (all, with an empty
    /// filter), or the one with this id when `id` is set.
    pub filter: DeadLetterFilter,
    /// A single dead letter.
    pub id: Option<String>,
    /// The version to run on.
    pub target: RedriveTarget,
    /// Only say what would be re-driven.
    pub dry_run: bool,
    /// At most this many re-drives per second (`None`: no limit).
    pub rate_per_sec: Option<u32>,
    /// Who asks (kept in the log).
    pub by: String,
}

/// What a re-drive did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RedriveReport {
    /// Dead letters that matched.
    pub matched: usize,
    /// Re-drives sent (0 in a dry run).
    pub redriven: usize,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// The ids concerned (up to 1000).
    pub ids: Vec<String>,
    /// Re-drives that failed, with why.
    pub failed: Vec<(String, String)>,
}

impl Registry {
    /// A page of dead letters, newest first.
    pub fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
        after: Option<&str>,
    ) -> Result<DeadLetterPage> {
        Ok(self
            .parts()
            .store
            .dead_letters()
            .list(filter, limit.clamp(1, 1000), after)?)
    }

    /// How many dead letters match.
    pub fn count_dead_letters(&self, filter: &DeadLetterFilter) -> Result<usize> {
        Ok(self.parts().store.dead_letters().count(filter)?)
    }

    /// One dead letter.
    pub fn dead_letter(&self, id: &str) -> Result<DeadLetter> {
        self.parts()
            .store
            .dead_letters()
            .get(id)?
            .ok_or_else(|| RegistryError::NotFound {
                what: "dead letter",
                id: id.into(),
            })
    }

    /// Re-drives dead letters through their actor's re-drive topic.
    pub async fn redrive(&self, request: RedriveRequest) -> Result<RedriveReport> {
        if request.rate_per_sec == Some(0) {
            return Err(RegistryError::BadRequest(
                "rate must be at least 1 per second".into(),
            ));
        }
        let selected = self.select(request.id.as_deref(), &request.filter)?;
        let mut report = RedriveReport {
            matched: selected.len(),
            dry_run: request.dry_run,
            ids: selected.iter().take(1000).map(|d| d.id.clone()).collect(),
            ..RedriveReport::default()
        };
        if let RedriveTarget::Version(version) = request.target {
            let actors: std::collections::BTreeSet<&str> =
                selected.iter().map(|d| d.actor.as_str()).collect();
            for actor in actors {
                if self
                    .parts()
                    .store
                    .registry()
                    .version(actor, version)?
                    .is_none()
                {
                    return Err(RegistryError::UnknownVersion {
                        actor: actor.into(),
                        version,
                    });
                }
                if !request.dry_run {
                    self.preload(actor, version).await?;
                }
            }
        }
        if request.dry_run {
            return Ok(report);
        }
        // Oldest event first per partition: records of one key reach the
        // re-drive topic in the order the events had (the listing is
        // newest first).
        let mut selected = selected;
        selected.sort_by(|a, b| {
            (&a.event.topic, a.event.partition, a.event.offset).cmp(&(
                &b.event.topic,
                b.event.partition,
                b.event.offset,
            ))
        });
        let mut pacer = request.rate_per_sec.map(Pacer::new);
        let mut window = Window::default();
        // Whatever ends the loop (an error, too), what was handed to the
        // producer is settled: its records are delivered anyway, so its
        // letters must leave the set, or a later re-drive would send them
        // again.
        let outcome = self
            .redrive_each(selected, &request, &mut pacer, &mut window, &mut report)
            .await;
        let settled = self
            .settle_redrives(&mut window, &mut report, &request.by)
            .await;
        tracing::info!(
            by = %request.by,
            matched = report.matched,
            redriven = report.redriven,
            failed = report.failed.len(),
            "dead letters re-driven"
        );
        outcome?;
        settled?;
        self.parts().store.flush_async().await?;
        Ok(report)
    }

    /// The loop of [`redrive`](Self::redrive) over the selected letters:
    /// blocking ones released in their lanes one at a time, the others
    /// handed to the producer and settled a window at a time.
    async fn redrive_each<'a>(
        &'a self,
        selected: Vec<DeadLetter>,
        request: &RedriveRequest,
        pacer: &mut Option<Pacer>,
        window: &mut Window<'a>,
        report: &mut RedriveReport,
    ) -> Result<()> {
        let dead_letters = self.parts().store.dead_letters();
        let version = match request.target {
            RedriveTarget::Active => None,
            RedriveTarget::Version(v) => Some(v),
        };
        for dead in selected {
            let group = match self.group_of(&dead.actor) {
                Ok(group) => group,
                Err(err) => {
                    report.failed.push((dead.id.clone(), err.to_string()));
                    continue;
                }
            };
            if dead.group != group {
                // A letter of another group (the actor moved to a new
                // group since, or a record forged in another group's
                // dead-letter topic): not run by this actor.
                report.failed.push((
                    dead.id.clone(),
                    format!(
                        "the letter belongs to group {:?}, the actor's group is {group:?}: not re-driven",
                        dead.group
                    ),
                ));
                continue;
            }
            if dead.blocking {
                // Run in its lane by the partition's worker (a request to
                // the owner, one at a time): what is in flight is settled
                // first, so it does not wait behind owners' answers.
                self.settle_redrives(window, report, &request.by).await?;
                if let Some(pacer) = pacer.as_mut() {
                    self.pace(pacer, window, report, &request.by).await?;
                }
            }
            match self
                .release_blocked(&dead, Unblock::Redrive { version })
                .await?
            {
                Some(Ok(())) => {
                    report.redriven += 1;
                    tracing::info!(id = %dead.id, actor = %dead.actor, by = %request.by, "blocked dead letter re-driven in its lane");
                    continue;
                }
                Some(Err(why)) => {
                    report.failed.push((dead.id.clone(), why));
                    continue;
                }
                None => {}
            }
            let envelope = RedriveEnvelope {
                version,
                redriven_at_ms: self.parts().clock.now_ms(),
                by: request.by.clone(),
                dead_letter: dead.clone(),
            };
            let payload = match envelope.encode() {
                Ok(payload) => payload,
                Err(err) => {
                    report.failed.push((dead.id.clone(), err));
                    continue;
                }
            };
            let record = OutRecord {
                topic: redrive_topic(&group),
                partition: None,
                key: dead.event.key.clone(),
                payload: Some(payload),
                headers: vec![(
                    "wactor-redrive-of".into(),
                    Some(dead.id.clone().into_bytes()),
                )],
            };
            let size = record.wire_size();
            let limit = max_message_bytes(&self.parts().kafka);
            if size > limit {
                report.failed.push((
                    dead.id.clone(),
                    format!(
                        "too large to re-drive through Kafka: the re-drive record is {size} bytes, \
                         over the limit of {limit} bytes (kafka message.max.bytes); the dead \
                         letter is kept"
                    ),
                ));
                continue;
            }
            // The wait for the send slot comes before the claim and the
            // check below, so that nothing changes between them and the
            // send.
            if let Some(pacer) = pacer.as_mut() {
                self.pace(pacer, window, report, &request.by).await?;
            }
            let Some(claim) = self.claim_guard(&dead.id) else {
                report
                    .failed
                    .push((dead.id.clone(), "already being re-driven".into()));
                continue;
            };
            // Under the claim: still the letter that was selected? (Another
            // re-drive may have sent and removed it since, or it died again.)
            if dead_letters.get(&dead.id)?.as_ref() != Some(&dead) {
                report.failed.push((
                    dead.id.clone(),
                    "changed or gone since it was selected (re-driven or discarded meanwhile)"
                        .into(),
                ));
                continue;
            }
            // Handed to librdkafka now, in order; acknowledged when the
            // window is settled.
            let delivery = self.parts().producer.enqueue(&record);
            window.bytes = window.bytes.saturating_add(size);
            window.items.push(PendingRedrive {
                dead,
                delivery,
                _claim: claim,
            });
            if window.items.len() >= REDRIVE_WINDOW || window.bytes >= REDRIVE_WINDOW_BYTES {
                self.settle_redrives(window, report, &request.by).await?;
            }
        }
        Ok(())
    }

    /// Waits for the pacer's next send slot; settles what was sent first
    /// when that wait is long.
    async fn pace(
        &self,
        pacer: &mut Pacer,
        window: &mut Window<'_>,
        report: &mut RedriveReport,
        by: &str,
    ) -> Result<()> {
        let at = pacer.next_slot();
        if at.saturating_duration_since(tokio::time::Instant::now()) > SETTLE_BEFORE_WAIT {
            self.settle_redrives(window, report, by).await?;
        }
        tokio::time::sleep_until(at).await;
        Ok(())
    }

    /// Awaits the acknowledgements of the re-drives sent, then, for each
    /// one acknowledged, shares its removal (every host forgets this death
    /// of the letter, never a later one: see dead_letter_sharing) and
    /// removes it here (compare-and-delete: if the re-driven event already
    /// died again, its new letter stays). A re-drive that was not
    /// acknowledged keeps its letter and is reported failed. A letter
    /// whose removal fails here is reported (re-driven, still listed) and
    /// the rest of the window is still settled; the first such error is
    /// returned after.
    async fn settle_redrives(
        &self,
        window: &mut Window<'_>,
        report: &mut RedriveReport,
        by: &str,
    ) -> Result<()> {
        window.bytes = 0;
        let mut sent = Vec::with_capacity(window.items.len());
        for redrive in window.items.drain(..) {
            // All were enqueued already: awaiting one after another costs
            // one round trip for the window, not one per letter.
            let PendingRedrive {
                dead,
                delivery,
                _claim,
            } = redrive;
            match delivery.await {
                Ok(_) => sent.push((dead, _claim)),
                Err(err) => report.failed.push((dead.id.clone(), err.to_string())),
            }
        }
        let removals: Vec<_> = sent
            .iter()
            .map(|(dead, _)| self.enqueue_removal(dead))
            .collect();
        let dead_letters = self.parts().store.dead_letters();
        let mut first_error = None;
        for ((dead, claim), removal) in sent.into_iter().zip(removals) {
            let shared = match removal {
                Some(delivery) => delivery.await.err(),
                None => None,
            };
            report.redriven += 1;
            if let Err(err) = dead_letters.remove_if_unchanged(&dead) {
                report.failed.push((
                    dead.id.clone(),
                    format!(
                        "re-driven, but not removed from this host's set ({err}): it is still \
                         listed; discard it rather than re-drive it again"
                    ),
                ));
                first_error.get_or_insert(err);
                continue;
            }
            drop(claim);
            match shared {
                Some(err) => report.failed.push((
                    dead.id.clone(),
                    format!(
                        "re-driven, but its removal did not reach the other hosts ({err}): \
                         they still list it; discard it there"
                    ),
                )),
                None => {
                    tracing::info!(id = %dead.id, actor = %dead.actor, %by, "dead letter re-driven")
                }
            }
        }
        match first_error {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }

    /// Applies every actor's dead-letter retention now (the manifest's
    /// `[dead_letter] max_age` and `max_count` of its active version; the
    /// defaults for dead letters of actors that no longer exist), counts
    /// the evictions in `wactor_dead_letters_evicted_total{actor,reason}`
    /// and returns them per actor (only actors that lost some). Blocking
    /// (sled reads and writes): run it on a blocking thread. The host runs
    /// it every [`DEAD_LETTER_SWEEP_INTERVAL`].
    pub fn sweep_dead_letters(&self) -> Result<Swept> {
        // Retention is each host's, over its copy: evicted letters stay in
        // `<group>.dead-letters` (a host whose clock or registry is off
        // must not delete them for the whole cluster).
        let store = &self.parts().store;
        let set = store.dead_letters();
        let now = self.parts().clock.now_ms();
        let mut retention = std::collections::BTreeMap::new();
        for record in store.registry().actors()? {
            if let Ok(manifest) = ActorManifest::parse(&record.manifest_toml) {
                retention.insert(record.name, retention_of(&manifest));
            }
        }
        let mut out = Vec::new();
        for actor in set.actors()? {
            let policy = retention.get(&actor).copied().unwrap_or_default();
            let evicted = set.enforce_retention(&actor, &policy, now)?;
            if evicted.total() == 0 {
                continue;
            }
            let metric = &self.parts().metrics.dead_letters_evicted_total;
            metric
                .with_label_values(&[actor.as_str(), "age"])
                .inc_by(evicted.by_age);
            metric
                .with_label_values(&[actor.as_str(), "count"])
                .inc_by(evicted.by_count);
            tracing::info!(
                actor = %actor, by_age = evicted.by_age, by_count = evicted.by_count,
                "dead letters evicted by retention"
            );
            out.push((actor, evicted));
        }
        Ok(out)
    }

    /// Marks `id` as being re-driven; false when it already is.
    fn claim_redrive(&self, id: &str) -> bool {
        match self.redriving.lock() {
            Ok(mut set) => set.insert(id.to_string()),
            Err(poisoned) => poisoned.into_inner().insert(id.to_string()),
        }
    }

    /// [`claim_redrive`](Self::claim_redrive), released when the returned
    /// guard drops: a request whose client hung up mid-way (its future
    /// dropped) cannot keep the letter claimed.
    fn claim_guard(&self, id: &str) -> Option<Claim<'_>> {
        self.claim_redrive(id).then(|| Claim {
            registry: self,
            id: id.to_string(),
        })
    }

    fn release_redrive(&self, id: &str) {
        match self.redriving.lock() {
            Ok(mut set) => set.remove(id),
            Err(poisoned) => poisoned.into_inner().remove(id),
        };
    }

    /// Removes dead letters for good (one by id, or those matching).
    pub async fn discard(
        &self,
        id: Option<&str>,
        filter: &DeadLetterFilter,
        dry_run: bool,
    ) -> Result<RedriveReport> {
        let selected = self.select(id, filter)?;
        let mut report = RedriveReport {
            matched: selected.len(),
            dry_run,
            ids: selected.iter().take(1000).map(|d| d.id.clone()).collect(),
            ..RedriveReport::default()
        };
        if dry_run {
            return Ok(report);
        }
        let dead_letters = self.parts().store.dead_letters();
        for dead in selected {
            match self.release_blocked(&dead, Unblock::Discard).await? {
                Some(Ok(())) => {
                    report.redriven += 1;
                    continue;
                }
                Some(Err(why)) => {
                    report.failed.push((dead.id.clone(), why));
                    continue;
                }
                None => {}
            }
            // Every host forgets it first: a discard that did not reach
            // them is reported and changes nothing here.
            if let Err(err) = self.share_removal(&dead).await {
                report.failed.push((dead.id.clone(), err.to_string()));
                continue;
            }
            if dead_letters.remove_if_unchanged(&dead)? {
                report.redriven += 1;
            }
        }
        self.parts().store.flush_async().await?;
        Ok(report)
    }

    /// A re-drive or discard of `dead` when it blocks its lane (it died
    /// under `on_dead = "block"`: `dead.blocking`): the letter is removed
    /// everywhere first (so a new death of the released event is a record
    /// after the removal), then the worker of its partition, here or on
    /// another host, releases the event (it runs in its turn, first in its
    /// lane) or drops it. `None` for a letter that blocks nothing (the
    /// usual path applies); `Some(Err(why))` when nothing was done, or
    /// (said so) only the letter's removal.
    ///
    /// # Errors
    /// [`RegistryError::Store`] or [`RegistryError::Kafka`] when the store
    /// or the requests topic fails.
    async fn release_blocked(
        &self,
        dead: &DeadLetter,
        action: Unblock,
    ) -> Result<Option<std::result::Result<(), String>>> {
        if !dead.blocking {
            return Ok(None);
        }
        match self.unblock_anywhere(dead, Unblock::Check).await? {
            Blocking::Found => {}
            Blocking::Nowhere => {
                return Ok(Some(Err(
                    "its key is blocked behind it (on_dead = \"block\") and no host runs its \
                     partition now (the actor is paused or stopped, or the partition is moving, \
                     or this death was released already): nothing done; try again once the \
                     actor runs"
                        .to_string(),
                )))
            }
            Blocking::Unknown(hosts) => {
                return Ok(Some(Err(format!(
                    "its key is blocked behind it (on_dead = \"block\") and these hosts did \
                     not answer: {}; nothing done",
                    hosts.join(", ")
                ))))
            }
        }
        let Some(_claim) = self.claim_guard(&dead.id) else {
            return Ok(Some(Err("already being re-driven".into())));
        };
        if self.parts().store.dead_letters().get(&dead.id)?.as_ref() != Some(dead) {
            return Ok(Some(Err(
                "changed or gone since it was selected (re-driven or discarded meanwhile)".into(),
            )));
        }
        if let Err(err) = self.share_removal(dead).await {
            return Ok(Some(Err(format!(
                "its removal did not reach the other hosts ({err}); nothing done"
            ))));
        }
        self.parts()
            .store
            .dead_letters()
            .remove_if_unchanged(dead)?;
        Ok(Some(match self.unblock_anywhere(dead, action).await? {
            Blocking::Found => Ok(()),
            _ => Err(format!(
                "removed from the dead letters, but its event was not released: another \
                 request released it first, or its partition moved meanwhile; nothing was run \
                 by this request (`wactor retries list {} --key ...` shows whether its key is \
                 still blocked)",
                dead.actor
            )),
        }))
    }

    fn select(&self, id: Option<&str>, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>> {
        if let Some(id) = id {
            return Ok(vec![self.dead_letter(id)?]);
        }
        let dead_letters = self.parts().store.dead_letters();
        let mut selected = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = dead_letters.list(filter, 1000, after.as_deref())?;
            selected.extend(page.items);
            if selected.len() > MAX_BATCH {
                return Err(RegistryError::BadRequest(format!(
                    "more than {MAX_BATCH} dead letters match; narrow the filter"
                )));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(selected)
    }

    /// Events of `actor` held on this host for a retry (or behind one).
    pub fn retries(
        &self,
        actor: &str,
        filter: &HeldFilter,
        limit: usize,
    ) -> Result<Vec<HeldEvent>> {
        self.actor(actor)?;
        Ok(self
            .parts()
            .store
            .held(actor)?
            .list(filter, limit.clamp(1, MAX_HELD_LISTING))?)
    }
}

/// Most held events one listing reads from a store.
pub(crate) const MAX_HELD_LISTING: usize = 10_000;

/// A dead letter claimed for a re-drive on this host
/// ([`Registry::claim_guard`]); the claim ends when it drops.
struct Claim<'a> {
    registry: &'a Registry,
    id: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.registry.release_redrive(&self.id);
    }
}

/// A re-drive handed to the producer and not yet acknowledged, with the
/// claim on its letter.
struct PendingRedrive<'a> {
    dead: DeadLetter,
    delivery: wactor_kafka::producer::Delivery,
    _claim: Claim<'a>,
}

/// The re-drives in flight: handed to the producer, not yet settled.
#[derive(Default)]
struct Window<'a> {
    items: Vec<PendingRedrive<'a>>,
    /// Their records' bytes on the wire.
    bytes: usize,
}

/// Send slots at a fixed rate, one interval (1 / rate) apart and never in
/// the past: after a stall (a slow settle, a full producer queue, an
/// owner's answer) sending goes on at the rate, without a burst to catch
/// up.
struct Pacer {
    next: tokio::time::Instant,
    interval: Duration,
}

impl Pacer {
    fn new(rate_per_sec: u32) -> Pacer {
        Pacer {
            next: tokio::time::Instant::now(),
            interval: Duration::from_nanos((1_000_000_000 / u64::from(rate_per_sec.max(1))).max(1)),
        }
    }

    /// The time of the next send.
    fn next_slot(&mut self) -> tokio::time::Instant {
        let at = self.next.max(tokio::time::Instant::now());
        self.next = at + self.interval;
        at
    }
}

/// The store's retention of an actor's manifest.
pub fn retention_of(manifest: &ActorManifest) -> Retention {
    Retention {
        max_age_ms: manifest
            .dead_letter
            .max_age
            .map(|age| i64::try_from(age.as_millis()).unwrap_or(i64::MAX)),
        max_count: Some(manifest.dead_letter.max_count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_sends_and_does_not_burst_after_a_stall() {
        let mut pacer = Pacer::new(5);
        let start = tokio::time::Instant::now();
        let first = pacer.next_slot();
        let second = pacer.next_slot();
        assert_eq!(first, start);
        assert_eq!(second - first, Duration::from_millis(200));
        // A 10 s stall (a slow settle, a full queue): the next slots start
        // from now, one interval apart, not ten seconds' worth at once.
        tokio::time::sleep_until(second).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let now = tokio::time::Instant::now();
        let third = pacer.next_slot();
        let fourth = pacer.next_slot();
        assert_eq!(third, now);
        assert_eq!(fourth - third, Duration::from_millis(200));
    }

    #[test]
    fn the_pacer_interval_is_exact_and_never_zero() {
        assert_eq!(Pacer::new(1).interval, Duration::from_secs(1));
        assert_eq!(Pacer::new(3).interval, Duration::from_nanos(333_333_333));
        assert_eq!(Pacer::new(u32::MAX).interval, Duration::from_nanos(1));
        assert_eq!(Pacer::new(0).interval, Duration::from_secs(1));
    }
}
