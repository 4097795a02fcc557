//! The shared registry: every lifecycle change as one record of the
//! cluster's registry log, applied by every host in the log's order.
//!
//! A change sent to any host's API (deploy, activate, roll back, pause,
//! resume, remove) is checked there (the manifest parses, the component
//! compiles, the version loads), then written to the log
//! ([`wactor_kafka::registry_log`]): the component's bytes first, in
//! content-addressed chunks, then the change as an `op/<id>` record. Every
//! host, the sender included, reads the log from where it stopped and
//! applies each change to its sled registry ([`Change::apply`]), then
//! makes its running actors match ([`Registry::reconcile`]). The sender
//! answers its caller once it has applied its own change, with what
//! applying it did.
//!
//! # The rule for concurrent changes
//!
//! The log's order decides, and applying is deterministic: every host
//! gives the same version numbers and reaches the same active versions.
//! Two deploys sent at once to two hosts get consecutive numbers in the
//! order the log holds them. A roll back carries the active version its
//! sender saw; if another change activated something else first, the roll
//! back is refused on every host (`stale`, HTTP 409) instead of undoing a
//! change its sender never saw. Activating a version that is already
//! active changes nothing.
//!
//! # Joining
//!
//! A host whose registry was never built from the log (a new disk, or an
//! upgrade from a single-host wactor) first publishes what its registry
//! holds ([`Change::Import`]: an actor the cluster does not know comes with
//! its active version and pause; an actor it knows only gains versions it
//! lacks, and keeps running what the cluster chose), then empties its
//! registry (component bytes stay: they are content-addressed) and
//! replays the log from its start. Before starting actors, a host catches
//! up to the end of the log it saw at start, so a new host runs the
//! cluster's actors without a deploy of its own.
//!
//! What it does not do: talk to Kafka (wactor-kafka's `registry_log`), or
//! run consumers (the [`Registry`]).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use wactor_kafka::registry_log::{LogRecord, RegistryLog, CHUNK_BYTES};
use wactor_runtime::sha256_hex;
use wactor_store::{ActivationRecord, ActorRecord, NewVersion, StoreError, VersionRecord};

use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// How long a host waits for its own change to come back from the log
/// and be applied before it answers with an error (the change is written
/// then, and applies when the host catches up).
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a starting host waits to reach the end of the log it saw
/// before it starts its actors from what it has.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the host that took a change waits for its own actors to run
/// it before it answers (the change is applied in the store already).
const RECONCILE_WAIT: Duration = Duration::from_secs(10);

/// A change applied to the store: the actor it concerns, and the caller
/// on this host waiting for it, with what applying it did.
struct Applied {
    actor: String,
    answer: Option<(oneshot::Sender<Result<Outcome>>, Result<Outcome>)>,
}

/// Records read ahead of the applier.
const READ_AHEAD: usize = 16;

/// One change of the registry, as the log holds it (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Unique id (the record's key is `op/<id>`).
    pub id: String,
    /// When it was asked for (ms since the Unix epoch): the time every
    /// host records with it.
    pub at_ms: i64,
    /// Who asked (token name or CLI user).
    pub by: String,
    /// What changes.
    pub change: Change,
}

/// What a change does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A new version (numbered by the log's order; an identical upload is
    /// the existing version), activated if asked.
    Deploy {
        /// The actor (the manifest's name).
        actor: String,
        /// The manifest's TOML text.
        manifest_toml: String,
        /// sha256 of the component bytes (sent as chunks before).
        sha256: String,
        /// Size of the component in bytes.
        size: u64,
        /// Free text.
        notes: String,
        /// Activate it.
        activate: bool,
        /// Activate it only if it is new or nothing is active (an actors
        /// directory at a host's start).
        #[serde(default)]
        only_if_new: bool,
    },
    /// Makes a version active.
    Activate {
        /// The actor.
        actor: String,
        /// The version.
        version: u64,
        /// `activate` or `rollback`.
        reason: String,
        /// Refuse (stale) unless this version is the active one when the
        /// change is applied.
        expect_active: Option<u64>,
    },
    /// Pauses an actor.
    Pause {
        /// The actor.
        actor: String,
    },
    /// Resumes an actor.
    Resume {
        /// The actor.
        actor: String,
    },
    /// Removes an actor (its versions and history stay).
    Remove {
        /// The actor.
        actor: String,
    },
    /// A joining host's registry entry for one actor.
    Import {
        /// The actor.
        actor: String,
        /// Its versions, oldest first.
        versions: Vec<ImportedVersion>,
        /// Its active version (a number of `versions`).
        active: Option<u64>,
        /// Whether it was paused.
        paused: bool,
    },
}

