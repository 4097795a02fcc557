//! Replays as operators start, watch and cancel them (`wactor replay`,
//! `/v1/actors/{name}/replays`, `/v1/replays/{id}`).
//!
//! A replay runs on the host whose API started it: that host plans it
//! (the offsets of the range's ends) and feeds it (wactor-kafka's
//! `replay` module copies the range's records to `<group>.replay`); the
//! actor's consumers, on whichever hosts own the replay topic's
//! partitions, handle them. This module keeps the replays this host runs,
//! in memory: the last [`KEPT_REPLAYS`], at most [`MAX_RUNNING`] feeding
//! at once. A host that stops stops feeding its replays (what was fed is
//! handled); their status is gone with it, and a replay can be started
//! again from where it stopped (`--from` the last fed record's time).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use wactor_kafka::replay::{self, PartitionRange, ReplayProgress, ReplayRun, ReplaySpec};
use wactor_manifest::ActorManifest;

use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// Replays kept per host (finished ones beyond it are forgotten, oldest
/// first).
pub const KEPT_REPLAYS: usize = 100;

/// Replays feeding at once on one host.
pub const MAX_RUNNING: usize = 4;

/// What to replay, as asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayRequest {
    /// The range's start, ms since the Unix epoch (included).
    pub from_ms: i64,
    /// Its end, ms since the Unix epoch (excluded); `None`: up to now.
    pub to_ms: Option<i64>,
    /// One of the actor's topics (`None`: all of them).
    pub topic: Option<String>,
    /// One partition (`None`: all; needs `topic` when the actor has more
    /// than one).
    pub partition: Option<i32>,
    /// The version to run on (`None`: the active one).
    pub version: Option<u64>,
    /// Records per second at most.
    pub rate: Option<u32>,
    /// Plan only.
    pub dry_run: bool,
    /// Who asks.
    pub by: String,
}

/// A replay as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayView {
    /// What it replays.
    #[serde(flatten)]
    pub spec: ReplaySpec,
    /// Records in the ranges' offsets (an upper bound of what is fed:
    /// compaction and timestamps outside the range make it less).
    pub records_in_range: u64,
    /// Whether it was only planned.
    pub dry_run: bool,
    /// When it started, ms since the Unix epoch.
    pub started_at_ms: i64,
    /// Who started it.
    pub by: String,
    /// Its progress (a dry run's stays empty).
    pub progress: ReplayProgress,
}

impl ReplayView {
    fn of(run: &ReplayRun) -> Self {
        ReplayView {
            records_in_range: run.spec.ranges.iter().map(PartitionRange::len).sum(),
            spec: run.spec.clone(),
            dry_run: false,
            started_at_ms: run.started_at_ms,
            by: run.by.clone(),
            progress: run.progress(),
        }
    }
}

/// The replays this host runs.
#[derive(Debug, Default)]
pub(crate) struct Replays {
    runs: Mutex<VecDeque<Arc<ReplayRun>>>,
}

impl Replays {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<ReplayRun>>> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `run`, refusing when [`MAX_RUNNING`] feed already, and
    /// forgetting the oldest finished ones beyond [`KEPT_REPLAYS`].
    fn add(&self, run: Arc<ReplayRun>) -> Result<()> {
        let mut runs = self.lock();
        let running = runs
            .iter()
            .filter(|r| !r.progress().state.is_final())
            .count();
        if running >= MAX_RUNNING {
            return Err(RegistryError::BadRequest(format!(
                "{running} replays are running on this host (at most {MAX_RUNNING}): wait for one or cancel one"
            )));
        }
        runs.push_back(run);
        while runs.len() > KEPT_REPLAYS {
            match runs.iter().position(|r| r.progress().state.is_final()) {
                Some(i) => {
                    runs.remove(i);
                }
                None => break,
            }
        }
        Ok(())
    }

    fn find(&self, id: &str) -> Option<Arc<ReplayRun>> {
        self.lock().iter().find(|r| r.spec.id == id).cloned()
    }

    pub(crate) fn of_actor(&self, actor: &str) -> Vec<Arc<ReplayRun>> {
        self.lock()
            .iter()
            .filter(|r| r.spec.actor == actor)
            .cloned()
            .collect()
    }
}

