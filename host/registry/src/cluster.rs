//! The cluster view: which hosts serve, and which partitions of which
//! actors each owns, with their lag.
//!
//! Every host writes a heartbeat ([`HostBeat`]) every
//! [`HEARTBEAT_INTERVAL`] to the compacted topic `<registry topic>.hosts`
//! (partition 0, keyed by the host's id, a tombstone when it stops
//! cleanly), built from what its consumers report (the group's assignment
//! as this host sees it). Every host reads the topic into memory, so any
//! host's `GET /v1/cluster` and `wactor cluster` show the whole cluster.
//! A host whose last heartbeat is older than [`ALIVE_FOR`] is shown as
//! not alive (it was killed, or cannot reach the brokers); one silent for
//! [`FORGET_AFTER`] is forgotten.
//!
//! Why heartbeats in a topic rather than Kafka's DescribeGroups: they work
//! on every broker wactor supports (librdkafka's mock cluster answers no
//! group-description request), carry the lag and API address each host
//! knows, and cost one small record per host every few seconds.
//!
//! What it does not do: decide who owns a partition (Kafka's group
//! protocol does), or keep anything on disk.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use wactor_kafka::registry_log::{LogRecord, RegistryLog};

use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// How often a host writes its heartbeat: 5 s.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// A host is alive while its last heartbeat is younger than this: 20 s.
pub const ALIVE_FOR: Duration = Duration::from_secs(20);

/// How long a stopping host waits for its leave record (a tombstone in
/// `<registry topic>.hosts`) to be acknowledged: 5 s. With the brokers
/// unreachable the producer would wait its message timeout (5 minutes);
/// past this bound the host stops anyway and the others see it as not
/// alive once its last heartbeat is [`ALIVE_FOR`] old.
pub const LEAVE_WAIT: Duration = Duration::from_secs(5);

/// A host silent this long is forgotten: 1 hour.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// Most hosts kept in the view (the oldest heartbeats go first): a topic
/// full of forged keys cannot grow a host's memory without bound.
pub const MAX_HOSTS: usize = 1000;

/// Largest heartbeat kept, in bytes (its JSON): 64 KiB, room for a few
/// hundred partitions; a larger one is skipped.
pub const MAX_BEAT_BYTES: usize = 64 * 1024;

/// The topic of the heartbeats of the cluster whose registry topic is
/// `registry_topic`: `<registry_topic>.hosts`.
pub fn hosts_topic(registry_topic: &str) -> String {
    format!("{registry_topic}.hosts")
}

/// One host's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostBeat {
    /// Unique per run of a host (a restarted host is a new id).
    pub id: String,
    /// The host's name (`host_name` in host.toml, else its API address).
    pub name: String,
    /// Its admin API address.
    pub api: String,
    /// The wactor version it runs.
    pub version: String,
    /// When it started (ms since the Unix epoch).
    pub started_at_ms: i64,
    /// When it wrote this heartbeat (its clock; ms since the Unix epoch).
    pub heartbeat_at_ms: i64,
    /// The actors it runs and the partitions it owns.
    pub actors: Vec<ActorBeat>,
}

/// What one host runs of one actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorBeat {
    /// The actor.
    pub actor: String,
    /// The version its consumer runs here.
    pub running_version: Option<u64>,
    /// `running`, `paused`, `stopped` or `failed`, here.
    pub state: String,
    /// The partitions this host owns.
    pub partitions: Vec<PartitionBeat>,
    /// Events of the actor this host handled to `done` since it started
    /// (0 in heartbeats of hosts from before the field).
    #[serde(default)]
    pub handled: u64,
}

/// One owned partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionBeat {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Records behind the end (-1 unknown).
    pub lag: i64,
}

/// A host as the cluster view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    /// Its last heartbeat.
    #[serde(flatten)]
    pub beat: HostBeat,
    /// Whether that heartbeat is younger than [`ALIVE_FOR`] (by this
    /// host's clock).
    pub alive: bool,
    /// Whether it is the host that answers.
    pub this_host: bool,
}

/// Who this host is in the view.
#[derive(Debug, Clone)]
pub struct HostIdentity {
    /// Its name.
    pub name: String,
    /// Its API address.
    pub api: String,
}

/// This host's link to the heartbeat topic.
pub(crate) struct ClusterView {
    log: RegistryLog,
    id: String,
    identity: HostIdentity,
    started_at_ms: i64,
    hosts: RwLock<BTreeMap<String, HostBeat>>,
    stop: Arc<AtomicBool>,
    /// Set when this host left: no heartbeat is written after.
    left: AtomicBool,
}

