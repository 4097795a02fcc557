//! The retry changelog: held events (retrying, or waiting behind a retrying
//! event of their key) mirrored to a compacted Kafka topic, so that a
//! partition's retries move with the partition.
//!
//! This is the Kafka Streams model. Each host keeps held events in its
//! sled store (fast, local) and writes every change to `<group>.retries`,
//! keyed by the held event's id, with a tombstone when it is finished. A
//! record for source partition `(topic, p)` always goes to changelog
//! partition `hash(topic, p) mod N`, so the host that is assigned `(topic,
//! p)` next restores it by reading one changelog partition to its end
//! before it handles any event of `(topic, p)`. An offset is committed past
//! a held event only after its changelog record is acknowledged, so the
//! next owner either re-reads the event from Kafka or finds it here.
//!
//! Record values are the store's binary value format
//! ([`wactor_store::value`]); values written as JSON by earlier versions
//! are still read on restore. A record must fit the producer's
//! `message.max.bytes` ([`Changelog::record`] builds it, the worker checks
//! its size before holding the event).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use wactor_store::{HeldEvent, HeldEvents, HeldId, Store};

use crate::admin::{self, TopicSpec};
use crate::error::{KafkaError, Result};
use crate::producer::{Delivery, OutRecord, Producer};
use crate::settings::KafkaSettings;

/// How long a restore may take before the partition gives up (and is
/// retried at the next assignment).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

/// `fetch.wait.max.ms` of a reader that reads a partition to a known end
/// ([`read_to_end`]): 10 ms, against librdkafka's default of 500 ms. The
/// records it wants exist already, so a broker holding a fetch open for
/// more only delays the restore (Tansu 0.6 held each fetch about 250 ms:
/// a one-record restore took 254 ms with the default and 14 ms with this).
const READ_TO_END_FETCH_WAIT_MS: &str = "10";

/// One actor's retry changelog topic.
#[derive(Debug, Clone)]
pub struct Changelog {
    /// Topic name.
    pub topic: String,
    /// Its partition count.
    pub partitions: i32,
}

impl Changelog {
    /// Makes sure the topic exists (compacted), reads its partition count
    /// and checks that restores can trust it:
    ///
    /// - its `cleanup.policy` must be `compact` alone (where the broker
    ///   answers DescribeConfigs; librdkafka's mock cluster does not, and is
    ///   then trusted; a failed read is a warning): `delete` (alone or with
    ///   `compact`) drops held events after the topic's retention, whatever
    ///   their key, and the next owner would never run them;
    /// - a partition count other than the one this host last used with it
    ///   (`store`'s changelog layout) is logged at ERROR, with how many
    ///   events `held` holds here: a held event's changelog partition is
    ///   `hash(source) mod count`. On this host nothing is lost (a restore
    ///   that finds no record of a partition keeps the local held events
    ///   and writes them under the new count), but a host that restores a
    ///   partition another host held under the old count finds nothing.
    ///
    /// The setting `changelog_partitions` is only the count of a topic
    /// wactor creates; an existing topic's own count is used (with a
    /// warning when they differ).
    ///
    /// # Errors
    /// [`KafkaError::Topics`] when the topic cannot be created or found, or
    /// fails a check (the message says how to fix it); [`KafkaError::Store`]
    /// when the layout cannot be read or written.
    pub async fn open(
        settings: &KafkaSettings,
        topic: String,
        store: &Store,
        held: &HeldEvents,
    ) -> Result<Self> {
        let partitions = open_compacted(settings, &topic).await?;
        let layout = store.changelog_layout(&topic)?;
        if let Some(warning) = layout_warning(&topic, partitions, layout, held.len()) {
            tracing::error!(%topic, partitions, before = layout, "{warning}");
        }
        if layout != Some(partitions) {
            store.set_changelog_layout(&topic, partitions)?;
            store.flush_async().await?;
        }
        Ok(Changelog { topic, partitions })
    }

    /// The changelog partition of source partition `(topic, partition)`.
    pub fn partition_of(&self, topic: &str, partition: i32) -> i32 {
        changelog_partition(topic, partition, self.partitions)
    }