/// One version carried by [`Change::Import`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedVersion {
    /// Its number on the importing host.
    pub version: u64,
    /// The manifest.
    pub manifest_toml: String,
    /// sha256 of the component.
    pub sha256: String,
    /// Component size in bytes.
    pub size: u64,
    /// Upload time on the importing host (ms since the Unix epoch).
    pub uploaded_at_ms: i64,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// Free text.
    pub notes: String,
}

impl Change {
    /// The actor it changes.
    pub fn actor(&self) -> &str {
        match self {
            Change::Deploy { actor, .. }
            | Change::Activate { actor, .. }
            | Change::Pause { actor }
            | Change::Resume { actor }
            | Change::Remove { actor }
            | Change::Import { actor, .. } => actor,
        }
    }
}

/// What applying a change did.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// A deploy: the version, whether it is new, whether it is active.
    Deployed {
        version: VersionRecord,
        created: bool,
        activated: bool,
    },
    /// An activation (or the last one, when the version was active).
    Activated(ActivationRecord),
    /// The actor after a pause, resume or remove.
    Actor(ActorRecord),
    /// An import.
    Imported,
}

/// A host's link to the registry log.
pub(crate) struct SharedLog {
    pub(crate) log: RegistryLog,
    /// Changes this host sent, waiting to be applied: id -> its caller.
    waiters: std::sync::Mutex<HashMap<String, oneshot::Sender<Result<Outcome>>>>,
    /// Records read, not yet applied; taken by the applier.
    records: tokio::sync::Mutex<mpsc::Receiver<LogRecord>>,
    /// Stops the reader thread.
    stop: Arc<AtomicBool>,
}

