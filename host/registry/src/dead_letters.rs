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
//! - re-drives go out a window at a time ([`REDRIVE_WINDOW`]), each
//!   window settled by a task of its own while the next one is sent (at
//!   most two windows in flight): whatever ends the request (an error of
//!   the store or of an owner's answer), every window handed to the
//!   producer is settled first, so no letter whose record was sent stays
//!   in the set to be sent again; the API runs a re-drive as a task of its
//!   own, so a client that hangs up does not drop a window half done (a
//!   host that stops or crashes with windows in flight does: up to two
//!   windows, 1,024 letters, stay and may be re-driven again, at least
//!   once);
//! - a re-drive of the same letter from another host while this one's
//!   window is in flight (claims are per host): the letter is sent twice;
//!   other hosts forget it when its window is settled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wactor_kafka::actor::redrive_topic;
use wactor_kafka::producer::{max_message_bytes, Delivery};
use wactor_kafka::redrive::RedriveEnvelope;
use wactor_kafka::worker::Unblock;
use wactor_kafka::{OutRecord, Producer};
use wactor_manifest::ActorManifest;
use wactor_store::{
    DeadLetter, DeadLetterFilter, DeadLetterPage, DeadLetters, Evicted, HeldEvent, HeldFilter,
    Retention,
};

use crate::dead_letter_sharing::enqueue_removal;
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
/// batches full. A full window is settled (acknowledgements awaited,
/// removals shared, letters removed) by a task of its own while the next
/// one is sent; the window after that waits for it, so at most two are in
/// flight. Claims on the letters of a window are held until each letter
/// is settled, so a second re-drive of them on this host is refused
/// meanwhile.
pub const REDRIVE_WINDOW: usize = 512;

/// Bytes of re-drive records in a window: a window is handed off once it
/// reaches 16 MiB, so it holds at most 16 MiB plus its last record, and two
/// windows are in flight at most. Each record's letter is kept with it
/// until settled (its payload a second time), so the memory in flight is
/// about twice that; the selection itself holds up to [`MAX_BATCH`]
/// letters. The producer is shared with the actors' emits; windows of
/// large letters must not fill its queue.
pub const REDRIVE_WINDOW_BYTES: usize = 16 << 20;

/// Letters removed in one store transaction when a window is settled: 64.
/// One transaction per letter took sled's transaction lock (which every
/// other store operation of the host waits for) 512 times a window; one
/// for the whole window would hold it for milliseconds.
const REMOVE_CHUNK: usize = 64;

