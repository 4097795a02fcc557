//! Requests to the owners of partitions, through Kafka: `wactor retries
//! list` and `wactor retries now` asked of any host answer for the whole
//! cluster.
//!
//! Events held for a retry live with their partition (in the owner's store
//! and `<group>.retries`), so only the owner can list them fresh or run one
//! now. A host asked for either writes a request to the topic
//! `<registry topic>.requests` (one partition, `cleanup.policy = delete`,
//! kept an hour; [`requests_topic`]) and every other host, which reads that
//! topic from the end, answers on the same topic:
//!
//! - `retries list`: every host answers with the held events of its store
//!   and the partitions of the actor it owns; the asker merges them (a
//!   partition's owner is the truth for it; copies of a partition no host
//!   owns, e.g. while the actor is paused, are shown once), waiting at most
//!   [`REPLY_TIMEOUT`] for the hosts the cluster view shows alive and
//!   naming the ones that did not answer.
//! - `retries now`: the asker tries its own workers first; otherwise the
//!   host whose worker holds the event runs it and says so. No answer from
//!   a live host within the timeout is [`RegistryError::NoAnswer`], never a
//!   silent "not found".
//! - re-drive and discard of a dead letter of an actor with `on_dead =
//!   "block"`: the worker whose lane that letter blocks releases it (runs
//!   the event first in its lane, or drops it) instead of the usual
//!   re-drive through `<group>.redrive` (`dead_letters`).
//!
//! A single host (no other alive host in the cluster view) writes nothing.
//! Requests are for the moment (older than [`REQUEST_MAX_AGE`] they are
//! ignored) and nothing of them is kept on disk. Writers of the topic are
//! trusted like those of the registry topic (docs/operations.md, ACLs); a
//! host answers at most [`MAX_ANSWERING`] requests at a time and a reply
//! carries at most [`REPLY_BYTES`] of held events (`truncated` beyond).
//!
//! What it does not do: re-drive or discard dead letters (they are shared
//! through `<group>.dead-letters`, `dead_letter_sharing`), or decide who
//! owns a partition (Kafka's group protocol does).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};
use wactor_kafka::registry_log::{LogRecord, RegistryLog};
use wactor_kafka::worker::Unblock;
use wactor_store::{BlockedBy, DeadLetter, HeldEvent, HeldFilter, HeldId};

use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// How long an asking host waits for the answers of the other live hosts:
/// 5 s.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests older than this (by the answering host's clock) are not
/// answered: 30 s.
pub const REQUEST_MAX_AGE: Duration = Duration::from_secs(30);

/// Largest sum of held-event values in one reply: 512 KiB, below Kafka's
/// default record limit (1 MB). A host with more matching events answers
/// with the first ones and `truncated`.
pub const REPLY_BYTES: usize = 512 * 1024;

/// Most requests one host answers at a time; more are skipped (logged).
pub const MAX_ANSWERING: usize = 8;

/// How long the requests topic keeps records: 1 hour.
const RETENTION_MS: u64 = 3_600_000;

/// The topic of the requests of the cluster whose registry topic is
/// `registry_topic`: `<registry_topic>.requests`.
pub fn requests_topic(registry_topic: &str) -> String {
    format!("{registry_topic}.requests")
}

/// One request, keyed `req/<id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Request {
    id: String,
    /// The asking host's id (its cluster-view id).
    from: String,
    /// When it was asked (asker's clock, ms since the Unix epoch).
    at_ms: i64,
    ask: Ask,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Ask {
    Retries {
        actor: String,
        filter: WireFilter,
        limit: usize,
    },
    RetryNow {
        actor: String,
        id: String,
    },
    Unblock {
        actor: String,
        topic: String,
        partition: i32,
        dead_letter: String,
        dead_at_ms: i64,
        action: WireUnblock,
    },
}

/// [`Unblock`], on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum WireUnblock {
    Check,
    Redrive { version: Option<u64> },
    Discard,
}

impl From<Unblock> for WireUnblock {
    fn from(u: Unblock) -> Self {
        match u {
            Unblock::Check => WireUnblock::Check,
            Unblock::Redrive { version } => WireUnblock::Redrive { version },
            Unblock::Discard => WireUnblock::Discard,
        }
    }
}

impl From<WireUnblock> for Unblock {
    fn from(u: WireUnblock) -> Self {
        match u {
            WireUnblock::Check => Unblock::Check,
            WireUnblock::Redrive { version } => Unblock::Redrive { version },
            WireUnblock::Discard => Unblock::Discard,
        }
    }
}