impl Drop for SharedLog {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SharedLog {
    /// Stops reading the log (the applier ends once it has applied what
    /// was read).
    pub(crate) fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn waiters(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Result<Outcome>>>> {
        match self.waiters.lock() {
            Ok(waiters) => waiters,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The log's watermarks, read on a blocking thread.
async fn watermarks(log: &RegistryLog) -> Result<wactor_kafka::Result<(i64, i64)>> {
    let log = log.clone();
    tokio::task::spawn_blocking(move || log.watermarks())
        .await
        .map_err(|e| RegistryError::Internal(format!("watermark task failed: {e}")))
}

/// A fresh change id: 128 random bits, hex.
fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Refuses a change whose manifest does not parse or names another actor
/// (a forged record: the API checks both before it writes).
fn check_manifest(actor: &str, manifest_toml: &str) -> Result<()> {
    let manifest = wactor_manifest::ActorManifest::parse(manifest_toml)?;
    if manifest.name != actor {
        return Err(RegistryError::NameMismatch {
            requested: actor.to_string(),
            manifest: manifest.name,
        });
    }
    Ok(())
}

fn stale(actor: &str, expected: u64, active: Option<u64>) -> RegistryError {
    RegistryError::Stale(format!(
        "actor {actor:?}: the change expected version {expected} to be active, but {} is \
         (another change came first); look again and retry",
        active.map_or_else(|| "none".to_string(), |v| format!("version {v}"))
    ))
}

impl Registry {
    /// Connects this host to the cluster's registry log and brings its
    /// registry up to date; call once, before
    /// [`start_all`](Self::start_all). A registry never built from the log
    /// is published to it first and then rebuilt from it (see the module
    /// docs). Brokers that cannot be reached are not fatal, except for
    /// that first publication: the host then runs what its registry holds
    /// and catches up when they are back.
    ///
    /// # Errors
    /// [`RegistryError::Kafka`] when a registry never built from the log
    /// cannot be published; store errors.
    pub async fn attach_shared(&self, topic: &str) -> Result<()> {
        let settings = &self.parts().kafka;
        let store = self.parts().store.registry();
        let log = RegistryLog::open(settings, topic).await?;
        let mut marks = watermarks(&log).await?;
        let recreated = match (store.last_op()?, &marks) {
            (Some((offset, id)), Ok((low, high))) if offset >= *low && offset < *high => {
                let log = log.clone();
                let key = tokio::task::spawn_blocking(move || log.key_at(offset))
                    .await
                    .map_err(|e| RegistryError::Internal(format!("read task failed: {e}")))?;
                match key {
                    Ok(Some(key)) => key != format!("op/{id}").into_bytes(),
                    Ok(None) => true,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot check the registry log's last change");
                        false
                    }
                }
            }
            _ => false,
        };
        if recreated {
            tracing::error!(
                %topic,
                "the registry log no longer holds the last change this host applied where it \
                 was (was the topic recreated?); publishing this host's registry to it again"
            );
        }
        let rebuild = match (store.applied_offset()?, &marks) {
            _ if recreated => true,
            (None, _) => true,
            (Some(applied), Ok((_, high))) if applied >= *high => {
                // The log ends before what this host applied: the topic was
                // deleted and created again. Publish what this host has.
                tracing::error!(
                    %topic, applied, end = high,
                    "the registry log holds less than this host applied (was the topic \
                     recreated?); publishing this host's registry to it again"
                );
                true
            }
            _ => false,
        };
        if rebuild {
            self.publish_local(&log).await?;
            store.reset_for_log()?;
            self.parts().store.flush_async().await?;
            marks = watermarks(&log).await?;
        }
        let applied = store.applied_offset()?.unwrap_or(-1);
        let (sender, receiver) = mpsc::channel(READ_AHEAD);
        let stop = Arc::new(AtomicBool::new(false));
        log.tail(
            applied + 1,
            move |record| sender.blocking_send(record).is_ok(),
            stop.clone(),
        )?;
        let shared = Arc::new(SharedLog {
            log,
            waiters: std::sync::Mutex::default(),
            records: tokio::sync::Mutex::new(receiver),
            stop,
        });
        if self.shared.set(shared.clone()).is_err() {
            return Err(RegistryError::Internal(
                "the registry log is attached already".into(),
            ));
        }
        match marks {
            Ok((low, high)) => {
                if applied < low - 1 {
                    tracing::error!(
                        %topic, applied, first_kept = low,
                        "the registry log no longer holds changes this host has not applied \
                         (deleted by retention: the topic must be compacted, not deleted); \
                         this host's registry may differ from the cluster's"
                    );
                }
                self.catch_up(&shared, high).await?;
            }
            Err(err) => tracing::warn!(
                error = %err,
                "cannot read the end of the registry log; starting with the registry this host has"
            ),
        }
        Ok(())
    }

    /// Applies records (without touching running actors: none run yet)
    /// until the one before `end`, or until [`CATCH_UP_TIMEOUT`] passes
    /// with no record.
    async fn catch_up(&self, shared: &SharedLog, end: i64) -> Result<()> {
        let store = self.parts().store.registry();
        let started = Instant::now();
        let mut records = shared.records.lock().await;
        while store.applied_offset()?.unwrap_or(-1) < end - 1 {
            match tokio::time::timeout(CATCH_UP_TIMEOUT, records.recv()).await {
                Ok(Some(record)) => {
                    // No actor runs yet: nothing to bring in line; a caller
                    // cannot be waiting either.
                    self.apply_record(shared, record).await?;
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        end,
                        "the registry log did not reach its end in time; starting with what \
                         this host has, the rest applies as it arrives"
                    );
                    break;
                }
            }
        }
        self.parts().store.flush_async().await?;
        tracing::info!(
            applied = store.applied_offset()?.unwrap_or(-1),
            took_ms = started.elapsed().as_millis() as u64,
            "registry caught up with the registry log"
        );
        Ok(())
    }

    /// Applies the log's records as they arrive, for as long as the
    /// registry lives: the host spawns it after
    /// [`start_all`](Self::start_all). A record that cannot be applied (the
    /// store failed) is applied again until it is, never skipped. Running
    /// actors are brought in line on tasks of their own, so that an actor
    /// that takes long to stop (its drain) never holds up the changes of
    /// others.
    pub async fn apply_shared(self: Arc<Self>) {
        let Some(shared) = self.shared.get().cloned() else {
            return;
        };
        let mut records = shared.records.lock().await;
        while let Some(record) = records.recv().await {
            let applied = loop {
                match self.apply_record(&shared, record.clone()).await {
                    Ok(applied) => break applied,
                    Err(err) => {
                        tracing::error!(offset = record.offset, error = %err, "cannot apply a registry log record; trying again");
                        if self.is_shut_down() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            let Some(Applied { actor, answer }) = applied else {
                continue;
            };
            let registry = self.clone();
            let reconciled = tokio::spawn(async move { registry.reconcile(&actor).await });
            if let Some((waiter, result)) = answer {
                tokio::spawn(async move {
                    // The caller hears once this host runs the change (or
                    // after a while: the change is applied either way).
                    let _ = tokio::time::timeout(RECONCILE_WAIT, reconciled).await;
                    let _ = waiter.send(result);
                });
            }
        }
    }

    /// Applies one log record to the store: a chunk is kept (and a
    /// complete component stored), a change is applied; then the record's
    /// offset is recorded as applied. Returns the actor a change concerns
    /// (and the caller waiting for it on this host), for the running side
    /// to follow. A record that is not understood is logged and skipped. A
    /// record at or before the applied offset means the log went back (the
    /// topic was deleted and created again): this host publishes its
    /// registry and rebuilds it from the log, as a new host would.
    async fn apply_record(&self, shared: &SharedLog, record: LogRecord) -> Result<Option<Applied>> {
        let store = self.parts().store.registry();
        if store.applied_offset()?.is_some_and(|a| record.offset <= a) {
            tracing::error!(
                topic = shared.log.topic(),
                offset = record.offset,
                applied = store.applied_offset()?.unwrap_or(-1),
                "the registry log went back before what this host applied (was the topic \
                 recreated?); publishing this host's registry to it again and rebuilding"
            );
            self.publish_local(&shared.log).await?;
            store.reset_for_log()?;
        }
        let key = record
            .key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
            .unwrap_or("");
        if let Some(chunk) = key.strip_prefix("chunk/") {
            if let Some(payload) = record.payload.as_deref() {
                self.apply_chunk(chunk, payload)?;
            }
        } else if let Some(id) = key.strip_prefix("op/") {
            match record.payload.as_deref().map(serde_json::from_slice::<Op>) {
                Some(Ok(op)) if op.id == id => {
                    let result = self.apply_op(&op);
                    if matches!(&result, Err(RegistryError::Store(StoreError::Sled(_)))) {
                        // The disk failed: not applied; applied again.
                        return result.map(|_| None);
                    }
                    store.set_applied_op(record.offset, &op.id)?;
                    self.parts().store.flush_async().await?;
                    match &result {
                        Ok(_) => tracing::info!(
                            offset = record.offset, actor = op.change.actor(), by = %op.by,
                            change = ?ChangeKind(&op.change), "registry change applied"
                        ),
                        Err(err) => tracing::info!(
                            offset = record.offset, actor = op.change.actor(), error = %err,
                            "registry change refused"
                        ),
                    }
                    let answer = shared
                        .waiters()
                        .remove(&op.id)
                        .map(|waiter| (waiter, result));
                    return Ok(Some(Applied {
                        actor: op.change.actor().to_string(),
                        answer,
                    }));
                }
                _ => tracing::warn!(
                    offset = record.offset,
                    key,
                    "skipping a registry log record that is not a change"
                ),
            }
        } else {
            tracing::warn!(
                offset = record.offset,
                key,
                "skipping an unknown registry log record"
            );
        }
        store.set_applied_offset(record.offset)?;
        Ok(None)
    }

    /// Keeps one chunk `<sha256>/<index>/<count>`; stores the component
    /// once its chunks are all here and hash to its name.
    fn apply_chunk(&self, name: &str, payload: &[u8]) -> Result<()> {
        let mut parts = name.split('/');
        let (Some(sha256), Some(index), Some(count), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            tracing::warn!(name, "skipping a malformed component chunk key");
            return Ok(());
        };
        let (Ok(index), Ok(count)) = (index.parse::<u32>(), count.parse::<u32>()) else {
            tracing::warn!(name, "skipping a malformed component chunk key");
            return Ok(());
        };
        let max_chunks = self.parts().runtime.max_component_bytes() / CHUNK_BYTES + 1;
        if count as usize > max_chunks || payload.len() > CHUNK_BYTES {
            tracing::warn!(
                name,
                "skipping a component chunk larger than runtime.max_component allows"
            );
            return Ok(());
        }
        let store = self.parts().store.registry();
        match store.add_chunk(sha256, index, count, payload) {
            Ok(Some(bytes)) => {
                if sha256_hex(&bytes) == sha256.to_ascii_lowercase() {
                    store.put_component(sha256, &bytes)?;
                    store.mark_logged(sha256)?;
                } else {
                    tracing::error!(
                        sha256,
                        "component chunks do not hash to their name; dropped"
                    );
                }
            }
            Ok(None) => {}
            Err(StoreError::Invalid { what }) => {
                tracing::warn!(name, what, "skipping a malformed component chunk");
            }
            Err(err) => return Err(err.into()),
        }
        Ok(())
    }

    /// Applies a change to the store. Deterministic: the same log gives
    /// every host the same registry.
    pub(crate) fn apply_op(&self, op: &Op) -> Result<Outcome> {
        let store = self.parts().store.registry();
        match &op.change {
            Change::Deploy {
                actor,
                manifest_toml,
                sha256,
                size,
                notes,
                activate,
                only_if_new,
            } => {
                check_manifest(actor, manifest_toml)?;
                if *only_if_new && store.actor(actor)?.is_none() {
                    // Removed: an actors directory's known version does
                    // not bring it back.
                    let known = store
                        .versions(actor)?
                        .into_iter()
                        .find(|v| v.sha256 == *sha256 && v.manifest_toml == *manifest_toml);
                    if let Some(version) = known {
                        return Ok(Outcome::Deployed {
                            version,
                            created: false,
                            activated: false,
                        });
                    }
                }
                let (version, created) = store.add_version(&NewVersion {
                    actor,
                    manifest_toml,
                    component: None,
                    size: *size,
                    sha256,
                    uploaded_by: &op.by,
                    notes,
                    now_ms: op.at_ms,
                })?;
                let active = store.actor(actor)?.and_then(|a| a.active_version);
                // An actors directory activates only what is new, or an
                // actor never activated (not one removed since).
                let wanted =
                    *activate && (!*only_if_new || created || store.history(actor)?.is_empty());
                let activated = if wanted && active != Some(version.version) {
                    store.activate(actor, version.version, &op.by, "deploy", op.at_ms)?;
                    self.count_activation(actor, "deploy");
                    true
                } else {
                    active == Some(version.version)
                };
                Ok(Outcome::Deployed {
                    version,
                    created,
                    activated,
                })
            }
            Change::Activate {
                actor,
                version,
                reason,
                expect_active,
            } => {
                let record = store
                    .actor(actor)?
                    .ok_or_else(|| RegistryError::UnknownActor(actor.clone()))?;
                if store.version(actor, *version)?.is_none() {
                    return Err(RegistryError::UnknownVersion {
                        actor: actor.clone(),
                        version: *version,
                    });
                }
                if let Some(expected) = expect_active {
                    if record.active_version != Some(*expected) {
                        return Err(stale(actor, *expected, record.active_version));
                    }
                }
                if record.active_version == Some(*version) {
                    if let Some(last) = store.history(actor)?.pop() {
                        return Ok(Outcome::Activated(last));
                    }
                }
                let activation = store.activate(actor, *version, &op.by, reason, op.at_ms)?;
                self.count_activation(actor, reason);
                Ok(Outcome::Activated(activation))
            }
            Change::Pause { actor } | Change::Resume { actor } => {
                let paused = matches!(op.change, Change::Pause { .. });
                store
                    .set_paused(actor, paused, op.at_ms)
                    .map(Outcome::Actor)
                    .map_err(|e| crate::registry::not_found_as_actor(e, actor))
            }
            Change::Remove { actor } => store
                .remove_actor(actor)?
                .map(Outcome::Actor)
                .ok_or_else(|| RegistryError::UnknownActor(actor.clone())),
            Change::Import {
                actor,
                versions,
                active,
                paused,
            } => {
                let known = store.actor(actor)?.is_some() || !store.versions(actor)?.is_empty();
                let mut numbers = HashMap::new();
                for imported in versions {
                    if let Err(err) = check_manifest(actor, &imported.manifest_toml) {
                        tracing::warn!(actor, version = imported.version, error = %err, "skipping an imported version");
                        continue;
                    }
                    let (record, _) = store.add_version(&NewVersion {
                        actor,
                        manifest_toml: &imported.manifest_toml,
                        component: None,
                        size: imported.size,
                        sha256: &imported.sha256,
                        uploaded_by: &imported.uploaded_by,
                        notes: &imported.notes,
                        now_ms: imported.uploaded_at_ms,
                    })?;
                    numbers.insert(imported.version, record.version);
                }
                if !known {
                    if let Some(version) = active.and_then(|a| numbers.get(&a).copied()) {
                        store.activate(actor, version, &op.by, "import", op.at_ms)?;
                    }
                    if *paused {
                        store.set_paused(actor, true, op.at_ms)?;
                    }
                }
                Ok(Outcome::Imported)
            }
        }
    }

    /// Sends `change` to the cluster and waits until this host applied it
    /// (or, with no registry log, applies it here), returning what it did.
    /// `component` (sha256, bytes) travels first, as chunks.
    pub(crate) async fn submit(
        &self,
        change: Change,
        by: &str,
        component: Option<(&str, &[u8])>,
    ) -> Result<Outcome> {
        let op = Op {
            id: new_id(),
            at_ms: self.parts().clock.now_ms(),
            by: by.to_string(),
            change,
        };
        let Some(shared) = self.shared.get() else {
            if let Some((sha256, bytes)) = component {
                self.parts().store.registry().put_component(sha256, bytes)?;
            }
            let result = {
                let _serial = self.apply_lock.lock().await;
                self.apply_op(&op)
            };
            self.parts().store.flush_async().await?;
            self.reconcile(op.change.actor()).await;
            return result;
        };
        let producer = &self.parts().producer;
        if let Some((sha256, bytes)) = component {
            let registry = self.parts().store.registry();
            // Bytes this host read back from the log are not sent again.
            if !registry.is_logged(sha256)? {
                for record in shared.log.chunk_records(sha256, bytes) {
                    producer.send(&record).await?;
                }
                // The change goes out only once the bytes came back whole
                // from the log: then every host can read them too.
                let deadline = Instant::now() + APPLY_TIMEOUT;
                while !registry.is_logged(sha256)? {
                    if Instant::now() >= deadline {
                        return Err(RegistryError::Internal(format!(
                            "the component {sha256} was written to the registry log {} but did \
                             not come back whole within {APPLY_TIMEOUT:?}; nothing was changed",
                            shared.log.topic()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        let payload = serde_json::to_vec(&op).map_err(|e| {
            RegistryError::Internal(format!("cannot encode a registry change: {e}"))
        })?;
        let (sender, receiver) = oneshot::channel();
        shared.waiters().insert(op.id.clone(), sender);
        let record = shared.log.record(format!("op/{}", op.id), payload);
        if let Err(err) = producer.send(&record).await {
            shared.waiters().remove(&op.id);
            return Err(err.into());
        }
        match tokio::time::timeout(APPLY_TIMEOUT, receiver).await {
            Ok(Ok(result)) => result,
            _ => {
                shared.waiters().remove(&op.id);
                Err(RegistryError::Internal(format!(
                    "the change was written to the registry log {} but this host did not apply \
                     it within {APPLY_TIMEOUT:?}; it applies when the host catches up",
                    shared.log.topic()
                )))
            }
        }
    }

    /// Publishes this host's registry to the log ([`Change::Import`], one
    /// per actor, with its components) before the host rebuilds it from
    /// the log.
    async fn publish_local(&self, log: &RegistryLog) -> Result<()> {
        let store = self.parts().store.registry();
        let actors = store.actors()?;
        if actors.is_empty() {
            return Ok(());
        }
        let producer = &self.parts().producer;
        for actor in actors {
            let mut versions = Vec::new();
            for version in store.versions(&actor.name)? {
                if let Some(bytes) = store.component(&version.sha256)? {
                    for record in log.chunk_records(&version.sha256, &bytes) {
                        producer.send(&record).await?;
                    }
                }
                versions.push(ImportedVersion {
                    version: version.version,
                    manifest_toml: version.manifest_toml,
                    sha256: version.sha256,
                    size: version.size,
                    uploaded_at_ms: version.uploaded_at_ms,
                    uploaded_by: version.uploaded_by,
                    notes: version.notes,
                });
            }
            let op = Op {
                id: new_id(),
                at_ms: self.parts().clock.now_ms(),
                by: "import".into(),
                change: Change::Import {
                    actor: actor.name.clone(),
                    versions,
                    active: actor.active_version,
                    paused: actor.paused,
                },
            };
            let payload = serde_json::to_vec(&op).map_err(|e| {
                RegistryError::Internal(format!("cannot encode a registry change: {e}"))
            })?;
            producer
                .send(&log.record(format!("op/{}", op.id), payload))
                .await?;
            tracing::info!(actor = %actor.name, "published this host's registry entry to the registry log");
        }
        Ok(())
    }

    fn count_activation(&self, actor: &str, reason: &str) {
        self.parts()
            .metrics
            .activations_total
            .with_label_values(&[actor, reason])
            .inc();
    }
}

/// A change's kind, for logs.
struct ChangeKind<'a>(&'a Change);

impl std::fmt::Debug for ChangeKind<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Change::Deploy { .. } => "deploy",
            Change::Activate { .. } => "activate",
            Change::Pause { .. } => "pause",
            Change::Resume { .. } => "resume",
            Change::Remove { .. } => "remove",
            Change::Import { .. } => "import",
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_change_round_trips_through_json_with_its_kind_named() {
        let op = Op {
            id: new_id(),
            at_ms: 5,
            by: "ci".into(),
            change: Change::Activate {
                actor: "billing".into(),
                version: 3,
                reason: "rollback".into(),
                expect_active: Some(4),
            },
        };
        let text = serde_json::to_string(&op).unwrap();
        assert!(text.contains(r#""kind":"activate""#), "{text}");
        assert_eq!(serde_json::from_str::<Op>(&text).unwrap(), op);
        assert_eq!(op.id.len(), 32);
        assert_ne!(new_id(), new_id());
    }
}
