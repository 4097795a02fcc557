//! Replay: past records of an actor's topics fed through the actor again.
//!
//! A replay is a range of time (`[from, to)`, record timestamps) over some
//! of an actor's topic partitions. It is planned ([`plan`]: the offsets of
//! the range's ends, through Kafka's ListOffsets by time, with a binary
//! search on record timestamps where the broker cannot answer that) and
//! then fed ([`feed`]): each record of the range is copied, key, value and
//! headers unchanged, to the actor's replay topic `<group>.replay`
//! (partition = source partition mod the replay topic's count, so the
//! records of a key stay in their order), with headers saying what it is a
//! replay of ([`REPLAY_HEADER`], [`REPLAY_OF_HEADER`], ...). The actor's
//! consumer reads the replay topic like its re-drive topic: its own
//! partitions, lanes and offsets, so live events of the actor's topics go
//! on undisturbed. The worker presents a replayed record as the original
//! event ([`presented`]: its topic, partition, offset and timestamp, with
//! the [`REPLAY_HEADER`]), so its state scope is the original partition's
//! and its retries, dead letters and re-drives are the usual ones.
//!
//! The feeder stays at most [`MAX_UNHANDLED`] records ahead of what the
//! actor's group has committed on the replay topic (handled: done,
//! dead-lettered or held for a retry), so a cancel takes effect within
//! that many records and the replay topic never holds a copy of a whole
//! topic. It reads and produces a batch while the acknowledgements of up
//! to four earlier batches are on their way (a record is counted as fed
//! once acknowledged), and awaits every batch it handed to the producer
//! before it stops, whatever stops it.
//!
//! It does not decide who may start a replay or keep the jobs
//! (wactor-registry's `replays`), and it does not run the actor (the
//! partition worker).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use wactor_runtime::Event;

use crate::error::{KafkaError, Result};
use crate::producer::{max_message_bytes, Delivery, OutRecord, Producer};
use crate::settings::KafkaSettings;

/// Header of a replayed record and of the records its handling emits: the
/// replay's id.
pub const REPLAY_HEADER: &str = "wactor-replay";
/// Header of a record on the replay topic: the original record,
/// `topic/partition/offset`.
pub const REPLAY_OF_HEADER: &str = "wactor-replay-of";
/// Header of a record on the replay topic: the original record's
/// timestamp, ms since the Unix epoch (absent when it had none).
pub const REPLAY_TIMESTAMP_HEADER: &str = "wactor-replay-timestamp";
/// Header of a record on the replay topic: the version to run it on
/// (absent: the active one).
pub const REPLAY_VERSION_HEADER: &str = "wactor-replay-version";

/// Records fed and not yet handled, at most, per replay.
pub const MAX_UNHANDLED: u64 = 10_000;

/// Records read from a source partition per batch.
const READ_BATCH: usize = 256;

/// How long a read may find nothing before the replay fails.
const READ_STALL: Duration = Duration::from_secs(30);

/// How long a ListOffsets or a metadata request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The replay topic of a consumer group.
pub fn replay_topic(group: &str) -> String {
    format!("{group}.replay")
}

fn header<'a>(event: &'a Event, name: &str) -> Option<&'a [u8]> {
    event
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

