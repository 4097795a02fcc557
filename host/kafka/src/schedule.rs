//! Firing an actor's schedules (`[[schedules]]` in its manifest) through
//! Kafka, once per cluster.
//!
//! Each firing is a record on the group's topic `<group>.schedule`
//! (partition 0; [`schedule_topic`]), which the actor's consumer reads like
//! any of its topics: ordering, retries, dead letters and re-drive apply
//! unchanged. The record's key and value come from the schedule's
//! templates; its headers say which schedule and occurrence it is
//! ([`HEADER_SCHEDULE`], [`HEADER_SCHEDULED_TIME`], [`HEADER_FIRING_ID`]).
//!
//! Who fires: the host whose consumer owns partition 0 of that topic (the
//! group's assignment decides, so one host fires however many run the
//! actor). Its partition worker starts the firing loop ([`spawn`]) after it
//! restored the partition and stops it when the partition is revoked,
//! before it lets the partition go: a firing being written is acknowledged
//! first, so the next owner, which reads the topic when it starts, sees it. The
//! loop first reads the topic to its end to learn the last occurrence fired
//! of each schedule (the topic is the schedules' state: nothing is kept on
//! disk), then fires what is due by the catch-up policy
//! (wactor-delivery's `Schedule::due`), and sleeps until the next
//! occurrence. A schedule with no firing in the topic (new, or its records
//! expired) fires from the loop's start on: nothing in the past.
//!
//! A firing record written twice (a stalled owner that kept firing after it
//! lost the partition) is skipped by the partition worker, which handles
//! each schedule's occurrences in increasing order only ([`Firings`]);
//! a backfill ([`backfill_records`]) is exempt (header [`HEADER_BACKFILL`]).
//!
//! What it does not do: parse cron expressions or templates
//! (wactor-delivery), or run the actor (the partition worker).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use wactor_delivery::schedule::{parse_firing_id, Firing, Schedule};
use wactor_runtime::Event;

use crate::actor::ActorContext;
use crate::error::{KafkaError, Result};
use crate::producer::OutRecord;
use crate::settings::KafkaSettings;

/// The partition firings are written to and fired by.
pub const SCHEDULE_PARTITION: i32 = 0;

/// Header: the schedule's name.
pub const HEADER_SCHEDULE: &str = "wactor-schedule";
/// Header: the occurrence, RFC 3339 in the schedule's time zone.
pub const HEADER_SCHEDULED_TIME: &str = "wactor-scheduled-time";
/// Header: the firing's id, `<schedule>@<ms since the epoch>`.
pub const HEADER_FIRING_ID: &str = "wactor-firing-id";
/// Header (`true`): the firing was asked for by a backfill.
pub const HEADER_BACKFILL: &str = "wactor-backfill";

/// How long reading the topic for the last firings may take.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the loop looks at the active version's schedules again even
/// when no occurrence is due (a deploy may have changed them).
const RECHECK: Duration = Duration::from_secs(1);

/// The schedule topic of a consumer group: `<group>.schedule`.
pub fn schedule_topic(group: &str) -> String {
    format!("{group}.schedule")
}

/// The record of `firing` on `topic`.
pub fn firing_record(topic: &str, firing: &Firing, backfill: bool) -> OutRecord {
    let mut headers = vec![
        (
            HEADER_SCHEDULE.to_string(),
            Some(firing.schedule.clone().into_bytes()),
        ),
        (
            HEADER_SCHEDULED_TIME.to_string(),
            Some(firing.scheduled_time.clone().into_bytes()),
        ),
        (
            HEADER_FIRING_ID.to_string(),
            Some(firing.id.clone().into_bytes()),
        ),
    ];
    if backfill {
        headers.push((HEADER_BACKFILL.to_string(), Some(b"true".to_vec())));
    }
    OutRecord {
        topic: topic.to_string(),
        partition: Some(SCHEDULE_PARTITION),
        key: Some(firing.key.clone().into_bytes()),
        payload: Some(firing.payload.clone().into_bytes()),
        headers,
    }
}