    /// The changelog record of a held event's current value (`None`: it is
    /// finished, a tombstone). Key: the held id as text; value: the held
    /// event in the store's binary format.
    ///
    /// # Errors
    /// [`KafkaError::Store`] when the held event cannot be encoded.
    pub fn record(&self, id: &HeldId, record: Option<&HeldEvent>) -> Result<OutRecord> {
        let payload = match record {
            Some(record) => Some(wactor_store::held::encode_held(record)?),
            None => None,
        };
        Ok(OutRecord {
            topic: self.topic.clone(),
            partition: Some(self.partition_of(&id.topic, id.partition)),
            key: Some(id.to_string().into_bytes()),
            payload,
            headers: Vec::new(),
        })
    }

    /// Writes a record built by [`Changelog::record`].
    pub fn write(&self, producer: &Producer, record: &OutRecord) -> Delivery {
        producer.enqueue(record)
    }

    /// Reads the held events of `(topic, partition)` from the changelog,
    /// to its end. Blocking: run it on a blocking thread.
    ///
    /// Also says whether the changelog has *any* record of that source
    /// partition (a tombstone counts): when it has none, it never knew the
    /// partition (the changelog was just switched on, or is a new group's),
    /// and the caller keeps the local held events instead of replacing them
    /// with nothing.
    pub fn restore(
        &self,
        settings: &KafkaSettings,
        producer: &Producer,
        topic: &str,
        partition: i32,
    ) -> Result<Restored> {
        let source = self.partition_of(topic, partition);
        let mut latest: HashMap<String, Option<HeldEvent>> = HashMap::new();
        let mut seen = false;
        read_to_end(
            settings,
            producer,
            &self.topic,
            source,
            |key, payload, offset| {
                if let Some((key, id)) = decode_key(key) {
                    if id.topic == topic && id.partition == partition {
                        seen = true;
                        match decode_held(&id, payload) {
                            Ok(value) => {
                                latest.insert(key.to_string(), value);
                            }
                            Err(err) => tracing::warn!(
                                changelog = %self.topic, partition = source, offset, key,
                                error = %err,
                                "changelog record skipped; the key's earlier record stands"
                            ),
                        }
                    }
                }
            },
        )?;
        let mut records: Vec<HeldEvent> = latest.into_values().flatten().collect();
        records.sort_by_key(|r| r.event.offset);
        Ok(Restored { records, seen })
    }
}

/// Makes sure compacted topic `topic` exists (created with
/// `changelog_partitions` partitions when wactor manages topics), checks
/// its `cleanup.policy` where the broker answers DescribeConfigs, and
/// returns its partition count (warning when it differs from the setting).
///
/// # Errors
/// [`KafkaError::Topics`] when the topic cannot be created or found, or is
/// not compacted only.
pub(crate) async fn open_compacted(settings: &KafkaSettings, topic: &str) -> Result<i32> {
    admin::ensure_topics(
        settings,
        &[TopicSpec::compacted(topic, settings.changelog_partitions)],
    )
    .await?;
    let partitions = {
        let settings = settings.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || admin::partition_count(&settings, &topic))
            .await
            .map_err(|e| KafkaError::Topics(format!("metadata task failed: {e}")))??
    };
    let partitions = partitions
        .ok_or_else(|| KafkaError::Topics(format!("the changelog topic {topic} does not exist")))?;
    match admin::cleanup_policy(settings, topic).await {
        Ok(Some(policy)) => check_compacted(topic, &policy)?,
        Ok(None) => {}
        Err(err) => tracing::warn!(
            %topic, error = %err,
            "cannot read the changelog topic's cleanup.policy; make sure it is compact"
        ),
    }
    if partitions != settings.changelog_partitions {
        tracing::warn!(
            %topic, partitions, setting = settings.changelog_partitions,
            "the changelog topic exists with another partition count than \
             kafka.changelog_partitions; the topic's count is used"
        );
    }
    Ok(partitions)
}