/// The version a record of the replay topic asks to run on (`None`: the
/// active one, or a header that is not a number).
pub fn version_of(raw: &Event) -> Option<u64> {
    header(raw, REPLAY_VERSION_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
}

/// Whether a live record (not of the replay topic) carries replay
/// headers, which only the replay feeder may set: a producer of the
/// actor's topics could otherwise make a live event look like a replay to
/// an actor that skips side effects on replays. Such headers are dropped
/// by [`strip_forged`].
pub fn has_replay_headers(raw: &Event) -> bool {
    raw.headers
        .iter()
        .any(|(n, _)| n.starts_with(REPLAY_HEADER))
}

/// `raw` without any `wactor-replay*` header (see [`has_replay_headers`]).
pub fn strip_forged(raw: &Event) -> Event {
    let mut event = raw.clone();
    event.headers.retain(|(n, _)| !n.starts_with(REPLAY_HEADER));
    event
}

/// The event the actor sees for a record `raw` of the replay topic, at
/// attempt `attempt`: the original record's topic, partition, offset and
/// timestamp, its key, value and headers, and [`REPLAY_HEADER`] (the
/// replay topic's own headers removed).
///
/// # Errors
/// Says why `raw` is not a replayed record (no or a malformed
/// [`REPLAY_OF_HEADER`], no [`REPLAY_HEADER`]).
pub fn presented(raw: &Event, attempt: u32) -> std::result::Result<Event, String> {
    if header(raw, REPLAY_HEADER).is_none() {
        return Err(format!("not a replayed record: no {REPLAY_HEADER} header"));
    }
    let of = header(raw, REPLAY_OF_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .ok_or_else(|| format!("not a replayed record: no {REPLAY_OF_HEADER} header"))?;
    let bad = || {
        format!("not a replayed record: {REPLAY_OF_HEADER} = {of:?} is not topic/partition/offset")
    };
    let mut parts = of.rsplitn(3, '/');
    let offset: i64 = parts.next().and_then(|o| o.parse().ok()).ok_or_else(bad)?;
    let partition: i32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let topic = parts
        .next()
        .filter(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .ok_or_else(bad)?;
    if offset < 0 || partition < 0 {
        return Err(bad());
    }
    let timestamp_ms = header(raw, REPLAY_TIMESTAMP_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok());
    Ok(Event {
        topic: topic.to_string(),
        partition,
        offset,
        timestamp_ms,
        key: raw.key.clone(),
        payload: raw.payload.clone(),
        headers: raw
            .headers
            .iter()
            .filter(|(n, _)| {
                n != REPLAY_OF_HEADER && n != REPLAY_TIMESTAMP_HEADER && n != REPLAY_VERSION_HEADER
            })
            .cloned()
            .collect(),
        attempt,
    })
}

/// The offsets of a replay's range in one source partition:
/// `[start_offset, end_offset)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRange {
    /// The source topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The first offset whose record is at or after `from`.
    pub start_offset: i64,
    /// The first offset whose record is at or after `to` (or the
    /// partition's end when the replay was planned, without `to`).
    pub end_offset: i64,
}

impl PartitionRange {
    /// Offsets in the range (records, less what compaction removed).
    pub fn len(&self) -> u64 {
        u64::try_from(self.end_offset.saturating_sub(self.start_offset)).unwrap_or(0)
    }

    /// Whether the range holds no offset.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Plans a replay of `[from_ms, to_ms)` over `partitions` of each of
/// `topics` (all partitions when `None`): the offsets of each range's ends.
/// Without `to_ms`, a range ends at the partition's end now, so records
/// produced after planning are live events, not replayed ones. Blocking
/// (Kafka requests): call it from `spawn_blocking`.
///
/// Offsets for times come from ListOffsets; where the broker answers "no
/// such record" although the partition's last record is at or after the
/// time (librdkafka's mock cluster does), from a binary search over
/// record timestamps, which assumes they do not decrease within the
/// partition (as Kafka's own time index does).
///
/// # Errors
/// [`KafkaError::Topics`] for a topic that does not exist or a partition
/// it does not have; [`KafkaError::Client`] when the broker cannot be
/// asked.
pub fn plan(
    settings: &KafkaSettings,
    topics: &[String],
    partitions: Option<&[i32]>,
    from_ms: i64,
    to_ms: Option<i64>,
) -> Result<Vec<PartitionRange>> {
    let consumer: BaseConsumer = settings.reader_config().create()?;
    let mut ranges = Vec::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len());
        if count == 0 {
            return Err(KafkaError::Topics(format!("topic {topic} does not exist")));
        }
        let count = i32::try_from(count).unwrap_or(i32::MAX);
        let wanted: Vec<i32> = match partitions {
            Some(list) => {
                if let Some(bad) = list.iter().find(|p| **p < 0 || **p >= count) {
                    return Err(KafkaError::Topics(format!(
                        "{topic} has no partition {bad} (it has {count})"
                    )));
                }
                list.to_vec()
            }
            None => (0..count).collect(),
        };
        for partition in wanted {
            let (low, high) = consumer.fetch_watermarks(topic, partition, REQUEST_TIMEOUT)?;
            let start_offset = offset_for_time(&consumer, topic, partition, low, high, from_ms)?;
            let end_offset = match to_ms {
                Some(to) => offset_for_time(&consumer, topic, partition, low, high, to)?,
                None => high,
            };
            ranges.push(PartitionRange {
                topic: topic.clone(),
                partition,
                start_offset,
                end_offset: end_offset.max(start_offset),
            });
        }
    }
    Ok(ranges)
}

/// The first offset in `[low, high)` whose record's timestamp is at or
/// after `ms`, `high` when none is.
fn offset_for_time(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    low: i64,
    high: i64,
    ms: i64,
) -> Result<i64> {
    if high <= low {
        return Ok(high.max(low));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(ms))?;
    let answer = consumer.offsets_for_times(tpl, REQUEST_TIMEOUT)?;
    let found = answer
        .find_partition(topic, partition)
        .and_then(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        });
    if let Some(offset) = found {
        let offset = offset.clamp(low, high);
        if answer_holds(consumer, topic, partition, low, high, ms, offset)? {
            return Ok(offset);
        }
        tracing::warn!(
            topic,
            partition,
            ms,
            offset,
            "the broker's offset for a time does not match the records; searching the partition"
        );
    }
    // "No record at or after ms", or a wrong answer: check against the
    // last record, and search.
    match record_at(consumer, topic, partition, high - 1, high)? {
        Some((_, ts)) if ts >= ms => {}
        _ => return Ok(high),
    }
    let (mut lo, mut hi) = (low, high - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match record_at(consumer, topic, partition, mid, high)? {
            Some((offset, ts)) if ts < ms => lo = offset + 1,
            Some((offset, _)) => hi = offset.min(hi),
            None => hi = mid,
        }
        if hi < lo {
            hi = lo;
        }
    }
    Ok(lo)
}