/// Where [`Registry::unblock_anywhere`] found a lane blocked by a dead
/// letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocking {
    /// A worker (here or on another host) had it and did the action.
    Found,
    /// Every live host answered: no lane is blocked by it.
    Nowhere,
    /// Not here, and these live hosts did not answer in time.
    Unknown(Vec<String>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireFilter {
    topic: Option<String>,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    only_retrying: bool,
}

impl From<&HeldFilter> for WireFilter {
    fn from(f: &HeldFilter) -> Self {
        WireFilter {
            topic: f.topic.clone(),
            partition: f.partition,
            key: f.key.clone(),
            only_retrying: f.only_retrying,
        }
    }
}

impl From<WireFilter> for HeldFilter {
    fn from(f: WireFilter) -> Self {
        HeldFilter {
            topic: f.topic,
            partition: f.partition,
            key: f.key,
            only_retrying: f.only_retrying,
        }
    }
}

/// One answer, keyed `reply/<request id>/<host id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reply {
    request: String,
    /// The answering host's id and name.
    host: String,
    name: String,
    answer: Answer,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Answer {
    Retries {
        /// The actor's partitions this host owns.
        owned: Vec<(String, i32)>,
        held: Vec<HeldEvent>,
        truncated: bool,
    },
    RetryNow {
        found: bool,
    },
    Unblock {
        found: bool,
    },
    Failed {
        error: String,
    },
}

/// A held event and the host whose store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostHeld {
    /// The host's name (its `host_name`, else its API address).
    pub host: String,
    /// Whether that host owns the event's partition now (false: a copy
    /// kept while no host owns the partition, e.g. the actor is paused).
    pub owner: bool,
    /// The event.
    pub held: HeldEvent,
}

/// The held events of an actor across the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeldListing {
    /// The events, in id order (topic, partition, lane, offset), at most
    /// the limit asked for.
    pub held: Vec<HostHeld>,
    /// Hosts alive in the cluster view that did not answer in time: their
    /// partitions' events are missing.
    pub unanswered: Vec<String>,
    /// Hosts that had more matching events than a reply holds.
    pub truncated: Vec<String>,
}

/// Partitions, as (topic, partition).
type Partitions = Vec<(String, i32)>;

/// This host's link to the requests topic.
pub(crate) struct OwnerRequests {
    log: RegistryLog,
    host_id: String,
    host_name: String,
    /// Requests this host waits for answers to.
    pending: Mutex<HashMap<String, mpsc::UnboundedSender<Reply>>>,
    answering: Arc<Semaphore>,
    stop: Arc<AtomicBool>,
    /// The cluster view, to answer only its hosts.
    view: Option<Arc<crate::cluster::ClusterView>>,
    /// Requests skipped because too many were being answered.
    busy_skips: std::sync::atomic::AtomicU64,
    /// When that was last logged.
    busy_logged: Mutex<Option<std::time::Instant>>,
}

impl Drop for OwnerRequests {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>> {
    wactor_store::value::encode(what, value).map_err(RegistryError::from)
}

impl OwnerRequests {
    /// Whether `host` (a cluster-view id) is a host the view knows.
    fn known_host(&self, host: &str) -> bool {
        match &self.view {
            Some(view) => view.knows(host),
            None => true,
        }
    }