impl Drop for ClusterView {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl ClusterView {
    /// The partitions of `actor` that live hosts other than this one say
    /// they own (their last heartbeats, alive at `now_ms`).
    pub(crate) fn owned_by_others(
        &self,
        actor: &str,
        now_ms: i64,
    ) -> std::collections::BTreeSet<(String, i32)> {
        let hosts = match self.hosts.read() {
            Ok(hosts) => hosts.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let alive_since = now_ms - ALIVE_FOR.as_millis() as i64;
        hosts
            .into_values()
            .filter(|beat| beat.id != self.id && beat.heartbeat_at_ms >= alive_since)
            .flat_map(|beat| beat.actors)
            .filter(|a| a.actor == actor)
            .flat_map(|a| a.partitions)
            .map(|p| (p.topic, p.partition))
            .collect()
    }

    /// Whether a host with this id has a heartbeat in the view (alive or
    /// not yet forgotten).
    pub(crate) fn knows(&self, id: &str) -> bool {
        match self.hosts.read() {
            Ok(hosts) => hosts.contains_key(id),
            Err(poisoned) => poisoned.into_inner().contains_key(id),
        }
    }

    /// Applies one heartbeat record read at `now_ms`. A beat's time is
    /// taken as no later than when it was read (a beat dated in the future,
    /// by a wrong clock or a forger, cannot stay alive); beats larger than
    /// [`MAX_BEAT_BYTES`] are skipped; this host's own entry is never the
    /// one evicted for room.
    fn apply(&self, record: LogRecord, now_ms: i64) {
        let Some(id) = record.key.and_then(|k| String::from_utf8(k).ok()) else {
            return;
        };
        let mut hosts = match self.hosts.write() {
            Ok(hosts) => hosts,
            Err(poisoned) => poisoned.into_inner(),
        };
        match record.payload {
            None => {
                hosts.remove(&id);
            }
            Some(payload) if payload.len() > MAX_BEAT_BYTES => {
                tracing::debug!(%id, size = payload.len(), "skipping an oversized heartbeat");
            }
            Some(payload) => match serde_json::from_slice::<HostBeat>(&payload) {
                Ok(mut beat) if beat.id == id => {
                    beat.heartbeat_at_ms = beat.heartbeat_at_ms.min(now_ms);
                    hosts.insert(id, beat);
                }
                _ => tracing::debug!(%id, "skipping a heartbeat that is not one"),
            },
        }
        let forget = now_ms - FORGET_AFTER.as_millis() as i64;
        let me = self.id.clone();
        hosts.retain(|id, beat| *id == me || beat.heartbeat_at_ms >= forget);
        while hosts.len() > MAX_HOSTS {
            let oldest = hosts
                .iter()
                .filter(|(id, _)| **id != me)
                .min_by_key(|(_, b)| b.heartbeat_at_ms)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => hosts.remove(&id),
                None => break,
            };
        }
    }
}

impl Registry {
    /// Starts the cluster view: reads the heartbeat topic next to the
    /// registry topic `registry_topic` into memory, and starts answering
    /// the other hosts' requests to partition owners (`owner_requests`).
    /// Call
    /// [`heartbeat`](Self::heartbeat) every [`HEARTBEAT_INTERVAL`].
    ///
    /// # Errors
    /// [`RegistryError::Kafka`] when the topic is refused (not compacted)
    /// or cannot be read.
    pub async fn attach_cluster_view(
        self: &Arc<Self>,
        registry_topic: &str,
        identity: HostIdentity,
    ) -> Result<()> {
        let log = RegistryLog::open(&self.parts().kafka, &hosts_topic(registry_topic)).await?;
        let (sender, mut receiver) = mpsc::channel::<LogRecord>(64);
        let stop = Arc::new(AtomicBool::new(false));
        log.tail(
            0,
            move |record| sender.blocking_send(record).is_ok(),
            stop.clone(),
        )?;
        let view = Arc::new(ClusterView {
            log,
            id: format!("{:032x}", rand::random::<u128>()),
            identity,
            started_at_ms: self.parts().clock.now_ms(),
            hosts: RwLock::default(),
            stop,
            left: AtomicBool::new(false),
        });
        if self.cluster.set(view.clone()).is_err() {
            return Err(RegistryError::Internal(
                "the cluster view is attached already".into(),
            ));
        }
        self.attach_owner_requests(registry_topic, view.id.clone(), view.identity.name.clone())
            .await?;
        let clock = self.parts().clock.clone();
        let weak = Arc::downgrade(&view);
        drop(view);
        tokio::spawn(async move {
            while let Some(record) = receiver.recv().await {
                let Some(view) = weak.upgrade() else {
                    return;
                };
                view.apply(record, clock.now_ms());
            }
        });
        Ok(())
    }