/// Whether `offset`, a broker's answer to "first offset at or after
/// `ms`", matches the records around it: the record at `offset` is not
/// older than `ms` and the one before it is. Kafka answers this exactly;
/// Tansu 0.6 answers 0 for every time, so the answer is checked (two
/// reads) rather than trusted.
fn answer_holds(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    low: i64,
    high: i64,
    ms: i64,
    offset: i64,
) -> Result<bool> {
    if offset < high {
        if let Some((_, ts)) = record_at(consumer, topic, partition, offset, high)? {
            if ts < ms {
                return Ok(false);
            }
        }
    }
    if offset > low {
        if let Some((at, ts)) = record_at(consumer, topic, partition, offset - 1, high)? {
            if at < offset && ts >= ms {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The offset and timestamp of the first record at or after `offset`
/// (before `high`).
fn record_at(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
    high: i64,
) -> Result<Option<(i64, i64)>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    consumer.assign(&tpl)?;
    let started = Instant::now();
    while started.elapsed() < REQUEST_TIMEOUT {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            if position_reached(consumer, topic, partition, high) {
                return Ok(None);
            }
            continue;
        };
        let message = message?;
        if message.offset() < offset {
            continue;
        }
        let ts = message.timestamp().to_millis().unwrap_or(i64::MIN);
        return Ok(Some((message.offset(), ts)));
    }
    Err(KafkaError::Topics(format!(
        "no record of {topic}[{partition}] at offset {offset} within {REQUEST_TIMEOUT:?}"
    )))
}

fn position_reached(consumer: &BaseConsumer, topic: &str, partition: i32, end: i64) -> bool {
    consumer
        .position()
        .ok()
        .and_then(|tpl| {
            tpl.find_partition(topic, partition)
                .and_then(|e| e.offset().to_raw())
        })
        .is_some_and(|position| position >= end)
}

/// What to replay, planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaySpec {
    /// The replay's id (the [`REPLAY_HEADER`] value).
    pub id: String,
    /// The actor.
    pub actor: String,
    /// Its consumer group.
    pub group: String,
    /// The range's start, ms since the Unix epoch (included).
    pub from_ms: i64,
    /// The range's end, ms since the Unix epoch (excluded); `None`: up to
    /// the partitions' ends when planned.
    pub to_ms: Option<i64>,
    /// The version to run on (`None`: the active one).
    pub version: Option<u64>,
    /// Records fed per second, on average from the feed's start: the n-th
    /// record is fed no earlier than start + n / rate, so after a stall
    /// (the actor [`MAX_UNHANDLED`] behind, a slow read) the feed catches up
    /// in a burst; not a ceiling per second (`None`: as fast as the actor
    /// handles them, [`MAX_UNHANDLED`] ahead at most).
    pub rate: Option<u32>,
    /// The ranges, one per source partition.
    pub ranges: Vec<PartitionRange>,
}

/// Where a replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReplayState {
    /// Copying records to the replay topic.
    #[default]
    Feeding,
    /// Every record copied; waiting for the actor to handle them.
    Handling,
    /// Every record fed was handled.
    Done,
    /// Cancelled: nothing more is fed (what was fed is handled).
    Cancelled,
    /// Stopped by an error (see `error`); what was fed is handled.
    Failed,
}

