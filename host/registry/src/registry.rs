//! Actors and their versions, live: deploy, activate (hot swap), roll
//! back, pause, resume, remove, and what is running.
//!
//! The store keeps the durable truth (immutable versions, the active one,
//! the history); this module keeps the running side in step with it: one
//! [`LoadedVersions`] and one [`ActorConsumer`] per running actor.
//!
//! Versions are unloaded as soon as nothing needs them: an actor keeps its
//! active and previous versions loaded, and versions pinned by a re-drive;
//! any other is dropped when its last call ends (see [`crate::versions`]).
//! `wactor_loaded_versions{actor}` counts them.
//!
//! A swap is atomic per actor: the slot's pointer changes, calls already
//! running keep the version they started with, the next call takes the new
//! one, and nothing is restarted; only a change of topics, group or
//! ordering restarts the actor's consumer (drain, commit, subscribe again).
//! Lifecycle operations are serialized per host by one async lock; event
//! handling never takes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;
use wactor_kafka::{
    ActiveVersion, ActorConsumer, ActorContext, Clock, ConsumerStatus, KafkaSettings, Producer,
    VersionSource,
};
use wactor_manifest::ActorManifest;
use wactor_metrics::Metrics;
use wactor_runtime::{sha256_hex, CacheOutcome, Runtime};
use wactor_store::{ActivationRecord, ActorRecord, Store, VersionRecord};

use crate::error::{RegistryError, Result};
use crate::shared::{Change, Outcome};
use crate::versions::{LoadedVersions, VersionLoader};

/// The host's shared parts the registry runs actors with.
#[derive(Clone)]
pub struct HostParts {
    /// The store.
    pub store: Store,
    /// The Wasm runtime.
    pub runtime: Arc<Runtime>,
    /// The Kafka producer.
    pub producer: Producer,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Kafka settings.
    pub kafka: KafkaSettings,
    /// Wall clock (retry times, record times).
    pub clock: Arc<dyn Clock>,
}

/// An upload of a new version.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The manifest's TOML text.
    pub manifest_toml: &'a str,
    /// The component bytes.
    pub component: &'a [u8],
    /// Who uploads (the token's name, or the CLI user).
    pub uploaded_by: &'a str,
    /// Free text kept with the version.
    pub notes: &'a str,
    /// Activate it at once (the default of `wactor deploy`).
    pub activate: bool,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    /// The version stored (or the existing identical one).
    pub version: VersionRecord,
    /// False when an identical version (same sha256 and manifest) existed.
    pub created: bool,
    /// Whether it is now the active version.
    pub activated: bool,
    /// Time to validate and compile (or load from cache), ms.
    pub compile_ms: f64,
    /// Whether the compiled artifact came from the cache.
    pub cache_hit: bool,
    /// Time from the start of the request to the swap, ms.
    pub total_ms: f64,
}

/// One assigned partition of a running actor.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionSummary {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Messages behind the high watermark (-1 unknown).
    pub lag: i64,
    /// `running`, or `failed` while its worker, which ended unexpectedly,
    /// waits for its restart.
    pub state: String,
    /// Why its worker ended, while `failed`.
    pub error: Option<String>,
    /// Restarts of its worker since this host got the partition.
    pub restarts: u32,
}

/// An actor as `wactor actors` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ActorSummary {
    /// Name.
    pub name: String,
    /// The active version.
    pub active_version: Option<u64>,
    /// The version this host's consumer hands new events to (`None`: the
    /// actor does not run here).
    pub running_version: Option<u64>,
    /// `running`, `paused`, `stopped` (no active version) or `failed` (the
    /// consumer did not start, or a partition worker failed: see
    /// `partitions`).
    pub state: String,
    /// Topics read.
    pub topics: Vec<String>,
    /// Consumer group.
    pub group: String,
    /// Partitions this host owns, with lag.
    pub partitions: Vec<PartitionSummary>,
    /// Total lag of this host's partitions.
    pub lag: i64,
    /// Events in the dead-letter set.
    pub dead_letters: usize,
    /// Dead letters removed by retention (age and count), ever.
    pub dead_letters_evicted: u64,
    /// Events held for retry (or behind one) on this host.
    pub held: usize,
    /// Events of this actor handled to `done` on this host since it
    /// started ([`Metrics::handled_by_actor`](wactor_metrics::Metrics::handled_by_actor)).
    pub handled: u64,
    /// Last change, ms since the epoch.
    pub updated_at_ms: i64,
}