/// Reads `topic[partition]` from its beginning to the end it has now (the
/// high watermark read first, through the host's connected `producer`),
/// calling `on_record(key, value, offset)` for each record. An empty
/// partition is answered from the watermarks alone; only a partition with
/// records gets a reader of its own (a new consumer, which takes 100 ms to
/// over a second to connect: with one per restore, a partition with nothing
/// to restore waited that long before its first event). Blocking: run it on
/// a blocking thread. Gives up after [`RESTORE_TIMEOUT`].
///
/// The reader starts at the low watermark just read, not at
/// `Offset::Beginning`: a new client that must look the beginning up first
/// retries that lookup after a backoff, because it does not know the
/// partition's leader yet. It also fetches with a short wait
/// ([`READ_TO_END_FETCH_WAIT_MS`], whatever `kafka.consumer` sets): it
/// reads up to an end that exists, so waiting for records that may come
/// later only delays it. Reading a changelog of one record with a new
/// client took 500 ms on librdkafka's mock cluster and 750 ms on Tansu
/// from `Offset::Beginning` with the default wait; 1 ms and 254 ms from
/// the low watermark; 1 ms and 14 ms with the short wait as well. When the
/// low watermark moved in between (retention deleted records), the
/// reader's `auto.offset.reset = earliest` starts it at the new beginning.
///
/// # Errors
/// [`KafkaError::Topics`] when the end cannot be read or is not reached in
/// time; the client's error when reading fails.
pub(crate) fn read_to_end(
    settings: &KafkaSettings,
    producer: &Producer,
    topic: &str,
    partition: i32,
    mut on_record: impl FnMut(Option<&[u8]>, Option<&[u8]>, i64),
) -> Result<()> {
    let (low, high) = match producer.watermarks(topic, partition, Duration::from_secs(10)) {
        Ok(marks) => marks,
        Err(err) => {
            return Err(KafkaError::Topics(format!(
                "cannot read the end of {topic}[{partition}]: {err}"
            )))
        }
    };
    if high <= low {
        return Ok(());
    }
    let consumer: BaseConsumer = settings
        .reader_config()
        .set("fetch.wait.max.ms", READ_TO_END_FETCH_WAIT_MS)
        .create()?;
    let mut tpl = TopicPartitionList::new();
    // librdkafka reports a low watermark of at least 0 when the high one
    // is (it was checked above that `high > low`); `max` keeps a negative
    // one, which rdkafka refuses, from failing the restore.
    tpl.add_partition_offset(topic, partition, Offset::Offset(low.max(0)))?;
    consumer.assign(&tpl)?;
    let started = Instant::now();
    loop {
        if started.elapsed() > RESTORE_TIMEOUT {
            return Err(KafkaError::Topics(format!(
                "restoring {topic}[{partition}] did not reach offset {high} within {RESTORE_TIMEOUT:?}"
            )));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            // Compaction may leave no record at `high - 1`; the position
            // says whether the end was passed.
            if reached(&consumer, topic, partition, high) {
                return Ok(());
            }
            continue;
        };
        let message = message?;
        let offset = message.offset();
        on_record(message.key(), message.payload(), offset);
        if offset >= high - 1 {
            return Ok(());
        }
    }
}

/// What a restore read of one source partition.
#[derive(Debug, Default)]
pub struct Restored {
    /// The held events, in offset order.
    pub records: Vec<HeldEvent>,
    /// Whether the changelog had any record of the source partition, a
    /// tombstone included.
    pub seen: bool,
}

/// Reads a changelog record's key: the held event's id as text, and
/// parsed. `None` for a key that is not one (null, not UTF-8, not an id):
/// such a record is not this changelog's and is skipped.
pub fn decode_key(key: Option<&[u8]>) -> Option<(&str, HeldId)> {
    let text = std::str::from_utf8(key?).ok()?;
    let id = HeldId::from_str(text).ok()?;
    Some((text, id))
}

/// Reads the value of a changelog record whose key is `id`: the held
/// event, or `None` for a tombstone. Restore uses this, not
/// [`decode_value`] alone: a value must be the event its key names, so a
/// record written by someone else cannot put an event of another
/// partition, lane or offset into a restore.
///
/// # Errors
/// [`KafkaError::Store`] when the value is not a held event;
/// [`KafkaError::Topics`] when it is one with another id than `id`.
/// Restore skips such a record with a warning (the key's earlier record,
/// if any, stands).
pub fn decode_held(id: &HeldId, payload: Option<&[u8]>) -> Result<Option<HeldEvent>> {
    let held = decode_value(payload)?;
    if let Some(held) = &held {
        let own = held.id();
        if &own != id {
            return Err(KafkaError::Topics(format!(
                "the record's value is held event {own}, not {id} as its key says"
            )));
        }
    }
    Ok(held)
}