impl ReplayState {
    /// Whether the replay stopped (done, cancelled or failed).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Cancelled | Self::Failed)
    }
}

/// Progress in one source partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionProgress {
    /// The range.
    #[serde(flatten)]
    pub range: PartitionRange,
    /// The next offset to read.
    pub next_offset: i64,
    /// Records fed from it.
    pub fed: u64,
}

/// A replay's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ReplayProgress {
    /// Where it is.
    pub state: ReplayState,
    /// Records copied to the replay topic.
    pub fed: u64,
    /// Records fed that the actor handled (done, dead-lettered or held
    /// for a retry), from the group's offsets on the replay topic.
    pub handled: u64,
    /// Records in the ranges' offsets whose timestamps fall outside
    /// `[from, to)` (not fed).
    pub passed_over: u64,
    /// Records too large to copy with the replay's headers (not fed;
    /// each logged).
    pub too_large: u64,
    /// Per source partition.
    pub partitions: Vec<PartitionProgress>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it stopped, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<i64>,
}

/// A replay being fed: its spec, its progress and its cancel switch.
#[derive(Debug)]
pub struct ReplayRun {
    /// What it replays.
    pub spec: ReplaySpec,
    /// When it started, ms since the Unix epoch.
    pub started_at_ms: i64,
    /// Who started it.
    pub by: String,
    progress: Mutex<ReplayProgress>,
    cancelled: AtomicBool,
    /// Offsets written per replay partition, as `[start, end)` runs.
    written: Mutex<BTreeMap<i32, Vec<(i64, i64)>>>,
    /// Ranges (by index) with a batch that was not wholly delivered: their
    /// `next_offset` stays at that batch's start, whatever later batches
    /// of the range that were in flight with it deliver, so a restart from
    /// it feeds the undelivered records again (some twice, none skipped).
    stuck: Mutex<std::collections::BTreeSet<usize>>,
}

impl ReplayRun {
    /// A replay of `spec`, not fed yet.
    pub fn new(spec: ReplaySpec, started_at_ms: i64, by: String) -> Self {
        let partitions = spec
            .ranges
            .iter()
            .map(|range| PartitionProgress {
                range: range.clone(),
                next_offset: range.start_offset,
                fed: 0,
            })
            .collect();
        ReplayRun {
            spec,
            started_at_ms,
            by,
            progress: Mutex::new(ReplayProgress {
                partitions,
                ..ReplayProgress::default()
            }),
            cancelled: AtomicBool::new(false),
            written: Mutex::default(),
            stuck: Mutex::default(),
        }
    }

    /// Its progress now.
    pub fn progress(&self) -> ReplayProgress {
        lock(&self.progress).clone()
    }