impl Registry {
    /// Plans a replay of `actor`'s records in `[from, to)` and, unless
    /// `dry_run`, starts feeding it in the background.
    ///
    /// # Errors
    /// [`RegistryError::UnknownActor`]; [`RegistryError::UnknownVersion`]
    /// for a `version` the actor does not have;
    /// [`RegistryError::BadRequest`] for `from` not before `to`, a `rate`
    /// of 0, a topic the actor does not read, a partition without a topic
    /// (actors of several topics), or too many replays running;
    /// [`RegistryError::Kafka`] when the offsets cannot be read (a
    /// partition the topic does not have is a bad request).
    pub async fn start_replay(&self, actor: &str, request: ReplayRequest) -> Result<ReplayView> {
        let record = self.actor(actor)?;
        let manifest = ActorManifest::parse(&record.manifest_toml)?;
        let now = self.parts().clock.now_ms();
        let to_ms = request.to_ms;
        if request.from_ms < 0 || to_ms.is_some_and(|to| to < 0) {
            return Err(RegistryError::BadRequest(
                "times before 1970-01-01T00:00:00Z are not record timestamps".into(),
            ));
        }
        if to_ms.is_some_and(|to| to <= request.from_ms) {
            return Err(RegistryError::BadRequest(
                "from must be before to (the range is [from, to))".into(),
            ));
        }
        if request.from_ms > now {
            return Err(RegistryError::BadRequest(
                "from is in the future: nothing to replay".into(),
            ));
        }
        if request.rate == Some(0) {
            return Err(RegistryError::BadRequest(
                "rate must be at least 1 record per second".into(),
            ));
        }
        if let Some(version) = request.version {
            let known = self
                .versions(actor)?
                .iter()
                .any(|v| v.record.version == version);
            if !known {
                return Err(RegistryError::UnknownVersion {
                    actor: actor.to_string(),
                    version,
                });
            }
        }
        let topics = match &request.topic {
            Some(topic) if manifest.topics.contains(topic) => vec![topic.clone()],
            Some(topic) => {
                // Kafka topic names are at most 249 characters: a longer
                // one is not echoed back whole.
                let shown: String = topic.chars().take(249).collect();
                let more = if shown.len() < topic.len() { "..." } else { "" };
                return Err(RegistryError::BadRequest(format!(
                    "{actor} does not read {shown:?}{more} (its topics: {})",
                    manifest.topics.join(", ")
                )));
            }
            None if request.partition.is_some() && manifest.topics.len() > 1 => {
                return Err(RegistryError::BadRequest(
                    "--partition needs --topic: the actor reads several topics".into(),
                ))
            }
            None => manifest.topics.clone(),
        };
        let settings = self.parts().kafka.clone();
        let partitions = request.partition.map(|p| vec![p]);
        let from_ms = request.from_ms;
        let ranges = tokio::task::spawn_blocking(move || {
            replay::plan(&settings, &topics, partitions.as_deref(), from_ms, to_ms)
        })
        .await
        .map_err(|e| RegistryError::Internal(e.to_string()))?
        .map_err(|e| match e {
            wactor_kafka::KafkaError::Topics(why) => RegistryError::BadRequest(why),
            other => RegistryError::Kafka(other),
        })?;
        let spec = ReplaySpec {
            id: format!("replay-{}", uuid_like(now)),
            actor: actor.to_string(),
            group: manifest.group(),
            from_ms,
            to_ms,
            version: request.version,
            rate: request.rate,
            ranges,
        };
        let run = Arc::new(ReplayRun::new(spec, now, request.by.clone()));
        if request.dry_run {
            let mut view = ReplayView::of(&run);
            view.dry_run = true;
            return Ok(view);
        }
        let replay_partitions = self.parts().kafka.changelog_partitions;
        wactor_kafka::admin::ensure_topics(
            &self.parts().kafka,
            &[wactor_kafka::admin::TopicSpec::plain(
                replay::replay_topic(&run.spec.group),
                replay_partitions,
            )],
        )
        .await?;
        let settings = self.parts().kafka.clone();
        let topic = replay::replay_topic(&run.spec.group);
        let partitions = tokio::task::spawn_blocking(move || {
            wactor_kafka::admin::partition_count(&settings, &topic)
        })
        .await
        .map_err(|e| RegistryError::Internal(e.to_string()))??
        .unwrap_or(replay_partitions);
        // Registered once its topic is there, so a failure above leaves
        // no run holding a slot.
        self.replays.add(run.clone())?;
        tracing::info!(
            replay = %run.spec.id, actor, from_ms, to_ms = ?to_ms, version = ?request.version,
            rate = ?request.rate, by = %request.by,
            records_in_range = run.spec.ranges.iter().map(PartitionRange::len).sum::<u64>(),
            "replay started"
        );
        tokio::spawn(replay::feed(
            run.clone(),
            self.parts().kafka.clone(),
            self.parts().producer.clone(),
            partitions,
        ));
        Ok(ReplayView::of(&run))
    }

    /// The replays of `actor` this host runs or ran, oldest first.
    ///
    /// # Errors
    /// [`RegistryError::UnknownActor`].
    pub fn replays(&self, actor: &str) -> Result<Vec<ReplayView>> {
        self.actor(actor)?;
        Ok(self
            .replays
            .of_actor(actor)
            .iter()
            .map(|r| ReplayView::of(r))
            .collect())
    }

    /// One replay this host runs or ran.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] (another host's replay is not known
    /// here).
    pub fn replay(&self, id: &str) -> Result<ReplayView> {
        self.replays
            .find(id)
            .map(|r| ReplayView::of(&r))
            .ok_or_else(|| RegistryError::NotFound {
                what: "replay",
                id: id.to_string(),
            })
    }

    /// Cancels a replay: nothing more is fed; what was fed is handled.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`]; [`RegistryError::Stale`] when it had
    /// stopped already.
    pub fn cancel_replay(&self, id: &str) -> Result<ReplayView> {
        let run = self
            .replays
            .find(id)
            .ok_or_else(|| RegistryError::NotFound {
                what: "replay",
                id: id.to_string(),
            })?;
        if !run.cancel() {
            return Err(RegistryError::Stale(format!(
                "replay {id} has stopped already ({:?})",
                run.progress().state
            )));
        }
        tracing::info!(replay = %id, "replay cancelled");
        Ok(ReplayView::of(&run))
    }
}

/// A replay id: the start time and random bits, sortable by time.
fn uuid_like(now_ms: i64) -> String {
    format!("{now_ms:x}-{:08x}", rand::random::<u32>())
}