    /// Counts a request skipped because this host answers
    /// [`MAX_ANSWERING`] already; logs at most one WARN a minute.
    fn skipped_busy(&self) {
        let skipped = self.busy_skips.fetch_add(1, Ordering::Relaxed) + 1;
        let now = std::time::Instant::now();
        let mut last = match self.busy_logged.lock() {
            Ok(last) => last,
            Err(poisoned) => poisoned.into_inner(),
        };
        if last.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60)) {
            *last = Some(now);
            tracing::warn!(skipped_so_far = skipped, "too many requests of other hosts to answer at once; skipping (logged once a minute)");
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Reply>>> {
        match self.pending.lock() {
            Ok(pending) => pending,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Merges the answers of `retries list`: an owner's events are the truth
/// for its partitions; an event of a partition no answering host owns is
/// kept once (the copy with most attempts). Sorted by id, cut to `limit`.
fn merge(answers: Vec<(String, Partitions, Vec<HeldEvent>)>, limit: usize) -> Vec<HostHeld> {
    let owned_anywhere: BTreeSet<(String, i32)> = answers
        .iter()
        .flat_map(|(_, owned, _)| owned.iter().cloned())
        .collect();
    let mut out: BTreeMap<HeldId, HostHeld> = BTreeMap::new();
    for (host, owned, held) in answers {
        let owned: BTreeSet<(String, i32)> = owned.into_iter().collect();
        for event in held {
            let partition = (event.event.topic.clone(), event.event.partition);
            let id = event.id();
            if owned.contains(&partition) {
                out.insert(
                    id,
                    HostHeld {
                        host: host.clone(),
                        owner: true,
                        held: event,
                    },
                );
            } else if !owned_anywhere.contains(&partition) {
                let better = out.get(&id).is_none_or(|kept| {
                    !kept.owner && kept.held.attempts.len() < event.attempts.len()
                });
                if better {
                    out.insert(
                        id,
                        HostHeld {
                            host: host.clone(),
                            owner: false,
                            held: event,
                        },
                    );
                }
            }
        }
    }
    out.into_values().take(limit).collect()
}

impl Registry {
    /// Starts answering the cluster's requests to partition owners (reads
    /// `<registry_topic>.requests` from its end). Called by
    /// [`attach_cluster_view`](Self::attach_cluster_view): it needs this
    /// host's id in the view.
    pub(crate) async fn attach_owner_requests(
        self: &Arc<Self>,
        registry_topic: &str,
        host_id: String,
        host_name: String,
    ) -> Result<()> {
        let log = RegistryLog::open_transient(
            &self.parts().kafka,
            &requests_topic(registry_topic),
            RETENTION_MS,
        )
        .await;
        let (sender, mut receiver) = mpsc::channel::<LogRecord>(64);
        let stop = Arc::new(AtomicBool::new(false));
        log.tail_new(
            move |record| sender.blocking_send(record).is_ok(),
            stop.clone(),
        )?;
        let requests = Arc::new(OwnerRequests {
            log,
            host_id,
            host_name,
            pending: Mutex::default(),
            answering: Arc::new(Semaphore::new(MAX_ANSWERING)),
            stop,
            view: self.cluster.get().cloned(),
            busy_skips: std::sync::atomic::AtomicU64::new(0),
            busy_logged: Mutex::new(None),
        });
        if self.owner_requests.set(requests).is_err() {
            return Err(RegistryError::Internal(
                "the owner requests are attached already".into(),
            ));
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(record) = receiver.recv().await {
                let Some(registry) = weak.upgrade() else {
                    return;
                };
                registry.on_request_record(record);
            }
        });
        Ok(())
    }

    /// One record of the requests topic: a reply to a request of this host
    /// goes to its waiter; a request of another host is answered on a task.
    fn on_request_record(self: &Arc<Self>, record: LogRecord) {
        let Some(requests) = self.owner_requests.get() else {
            return;
        };
        let (Some(key), Some(payload)) = (record.key, record.payload) else {
            return;
        };
        if key.starts_with(b"reply/") {
            let Ok(reply) = wactor_store::value::decode::<Reply>("reply", &payload) else {
                tracing::debug!("skipping a reply that is not one");
                return;
            };
            let waiter = requests.pending().get(&reply.request).cloned();
            if let Some(waiter) = waiter {
                let _ = waiter.send(reply);
            }
            return;
        }
        if !key.starts_with(b"req/") {
            return;
        }
        let Ok(request) = wactor_store::value::decode::<Request>("request", &payload) else {
            tracing::debug!("skipping a request that is not one");
            return;
        };
        if request.from == requests.host_id {
            return;
        }
        let now = self.parts().clock.now_ms();
        let max_age = REQUEST_MAX_AGE.as_millis();
        // Any i64 may come from the topic: no arithmetic that can overflow.
        if u128::from(now.abs_diff(request.at_ms)) > max_age {
            tracing::debug!(id = %request.id, "skipping a request too old (or dated ahead)");
            return;
        }
        // Only hosts of the cluster view ask (a record from anyone else is
        // not answered).
        if !requests.known_host(&request.from) {
            tracing::debug!(id = %request.id, from = %request.from, "skipping a request of a host not in the cluster view");
            return;
        }
        let Ok(permit) = requests.answering.clone().try_acquire_owned() else {
            requests.skipped_busy();
            return;
        };
        let registry = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            registry.answer(request).await;
        });
    }

    /// Answers one request of another host.
    async fn answer(&self, request: Request) {
        let Some(requests) = self.owner_requests.get() else {
            return;
        };
        let answer = match request.ask {
            Ask::Retries {
                actor,
                filter,
                limit,
            } => match self.local_held(&actor, &filter.into(), limit) {
                Ok((owned, held)) => {
                    let mut bytes = 0usize;
                    let mut kept = Vec::new();
                    let mut truncated = false;
                    for event in held {
                        let size = encode("held event", &event).map_or(usize::MAX, |v| v.len());
                        if bytes.saturating_add(size) > REPLY_BYTES {
                            truncated = true;
                            break;
                        }
                        bytes += size;
                        kept.push(event);
                    }
                    Answer::Retries {
                        owned,
                        held: kept,
                        truncated,
                    }
                }
                // An actor this host does not know (yet): nothing held.
                Err(RegistryError::UnknownActor(_)) => Answer::Retries {
                    owned: Vec::new(),
                    held: Vec::new(),
                    truncated: false,
                },
                Err(err) => Answer::Failed {
                    error: err.to_string(),
                },
            },
            Ask::RetryNow { actor, id } => {
                let found = match id.parse::<HeldId>() {
                    Ok(held_id) => self.consumer_retry_now(&actor, &held_id).await,
                    Err(_) => false,
                };
                if found {
                    tracing::info!(actor = %actor, id = %id, "retry-now asked through another host");
                }
                Answer::RetryNow { found }
            }
            Ask::Unblock {
                actor,
                topic,
                partition,
                dead_letter,
                dead_at_ms,
                action,
            } => {
                let blocked = BlockedBy {
                    dead_letter,
                    dead_at_ms,
                };
                Answer::Unblock {
                    found: self
                        .consumer_unblock(&actor, &topic, partition, &blocked, action.into())
                        .await,
                }
            }
        };
        let reply = Reply {
            request: request.id.clone(),
            host: requests.host_id.clone(),
            name: requests.host_name.clone(),
            answer,
        };
        let sent = match encode("reply", &reply) {
            Ok(payload) => {
                let key = format!("reply/{}/{}", request.id, requests.host_id);
                self.parts()
                    .producer
                    .send(&requests.log.record(key, payload))
                    .await
                    .map_err(RegistryError::from)
            }
            Err(err) => Err(err),
        };
        if let Err(err) = sent {
            tracing::warn!(error = %err, request = %request.id, "cannot answer a request of another host");
        }
    }

    /// The actor's held events in this host's store and the actor's
    /// partitions this host owns.
    ///
    /// A copy of a partition another live host owns (per the cluster view)
    /// is left out before cutting to `limit`: stale copies must not take
    /// the places of events that are really held.
    fn local_held(
        &self,
        actor: &str,
        filter: &HeldFilter,
        limit: usize,
    ) -> Result<(Partitions, Vec<HeldEvent>)> {
        let owned = self.owned_partitions(actor);
        let owned_elsewhere: BTreeSet<(String, i32)> = match self.cluster.get() {
            Some(view) => view.owned_by_others(actor, self.parts().clock.now_ms()),
            None => BTreeSet::new(),
        };
        let held = self
            .retries(actor, filter, crate::dead_letters::MAX_HELD_LISTING)?
            .into_iter()
            .filter(|h| {
                let partition = (h.event.topic.clone(), h.event.partition);
                owned.contains(&partition) || !owned_elsewhere.contains(&partition)
            })
            .take(limit)
            .collect();
        Ok((owned, held))
    }

    /// Asks every other live host and collects the replies that come
    /// within [`REPLY_TIMEOUT`], stopping early once `done` says so.
    /// Returns the replies and the names of the hosts that did not answer.
    async fn ask_others(
        &self,
        ask: Ask,
        mut done: impl FnMut(&Reply) -> bool,
    ) -> Result<(Vec<Reply>, Vec<String>)> {
        let Some(requests) = self.owner_requests.get() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut expected: BTreeMap<String, String> = self
            .cluster()
            .await?
            .into_iter()
            .filter(|h| h.alive && !h.this_host && h.beat.id != requests.host_id)
            .map(|h| (h.beat.id, h.beat.name))
            .collect();
        if expected.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let id = format!("{:032x}", rand::random::<u128>());
        let (sender, mut receiver) = mpsc::unbounded_channel();
        requests.pending().insert(id.clone(), sender);
        // Forgotten however this ends (a client that hangs up drops it).
        struct Forget<'a>(&'a OwnerRequests, String);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.pending().remove(&self.1);
            }
        }
        let _forget = Forget(requests, id.clone());
        let request = Request {
            id: id.clone(),
            from: requests.host_id.clone(),
            at_ms: self.parts().clock.now_ms(),
            ask,
        };
        let collected = async {
            let payload = encode("request", &request)?;
            self.parts()
                .producer
                .send(&requests.log.record(format!("req/{id}"), payload))
                .await?;
            let mut replies = Vec::new();
            let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
            while !expected.is_empty() {
                let Ok(Some(reply)) = tokio::time::timeout_at(deadline, receiver.recv()).await
                else {
                    break;
                };
                if expected.remove(&reply.host).is_none() {
                    continue;
                }
                let finished = done(&reply);
                replies.push(reply);
                if finished {
                    break;
                }
            }
            Ok::<_, RegistryError>(replies)
        }
        .await;
        let replies = collected?;
        Ok((replies, expected.into_values().collect()))
    }

    /// The actor's held events across the cluster (this host's store and
    /// the answers of every other live host; module docs), at most `limit`.
    ///
    /// # Errors
    /// [`RegistryError::UnknownActor`]; [`RegistryError::Store`] when this
    /// host's store fails; [`RegistryError::Kafka`] when the request cannot
    /// be written.
    pub async fn held_listing(
        &self,
        actor: &str,
        filter: &HeldFilter,
        limit: usize,
    ) -> Result<HeldListing> {
        let limit = limit.clamp(1, 10_000);
        let (owned, held) = self.local_held(actor, filter, limit)?;
        let here = match self.owner_requests.get() {
            Some(requests) => requests.host_name.clone(),
            None => String::new(),
        };
        let mut answers = vec![(here, owned, held)];
        let ask = Ask::Retries {
            actor: actor.to_string(),
            filter: filter.into(),
            limit,
        };
        let (replies, unanswered) = self.ask_others(ask, |_| false).await?;
        let mut listing = HeldListing {
            unanswered,
            ..HeldListing::default()
        };
        for reply in replies {
            match reply.answer {
                Answer::Retries {
                    owned,
                    held,
                    truncated,
                } => {
                    if truncated {
                        listing.truncated.push(reply.name.clone());
                    }
                    answers.push((reply.name, owned, held));
                }
                Answer::Failed { error } => {
                    tracing::warn!(host = %reply.name, %error, "a host could not list its held events");
                    listing.unanswered.push(reply.name);
                }
                Answer::RetryNow { .. } | Answer::Unblock { .. } => {
                    listing.unanswered.push(reply.name);
                }
            }
        }
        listing.held = merge(answers, limit);
        Ok(listing)
    }

    /// Runs a retrying event now instead of at its due time, on whichever
    /// host's worker holds it: this host's first, else the one of another
    /// live host (through Kafka; module docs).
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] when no host holds it waiting for a
    /// retry (or the id does not parse); [`RegistryError::NoAnswer`] when
    /// it is not here and some live host did not answer in time;
    /// [`RegistryError::Kafka`] when the request cannot be written.
    pub async fn retry_now(&self, actor: &str, id: &str) -> Result<()> {
        let not_found = || RegistryError::NotFound {
            what: "retrying event",
            id: id.into(),
        };
        let held_id: HeldId = id.parse().map_err(|_| not_found())?;
        self.actor(actor)?;
        if self.consumer_retry_now(actor, &held_id).await {
            return Ok(());
        }
        let ask = Ask::RetryNow {
            actor: actor.to_string(),
            id: id.to_string(),
        };
        let (replies, unanswered) = self
            .ask_others(ask, |reply| {
                matches!(reply.answer, Answer::RetryNow { found: true })
            })
            .await?;
        if let Some(reply) = replies
            .iter()
            .find(|r| matches!(r.answer, Answer::RetryNow { found: true }))
        {
            tracing::info!(actor = %actor, id = %id, host = %reply.name, "retry-now run by another host");
            return Ok(());
        }
        if unanswered.is_empty() {
            Err(not_found())
        } else {
            Err(RegistryError::NoAnswer(format!(
                "{id} is not held on this host and these hosts did not answer within {} s: {}",
                REPLY_TIMEOUT.as_secs(),
                unanswered.join(", ")
            )))
        }
    }
}