    /// Writes this host's heartbeat (what it runs and owns now).
    ///
    /// # Errors
    /// [`RegistryError::Kafka`] when it cannot be written.
    pub async fn heartbeat(&self) -> Result<()> {
        let Some(view) = self.cluster.get() else {
            return Ok(());
        };
        if view.left.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let actors = self
            .actors()
            .await?
            .into_iter()
            .filter(|a| a.running_version.is_some() || !a.partitions.is_empty())
            .map(|a| ActorBeat {
                actor: a.name,
                running_version: a.running_version,
                state: a.state,
                handled: a.handled,
                partitions: a
                    .partitions
                    .into_iter()
                    .map(|p| PartitionBeat {
                        topic: p.topic,
                        partition: p.partition,
                        lag: p.lag,
                    })
                    .collect(),
            })
            .collect();
        let beat = HostBeat {
            id: view.id.clone(),
            name: view.identity.name.clone(),
            api: view.identity.api.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at_ms: view.started_at_ms,
            heartbeat_at_ms: self.parts().clock.now_ms(),
            actors,
        };
        let payload = serde_json::to_vec(&beat)
            .map_err(|e| RegistryError::Internal(format!("cannot encode a heartbeat: {e}")))?;
        self.parts()
            .producer
            .send(&view.log.record(view.id.clone(), payload))
            .await?;
        Ok(())
    }

    /// Removes this host from the view of every host (a clean stop); waits
    /// at most [`LEAVE_WAIT`] for the brokers.
    pub async fn leave_cluster_view(&self) {
        let Some(view) = self.cluster.get() else {
            return;
        };
        view.left.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut record = view.log.record(view.id.clone(), Vec::new());
        record.payload = None;
        match tokio::time::timeout(LEAVE_WAIT, self.parts().producer.send(&record)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot remove this host from the cluster view")
            }
            Err(_) => tracing::warn!(
                "the brokers did not take this host's leave record within {LEAVE_WAIT:?}; \
                 the other hosts see it as not alive once its heartbeat is {ALIVE_FOR:?} old"
            ),
        }
    }

    /// Events handled to `done` per actor over the cluster: this host's
    /// count now plus the count in the latest heartbeat of every other
    /// live host (each since that host started; hosts that stopped are not
    /// counted). `None` when the host has no cluster view: then only this
    /// host's count is known.
    pub async fn handled_in_cluster(&self) -> Option<std::collections::BTreeMap<String, u64>> {
        self.cluster.get()?;
        let mut totals = self.parts().metrics.handled_by_actor();
        let hosts = self.cluster().await.ok()?;
        for host in hosts.iter().filter(|h| h.alive && !h.this_host) {
            for actor in &host.beat.actors {
                let total = totals.entry(actor.actor.clone()).or_insert(0);
                *total = total.saturating_add(actor.handled);
            }
        }
        Some(totals)
    }

    /// Every host of the cluster (alive first, then by name), with whether
    /// it is alive; empty when the host has no cluster view (the registry
    /// is not shared).
    pub async fn cluster(&self) -> Result<Vec<HostStatus>> {
        let Some(view) = self.cluster.get() else {
            return Ok(Vec::new());
        };
        let now = self.parts().clock.now_ms();
        let hosts = match view.hosts.read() {
            Ok(hosts) => hosts.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let alive_since = now - ALIVE_FOR.as_millis() as i64;
        let mut out: Vec<HostStatus> = hosts
            .into_values()
            .map(|beat| HostStatus {
                alive: beat.heartbeat_at_ms >= alive_since,
                this_host: beat.id == view.id,
                beat,
            })
            .collect();
        out.sort_by(|a, b| {
            (!a.alive, &a.beat.name, a.beat.started_at_ms).cmp(&(
                !b.alive,
                &b.beat.name,
                b.beat.started_at_ms,
            ))
        });
        Ok(out)
    }
}