/// Reads a changelog record's value: the held event (`None` for a
/// tombstone, the event is finished), in the store's binary format or the
/// JSON of earlier versions.
///
/// # Errors
/// [`KafkaError::Store`] when the value is not a held event.
pub fn decode_value(payload: Option<&[u8]>) -> Result<Option<HeldEvent>> {
    match payload {
        None => Ok(None),
        Some(bytes) => Ok(Some(wactor_store::held::decode_held(bytes)?)),
    }
}

/// Whether the consumer's position in `topic[partition]` is at `end`.
fn reached(consumer: &BaseConsumer, topic: &str, partition: i32, end: i64) -> bool {
    consumer
        .position()
        .ok()
        .and_then(|tpl| {
            tpl.find_partition(topic, partition)
                .and_then(|elem| elem.offset().to_raw())
        })
        .is_some_and(|position| position >= end)
}

/// `hash(topic, partition) mod partitions`, with a hash that is the same on
/// every host and every build (FNV-1a, 64 bit).
pub fn changelog_partition(topic: &str, partition: i32, partitions: i32) -> i32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in topic
        .as_bytes()
        .iter()
        .chain(&[0u8])
        .chain(&partition.to_be_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    let n = u64::try_from(partitions.max(1)).unwrap_or(1);
    i32::try_from(hash % n).unwrap_or(0)
}

/// Refuses a changelog topic whose `cleanup.policy` is not `compact`
/// alone: with `delete` (also as `compact,delete`) retention removes held
/// events that wait longer than `retention.ms`.
pub(crate) fn check_compacted(topic: &str, policy: &str) -> Result<()> {
    let parts: Vec<&str> = policy.split(',').map(str::trim).collect();
    if parts.contains(&"compact") && !parts.contains(&"delete") {
        return Ok(());
    }
    Err(KafkaError::Topics(format!(
        "the changelog topic {topic} has cleanup.policy={policy}: its retention would delete \
         held events that wait longer than retention.ms, and the partition's next owner would \
         never see them. Make it compacted only (kafka-configs --alter --entity-type topics \
         --entity-name {topic} --add-config cleanup.policy=compact)"
    )))
}

