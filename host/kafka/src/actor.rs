//! What the Kafka layer knows of an actor: its versions (the one that runs
//! the next event, and others a re-drive may name) and the shared context
//! its consumer and partition workers run with.
//!
//! The registry decides which version is active; this module only reads
//! it, once per call, which is what makes a swap atomic: a call in flight
//! keeps the version it started with, the next call takes the new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use prometheus::{Histogram, IntCounter, IntGauge};

use wactor_delivery::OrderingMode;
use wactor_manifest::ActorManifest;
use wactor_metrics::Metrics;
use wactor_runtime::LoadedActor;
use wactor_store::{ActorState, DeadLetters, HeldEvents, Store};

use crate::clock::Clock;
use crate::error::Result;
use crate::producer::Producer;
use crate::settings::KafkaSettings;

/// The metrics of one actor that have no other label, resolved once.
pub(crate) struct ActorCounters {
    pub(crate) emitted_records: IntCounter,
    pub(crate) emit_failures: IntCounter,
    pub(crate) partition_pauses: IntCounter,
    pub(crate) buffered_events: IntGauge,
    pub(crate) commits: IntCounter,
    pub(crate) retries_scheduled: IntCounter,
    pub(crate) retries_fired: IntCounter,
    /// `handle-batch` calls taken as the actor answered.
    pub(crate) batch_calls: IntCounter,
    /// `handle-batch` calls that failed as a whole.
    pub(crate) batch_fallbacks: IntCounter,
    pub(crate) batched_events: IntCounter,
}

impl ActorCounters {
    fn new(metrics: &Metrics, actor: &str) -> Self {
        let labels = [actor];
        ActorCounters {
            emitted_records: metrics.emitted_records_total.with_label_values(&labels),
            emit_failures: metrics.emit_failures_total.with_label_values(&labels),
            partition_pauses: metrics.partition_pauses_total.with_label_values(&labels),
            buffered_events: metrics.buffered_events.with_label_values(&labels),
            commits: metrics.commits_total.with_label_values(&labels),
            retries_scheduled: metrics.retries_scheduled_total.with_label_values(&labels),
            retries_fired: metrics.retries_fired_total.with_label_values(&labels),
            batch_calls: metrics
                .batch_calls_total
                .with_label_values(&[actor, "batch"]),
            batch_fallbacks: metrics
                .batch_calls_total
                .with_label_values(&[actor, "fallback"]),
            batched_events: metrics.batched_events_total.with_label_values(&labels),
        }
    }
}

/// One loaded version of an actor.
pub struct ActiveVersion {
    /// Version number (0 for an unregistered component).
    pub version: u64,
    /// The loaded component.
    pub actor: LoadedActor,
    /// The manifest it was deployed with: retry policy, dead-letter
    /// handling and limits come from here, per call.
    pub manifest: Arc<ActorManifest>,
    /// This version's metric handles, resolved once (label lookups are a
    /// hash per call otherwise).
    call_metrics: OnceLock<CallMetrics>,
}

/// The metric handles of one actor version's calls.
pub(crate) struct CallMetrics {
    /// `wactor_events_total{outcome=...}` by [`CallOutcome::label`] order:
    /// done, retry, dead, trap, failed.
    ///
    /// [`CallOutcome::label`]: crate::call::CallOutcome::label
    pub(crate) outcomes: [IntCounter; 5],
    /// `wactor_call_duration_seconds`.
    pub(crate) duration: Histogram,
}

impl ActiveVersion {
    /// A loaded version.
    pub fn new(version: u64, actor: LoadedActor, manifest: Arc<ActorManifest>) -> Self {
        ActiveVersion {
            version,
            actor,
            manifest,
            call_metrics: OnceLock::new(),
        }
    }

    /// The metric handles of this version's calls.
    pub(crate) fn call_metrics(&self, metrics: &Metrics) -> &CallMetrics {
        self.call_metrics.get_or_init(|| {
            let name = self.manifest.name.as_str();
            let version = self.version.to_string();
            let outcome = |label: &str| {
                metrics
                    .events_total
                    .with_label_values(&[name, &version, label])
            };
            CallMetrics {
                outcomes: [
                    outcome("done"),
                    outcome("retry"),
                    outcome("dead"),
                    outcome("trap"),
                    outcome("failed"),
                ],
                duration: metrics.call_duration_seconds.with_label_values(&[name]),
            }
        })
    }
}

/// Where workers get the version to run.
pub trait VersionSource: Send + Sync + 'static {
    /// The active version; `None` when the actor has none (its events then
    /// wait).
    fn current(&self) -> Option<Arc<ActiveVersion>>;

    /// A given version, for a re-drive to a named version.
    fn get(&self, version: u64) -> Option<Arc<ActiveVersion>>;
}