    /// Stops feeding (at the next record); records fed are still handled.
    /// Returns false when it had stopped already.
    pub fn cancel(&self) -> bool {
        let state = lock(&self.progress).state;
        if state.is_final() {
            return false;
        }
        self.cancelled.store(true, Ordering::SeqCst);
        true
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn update(&self, f: impl FnOnce(&mut ReplayProgress)) {
        f(&mut lock(&self.progress));
    }

    fn wrote(&self, partition: i32, offset: i64) {
        let mut written = lock(&self.written);
        let runs = written.entry(partition).or_default();
        match runs.last_mut() {
            Some(last) if last.1 == offset => last.1 = offset + 1,
            _ => runs.push((offset, offset + 1)),
        }
    }

    /// Records written that are below the committed offsets `committed`
    /// (replay partition → offset).
    fn handled_below(&self, committed: &BTreeMap<i32, i64>) -> u64 {
        let written = lock(&self.written);
        written
            .iter()
            .map(|(partition, runs)| {
                let upto = committed.get(partition).copied().unwrap_or(-1);
                runs.iter()
                    .map(|(start, end)| {
                        u64::try_from((*end).min(upto).saturating_sub(*start)).unwrap_or(0)
                    })
                    .sum::<u64>()
            })
            .sum()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Feeds `run` to completion (or cancel, or failure): reads each range,
/// copies its records within the time range to the replay topic (which
/// must exist, with `replay_partitions` partitions), at most `rate` per
/// second and [`MAX_UNHANDLED`] ahead of the group's commits, then waits
/// until the group has handled everything fed. Never returns an error: a
/// failure ends the replay in [`ReplayState::Failed`].
pub async fn feed(
    run: Arc<ReplayRun>,
    settings: KafkaSettings,
    producer: Producer,
    replay_partitions: i32,
) {
    let outcome = feed_ranges(&run, &settings, &producer, replay_partitions).await;
    let mut failed = outcome.as_ref().err().map(ToString::to_string);
    if failed.is_none() && !run.is_cancelled() {
        run.update(|p| p.state = ReplayState::Handling);
    }
    // Whatever was fed is handled by the actor: wait for it, so that the
    // final count is true (a cancel or a failure says so meanwhile).
    let committer = committed_reader(&settings, &run.spec.group);
    loop {
        let handled = match &committer {
            Ok(reader) => refresh_handled(&run, reader).await,
            Err(err) => {
                // Not "done": the count could not be known.
                failed.get_or_insert_with(|| format!("cannot read the group's commits: {err}"));
                None
            }
        };
        let fed = run.progress().fed;
        // A cancel ends the wait too: a paused or removed actor would
        // never handle the rest (what was fed is still handled later).
        if handled.is_none_or(|h| h >= fed) || run.is_cancelled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let now = now_ms();
    run.update(|p| {
        p.state = if let Some(err) = failed {
            p.error = Some(err);
            ReplayState::Failed
        } else if run.is_cancelled() {
            ReplayState::Cancelled
        } else {
            ReplayState::Done
        };
        p.finished_at_ms = Some(now);
    });
    let progress = run.progress();
    tracing::info!(
        replay = %run.spec.id, actor = %run.spec.actor, state = ?progress.state,
        fed = progress.fed, handled = progress.handled, passed_over = progress.passed_over,
        "replay finished"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A consumer that reads the actor group's committed offsets (it never
/// joins the group or commits).
fn committed_reader(settings: &KafkaSettings, group: &str) -> Result<Arc<BaseConsumer>> {
    let mut config = settings.reader_config();
    config.set("group.id", group);
    Ok(Arc::new(config.create()?))
}

/// Reads the group's committed offsets on the replay partitions written
/// to and updates `handled`; `None` when they cannot be read.
async fn refresh_handled(run: &Arc<ReplayRun>, reader: &Arc<BaseConsumer>) -> Option<u64> {
    let partitions: Vec<i32> = lock(&run.written).keys().copied().collect();
    if partitions.is_empty() {
        return Some(0);
    }
    let topic = replay_topic(&run.spec.group);
    let reader = reader.clone();
    let committed = tokio::task::spawn_blocking(move || {
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(&topic, *p);
        }
        let answer = reader.committed_offsets(tpl, REQUEST_TIMEOUT).ok()?;
        let mut committed = BTreeMap::new();
        for elem in answer.elements() {
            if let Offset::Offset(o) = elem.offset() {
                committed.insert(elem.partition(), o);
            }
        }
        Some(committed)
    })
    .await
    .ok()??;
    let handled = run.handled_below(&committed);
    run.update(|p| p.handled = handled);
    Some(handled)
}

/// Copies the ranges' records to the replay topic, a batch of up to
/// [`READ_BATCH`] records at a time, with up to [`BATCHES_IN_FLIGHT`]
/// batches handed to the producer before the oldest one's
/// acknowledgements are awaited: the next batch is read and produced
/// while earlier ones are on their way. Whatever ends it (the end, a
/// cancel, an error), every batch handed to the producer is awaited and
/// counted before it returns.
async fn feed_ranges(
    run: &Arc<ReplayRun>,
    settings: &KafkaSettings,
    producer: &Producer,
    replay_partitions: i32,
) -> Result<()> {
    let mut in_flight = VecDeque::new();
    let fed = feed_batches(run, settings, producer, replay_partitions, &mut in_flight).await;
    let settled = settle_batches(run, &mut in_flight, 0).await;
    fed.and(settled)
}

/// Batches handed to the producer (and not yet counted as fed) at most:
/// 4, about 1,000 records. Awaiting each batch's acknowledgements before
/// reading the next one left the producer idle during every read.
const BATCHES_IN_FLIGHT: usize = 4;

/// A batch handed to the producer, not yet acknowledged.
struct SentBatch {
    /// Its range's index in the spec.
    index: usize,
    /// The next offset to read in its source partition after it.
    next: i64,
    deliveries: Vec<Delivery>,
    /// Records of the batch outside the time range.
    passed_over: u64,
    /// Records of the batch too large to copy.
    too_large: u64,
}

/// Awaits the oldest batches in flight until at most `keep` are left,
/// counting what was fed in the run's progress. A batch with a failed
/// delivery is still awaited to the end (what was delivered is counted);
/// the first failure is returned after every batch asked for is awaited.
async fn settle_batches(
    run: &Arc<ReplayRun>,
    in_flight: &mut VecDeque<SentBatch>,
    keep: usize,
) -> Result<()> {
    let mut first_error = None;
    while in_flight.len() > keep {
        let Some(batch) = in_flight.pop_front() else {
            break;
        };
        let mut fed = 0u64;
        let mut failed = false;
        for delivery in batch.deliveries {
            match delivery.await {
                Ok(delivered) => {
                    run.wrote(delivered.partition, delivered.offset);
                    fed += 1;
                }
                Err(err) => {
                    failed = true;
                    first_error.get_or_insert(err);
                }
            }
        }
        // A range stops moving at its first batch not wholly delivered:
        // later batches of it, in flight with that one, may still be
        // delivered, but the next offset must not pass the records lost.
        let advance = {
            let mut stuck = lock(&run.stuck);
            if failed {
                stuck.insert(batch.index);
            }
            !stuck.contains(&batch.index)
        };
        run.update(|p| {
            p.fed += fed;
            p.passed_over += batch.passed_over;
            p.too_large += batch.too_large;
            if let Some(part) = p.partitions.get_mut(batch.index) {
                part.fed += fed;
                if advance {
                    part.next_offset = batch.next;
                }
            }
        });
    }
    first_error.map_or(Ok(()), Err)
}

/// The loop of [`feed_ranges`]: reads and produces, leaving the last
/// batches in `in_flight`.
async fn feed_batches(
    run: &Arc<ReplayRun>,
    settings: &KafkaSettings,
    producer: &Producer,
    replay_partitions: i32,
    in_flight: &mut VecDeque<SentBatch>,
) -> Result<()> {
    let replay = replay_topic(&run.spec.group);
    let limit = max_message_bytes(settings);
    let committer = committed_reader(settings, &run.spec.group)?;
    let mut reader = Some(Reader {
        consumer: settings.reader_config().create()?,
        at: None,
    });
    let started = Instant::now();
    // Records handed to the producer by this feed: fed, or in flight.
    let mut enqueued = 0u64;
    for (index, range) in run.spec.ranges.iter().enumerate() {
        if range.is_empty() {
            continue;
        }
        let target = range.partition.rem_euclid(replay_partitions.max(1));
        let mut next = range.start_offset;
        let mut quiet_since = Instant::now();
        while next < range.end_offset {
            if run.is_cancelled() {
                return Ok(());
            }
            // Stay at most MAX_UNHANDLED ahead of the actor (what is in
            // flight counts: it is awaited before waiting for commits).
            loop {
                let handled = run.progress().handled;
                if enqueued.saturating_sub(handled) < MAX_UNHANDLED {
                    break;
                }
                if run.is_cancelled() {
                    return Ok(());
                }
                settle_batches(run, in_flight, 0).await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                refresh_handled(run, &committer).await;
            }
            let mut taken = reader
                .take()
                .ok_or_else(|| KafkaError::Consumer("replay reader lost".into()))?;
            let (topic, partition, end) = (range.topic.clone(), range.partition, range.end_offset);
            let (consumer, batch) = tokio::task::spawn_blocking(move || {
                let batch = read_batch(&mut taken, &topic, partition, next, end);
                (taken, batch)
            })
            .await
            .map_err(|e| KafkaError::Consumer(format!("replay reader: {e}")))?;
            reader = Some(consumer);
            let batch = batch?;
            if batch.records.is_empty() && batch.next <= next {
                if quiet_since.elapsed() > READ_STALL {
                    return Err(KafkaError::Topics(format!(
                        "{}[{}]: no record at offset {next} for {READ_STALL:?}",
                        range.topic, range.partition
                    )));
                }
                continue;
            }
            quiet_since = Instant::now();
            let mut sent = SentBatch {
                index,
                next: batch.next,
                deliveries: Vec::with_capacity(batch.records.len()),
                passed_over: 0,
                too_large: 0,
            };
            for record in batch.records {
                if run.is_cancelled() {
                    // Not fed: the partition's progress stops before it.
                    sent.next = record.offset;
                    break;
                }
                let in_range = record.timestamp_ms.is_some_and(|ts| {
                    ts >= run.spec.from_ms && run.spec.to_ms.is_none_or(|to| ts < to)
                });
                if !in_range {
                    sent.passed_over += 1;
                    continue;
                }
                let out = replay_record(&run.spec, &replay, target, &record);
                if out.wire_size() > limit {
                    tracing::warn!(
                        replay = %run.spec.id, topic = %record.topic, partition = record.partition,
                        offset = record.offset,
                        "record too large to replay with the replay's headers: not fed"
                    );
                    sent.too_large += 1;
                    continue;
                }
                if let Some(rate) = run.spec.rate.filter(|r| *r > 0) {
                    // The n-th record (from 0) goes at start + n / rate.
                    let due = Duration::from_secs_f64(enqueued as f64 / f64::from(rate));
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
                sent.deliveries.push(producer.enqueue(&out));
                enqueued += 1;
            }
            next = sent.next;
            in_flight.push_back(sent);
            settle_batches(run, in_flight, BATCHES_IN_FLIGHT).await?;
        }
    }
    Ok(())
}

/// Records read from a source partition.
struct Batch {
    records: Vec<Event>,
    /// The next offset to read.
    next: i64,
}

/// A source partition reader that stays assigned between batches (an
/// assignment restarts fetching).
struct Reader {
    consumer: BaseConsumer,
    /// Where the consumer reads next: topic, partition, offset.
    at: Option<(String, i32, i64)>,
}

fn read_batch(
    reader: &mut Reader,
    topic: &str,
    partition: i32,
    from: i64,
    end: i64,
) -> Result<Batch> {
    let positioned = reader
        .at
        .as_ref()
        .is_some_and(|(t, p, o)| t == topic && *p == partition && *o == from);
    if !positioned {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(from))?;
        reader.consumer.assign(&tpl)?;
    }
    reader.at = None;
    let consumer = &reader.consumer;
    let mut records = Vec::new();
    let mut next = from;
    let started = Instant::now();
    while records.len() < READ_BATCH && next < end && started.elapsed() < Duration::from_secs(2) {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            if position_reached(consumer, topic, partition, end) {
                next = end;
            }
            continue;
        };
        let message = message?;
        let offset = message.offset();
        if offset < next {
            continue;
        }
        next = offset + 1;
        if offset >= end {
            next = end;
            break;
        }
        let headers = message
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        records.push(Event {
            topic: topic.to_string(),
            partition,
            offset,
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
            attempt: 1,
        });
    }
    reader.at = Some((topic.to_string(), partition, next));
    Ok(Batch { records, next })
}

/// The replay topic's copy of `record`.
fn replay_record(spec: &ReplaySpec, topic: &str, partition: i32, record: &Event) -> OutRecord {
    let mut headers: Vec<(String, Option<Vec<u8>>)> = record
        .headers
        .iter()
        .filter(|(n, _)| !n.starts_with(REPLAY_HEADER))
        .cloned()
        .collect();
    headers.push((REPLAY_HEADER.into(), Some(spec.id.clone().into_bytes())));
    headers.push((
        REPLAY_OF_HEADER.into(),
        Some(format!("{}/{}/{}", record.topic, record.partition, record.offset).into_bytes()),
    ));
    if let Some(ts) = record.timestamp_ms {
        headers.push((
            REPLAY_TIMESTAMP_HEADER.into(),
            Some(ts.to_string().into_bytes()),
        ));
    }
    if let Some(version) = spec.version {
        headers.push((
            REPLAY_VERSION_HEADER.into(),
            Some(version.to_string().into_bytes()),
        ));
    }
    OutRecord {
        topic: topic.to_string(),
        partition: Some(partition),
        key: record.key.clone(),
        payload: record.payload.clone(),
        headers,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Review of issue 15's replay pipelining: with several batches of a
    /// range in flight, one that fails must hold the range's next offset at
    /// its start even when later batches of the range are delivered (a
    /// restart from the next offset would otherwise skip its records).
    #[tokio::test]
    async fn a_failed_batch_holds_its_range_while_later_batches_are_delivered() {
        let mut spec = spec();
        spec.ranges = vec![PartitionRange {
            topic: "orders".into(),
            partition: 0,
            start_offset: 100,
            end_offset: 400,
        }];
        let run = Arc::new(ReplayRun::new(spec, 0, "test".into()));
        let batch = |next: i64, deliveries: Vec<Delivery>| SentBatch {
            index: 0,
            next,
            deliveries,
            passed_over: 0,
            too_large: 0,
        };
        let mut in_flight = VecDeque::from([
            batch(200, Vec::new()),
            batch(
                300,
                vec![Delivery::failed("wactor.a.replay", "broker down")],
            ),
            batch(400, Vec::new()),
        ]);
        let settled = settle_batches(&run, &mut in_flight, 0).await;
        assert!(settled.is_err(), "the failure is reported");
        assert!(in_flight.is_empty(), "every batch asked for is awaited");
        assert_eq!(
            run.progress().partitions[0].next_offset,
            200,
            "the range stops at the start of its failed batch"
        );
        // A later settle of the same run does not move it on either.
        let mut later = VecDeque::from([batch(500, Vec::new())]);
        settle_batches(&run, &mut later, 0).await.unwrap();
        assert_eq!(run.progress().partitions[0].next_offset, 200);
    }

    fn spec() -> ReplaySpec {
        ReplaySpec {
            id: "r1".into(),
            actor: "a".into(),
            group: "wactor.a".into(),
            from_ms: 0,
            to_ms: None,
            version: Some(3),
            rate: None,
            ranges: Vec::new(),
        }
    }

    fn original() -> Event {
        Event {
            topic: "orders".into(),
            partition: 2,
            offset: 41,
            timestamp_ms: Some(1_700_000_000_000),
            key: Some(b"k".to_vec()),
            payload: None,
            headers: vec![
                ("trace".into(), Some(b"t".to_vec())),
                (REPLAY_HEADER.into(), Some(b"forged".to_vec())),
            ],
            attempt: 1,
        }
    }

    #[test]
    fn a_replayed_record_is_presented_as_the_original_with_the_replay_header() {
        let out = replay_record(&spec(), "wactor.a.replay", 0, &original());
        let raw = Event {
            topic: out.topic.clone(),
            partition: 0,
            offset: 7,
            timestamp_ms: Some(1),
            key: out.key.clone(),
            payload: out.payload.clone(),
            headers: out.headers.clone(),
            attempt: 1,
        };
        assert_eq!(version_of(&raw), Some(3));
        let presented = presented(&raw, 2).unwrap();
        assert_eq!(
            (
                presented.topic.as_str(),
                presented.partition,
                presented.offset
            ),
            ("orders", 2, 41)
        );
        assert_eq!(presented.timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(presented.payload, None, "a tombstone stays one");
        assert_eq!(presented.attempt, 2);
        assert_eq!(
            presented.headers,
            vec![
                ("trace".to_string(), Some(b"t".to_vec())),
                (REPLAY_HEADER.to_string(), Some(b"r1".to_vec())),
            ],
            "the original's headers, its forged replay header replaced by the replay's"
        );
    }

    #[test]
    fn replay_headers_on_a_live_record_are_found_and_dropped() {
        let mut live = original();
        live.headers
            .push((REPLAY_OF_HEADER.into(), Some(b"t/0/0".to_vec())));
        assert!(has_replay_headers(&live));
        let stripped = strip_forged(&live);
        assert!(!has_replay_headers(&stripped));
        assert_eq!(
            stripped.headers,
            vec![("trace".into(), Some(b"t".to_vec()))]
        );
        assert_eq!(stripped.key, live.key);
        assert!(!has_replay_headers(&stripped));
    }

    #[test]
    fn records_that_are_not_replays_are_refused() {
        let mut raw = original();
        raw.headers.clear();
        assert!(presented(&raw, 1).is_err());
        for of in [
            "",
            "orders",
            "orders/x/1",
            "orders/1/-1",
            "/1/1",
            "orders/-1/3",
        ] {
            raw.headers = vec![
                (REPLAY_HEADER.into(), Some(b"r".to_vec())),
                (REPLAY_OF_HEADER.into(), Some(of.as_bytes().to_vec())),
            ];
            assert!(presented(&raw, 1).is_err(), "{of:?}");
        }
        raw.headers = vec![
            (REPLAY_HEADER.into(), Some(b"r".to_vec())),
            (REPLAY_OF_HEADER.into(), Some(b"a/b/1/2".to_vec())),
        ];
        assert!(
            presented(&raw, 1).is_err(),
            "a partition that is not a number"
        );
    }

    #[test]
    fn handled_counts_written_offsets_below_the_commits() {
        let run = ReplayRun::new(spec(), 0, "t".into());
        for offset in [3, 4, 5, 9, 10] {
            run.wrote(0, offset);
        }
        run.wrote(1, 0);
        let committed = BTreeMap::from([(0, 5), (1, 1)]);
        assert_eq!(run.handled_below(&committed), 3);
        let committed = BTreeMap::from([(0, 11)]);
        assert_eq!(run.handled_below(&committed), 5);
    }
}