/// The partitions of a running consumer as the views show them: lag, and
/// failed workers waiting for their restart.
fn partition_summaries(status: &ConsumerStatus) -> Vec<PartitionSummary> {
    let failures = status.failures();
    status
        .partitions()
        .into_iter()
        .map(|(topic, partition, lag)| {
            let failure = failures
                .iter()
                .find(|(t, p, _)| *t == topic && *p == partition)
                .map(|(_, _, f)| f);
            PartitionSummary {
                state: if failure.is_some() {
                    "failed"
                } else {
                    "running"
                }
                .to_string(),
                error: failure.map(|f| f.error.clone()),
                restarts: failure.map_or(0, |f| f.restarts),
                topic,
                partition,
                lag,
            }
        })
        .collect()
}

/// A version as `wactor versions` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VersionSummary {
    /// The version.
    #[serde(flatten)]
    pub record: VersionRecord,
    /// Whether it is the active one.
    pub active: bool,
}

/// An actor started by [`Registry::start_all`].
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    /// The actor.
    pub actor: String,
    /// Its active version.
    pub version: u64,
    /// Whether the compiled artifact came from the on-disk cache (no
    /// compilation).
    pub cache_hit: bool,
    /// Why it did not start, if it did not.
    pub error: Option<String>,
}

/// How often the host retries the start of actors whose consumer failed to
/// start ([`Registry::restart_failed`]): 5 s.
pub const RESTART_FAILED_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// One actor running on this host.
struct Live {
    slot: Arc<LoadedVersions>,
    manifest: Arc<ActorManifest>,
    /// `None` while paused, or when the consumer failed to start.
    consumer: Option<ActorConsumer>,
    /// Why the consumer is not running, when it failed.
    failure: Option<String>,
}

/// What the read-only views see of an actor running on this host. Kept
/// beside the lifecycle lock so that listing actors never waits for a
/// deploy or a drain.
#[derive(Clone, Default)]
struct View {
    /// Assigned partitions and lag, while a consumer runs.
    status: Option<Arc<ConsumerStatus>>,
    /// Why the consumer is not running, when it failed to start.
    failure: Option<String>,
    /// The actor's versions.
    slot: Option<Arc<LoadedVersions>>,
}

/// The control plane of one host.
pub struct Registry {
    parts: HostParts,
    /// Running actors; held across lifecycle operations (they can wait for
    /// a drain), never by event handling.
    live: Mutex<BTreeMap<String, Live>>,
    /// Set by [`shutdown`](Registry::shutdown): failed starts are no longer
    /// retried.
    shut_down: std::sync::atomic::AtomicBool,
    /// Snapshots of `live` for the views.
    views: std::sync::RwLock<BTreeMap<String, View>>,
    /// `wactor_loaded_versions{actor}`: versions of each actor in memory.
    loaded_versions: Option<prometheus::IntGaugeVec>,
    /// Dead letters a re-drive is sending right now: a second re-drive of
    /// the same letter skips it rather than run the event twice.
    /// Shared with the tasks that settle a re-drive's windows, which
    /// release each claim once its letter is settled.
    pub(crate) redriving: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The cluster's registry log, once attached
    /// ([`attach_shared`](Self::attach_shared)); without it changes apply
    /// to this host only.
    pub(crate) shared: std::sync::OnceLock<Arc<crate::shared::SharedLog>>,
    /// Serializes changes applied without a registry log (the log's order
    /// serializes them otherwise).
    pub(crate) apply_lock: Mutex<()>,
    /// The cluster view, once attached.
    pub(crate) cluster: std::sync::OnceLock<Arc<crate::cluster::ClusterView>>,
    /// The requests to partition owners, once the cluster view is attached.
    pub(crate) owner_requests: std::sync::OnceLock<Arc<crate::owner_requests::OwnerRequests>>,
    /// The groups whose shared dead letters this host reads.
    pub(crate) followed: Arc<crate::dead_letter_sharing::Followed>,
    /// The replays this host runs.
    pub(crate) replays: crate::replays::Replays,
    /// The actors' own log lines of the calls this host ran.
    actor_logs: wactor_kafka::actor_logs::ActorLogs,
}

/// Name of the gauge of loaded versions per actor.
pub const LOADED_VERSIONS_METRIC: &str = "wactor_loaded_versions";

impl Registry {
    /// A registry over `parts`, running nothing yet; call
    /// [`start_all`](Self::start_all) to run the actors in the store.
    pub fn new(parts: HostParts) -> Self {
        let loaded_versions = loaded_versions_gauge(&parts.metrics);
        Registry {
            parts,
            live: Mutex::new(BTreeMap::new()),
            views: std::sync::RwLock::new(BTreeMap::new()),
            loaded_versions,
            redriving: Arc::default(),
            shared: std::sync::OnceLock::new(),
            apply_lock: Mutex::new(()),
            followed: Arc::default(),
            replays: crate::replays::Replays::default(),
            cluster: std::sync::OnceLock::new(),
            owner_requests: std::sync::OnceLock::new(),
            shut_down: std::sync::atomic::AtomicBool::new(false),
            actor_logs: wactor_kafka::actor_logs::ActorLogs::default(),
        }
    }