/// A hot-swappable active version, plus the other versions loaded so far.
#[derive(Default)]
pub struct VersionSlot {
    /// The active version; swapped atomically.
    current: RwLock<Option<Arc<ActiveVersion>>>,
    /// Every version loaded into this slot, by number.
    loaded: Mutex<HashMap<u64, Arc<ActiveVersion>>>,
}

impl VersionSlot {
    /// A slot whose active version is `version`.
    pub fn new(version: Arc<ActiveVersion>) -> Self {
        let slot = VersionSlot::default();
        slot.activate(version);
        slot
    }

    /// Makes `version` the one the next call runs; returns the previous.
    pub fn activate(&self, version: Arc<ActiveVersion>) -> Option<Arc<ActiveVersion>> {
        self.remember(version.clone());
        match self.current.write() {
            Ok(mut current) => current.replace(version),
            Err(poisoned) => poisoned.into_inner().replace(version),
        }
    }

    /// Keeps a loaded version available to [`VersionSource::get`] without
    /// activating it.
    pub fn remember(&self, version: Arc<ActiveVersion>) {
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(version.version, version);
        }
    }

    /// Clears the active version (events wait until one is activated).
    pub fn deactivate(&self) -> Option<Arc<ActiveVersion>> {
        match self.current.write() {
            Ok(mut current) => current.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

impl VersionSource for VersionSlot {
    fn current(&self) -> Option<Arc<ActiveVersion>> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn get(&self, version: u64) -> Option<Arc<ActiveVersion>> {
        self.loaded.lock().ok()?.get(&version).cloned()
    }
}

/// Everything an actor's consumer and partition workers share. Fixed for
/// the consumer's life: a change of topics, group or ordering starts a new
/// consumer with a new context.
pub struct ActorContext {
    /// Actor name.
    pub name: String,
    /// Consumer group.
    pub group: String,
    /// Topics read.
    pub topics: Vec<String>,
    /// Ordering within a partition.
    pub ordering: OrderingMode,
    /// Calls at once per partition.
    pub max_in_flight: usize,
    /// Versions to run.
    pub versions: Arc<dyn VersionSource>,
    /// The host's store.
    pub store: Store,
    /// The actor's state namespace (scoped by source partition).
    pub state: ActorState,
    /// The state changelog, once the consumer opened it (never when
    /// `kafka.state_changelog` is off).
    pub state_changelog: std::sync::OnceLock<Arc<crate::state_changelog::StateChangelog>>,
    /// Events held for retry, and the ones waiting behind them.
    pub held: HeldEvents,
    /// The dead-letter set.
    pub dead_letters: DeadLetters,
    /// The host's producer.
    pub producer: Producer,
    /// The host's metrics.
    pub metrics: Arc<Metrics>,
    /// This actor's metric handles, resolved once.
    pub(crate) counters: ActorCounters,
    /// Kafka settings.
    pub settings: KafkaSettings,
    /// Wall clock for retry times.
    pub clock: Arc<dyn Clock>,
    /// Where the actor's own log lines are kept for `wactor logs` (a ring
    /// of its own unless the host shares one, see
    /// [`crate::actor_logs::ActorLogs::ring`]).
    pub logs: Arc<crate::actor_logs::ActorLogRing>,
}

impl ActorContext {
    /// Builds the context of actor `manifest` (its name, topics, group and
    /// ordering) over the host's shared parts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        manifest: &ActorManifest,
        versions: Arc<dyn VersionSource>,
        store: Store,
        producer: Producer,
        metrics: Arc<Metrics>,
        settings: KafkaSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let state = store.actor_state(&manifest.name)?;
        let counters = ActorCounters::new(&metrics, &manifest.name);
        Ok(ActorContext {
            counters,
            state_changelog: std::sync::OnceLock::new(),
            state,
            name: manifest.name.clone(),
            group: manifest.group(),
            topics: manifest.topics.clone(),
            ordering: manifest.ordering,
            max_in_flight: manifest.max_in_flight,
            held: store.held(&manifest.name)?,
            dead_letters: store.dead_letters(),
            versions,
            store,
            producer,
            metrics,
            settings,
            clock,
            logs: Arc::default(),
        })
    }

    /// The retry changelog topic of this actor's group, when enabled.
    pub fn changelog_topic(&self) -> Option<String> {
        self.settings
            .retry_changelog
            .then(|| format!("{}.retries", self.group))
    }

    /// The state changelog topic of this actor's group, when enabled.
    pub fn state_changelog_topic(&self) -> Option<String> {
        self.settings
            .state_changelog
            .then(|| crate::state_changelog::state_topic(&self.group))
    }

    /// The topic re-driven dead letters of this actor are sent through.
    pub fn redrive_topic(&self) -> String {
        redrive_topic(&self.group)
    }
}

/// The re-drive topic of a consumer group.
pub fn redrive_topic(group: &str) -> String {
    format!("{group}.redrive")
}