/// The records of a backfill: a firing of `schedule` for each occurrence
/// in `[from_ms, to_ms]`, marked [`HEADER_BACKFILL`].
///
/// # Errors
/// [`KafkaError::Topics`] with the reason when the range holds more than
/// wactor-delivery's `MAX_OCCURRENCES`, or a template fails.
pub fn backfill_records(
    topic: &str,
    schedule: &Schedule,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(Firing, OutRecord)>> {
    let occurrences = schedule
        .occurrences(from_ms.saturating_sub(1), to_ms)
        .map_err(|e| KafkaError::Topics(e.to_string()))?;
    occurrences
        .into_iter()
        .map(|at| {
            let firing = schedule
                .render(at)
                .map_err(|e| KafkaError::Topics(e.to_string()))?;
            let record = firing_record(topic, &firing, true);
            Ok((firing, record))
        })
        .collect()
}

/// The firing id and whether it is a backfill, from an event's headers.
fn firing_of(event: &Event) -> Option<(String, i64, bool)> {
    let mut id = None;
    let mut backfill = false;
    for (name, value) in &event.headers {
        match name.as_str() {
            HEADER_FIRING_ID => id = value.as_deref().and_then(|v| std::str::from_utf8(v).ok()),
            HEADER_BACKFILL => backfill = value.as_deref() == Some(b"true".as_slice()),
            _ => {}
        }
    }
    let (schedule, at) = parse_firing_id(id?)?;
    Some((schedule.to_string(), at, backfill))
}

/// The occurrences a schedule partition's worker handled, per schedule:
/// an occurrence at or before the last one handled is a duplicate record.
#[derive(Debug, Default)]
pub struct Firings {
    last: HashMap<String, i64>,
}

/// How far after now a firing may be dated and still count (clocks of
/// hosts differ a little): 60 s.
const FUTURE_SLACK_MS: i64 = 60_000;

/// Most schedules a worker remembers (more than any manifest may have).
const MAX_REMEMBERED: usize = 1_000;

impl Firings {
    /// Whether `event` (of the schedule topic) is to be handled: false for
    /// a firing at or before the last handled of its schedule (not a
    /// backfill). Records it as handled otherwise, unless it is dated
    /// after `now_ms` (plus a minute): a record forged with a far future
    /// time must not make the real firings look old.
    pub fn take(&mut self, event: &Event, now_ms: i64) -> bool {
        let Some((schedule, at, backfill)) = firing_of(event) else {
            return true;
        };
        if backfill || at > now_ms.saturating_add(FUTURE_SLACK_MS) {
            return true;
        }
        match self.last.get(&schedule) {
            Some(last) if at <= *last => false,
            _ => {
                if self.last.len() >= MAX_REMEMBERED && !self.last.contains_key(&schedule) {
                    self.last.clear();
                }
                self.last.insert(schedule, at);
                true
            }
        }
    }
}

/// The last occurrence fired on time of each schedule (backfills, and
/// firings dated after `now_ms`, are not counted), read from partition 0
/// of `topic` (from its first record kept to its end). Blocking.
///
/// # Errors
/// [`KafkaError`] when the topic cannot be read within 60 s.
pub fn last_firings(
    settings: &KafkaSettings,
    topic: &str,
    now_ms: i64,
) -> Result<HashMap<String, i64>> {
    let consumer: BaseConsumer = settings.reader_config().create()?;
    let (low, high) = consumer
        .fetch_watermarks(topic, SCHEDULE_PARTITION, Duration::from_secs(10))
        .map_err(|e| KafkaError::Topics(format!("cannot read the end of {topic}: {e}")))?;
    let mut last = HashMap::new();
    if high <= low {
        return Ok(last);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, SCHEDULE_PARTITION, Offset::Offset(low))?;
    consumer.assign(&tpl)?;
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    loop {
        if std::time::Instant::now() > deadline {
            return Err(KafkaError::Topics(format!(
                "{topic} not read to its end ({high}) within {} s",
                READ_TIMEOUT.as_secs()
            )));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message?;
        if let Some(headers) = message.headers() {
            // Backfills fire the past on request: not what the schedule
            // fired on time.
            let backfill = headers
                .iter()
                .any(|h| h.key == HEADER_BACKFILL && h.value == Some(b"true".as_slice()));
            let parsed = headers
                .iter()
                .find(|h| h.key == HEADER_FIRING_ID)
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(parse_firing_id);
            // A firing dated in the future (forged, or a clock far ahead)
            // would stop the schedule until then: not counted.
            let parsed = parsed.filter(|(_, at)| *at <= now_ms.saturating_add(FUTURE_SLACK_MS));
            if let (false, Some((schedule, at))) = (backfill, parsed) {
                let entry = last.entry(schedule.to_string()).or_insert(at);
                *entry = (*entry).max(at);
            }
        }
        if message.offset() >= high - 1 {
            return Ok(last);
        }
    }
}

/// How long [`FiringLoop::stop`] waits for a firing being written.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A running firing loop (see [`spawn`]).
pub struct FiringLoop {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FiringLoop {
    /// Stops the loop once the firing it is writing (if any) is
    /// acknowledged, so that the partition's next owner, which reads the
    /// topic when it starts, sees it; aborts it after 5 s.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_WAIT, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for FiringLoop {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts the firing loop of `ctx`'s actor (see the module docs); it runs
/// until [`FiringLoop::stop`] (the partition worker's stop) or until
/// dropped (aborted).
pub fn spawn(ctx: Arc<ActorContext>) -> FiringLoop {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move { fire_until_stopped(ctx, stopped).await });
    FiringLoop {
        stop,
        task: Some(task),
    }
}

async fn fire_until_stopped(
    ctx: Arc<ActorContext>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let topic = schedule_topic(&ctx.group);
    let mut last = loop {
        let settings = ctx.settings.clone();
        let read_topic = topic.clone();
        let now = ctx.clock.now_ms();
        match tokio::task::spawn_blocking(move || last_firings(&settings, &read_topic, now)).await {
            Ok(Ok(last)) => break last,
            Ok(Err(err)) => {
                tracing::warn!(actor = %ctx.name, %topic, error = %err, "cannot read the last firings; retrying");
            }
            Err(err) => {
                tracing::warn!(actor = %ctx.name, %topic, error = %err, "cannot read the last firings; retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RECHECK) => {}
            _ = stopped.changed() => return,
        }
    };
    let started = ctx.clock.now_ms();
    tracing::info!(actor = %ctx.name, %topic, known = last.len(), "firing the actor's schedules on this host");
    let owner = ctx.metrics.schedule_owner.with_label_values(&[&ctx.name]);
    owner.set(1);
    // Back to 0 when the loop ends (aborted with its worker).
    struct NotOwner(prometheus::IntGauge);
    impl Drop for NotOwner {
        fn drop(&mut self) {
            self.0.set(0);
        }
    }
    let _owner = NotOwner(owner);
    loop {
        let schedules: Vec<Schedule> = ctx
            .versions
            .current()
            .map(|v| {
                v.manifest
                    .schedules
                    .iter()
                    .filter_map(|spec| Schedule::parse(spec.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        let now = ctx.clock.now_ms();
        let mut wake = now.saturating_add(i64::try_from(RECHECK.as_millis()).unwrap_or(1000));
        for schedule in &schedules {
            let name = schedule.name().to_string();
            let from = last.get(&name).copied().unwrap_or(started);
            for at in schedule.due(from, now) {
                if *stopped.borrow() {
                    return;
                }
                if !fire(&ctx, &topic, schedule, at).await {
                    // Not written: tried again at the next round.
                    wake = now.saturating_add(1000);
                    break;
                }
                last.insert(name.clone(), at);
            }
            if let Some(next) = schedule.next_after(now) {
                wake = wake.min(next);
            }
        }
        tokio::select! {
            () = ctx.clock.sleep_until_ms(wake) => {}
            () = tokio::time::sleep(RECHECK) => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
    }
}

/// Writes the firing of `schedule` at `at_ms`; false (logged) when it
/// could not be written.
async fn fire(ctx: &ActorContext, topic: &str, schedule: &Schedule, at_ms: i64) -> bool {
    let firing = match schedule.render(at_ms) {
        Ok(firing) => firing,
        Err(err) => {
            tracing::error!(actor = %ctx.name, schedule = schedule.name(), error = %err, "cannot render a firing");
            return false;
        }
    };
    match ctx
        .producer
        .send(&firing_record(topic, &firing, false))
        .await
    {
        Ok(_) => {
            ctx.metrics
                .schedule_firings_total
                .with_label_values(&[&ctx.name, schedule.name()])
                .inc();
            tracing::info!(
                actor = %ctx.name, schedule = schedule.name(), firing = %firing.id,
                scheduled_time = %firing.scheduled_time, "schedule fired"
            );
            true
        }
        Err(err) => {
            tracing::warn!(actor = %ctx.name, schedule = schedule.name(), error = %err, "cannot write a firing; retrying");
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn event(headers: &[(&str, &str)]) -> Event {
        Event {
            topic: "g.schedule".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: None,
            payload: None,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), Some(v.as_bytes().to_vec())))
                .collect(),
            attempt: 1,
        }
    }

    #[test]
    fn a_duplicate_or_older_firing_is_skipped_and_a_backfill_never_is() {
        let now = 1_000;
        let mut firings = Firings::default();
        assert!(firings.take(&event(&[(HEADER_FIRING_ID, "a@100")]), now));
        assert!(!firings.take(&event(&[(HEADER_FIRING_ID, "a@100")]), now));
        assert!(!firings.take(&event(&[(HEADER_FIRING_ID, "a@50")]), now));
        assert!(firings.take(&event(&[(HEADER_FIRING_ID, "b@50")]), now));
        // A forged far-future firing is handled but does not count.
        let forged = format!("a@{}", i64::MAX);
        assert!(firings.take(&event(&[(HEADER_FIRING_ID, forged.as_str())]), now));
        assert!(firings.take(&event(&[(HEADER_FIRING_ID, "a@200")]), now));
        assert!(firings.take(
            &event(&[(HEADER_FIRING_ID, "a@10"), (HEADER_BACKFILL, "true")]),
            now
        ));
        // Not a firing (a record someone else wrote): handled.
        assert!(firings.take(&event(&[]), now));
        assert!(firings.take(&event(&[(HEADER_FIRING_ID, "garbage")]), now));
    }
}