    /// The actors' own log lines of the calls this host ran (`wactor
    /// logs`).
    pub fn actor_logs(&self) -> &wactor_kafka::actor_logs::ActorLogs {
        &self.actor_logs
    }

    fn set_loaded_gauge(&self, actor: &str, slot: &LoadedVersions) {
        if let Some(gauge) = &self.loaded_versions {
            gauge
                .with_label_values(&[actor])
                .set(count_i64(slot.loaded_count()));
        }
    }

    /// The version numbers of `actor` loaded on this host now (active,
    /// previous, pinned for a re-drive, or still running a call), ascending;
    /// empty when the actor does not run here.
    pub fn loaded_versions(&self, actor: &str) -> Vec<u64> {
        self.views_snapshot()
            .get(actor)
            .and_then(|v| v.slot.as_ref().map(|slot| slot.loaded()))
            .unwrap_or_default()
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The host's parts.
    pub fn parts(&self) -> &HostParts {
        &self.parts
    }

    /// Starts every actor of the store that has an active version and is
    /// not paused. An actor that cannot start is logged, reported and
    /// skipped: the host stays up for the others.
    pub async fn start_all(&self) -> Result<Vec<Started>> {
        let actors = self.parts.store.registry().actors()?;
        let mut started = Vec::new();
        for actor in actors {
            let Some(version) = actor.active_version else {
                continue;
            };
            let result = self.run_version(&actor.name, version, actor.paused).await;
            let (cache_hit, error) = match result {
                Ok(cache_hit) => {
                    tracing::info!(actor = %actor.name, version, cache_hit, paused = actor.paused, "actor started");
                    (cache_hit, None)
                }
                Err(err) => {
                    tracing::error!(actor = %actor.name, version, error = %err, "cannot start actor");
                    (false, Some(err.to_string()))
                }
            };
            started.push(Started {
                actor: actor.name,
                version,
                cache_hit,
                error,
            });
        }
        Ok(started)
    }

    /// Validates and stores a new version, and activates it if asked. An
    /// identical upload (same component and manifest) is not stored twice.
    /// Nothing is stored when validation fails.
    pub async fn deploy(&self, upload: Upload<'_>) -> Result<Deployed> {
        self.deploy_with(upload, false).await
    }

    /// [`deploy`](Self::deploy) as a host's actors directory does it at
    /// start: the version is activated (when `upload.activate`) only if it
    /// is new or the actor has no active version, so that a host started
    /// with an older directory does not undo a later deploy or roll back
    /// made through the API (on every host of a cluster).
    pub async fn deploy_if_new(&self, upload: Upload<'_>) -> Result<Deployed> {
        self.deploy_with(upload, true).await
    }

    async fn deploy_with(&self, upload: Upload<'_>, only_if_new: bool) -> Result<Deployed> {
        let started = Instant::now();
        let manifest = ActorManifest::parse(upload.manifest_toml)?;
        let sha256 = sha256_hex(upload.component);
        // Validation compiles the component (on a blocking thread: it can
        // take a while), which also warms the artifact cache.
        let (cache_hit, compile_ms) = {
            let runtime = self.parts.runtime.clone();
            let bytes = upload.component.to_vec();
            let settings = manifest.actor_settings(0);
            let loaded = tokio::task::spawn_blocking(move || runtime.load(&bytes, settings))
                .await
                .map_err(|e| RegistryError::Internal(format!("compile task failed: {e}")))??;
            let report = loaded.load_report();
            (
                report.cache == CacheOutcome::Hit,
                report.duration.as_secs_f64() * 1000.0,
            )
        };
        let outcome = self
            .submit(
                Change::Deploy {
                    actor: manifest.name.clone(),
                    manifest_toml: upload.manifest_toml.to_string(),
                    sha256: sha256.clone(),
                    size: upload.component.len() as u64,
                    notes: upload.notes.to_string(),
                    activate: upload.activate,
                    only_if_new,
                },
                upload.uploaded_by,
                Some((&sha256, upload.component)),
            )
            .await?;
        let Outcome::Deployed {
            version,
            created,
            activated,
        } = outcome
        else {
            return Err(RegistryError::Internal(
                "a deploy applied as something else".into(),
            ));
        };
        tracing::info!(
            actor = %manifest.name,
            version = version.version,
            created,
            activated,
            "version deployed"
        );
        Ok(Deployed {
            version,
            created,
            activated,
            compile_ms,
            cache_hit,
            total_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// Makes `version` the active version of `actor` on every host: from
    /// the next event on, it handles the actor's events. The version is
    /// loaded here first, so one that cannot load changes nothing.
    pub async fn activate(
        &self,
        actor: &str,
        version: u64,
        by: &str,
        reason: &str,
    ) -> Result<ActivationRecord> {
        self.activate_expecting(actor, version, by, reason, None)
            .await
    }

    /// [`activate`](Self::activate), refused as
    /// [`RegistryError::Stale`] unless `expect_active` is still the active
    /// version when the change applies.
    async fn activate_expecting(
        &self,
        actor: &str,
        version: u64,
        by: &str,
        reason: &str,
        expect_active: Option<u64>,
    ) -> Result<ActivationRecord> {
        let registry = self.parts.store.registry();
        if registry.actor(actor)?.is_none() {
            return Err(RegistryError::UnknownActor(actor.into()));
        }
        if registry.version(actor, version)?.is_none() {
            return Err(RegistryError::UnknownVersion {
                actor: actor.into(),
                version,
            });
        }
        {
            let live = self.live.lock().await;
            let loaded = self.load_version(&live, actor, version).await?;
            if let Some(entry) = live.get(actor) {
                // Kept loaded, so that the swap finds it.
                entry.slot.pin(loaded);
            }
        }
        let outcome = self
            .submit(
                Change::Activate {
                    actor: actor.to_string(),
                    version,
                    reason: reason.to_string(),
                    expect_active,
                },
                by,
                None,
            )
            .await?;
        let Outcome::Activated(activation) = outcome else {
            return Err(RegistryError::Internal(
                "an activation applied as something else".into(),
            ));
        };
        tracing::info!(actor, version, reason, by, "version activated");
        Ok(activation)
    }

    /// Re-activates the version that was active before the current one, or
    /// version `to`.
    pub async fn rollback(
        &self,
        actor: &str,
        to: Option<u64>,
        by: &str,
    ) -> Result<ActivationRecord> {
        let registry = self.parts.store.registry();
        let record = registry
            .actor(actor)?
            .ok_or_else(|| RegistryError::UnknownActor(actor.into()))?;
        let target = match to {
            Some(version) => version,
            None => registry
                .previous_active(actor)?
                .ok_or_else(|| RegistryError::NothingToRollBack(actor.into()))?,
        };
        self.activate_expecting(actor, target, by, "rollback", record.active_version)
            .await
    }

    /// Pauses an actor: its consumer drains and leaves the group; events
    /// wait in Kafka and retries hold until [`resume`](Self::resume).
    pub async fn pause(&self, actor: &str) -> Result<ActorRecord> {
        let record = self
            .change_actor(Change::Pause {
                actor: actor.into(),
            })
            .await?;
        tracing::info!(actor, "actor paused");
        Ok(record)
    }

    /// Submits a pause, resume or remove and returns the actor's record.
    async fn change_actor(&self, change: Change) -> Result<ActorRecord> {
        match self.submit(change, "api", None).await? {
            Outcome::Actor(record) => Ok(record),
            _ => Err(RegistryError::Internal(
                "an actor change applied as something else".into(),
            )),
        }
    }

    /// Starts again the consumer of every actor whose start failed (the
    /// brokers were unreachable, a topic check failed) and that is neither
    /// paused nor removed since; returns how many started. A start that
    /// fails again keeps its new reason (shown as `failed` in `wactor
    /// actors`). The host calls this every
    /// [`RESTART_FAILED_INTERVAL`]; without it an actor that could not
    /// start once, say because the host came up during a broker outage,
    /// would never consume until it was deployed again.
    pub async fn restart_failed(&self) -> usize {
        let mut live = self.live.lock().await;
        if self.shut_down.load(std::sync::atomic::Ordering::SeqCst) {
            return 0;
        }
        let failed: Vec<String> = live
            .iter()
            .filter(|(_, entry)| entry.consumer.is_none() && entry.failure.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        let mut started = 0;
        for actor in failed {
            let paused = match self.parts.store.registry().actor(&actor) {
                Ok(Some(record)) => record.paused,
                Ok(None) => true,
                Err(err) => {
                    tracing::warn!(actor, error = %err, "cannot read the actor's record");
                    continue;
                }
            };
            let Some(entry) = live.get_mut(&actor) else {
                continue;
            };
            if paused {
                continue;
            }
            let manifest = entry.manifest.clone();
            match self.start_consumer(&manifest, entry.slot.clone()).await {
                Ok(consumer) => {
                    tracing::info!(actor, "actor's consumer started after an earlier failure");
                    entry.consumer = Some(consumer);
                    entry.failure = None;
                    started += 1;
                }
                Err(err) => {
                    tracing::warn!(actor, error = %err, "cannot start the actor's consumer yet");
                    entry.failure = Some(err.to_string());
                }
            }
            self.publish(&actor, Some(entry));
        }
        drop(live);
        // Actors not running what the store says (a version that could not
        // load when its change applied).
        let views = self.views_snapshot();
        let behind: Vec<String> = match self.parts.store.registry().actors() {
            Ok(actors) => actors
                .into_iter()
                .filter(|a| {
                    a.active_version.is_some_and(|active| {
                        views
                            .get(&a.name)
                            .and_then(|v| v.slot.as_ref().and_then(|s| s.current()))
                            .map(|v| v.version)
                            != Some(active)
                    })
                })
                .map(|a| a.name)
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the actors");
                Vec::new()
            }
        };
        for actor in behind {
            self.reconcile(&actor).await;
        }
        started
    }

    /// Resumes a paused actor.
    pub async fn resume(&self, actor: &str) -> Result<ActorRecord> {
        let record = self
            .change_actor(Change::Resume {
                actor: actor.into(),
            })
            .await?;
        tracing::info!(actor, "actor resumed");
        Ok(record)
    }

    /// Stops and removes an actor. Its versions, state, dead letters and
    /// consumer group offsets stay, so a later deploy of the same name
    /// continues where it left off. Its replays started on this host are
    /// cancelled (records already fed wait in `<group>.replay`).
    pub async fn remove(&self, actor: &str) -> Result<ActorRecord> {
        let removed = self
            .change_actor(Change::Remove {
                actor: actor.into(),
            })
            .await?;
        for run in self.replays.of_actor(actor) {
            run.cancel();
        }
        tracing::info!(actor, "actor removed");
        Ok(removed)
    }

    /// Makes what runs here match the store's record of `actor`: stops
    /// and forgets a removed (or never activated) actor; loads and swaps
    /// in its active version when another runs; stops the consumer of a
    /// paused actor and starts that of a running one. Applied after every
    /// registry change, here and on every host of the cluster. A version
    /// that cannot load is logged and tried again by
    /// [`restart_failed`](Self::restart_failed).
    pub(crate) async fn reconcile(&self, actor: &str) {
        if self.shut_down.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let record = match self.parts.store.registry().actor(actor) {
            Ok(record) => record,
            Err(err) => {
                tracing::error!(actor, error = %err, "cannot read the actor's record");
                return;
            }
        };
        let mut live = self.live.lock().await;
        let Some((record, active)) = record.and_then(|r| r.active_version.map(|v| (r, v))) else {
            if let Some(mut entry) = live.remove(actor) {
                self.publish(actor, None);
                if let Some(consumer) = entry.consumer.take() {
                    consumer.stop().await;
                }
            }
            return;
        };
        let running = live
            .get(actor)
            .and_then(|e| e.slot.current())
            .map(|v| v.version);
        if running != Some(active) {
            match self.load_version(&live, actor, active).await {
                Ok(loaded) => self.swap(&mut live, actor, loaded, record.paused).await,
                Err(err) => {
                    tracing::error!(actor, version = active, error = %err, "cannot load the active version");
                    return;
                }
            }
        }
        let Some(entry) = live.get_mut(actor) else {
            return;
        };
        if record.paused {
            if let Some(consumer) = entry.consumer.take() {
                self.publish(actor, Some(entry));
                consumer.stop().await;
            }
        } else if entry.consumer.is_none() {
            self.start_entry_consumer(actor, entry).await;
            self.publish(actor, Some(entry));
        }
    }

    /// Starts `entry`'s consumer when it has none; a start that fails is
    /// logged and kept as the entry's failure (retried by
    /// [`restart_failed`](Self::restart_failed)).
    async fn start_entry_consumer(&self, actor: &str, entry: &mut Live) {
        if entry.consumer.is_some() {
            return;
        }
        let manifest = entry.manifest.clone();
        match self.start_consumer(&manifest, entry.slot.clone()).await {
            Ok(consumer) => {
                entry.consumer = Some(consumer);
                entry.failure = None;
            }
            Err(err) => {
                tracing::error!(actor, error = %err, "cannot start the actor's consumer");
                entry.failure = Some(err.to_string());
            }
        }
    }

    /// Every actor, with what this host knows of it.
    pub async fn actors(&self) -> Result<Vec<ActorSummary>> {
        let records = self.parts.store.registry().actors()?;
        let dead = self.parts.store.dead_letters().count_by_actor()?;
        let views = self.views_snapshot();
        let handled = self.parts.metrics.handled_by_actor();
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let manifest = ActorManifest::parse(&record.manifest_toml).ok();
            let view = views.get(&record.name);
            let (partitions, lag) = match view.and_then(|v| v.status.as_ref()) {
                Some(status) => (partition_summaries(status), status.total_lag()),
                None => (Vec::new(), 0),
            };
            let worker_failed = partitions.iter().any(|p| p.state == "failed");
            let state = if record.paused {
                "paused"
            } else if record.active_version.is_none() {
                "stopped"
            } else if view.is_some_and(|v| v.status.is_some()) && !worker_failed {
                "running"
            } else {
                "failed"
            };
            let held = self
                .parts
                .store
                .held(&record.name)
                .map(|h| h.len())
                .unwrap_or(0);
            out.push(ActorSummary {
                active_version: record.active_version,
                running_version: view
                    .and_then(|v| v.slot.as_ref().and_then(|s| s.current()))
                    .map(|v| v.version),
                state: state.to_string(),
                topics: manifest
                    .as_ref()
                    .map(|m| m.topics.clone())
                    .unwrap_or_default(),
                group: manifest.as_ref().map(|m| m.group()).unwrap_or_default(),
                partitions,
                lag,
                dead_letters: dead.get(&record.name).copied().unwrap_or(0),
                dead_letters_evicted: self
                    .parts
                    .store
                    .dead_letters()
                    .evicted(&record.name)
                    .map(|e| e.total())
                    .unwrap_or(0),
                held,
                handled: handled.get(&record.name).copied().unwrap_or(0),
                updated_at_ms: record.updated_at_ms,
                name: record.name,
            });
        }
        Ok(out)
    }

    /// One actor's record.
    pub fn actor(&self, actor: &str) -> Result<ActorRecord> {
        self.parts
            .store
            .registry()
            .actor(actor)?
            .ok_or_else(|| RegistryError::UnknownActor(actor.into()))
    }

    /// Why an actor's consumer is not running, if it failed to start.
    pub fn failure(&self, actor: &str) -> Option<String> {
        self.views_snapshot()
            .get(actor)
            .and_then(|v| v.failure.clone())
    }

    /// The actor's partitions this host's consumer owns now.
    pub(crate) fn owned_partitions(&self, actor: &str) -> Vec<(String, i32)> {
        self.views_snapshot()
            .get(actor)
            .and_then(|v| v.status.as_ref())
            .map(|status| {
                status
                    .partitions()
                    .into_iter()
                    .map(|(topic, partition, _)| (topic, partition))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The lag of every actor whose consumer runs on this host, summed over
    /// the partitions it has now (unknown counts as 0), as [`actors`]
    /// shows it.
    ///
    /// [`actors`]: Self::actors
    pub fn lag_by_actor(&self) -> BTreeMap<String, i64> {
        self.views_snapshot()
            .into_iter()
            .filter_map(|(name, view)| view.status.map(|status| (name, status.total_lag())))
            .collect()
    }

    fn views_snapshot(&self) -> BTreeMap<String, View> {
        match self.views.read() {
            Ok(views) => views.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Publishes what the views should see of `actor` (`None`: gone).
    fn publish(&self, actor: &str, entry: Option<&Live>) {
        let mut views = match self.views.write() {
            Ok(views) => views,
            Err(poisoned) => poisoned.into_inner(),
        };
        match entry {
            Some(entry) => {
                self.set_loaded_gauge(actor, &entry.slot);
                views.insert(
                    actor.to_string(),
                    View {
                        status: entry.consumer.as_ref().map(ActorConsumer::status_handle),
                        failure: entry.failure.clone(),
                        slot: Some(entry.slot.clone()),
                    },
                );
            }
            None => {
                views.remove(actor);
                if let Some(gauge) = &self.loaded_versions {
                    let _ = gauge.remove_label_values(&[actor]);
                }
            }
        }
    }

    /// An actor's versions, oldest first, with the active one marked.
    pub fn versions(&self, actor: &str) -> Result<Vec<VersionSummary>> {
        let registry = self.parts.store.registry();
        let record = registry
            .actor(actor)?
            .ok_or_else(|| RegistryError::UnknownActor(actor.into()))?;
        Ok(registry
            .versions(actor)?
            .into_iter()
            .map(|v| VersionSummary {
                active: Some(v.version) == record.active_version,
                record: v,
            })
            .collect())
    }

    /// An actor's activation history, oldest first.
    pub fn history(&self, actor: &str) -> Result<Vec<ActivationRecord>> {
        let registry = self.parts.store.registry();
        if registry.actor(actor)?.is_none() {
            return Err(RegistryError::UnknownActor(actor.into()));
        }
        Ok(registry.history(actor)?)
    }

    /// Asks this host's worker of the held event's partition to retry it
    /// now; false when this host does not run it.
    pub(crate) async fn consumer_retry_now(&self, actor: &str, id: &wactor_store::HeldId) -> bool {
        // The lifecycle lock is held only to find the consumer, not while
        // its worker answers.
        let handle = {
            let live = self.live.lock().await;
            live.get(actor)
                .and_then(|e| e.consumer.as_ref())
                .map(ActorConsumer::retry_handle)
        };
        match handle {
            Some(handle) => handle.retry_now(id).await,
            None => false,
        }
    }

    /// Asks this host's worker of `(topic, partition)` to act on the event
    /// blocked by the death `blocked`; false when this host does not run
    /// it or no event there is blocked by that death.
    pub(crate) async fn consumer_unblock(
        &self,
        actor: &str,
        topic: &str,
        partition: i32,
        blocked: &wactor_store::BlockedBy,
        action: wactor_kafka::worker::Unblock,
    ) -> bool {
        let handle = {
            let live = self.live.lock().await;
            live.get(actor)
                .and_then(|e| e.consumer.as_ref())
                .map(ActorConsumer::retry_handle)
        };
        match handle {
            Some(handle) => handle.unblock(topic, partition, blocked, action).await,
            None => false,
        }
    }

    /// Loads `version` of `actor` without activating it and pins it for
    /// [`DEFAULT_PIN`](crate::versions::DEFAULT_PIN), so that events
    /// re-driven to that version find it loaded. (One that arrives later
    /// loads it on demand.)
    pub(crate) async fn preload(&self, actor: &str, version: u64) -> Result<()> {
        let live = self.live.lock().await;
        let loaded = self.load_version(&live, actor, version).await?;
        if let Some(entry) = live.get(actor) {
            entry.slot.pin(loaded);
            self.publish(actor, Some(entry));
        }
        Ok(())
    }

    /// The consumer group of `actor` (from its active manifest).
    pub(crate) fn group_of(&self, actor: &str) -> Result<String> {
        let record = self.actor(actor)?;
        Ok(ActorManifest::parse(&record.manifest_toml)?.group())
    }

    /// Stops every consumer (drain and commit). The host calls it on
    /// shutdown.
    pub async fn shutdown(&self) {
        let mut live = self.live.lock().await;
        self.shut_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(shared) = self.shared.get() {
            shared.stop();
        }
        self.followed.stop_all();
        let consumers: Vec<ActorConsumer> = live
            .values_mut()
            .filter_map(|entry| entry.consumer.take())
            .collect();
        for (name, entry) in live.iter() {
            self.publish(name, Some(entry));
        }
        for consumer in consumers {
            consumer.stop().await;
        }
    }

    /// Loads `version` of `actor` and runs it (used at start and resume);
    /// returns whether its compiled artifact came from the cache.
    async fn run_version(&self, actor: &str, version: u64, paused: bool) -> Result<bool> {
        let mut live = self.live.lock().await;
        let loaded = self.load_version(&live, actor, version).await?;
        let cache_hit = loaded.actor.load_report().cache == CacheOutcome::Hit;
        self.swap(&mut live, actor, loaded, paused).await;
        Ok(cache_hit)
    }

    /// The loaded `version` of `actor`: from the actor's loaded versions
    /// if it is there (a rollback to the previous version), else from the
    /// store and the artifact cache.
    async fn load_version(
        &self,
        live: &BTreeMap<String, Live>,
        actor: &str,
        version: u64,
    ) -> Result<Arc<ActiveVersion>> {
        if let Some(loaded) = live.get(actor).and_then(|e| e.slot.get_loaded(version)) {
            return Ok(loaded);
        }
        let loader = self.loader(actor);
        tokio::task::spawn_blocking(move || loader.load(version))
            .await
            .map_err(|e| RegistryError::Internal(format!("load task failed: {e}")))?
    }

    /// What loads versions of `actor` from the store.
    fn loader(&self, actor: &str) -> StoreLoader {
        StoreLoader {
            actor: actor.to_string(),
            store: self.parts.store.clone(),
            runtime: self.parts.runtime.clone(),
        }
    }

    /// Makes `loaded` the actor's running version: a pointer swap under a
    /// running consumer, or a consumer (re)start when the subscription
    /// changed or none runs.
    async fn swap(
        &self,
        live: &mut BTreeMap<String, Live>,
        actor: &str,
        loaded: Arc<ActiveVersion>,
        paused: bool,
    ) {
        let manifest = loaded.manifest.clone();
        self.follow_dead_letters(&manifest.group());
        let loader: Arc<dyn VersionLoader> = Arc::new(self.loader(actor));
        let entry = live.entry(actor.to_string()).or_insert_with(|| Live {
            slot: Arc::new(LoadedVersions::new(Some(loader))),
            manifest: manifest.clone(),
            consumer: None,
            failure: None,
        });
        let resubscribe = entry.manifest.needs_resubscribe(&manifest);
        // The replaced version stays loaded as the previous one, keeping no
        // idle instances (their pool slots serve the active version); the
        // one previous until now is let go when its last call ends.
        entry.slot.activate(loaded);
        entry.manifest = manifest.clone();
        if !paused {
            if resubscribe {
                if let Some(consumer) = entry.consumer.take() {
                    tracing::info!(actor, "subscription changed; restarting the consumer");
                    self.publish(actor, Some(entry));
                    consumer.stop().await;
                }
            }
            self.start_entry_consumer(actor, entry).await;
        }
        self.publish(actor, Some(entry));
    }

    async fn start_consumer(
        &self,
        manifest: &ActorManifest,
        slot: Arc<LoadedVersions>,
    ) -> Result<ActorConsumer> {
        let parts = &self.parts;
        let versions: Arc<dyn VersionSource> = slot;
        let mut settings = parts.kafka.clone();
        // Workers publish dead letters only where hosts read them.
        settings.shared_dead_letters = self.shares_dead_letters();
        let mut ctx = ActorContext::new(
            manifest,
            versions,
            parts.store.clone(),
            parts.producer.clone(),
            parts.metrics.clone(),
            settings,
            parts.clock.clone(),
        )?;
        ctx.logs = self.actor_logs.ring(&manifest.name);
        Ok(ActorConsumer::start(Arc::new(ctx)).await?)
    }

    /// Refreshes the gauges that come from the store: held events, the
    /// age of the oldest retry, and the dead-letter set size, per actor;
    /// and the loaded versions (a version is let go when its last call
    /// ends, or its re-drive pin expires, which no event announces).
    /// Scans the held trees and the dead-letter set: call it every few
    /// seconds, not per event.
    pub fn refresh_gauges(&self) -> Result<()> {
        for (actor, view) in self.views_snapshot() {
            if let Some(slot) = &view.slot {
                self.set_loaded_gauge(&actor, slot);
            }
        }
        let store = &self.parts.store;
        let metrics = &self.parts.metrics;
        let dead = store.dead_letters().count_by_actor()?;
        let now = self.parts.clock.now_ms();
        for actor in store.registry().actors()? {
            let name = actor.name.as_str();
            let held = store.held(name)?;
            metrics
                .held_events
                .with_label_values(&[name])
                .set(i64::try_from(held.len()).unwrap_or(i64::MAX));
            let oldest = held
                .oldest_first_attempt_ms()?
                .map(|first| (now - first).max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            metrics
                .oldest_retry_age_seconds
                .with_label_values(&[name])
                .set(oldest);
            metrics
                .blocked_lanes
                .with_label_values(&[name])
                .set(i64::try_from(held.blocked_count()?).unwrap_or(i64::MAX));
            metrics
                .dead_letter_set_size
                .with_label_values(&[name])
                .set(i64::try_from(dead.get(name).copied().unwrap_or(0)).unwrap_or(i64::MAX));
        }
        Ok(())
    }

    /// Waits until `actor` runs `version` on this host, up to `timeout`
    /// (for tests and the CLI's `--wait`).
    pub async fn wait_active(&self, actor: &str, version: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let running = self
                .views_snapshot()
                .get(actor)
                .and_then(|v| v.slot.as_ref().and_then(|s| s.current()))
                .is_some_and(|v| v.version == version);
            if running {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) fn not_found_as_actor(err: wactor_store::StoreError, actor: &str) -> RegistryError {
    match err {
        wactor_store::StoreError::NotFound { .. } => RegistryError::UnknownActor(actor.into()),
        other => RegistryError::Store(other),
    }
}

/// Loads versions of one actor from the store, through the runtime's
/// artifact cache.
struct StoreLoader {
    actor: String,
    store: Store,
    runtime: Arc<Runtime>,
}

impl VersionLoader for StoreLoader {
    fn load(&self, version: u64) -> Result<Arc<ActiveVersion>> {
        let actor = self.actor.as_str();
        let registry = self.store.registry();
        let record =
            registry
                .version(actor, version)?
                .ok_or_else(|| RegistryError::UnknownVersion {
                    actor: actor.into(),
                    version,
                })?;
        let bytes = registry.component(&record.sha256)?.ok_or_else(|| {
            RegistryError::Internal(format!(
                "the component {} of {actor} v{version} is missing from the store",
                record.sha256
            ))
        })?;
        let manifest = Arc::new(ActorManifest::parse(&record.manifest_toml)?);
        let loaded = self
            .runtime
            .load(&bytes, manifest.actor_settings(version))?;
        Ok(Arc::new(ActiveVersion::new(version, loaded, manifest)))
    }
}

/// The gauge `wactor_loaded_versions{actor}`, registered with the host's
/// metrics. `None` only if prometheus refuses the (constant, valid)
/// definition. When a gauge of that name is registered already (a second
/// registry over the same metrics, as in restart tests), this one is kept
/// up to date but not exported.
fn loaded_versions_gauge(metrics: &Metrics) -> Option<prometheus::IntGaugeVec> {
    let opts = prometheus::Opts::new(
        LOADED_VERSIONS_METRIC,
        "Versions of an actor loaded in memory on this host (active, previous, \
         pinned for a re-drive, or finishing calls)",
    );
    let gauge = match prometheus::IntGaugeVec::new(opts, &["actor"]) {
        Ok(gauge) => gauge,
        Err(err) => {
            tracing::error!(error = %err, "cannot create the loaded-versions gauge");
            return None;
        }
    };
    if let Err(err) = metrics.registry().register(Box::new(gauge.clone())) {
        tracing::debug!(error = %err, "the loaded-versions gauge is not exported");
    }
    Some(gauge)
}

fn count_i64(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