/// Under a rate limit, the letters already sent are handed to a settling
/// task (awaited and removed during the wait) before any wait for the next
/// send slot longer than this: 20 ms. At up to about 50 letters a second
/// each letter leaves the set soon after its send, not a window later.
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
        let mut flight = Flight::default();
        // Whatever ends the loop (an error, too), what was handed to the
        // producer is settled: its records are delivered anyway, so its
        // letters must leave the set, or a later re-drive would send them
        // again.
        let outcome = self
            .redrive_each(selected, &request, &mut pacer, &mut flight, &mut report)
            .await;
        let settled = self.settle_all(&mut flight, &mut report, &request.by).await;
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
    /// handed to the producer a window at a time, each window settled by
    /// a task of its own while the next is sent.
    async fn redrive_each(
        &self,
        selected: Vec<DeadLetter>,
        request: &RedriveRequest,
        pacer: &mut Option<Pacer>,
        flight: &mut Flight,
        report: &mut RedriveReport,
    ) -> Result<()> {
        let dead_letters = self.parts().store.dead_letters();
        let version = match request.target {
            RedriveTarget::Active => None,
            RedriveTarget::Version(v) => Some(v),
        };
        let limit = max_message_bytes(&self.parts().kafka);
        // Each actor's group, read again every window (a read of its record
        // and a parse of its manifest per letter cost more than the rest
        // of a letter's send) and before every letter of a rate-limited
        // request: a request can run for hours, and an actor that moved to
        // another group meanwhile must not get letters sent to the old
        // group's re-drive topic, which nothing reads any more (review of
        // issue 15). A change is seen within one window (512 letters).
        let mut groups: HashMap<String, std::result::Result<String, String>> = HashMap::new();
        let mut since_read = 0usize;
        for dead in selected {
            if pacer.is_some() || since_read >= REDRIVE_WINDOW {
                groups.clear();
                since_read = 0;
            }
            since_read += 1;
            let group = groups
                .entry(dead.actor.clone())
                .or_insert_with(|| self.group_of(&dead.actor).map_err(|err| err.to_string()));
            let group = match group {
                Ok(group) => group.as_str(),
                Err(err) => {
                    report.failed.push((dead.id.clone(), err.clone()));
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
                self.settle_all(flight, report, &request.by).await?;
                if let Some(pacer) = pacer.as_mut() {
                    self.pace(pacer, flight, report, &request.by).await?;
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
            let record = match self.redrive_record(&dead, group, version, &request.by) {
                Ok(record) => record,
                Err(err) => {
                    report.failed.push((dead.id.clone(), err));
                    continue;
                }
            };
            let size = record.wire_size();
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
                self.pace(pacer, flight, report, &request.by).await?;
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
            let window = &mut flight.filling;
            window.bytes = window.bytes.saturating_add(size);
            window.items.push(PendingRedrive {
                dead,
                delivery,
                claim,
            });
            if window.items.len() >= REDRIVE_WINDOW || window.bytes >= REDRIVE_WINDOW_BYTES {
                self.hand_off(flight, report, &request.by).await?;
            }
        }
        Ok(())
    }

    /// Waits for the pacer's next send slot; when that wait is long, what
    /// was sent is handed to a settling task first (settled during the
    /// wait).
    async fn pace(
        &self,
        pacer: &mut Pacer,
        flight: &mut Flight,
        report: &mut RedriveReport,
        by: &str,
    ) -> Result<()> {
        let at = pacer.next_slot();
        if at.saturating_duration_since(tokio::time::Instant::now()) > SETTLE_BEFORE_WAIT {
            self.hand_off(flight, report, by).await?;
        }
        tokio::time::sleep_until(at).await;
        Ok(())
    }

    /// Hands the window being filled (if any) to a task that settles it
    /// ([`settle_window`]), after waiting for the window settling before
    /// it: at most two windows are in flight, one settling while the next
    /// is sent. The earlier window's outcome is added to `report`; the
    /// first store error it met is returned, after the new window was
    /// handed off (it was sent: it is settled whatever happens next).
    async fn hand_off(
        &self,
        flight: &mut Flight,
        report: &mut RedriveReport,
        by: &str,
    ) -> Result<()> {
        if flight.filling.items.is_empty() {
            return Ok(());
        }
        // Once a window at least, the request lets the runtime run other
        // tasks (a window settled meanwhile is no reason to go on for the
        // whole request without a pause).
        tokio::task::yield_now().await;
        let earlier = match flight.settling.take() {
            Some(settling) => settling.join(report).await,
            None => Ok(()),
        };
        let window = std::mem::take(&mut flight.filling);
        let ids = window.items.iter().map(|p| p.dead.id.clone()).collect();
        let task = tokio::spawn(settle_window(
            window.items,
            self.removal_producer(),
            self.parts().store.dead_letters(),
            by.to_string(),
        ));
        flight.settling = Some(Settling { task, ids });
        earlier
    }

    /// Settles everything in flight: the window being filled is handed
    /// off, and every window is awaited. Returns the first store error
    /// met.
    async fn settle_all(
        &self,
        flight: &mut Flight,
        report: &mut RedriveReport,
        by: &str,
    ) -> Result<()> {
        let handed = self.hand_off(flight, report, by).await;
        let last = match flight.settling.take() {
            Some(settling) => settling.join(report).await,
            None => Ok(()),
        };
        handed.and(last)
    }

    /// The re-drive record of `dead`: its envelope on `group`'s re-drive
    /// topic, keyed by the event's key. `Err` says why it cannot be
    /// encoded.
    fn redrive_record(
        &self,
        dead: &DeadLetter,
        group: &str,
        version: Option<u64>,
        by: &str,
    ) -> std::result::Result<OutRecord, String> {
        let envelope = RedriveEnvelope {
            version,
            redriven_at_ms: self.parts().clock.now_ms(),
            by: by.to_string(),
            dead_letter: dead.clone(),
        };
        Ok(OutRecord {
            topic: redrive_topic(group),
            partition: None,
            key: dead.event.key.clone(),
            payload: Some(envelope.encode()?),
            headers: vec![(
                "wactor-redrive-of".into(),
                Some(dead.id.clone().into_bytes()),
            )],
        })
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

    /// Marks `id` as being re-driven, released when the returned claim
    /// drops; `None` when it is already. A request whose client hung up
    /// mid-way (its future dropped) cannot keep the letter claimed; a
    /// claim moves with its letter to the task that settles its window.
    fn claim_guard(&self, id: &str) -> Option<Claim> {
        lock(&self.redriving).insert(id.to_string()).then(|| Claim {
            claims: self.redriving.clone(),
            id: id.to_string(),
        })
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
struct Claim {
    claims: Arc<Mutex<std::collections::HashSet<String>>>,
    id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        lock(&self.claims).remove(&self.id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A re-drive handed to the producer and not yet acknowledged, with the
/// claim on its letter.
struct PendingRedrive {
    dead: DeadLetter,
    delivery: Delivery,
    claim: Claim,
}

/// Re-drives handed to the producer and not settled yet.
#[derive(Default)]
struct Window {
    items: Vec<PendingRedrive>,
    /// Their records' bytes on the wire.
    bytes: usize,
}

/// The re-drives of a request in flight: the window being filled, and
/// the one before it being settled by its task.
#[derive(Default)]
struct Flight {
    filling: Window,
    settling: Option<Settling>,
}

/// A window being settled by its task ([`settle_window`]).
struct Settling {
    task: tokio::task::JoinHandle<Settled>,
    /// Its letters' ids (reported if the task fails).
    ids: Vec<String>,
}

impl Settling {
    /// Waits for the window to be settled and adds what happened to
    /// `report`; returns the first store error met.
    async fn join(self, report: &mut RedriveReport) -> Result<()> {
        match self.task.await {
            Ok(settled) => {
                report.redriven += settled.redriven;
                report.failed.extend(settled.failed);
                settled.error.map_or(Ok(()), Err)
            }
            Err(err) => {
                let why = format!(
                    "its re-drive may have been sent, but settling it failed ({err}): it may \
                     still be listed; discard it rather than re-drive it again"
                );
                report
                    .failed
                    .extend(self.ids.into_iter().map(|id| (id, why.clone())));
                Err(RegistryError::Internal(format!(
                    "settling a window of re-drives failed: {err}"
                )))
            }
        }
    }
}

/// What settling a window did.
#[derive(Default)]
struct Settled {
    /// Re-drives acknowledged.
    redriven: usize,
    /// Letters not re-driven, or re-driven but not removed, with why.
    failed: Vec<(String, String)>,
    /// The first store error met.
    error: Option<RegistryError>,
}

/// Settles a window of re-drives, as a task of its own while the next
/// window is sent: awaits every acknowledgement, then, for each one
/// acknowledged, shares its removal when `sharing` (every host forgets
/// this death of the letter, never a later one: see dead_letter_sharing)
/// and removes it here (compare-and-delete: if the re-driven event already
/// died again, its new letter stays), [`REMOVE_CHUNK`] letters to a store
/// transaction, on a blocking thread. A re-drive that was not acknowledged
/// keeps its letter and is reported failed. When a chunk's transaction
/// fails its letters are removed one at a time, so that a letter whose
/// removal fails is reported alone (re-driven, still listed) and the rest
/// of the window is still settled; the first such error is kept. Each
/// letter's claim is released once it is settled.
async fn settle_window(
    items: Vec<PendingRedrive>,
    sharing: Option<Producer>,
    dead_letters: DeadLetters,
    by: String,
) -> Settled {
    let mut settled = Settled::default();
    let mut sent = Vec::with_capacity(items.len());
    for PendingRedrive {
        dead,
        delivery,
        claim,
    } in items
    {
        // All were enqueued already: awaiting one after another costs one
        // round trip for the window, not one per letter.
        match delivery.await {
            Ok(_) => sent.push((dead, claim)),
            Err(err) => settled.failed.push((dead.id.clone(), err.to_string())),
        }
    }
    let removals: Vec<Option<Delivery>> = sent
        .iter()
        .map(|(dead, _)| sharing.as_ref().map(|p| enqueue_removal(p, dead)))
        .collect();
    let mut shared = Vec::with_capacity(removals.len());
    for removal in removals {
        shared.push(match removal {
            Some(delivery) => delivery.await.err(),
            None => None,
        });
    }
    settled.redriven = sent.len();
    let ids: Vec<String> = sent.iter().map(|(dead, _)| dead.id.clone()).collect();
    let removed = tokio::task::spawn_blocking(move || {
        let mut failed = Vec::new();
        let mut first_error = None;
        let (letters, claims): (Vec<DeadLetter>, Vec<Claim>) = sent.into_iter().unzip();
        let mut claims = claims.into_iter();
        let mut shared = shared.into_iter();
        for chunk in letters.chunks(REMOVE_CHUNK) {
            let removed: Vec<std::result::Result<bool, wactor_store::StoreError>> =
                match dead_letters.remove_each_if_unchanged(chunk) {
                    Ok(removed) => removed.into_iter().map(Ok).collect(),
                    // One at a time, so that only the letter at fault fails.
                    Err(_) => chunk
                        .iter()
                        .map(|dead| dead_letters.remove_if_unchanged(dead))
                        .collect(),
                };
            for (dead, removed) in chunk.iter().zip(removed) {
                let claim = claims.next();
                let shared = shared.next().flatten();
                if let Err(err) = removed {
                    failed.push((
                        dead.id.clone(),
                        format!(
                            "re-driven, but not removed from this host's set ({err}): it is \
                             still listed; discard it rather than re-drive it again"
                        ),
                    ));
                    first_error.get_or_insert(err);
                    continue;
                }
                drop(claim);
                match shared {
                    Some(err) => failed.push((
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
        }
        (failed, first_error)
    })
    .await;
    match removed {
        Ok((failed, first_error)) => {
            settled.failed.extend(failed);
            settled.error = first_error.map(RegistryError::from);
        }
        Err(err) => {
            let why = format!(
                "re-driven, but removing it failed ({err}): it may still be listed; discard it \
                 rather than re-drive it again"
            );
            settled
                .failed
                .extend(ids.into_iter().map(|id| (id, why.clone())));
            settled.error = Some(RegistryError::Internal(format!(
                "removing re-driven letters failed: {err}"
            )));
        }
    }
    settled
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