impl Registry {
    /// Acts on the lane blocked by `dead` (`on_dead = "block"`) wherever
    /// its partition's worker runs: this host's first, else through the
    /// requests topic.
    ///
    /// # Errors
    /// [`RegistryError::Kafka`] when the request cannot be written.
    pub(crate) async fn unblock_anywhere(
        &self,
        dead: &DeadLetter,
        action: Unblock,
    ) -> Result<Blocking> {
        let (topic, partition) = (dead.event.topic.as_str(), dead.event.partition);
        let blocked = BlockedBy {
            dead_letter: dead.id.clone(),
            dead_at_ms: dead.dead_at_ms,
        };
        if self
            .consumer_unblock(&dead.actor, topic, partition, &blocked, action)
            .await
        {
            return Ok(Blocking::Found);
        }
        let ask = Ask::Unblock {
            actor: dead.actor.clone(),
            topic: topic.to_string(),
            partition,
            dead_letter: dead.id.clone(),
            dead_at_ms: dead.dead_at_ms,
            action: action.into(),
        };
        let found = |reply: &Reply| matches!(reply.answer, Answer::Unblock { found: true });
        let (replies, unanswered) = self.ask_others(ask, found).await?;
        Ok(if replies.iter().any(found) {
            Blocking::Found
        } else if unanswered.is_empty() {
            Blocking::Nowhere
        } else {
            Blocking::Unknown(unanswered)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use wactor_store::{AttemptOutcome, AttemptRecord, LaneKey, StoredEvent};

    fn held(topic: &str, partition: i32, offset: i64, attempts: usize) -> HeldEvent {
        HeldEvent {
            event: StoredEvent {
                topic: topic.into(),
                partition,
                offset,
                timestamp_ms: None,
                key: None,
                payload: None,
                headers: Vec::new(),
            },
            lane: LaneKey::Shared,
            attempts: (0..attempts)
                .map(|i| AttemptRecord {
                    attempt: u32::try_from(i + 1).unwrap(),
                    started_at_ms: 0,
                    duration_ms: 1.0,
                    version: 1,
                    outcome: AttemptOutcome::Retry,
                    error: String::new(),
                })
                .collect(),
            first_attempt_at_ms: None,
            next_attempt_at_ms: None,
            version_override: None,
            blocked_by: None,
        }
    }

    #[test]
    fn the_owner_of_a_partition_is_the_truth_for_it_and_unowned_copies_are_shown_once() {
        let a = (
            "a".to_string(),
            vec![("t".to_string(), 0)],
            vec![held("t", 0, 5, 1), held("t", 1, 7, 1), held("t", 2, 9, 1)],
        );
        // b owns partition 1 now (a's copy of 7 is stale: b finished it
        // and holds 8); nobody owns partition 2 (both kept a copy).
        let b = (
            "b".to_string(),
            vec![("t".to_string(), 1)],
            vec![held("t", 1, 8, 2), held("t", 2, 9, 3), held("t", 0, 4, 1)],
        );
        let merged = merge(vec![a, b], 100);
        let got: Vec<(i32, i64, &str, bool, usize)> = merged
            .iter()
            .map(|h| {
                (
                    h.held.event.partition,
                    h.held.event.offset,
                    h.host.as_str(),
                    h.owner,
                    h.held.attempts.len(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, 5, "a", true, 1),
                (1, 8, "b", true, 2),
                (2, 9, "b", false, 3),
            ]
        );
        assert_eq!(merge(vec![], 10), []);
        let one = merge(
            vec![(
                "a".into(),
                vec![("t".into(), 0)],
                vec![held("t", 0, 1, 1), held("t", 0, 2, 1)],
            )],
            1,
        );
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].held.event.offset, 1);
    }

    #[test]
    fn requests_and_replies_round_trip_through_the_value_format() {
        let request = Request {
            id: "r".into(),
            from: "h".into(),
            at_ms: 5,
            ask: Ask::Retries {
                actor: "x".into(),
                filter: WireFilter {
                    topic: Some("t".into()),
                    partition: None,
                    key: Some(vec![0, 1]),
                    only_retrying: true,
                },
                limit: 3,
            },
        };
        let bytes = encode("request", &request).unwrap();
        let back: Request = wactor_store::value::decode("request", &bytes).unwrap();
        assert!(matches!(back.ask, Ask::Retries { limit: 3, .. }));
        assert!(wactor_store::value::decode::<Reply>("reply", b"junk").is_err());
    }
}
