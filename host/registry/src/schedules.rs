//! An actor's schedules as operators see them (`wactor schedule list`: next
//! and last firing) and backfills (`wactor schedule backfill`: fire every
//! occurrence of a past range now).
//!
//! Firing on time is the owner of `<group>.schedule`'s job (wactor-kafka's
//! `schedule` module); this module reads that topic for the last firings
//! and writes backfill firings to it. Any host answers.

use serde::{Deserialize, Serialize};
use wactor_delivery::schedule::{Schedule, ScheduleSpec, MAX_OCCURRENCES};
use wactor_kafka::schedule::{backfill_records, last_firings, schedule_topic};
use wactor_manifest::ActorManifest;

use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// One schedule of an actor's active version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleView {
    /// The schedule as the manifest gives it.
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// The next occurrence after now (ms since the Unix epoch).
    pub next_at_ms: Option<i64>,
    /// The last occurrence fired (from `<group>.schedule`; `None` when it
    /// holds none, or could not be read: see `last_error`).
    pub last_fired_at_ms: Option<i64>,
    /// Why the last firing is unknown, when the topic could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a backfill did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackfillReport {
    /// The schedule.
    pub schedule: String,
    /// Occurrences in the range.
    pub matched: usize,
    /// Firings written (0 for a dry run).
    pub fired: usize,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// The occurrences, RFC 3339 in the schedule's time zone (the first
    /// 1000).
    pub scheduled_times: Vec<String>,
}

impl Registry {
    /// The active manifest's schedules of `actor`, checked.
    fn actor_schedules(&self, actor: &str) -> Result<(ActorManifest, Vec<Schedule>)> {
        let record = self.actor(actor)?;
        let manifest = ActorManifest::parse(&record.manifest_toml)?;
        let schedules = manifest
            .schedules
            .iter()
            .map(|spec| {
                Schedule::parse(spec.clone()).map_err(|e| RegistryError::BadRequest(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((manifest, schedules))
    }

    /// `actor`'s schedules with their next and last firing.
    ///
    /// # Errors
    /// [`RegistryError::UnknownActor`]; [`RegistryError::Manifest`] for a
    /// stored manifest that no longer parses.
    pub async fn schedules(&self, actor: &str) -> Result<Vec<ScheduleView>> {
        let (manifest, schedules) = self.actor_schedules(actor)?;
        if schedules.is_empty() {
            return Ok(Vec::new());
        }
        let settings = self.parts().kafka.clone();
        let topic = schedule_topic(&manifest.group());
        let now = self.parts().clock.now_ms();
        let last = tokio::task::spawn_blocking(move || last_firings(&settings, &topic, now))
            .await
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        let now = self.parts().clock.now_ms();
        Ok(schedules
            .into_iter()
            .map(|schedule| {
                let (last_fired_at_ms, last_error) = match &last {
                    Ok(last) => (last.get(schedule.name()).copied(), None),
                    Err(err) => (None, Some(err.to_string())),
                };
                ScheduleView {
                    next_at_ms: schedule.next_after(now),
                    spec: schedule.spec().clone(),
                    last_fired_at_ms,
                    last_error,
                }
            })
            .collect())
    }

    /// Fires every occurrence of `actor`'s schedule `name` in `[from,
    /// to]` now, oldest first, as records of `<group>.schedule` marked as
    /// a backfill (the actor sees the occurrence's time in the headers and
    /// the payload, as on time). Bounds are RFC 3339 times or dates in the
    /// schedule's time zone (`to` a date means its whole day).
    ///
    /// # Errors
    /// [`RegistryError::UnknownActor`]; [`RegistryError::NotFound`] for a
    /// schedule the active version does not have;
    /// [`RegistryError::BadRequest`] for bad bounds, `from` after `to`, or
    /// more than 10,000 occurrences; [`RegistryError::Kafka`] when a firing
    /// cannot be written (those before it were).
    pub async fn backfill(
        &self,
        actor: &str,
        name: &str,
        from: &str,
        to: &str,
        dry_run: bool,
    ) -> Result<BackfillReport> {
        let (manifest, schedules) = self.actor_schedules(actor)?;
        let schedule = schedules
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| RegistryError::NotFound {
                what: "schedule",
                id: name.to_string(),
            })?;
        let bad =
            |e: wactor_delivery::schedule::ScheduleError| RegistryError::BadRequest(e.to_string());
        let from_ms = schedule.bound_ms(from, false).map_err(bad)?;
        let to_ms = schedule.bound_ms(to, true).map_err(bad)?;
        if from_ms > to_ms {
            return Err(RegistryError::BadRequest(format!(
                "from ({from}) is after to ({to})"
            )));
        }
        let topic = schedule_topic(&manifest.group());
        let records = backfill_records(&topic, &schedule, from_ms, to_ms).map_err(|e| {
            RegistryError::BadRequest(format!(
                "{e} (at most {MAX_OCCURRENCES} per backfill: split the range)"
            ))
        })?;
        let mut report = BackfillReport {
            schedule: name.to_string(),
            matched: records.len(),
            dry_run,
            scheduled_times: records
                .iter()
                .take(1000)
                .map(|(f, _)| f.scheduled_time.clone())
                .collect(),
            ..BackfillReport::default()
        };
        if dry_run {
            return Ok(report);
        }
        if !records.is_empty() {
            wactor_kafka::admin::ensure_topics(
                &self.parts().kafka,
                &[wactor_kafka::admin::TopicSpec::plain(&topic, 1)],
            )
            .await?;
        }
        for (firing, record) in records {
            self.parts().producer.send(&record).await?;
            report.fired += 1;
            tracing::info!(actor, schedule = name, firing = %firing.id, "backfill firing written");
        }
        Ok(report)
    }
}