/// The ERROR to log when the changelog's partition count is not the one
/// this host last used with it (`remembered`); `held`: events this host
/// holds for the actor.
fn layout_warning(
    topic: &str,
    partitions: i32,
    remembered: Option<i32>,
    held: usize,
) -> Option<String> {
    match remembered {
        Some(before) if before != partitions => Some(format!(
            "the changelog topic {topic} now has {partitions} partitions; this host last used it \
             with {before}. This host's {held} held event(s) are kept and written under the new \
             count when their partitions are restored, but held events that another host wrote \
             under the old count are not found by a host that restores their partition now: \
             change the count only once `wactor retries list` is empty on every host"
        )),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// An empty changelog partition is answered from the watermarks the
    /// host's producer reads: no reader is made for it (a new consumer
    /// took 100 ms to over a second to connect, and every partition with
    /// nothing to restore waited that long before its first event). Shown
    /// with a reader config that librdkafka refuses: the empty partition
    /// still reads, the one with a record needs the reader and fails.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_empty_partition_is_read_without_a_reader_of_its_own() {
        let cluster = crate::dev_cluster::DevCluster::start(1).unwrap();
        cluster.create_topic("g.retries", 2).unwrap();
        let mut settings = KafkaSettings::new(cluster.bootstrap_servers());
        let producer = Producer::new(&settings).unwrap();
        let record = OutRecord {
            topic: "g.retries".into(),
            partition: Some(1),
            key: Some(b"k".to_vec()),
            payload: Some(b"v".to_vec()),
            ..OutRecord::default()
        };
        producer.send(&record).await.unwrap();
        settings
            .consumer
            .insert("no.such.librdkafka.property".into(), "1".into());
        let (settings, producer) = tokio::task::spawn_blocking(move || {
            let mut seen = 0;
            read_to_end(&settings, &producer, "g.retries", 0, |_, _, _| seen += 1).unwrap();
            assert_eq!(seen, 0);
            (settings, producer)
        })
        .await
        .unwrap();
        let full = tokio::task::spawn_blocking(move || {
            read_to_end(&settings, &producer, "g.retries", 1, |_, _, _| {})
        })
        .await
        .unwrap();
        let err = full
            .expect_err("a partition with records needs its reader")
            .to_string();
        assert!(
            err.contains("no.such.librdkafka.property"),
            "the reader's creation failed, not the watermarks: {err}"
        );
    }

    #[test]
    fn changelog_partitions_are_stable_and_in_range() {
        // Fixed values: a change here strands every deployed changelog.
        assert_eq!(
            changelog_partition("orders", 0, 12),
            changelog_partition("orders", 0, 12)
        );
        for p in 0..64 {
            let cp = changelog_partition("orders", p, 12);
            assert!((0..12).contains(&cp));
        }
        let spread: std::collections::HashSet<i32> = (0..64)
            .map(|p| changelog_partition("orders", p, 12))
            .collect();
        assert!(
            spread.len() > 6,
            "partitions spread over the changelog: {spread:?}"
        );
        assert_eq!(changelog_partition("t", 3, 1), 0);
    }

    #[test]
    fn only_a_compacting_cleanup_policy_is_accepted() {
        assert!(check_compacted("g.retries", "compact").is_ok());
        assert!(check_compacted("g.retries", " compact ").is_ok());
        assert!(check_compacted("g.retries", "compact,delete").is_err());
        assert!(check_compacted("g.retries", "delete, compact").is_err());
        assert!(check_compacted("g.retries", "").is_err());
        let err = check_compacted("g.retries", "delete")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cleanup.policy=delete"), "{err}");
        assert!(
            err.contains("cleanup.policy=compact"),
            "says how to fix it: {err}"
        );
    }

    fn held(topic: &str, offset: i64) -> HeldEvent {
        HeldEvent {
            event: wactor_store::StoredEvent {
                topic: topic.into(),
                partition: 3,
                offset,
                timestamp_ms: None,
                key: Some(b"k".to_vec()),
                payload: Some(b"{}".to_vec()),
                headers: Vec::new(),
            },
            lane: wactor_store::LaneKey::Key(b"k".to_vec()),
            attempts: Vec::new(),
            first_attempt_at_ms: None,
            next_attempt_at_ms: None,
            version_override: None,
            blocked_by: None,
        }
    }

    #[test]
    fn a_changelog_value_must_be_the_event_its_key_names() {
        // Found by the changelog_record fuzz target: a value whose own id
        // (here an empty topic, which no key can name) differs from its key
        // was taken into the restore of the key's partition.
        let event = held("orders", 9);
        let bytes = wactor_store::held::encode_held(&event).unwrap();
        let id = event.id();
        assert_eq!(decode_held(&id, Some(&bytes)).unwrap(), Some(event.clone()));
        assert_eq!(decode_held(&id, None).unwrap(), None, "a tombstone");
        let other = held("orders", 10).id();
        let err = decode_held(&other, Some(&bytes)).unwrap_err().to_string();
        assert!(err.contains("not orders:3:key.6b:10"), "{err}");
        let nameless = wactor_store::held::encode_held(&held("", 9)).unwrap();
        assert!(decode_held(&id, Some(&nameless)).is_err());
        assert!(decode_held(&id, Some(b"\x01garbage")).is_err());
    }

    #[test]
    fn a_changed_partition_count_is_reported() {
        assert!(
            layout_warning("g.retries", 4, None, 10).is_none(),
            "first open"
        );
        assert!(
            layout_warning("g.retries", 4, Some(4), 10).is_none(),
            "unchanged"
        );
        let warning = layout_warning("g.retries", 8, Some(4), 3).unwrap();
        assert!(warning.contains("now has 8 partitions"), "{warning}");
        assert!(warning.contains("with 4"), "{warning}");
        assert!(warning.contains("3 held event(s)"), "{warning}");
    }
}
