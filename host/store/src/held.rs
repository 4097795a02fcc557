//! Held events: the events of one actor that the store has taken
//! responsibility for, because they wait for a retry or wait behind another
//! event of their lane that does. One sled tree per actor, `held/<actor>`.
//!
//! # Keys
//!
//! A held event's key is (topic, partition, lane, offset), encoded by the
//! `codec` module so that the records of one (topic, partition) sort
//! together, then by lane, then by offset ascending:
//!
//! ```text
//! u16 BE len | topic bytes | partition (i32, sign-flipped BE)
//!   | lane tag (0 shared, 1 key, 2 own) | [u32 BE len | key bytes] or [own offset]
//!   | offset (i64, sign-flipped BE)
//! ```
//!
//! Every component is length-prefixed or fixed-width, so a lane's prefix
//! never matches another lane (keys that are prefixes of each other, keys
//! with 0 bytes), and "the head of a lane" is the first item of a prefix
//! scan ([`HeldEvents::lane_first`]).
//!
//! # Not here
//!
//! Which event is due, how long to back off, when to give up: the delivery
//! crate decides; this module only keeps the records and their order. The
//! changelog that moves a partition's records between hosts is the kafka
//! crate's; [`HeldEvents::replace_partition`] is its restore primitive.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sled::Transactional;

use crate::codec::{self, Reader};
use crate::dead_letters::{self, DeadLetter, DeadLetters};
use crate::{abort, from_tx, AttemptRecord, LaneKey, Result, StoreError, StoredEvent};

/// What the store keeps for one held event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldEvent {
    /// The event itself (owned copy of the Kafka record).
    pub event: StoredEvent,
    /// The ordering lane it belongs to.
    pub lane: LaneKey,
    /// Every attempt so far; empty when it was never attempted (it waits
    /// behind its lane's head).
    pub attempts: Vec<AttemptRecord>,
    /// When the first attempt started (ms since the Unix epoch): the start
    /// of the retry policy's max age.
    pub first_attempt_at_ms: Option<i64>,
    /// When the next attempt is due (`Some` for a head waiting for its
    /// retry).
    pub next_attempt_at_ms: Option<i64>,
    /// Re-drive "to version N"; `None` runs the active version.
    pub version_override: Option<u64>,
    /// The death this event blocks its lane with, when its actor's
    /// manifest says `[dead_letter] on_dead = "block"`: it stays in its
    /// lane (the lane's later events wait behind it) until that dead
    /// letter is re-driven or discarded. `None` for every other held event.
    #[serde(default)]
    pub blocked_by: Option<BlockedBy>,
}

/// Which death holds a lane: the dead letter's id and when it died (a
/// later death of the same event, after a re-drive, is another one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedBy {
    /// The dead letter's id.
    pub dead_letter: String,
    /// When it died (ms since the Unix epoch): the letter's `dead_at_ms`.
    pub dead_at_ms: i64,
}

/// A held event as format 1 lays it out (no `blocked_by`): what a held
/// event that blocks nothing is written as, so versions that predate
/// blocking read it.
#[derive(Serialize)]
struct HeldEventV1Ref<'a> {
    event: &'a StoredEvent,
    lane: &'a LaneKey,
    attempts: &'a Vec<AttemptRecord>,
    first_attempt_at_ms: &'a Option<i64>,
    next_attempt_at_ms: &'a Option<i64>,
    version_override: &'a Option<u64>,
}

/// Format 1 of a held event, read.
#[derive(Deserialize)]
struct HeldEventV1 {
    event: StoredEvent,
    lane: LaneKey,
    attempts: Vec<AttemptRecord>,
    first_attempt_at_ms: Option<i64>,
    next_attempt_at_ms: Option<i64>,
    version_override: Option<u64>,
}

/// Encodes a held event for the store and the retry changelog: format 1
/// ([`crate::value::FORMAT_POSTCARD_V1`]) unless it blocks its lane, then
/// format 2 (with `blocked_by`).
///
/// # Errors
/// [`StoreError::Codec`] when serde refuses it (not the case for this type).
pub fn encode_held(held: &HeldEvent) -> Result<Vec<u8>> {
    if held.blocked_by.is_some() {
        return crate::value::encode_v2(WHAT, held);
    }
    crate::value::encode(
        WHAT,
        &HeldEventV1Ref {
            event: &held.event,
            lane: &held.lane,
            attempts: &held.attempts,
            first_attempt_at_ms: &held.first_attempt_at_ms,
            next_attempt_at_ms: &held.next_attempt_at_ms,
            version_override: &held.version_override,
        },
    )
}

/// Decodes what [`encode_held`] wrote (either format), or the JSON of
/// older versions.
///
/// # Errors
/// [`StoreError::Codec`] or [`StoreError::Corrupt`] for bytes that are not
/// a held event.
pub fn decode_held(bytes: &[u8]) -> Result<HeldEvent> {
    if bytes.first() == Some(&crate::value::FORMAT_POSTCARD_V1) {
        let v1: HeldEventV1 = crate::value::decode(WHAT, bytes)?;
        return Ok(HeldEvent {
            event: v1.event,
            lane: v1.lane,
            attempts: v1.attempts,
            first_attempt_at_ms: v1.first_attempt_at_ms,
            next_attempt_at_ms: v1.next_attempt_at_ms,
            version_override: v1.version_override,
            blocked_by: None,
        });
    }
    crate::value::decode(WHAT, bytes)
}

impl HeldEvent {
    /// The event's identity in the held set.
    pub fn id(&self) -> HeldId {
        HeldId {
            topic: self.event.topic.clone(),
            partition: self.event.partition,
            lane: self.lane.clone(),
            offset: self.event.offset,
        }
    }
}

/// Identity of a held event: where it came from and which lane it is in.
///
/// Displays as `<topic>:<partition>:<lane>:<offset>`, where `<lane>` is
/// `shared`, `key.<hex of the key>` or `own` (a lane of its own; `own.<n>`
/// if it ever names an offset other than the event's), e.g.
/// `orders:3:key.637573742d3432:1017`. [`FromStr`] parses that string back,
/// so the CLI and API can pass ids around; topics may contain `:`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HeldId {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Ordering lane.
    pub lane: LaneKey,
    /// Offset in the source partition.
    pub offset: i64,
}

impl HeldId {
    fn key(&self) -> Result<Vec<u8>> {
        codec::held_key(&self.topic, self.partition, &self.lane, self.offset)
    }
}

impl fmt::Display for HeldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.topic, self.partition)?;
        match &self.lane {
            LaneKey::Shared => f.write_str("shared")?,
            LaneKey::Key(key) => write!(f, "key.{}", codec::hex(key))?,
            LaneKey::Own(offset) if *offset == self.offset => f.write_str("own")?,
            LaneKey::Own(offset) => write!(f, "own.{offset}")?,
        }
        write!(f, ":{}", self.offset)
    }
}

impl FromStr for HeldId {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = || StoreError::Invalid {
            what: format!(
                "held-event id {s:?}: expected <topic>:<partition>:<lane>:<offset> \
                 with <lane> one of shared, key.<hex>, own"
            ),
        };
        // From the right: the last three fields never contain ':', the topic may.
        let mut fields = s.rsplitn(4, ':');
        let offset: i64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(invalid)?;
        let lane = fields.next().ok_or_else(invalid)?;
        let partition: i32 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(invalid)?;
        let topic = fields
            .next()
            .filter(|t| !t.is_empty())
            .ok_or_else(invalid)?;
        let lane = match lane {
            "shared" => LaneKey::Shared,
            "own" => LaneKey::Own(offset),
            _ => {
                if let Some(hex) = lane.strip_prefix("key.") {
                    LaneKey::Key(codec::unhex(hex).ok_or_else(invalid)?)
                } else if let Some(own) = lane.strip_prefix("own.") {
                    LaneKey::Own(own.parse().map_err(|_| invalid())?)
                } else {
                    return Err(invalid());
                }
            }
        };
        Ok(HeldId {
            topic: topic.to_string(),
            partition,
            lane,
            offset,
        })
    }
}

/// Which held events [`HeldEvents::list`] returns; `None`/`false` fields
/// do not filter. Fields combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldFilter {
    /// Only this topic.
    pub topic: Option<String>,
    /// Only this partition.
    pub partition: Option<i32>,
    /// Only events whose record key is exactly this.
    pub key: Option<Vec<u8>>,
    /// Only events that were attempted at least once and wait for their
    /// retry (retrying heads), not the ones waiting behind them nor dead
    /// heads blocking their lane.
    pub only_retrying: bool,
}

impl HeldFilter {
    /// Whether `held` passes the filter.
    pub fn matches(&self, held: &HeldEvent) -> bool {
        self.topic.as_ref().is_none_or(|t| *t == held.event.topic)
            && self.partition.is_none_or(|p| p == held.event.partition)
            && self
                .key
                .as_ref()
                .is_none_or(|k| held.event.key.as_ref() == Some(k))
            && (!self.only_retrying || (!held.attempts.is_empty() && held.blocked_by.is_none()))
    }
}

/// The held events of one actor. Cheap to clone.
#[derive(Clone)]
pub struct HeldEvents {
    /// The actor's tree, `held/<actor>`.
    tree: sled::Tree,
}

const WHAT: &str = "held event";

fn decode(bytes: &[u8]) -> Result<HeldEvent> {
    decode_held(bytes)
}

impl HeldEvents {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        HeldEvents { tree }
    }

    /// Inserts `held`, or replaces the record with the same id.
    pub fn put(&self, held: &HeldEvent) -> Result<()> {
        let key = held.id().key()?;
        let value = encode_held(held)?;
        self.tree.insert(key, value)?;
        Ok(())
    }

    /// The held event with this id.
    pub fn get(&self, id: &HeldId) -> Result<Option<HeldEvent>> {
        self.tree.get(id.key()?)?.map(|v| decode(&v)).transpose()
    }

    /// Removes the held event with this id, returning it.
    pub fn remove(&self, id: &HeldId) -> Result<Option<HeldEvent>> {
        self.tree.remove(id.key()?)?.map(|v| decode(&v)).transpose()
    }

    /// The head of a lane: its held event with the lowest offset.
    pub fn lane_first(
        &self,
        topic: &str,
        partition: i32,
        lane: &LaneKey,
    ) -> Result<Option<HeldEvent>> {
        let prefix = codec::held_lane_prefix(topic, partition, lane)?;
        match self.tree.scan_prefix(prefix).next() {
            Some(item) => Ok(Some(decode(&item?.1)?)),
            None => Ok(None),
        }
    }

    /// How many events a lane holds.
    pub fn lane_len(&self, topic: &str, partition: i32, lane: &LaneKey) -> Result<usize> {
        let prefix = codec::held_lane_prefix(topic, partition, lane)?;
        count(self.tree.scan_prefix(prefix).keys())
    }

    /// Every held event of one (topic, partition), in key order (by lane,
    /// then offset).
    pub fn partition(&self, topic: &str, partition: i32) -> Result<Vec<HeldEvent>> {
        let prefix = codec::held_partition_prefix(topic, partition)?;
        self.tree
            .scan_prefix(prefix)
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    /// Atomically (one sled batch) replaces everything held for one (topic,
    /// partition) with `records`: how a host restores a partition from its
    /// changelog. Other partitions are untouched. Refuses, changing nothing,
    /// records of another (topic, partition).
    ///
    /// The batch is atomic, not isolated: the partition's owner must not
    /// write to that partition concurrently (it is the only writer anyway:
    /// one task per partition).
    pub fn replace_partition(
        &self,
        topic: &str,
        partition: i32,
        records: &[HeldEvent],
    ) -> Result<()> {
        let prefix = codec::held_partition_prefix(topic, partition)?;
        let mut batch = sled::Batch::default();
        for key in self.tree.scan_prefix(&prefix).keys() {
            batch.remove(key?);
        }
        for held in records {
            if held.event.topic != topic || held.event.partition != partition {
                return Err(StoreError::Invalid {
                    what: format!(
                        "record {} in a restore of {topic}:{partition}: it belongs to another partition",
                        held.id()
                    ),
                });
            }
            batch.insert(held.id().key()?, encode_held(held)?);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Up to `limit` held events that pass `filter`, in key order (topic,
    /// partition, lane, offset). A topic (and partition) filter narrows the
    /// scan; the other fields are checked record by record.
    pub fn list(&self, filter: &HeldFilter, limit: usize) -> Result<Vec<HeldEvent>> {
        let prefix = match (&filter.topic, filter.partition) {
            (Some(topic), Some(partition)) => codec::held_partition_prefix(topic, partition)?,
            (Some(topic), None) => codec::held_topic_prefix(topic)?,
            (None, _) => Vec::new(),
        };
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for value in self.tree.scan_prefix(prefix).values() {
            let held = decode(&value?)?;
            if filter.matches(&held) {
                out.push(held);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The (topic, partition) pairs that hold at least one event, in key
    /// order (topic by length then bytes, partition ascending). Seeks past
    /// each partition, so it costs one lookup per pair, not per event.
    pub fn partitions(&self) -> Result<Vec<(String, i32)>> {
        let mut out = Vec::new();
        let mut from = Vec::new();
        while let Some(item) = self.tree.range(from.as_slice()..).next() {
            let key = item?.0;
            let mut reader = Reader::new(&key);
            let (Some(topic), Some(partition)) = (reader.str16(), reader.i32()) else {
                return Err(StoreError::Corrupt {
                    what: format!("held-event key {}", codec::hex(&key)),
                });
            };
            out.push((topic.to_string(), partition));
            match codec::prefix_successor(&key[..reader.consumed(&key)]) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// Number of held events (sled counts by iterating the tree).
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The earliest `first_attempt_at_ms` over all held events (the age of
    /// the oldest retry, for metrics); `None` if no held event was
    /// attempted. Reads every record: for periodic metrics, not per event.
    pub fn oldest_first_attempt_ms(&self) -> Result<Option<i64>> {
        let mut oldest: Option<i64> = None;
        for value in self.tree.iter().values() {
            if let Some(at) = decode(&value?)?.first_attempt_at_ms {
                oldest = Some(oldest.map_or(at, |o| o.min(at)));
            }
        }
        Ok(oldest)
    }

    /// Number of held events that block their lane (`blocked_by`). Reads
    /// every record: for periodic metrics, not per event.
    pub fn blocked_count(&self) -> Result<usize> {
        let mut blocked = 0;
        for value in self.tree.iter().values() {
            if decode(&value?)?.blocked_by.is_some() {
                blocked += 1;
            }
        }
        Ok(blocked)
    }

    /// Atomically removes the held event `id` and stores `dead` in the
    /// dead-letter set (one sled transaction over both): after a crash,
    /// the event is either still held or dead-lettered, never both or
    /// neither.
    ///
    /// [`StoreError::NotFound`] if `id` is not held; nothing changes then.
    pub fn move_to_dead_letters(
        &self,
        id: &HeldId,
        dead: &DeadLetter,
        dead_letters: &DeadLetters,
    ) -> Result<()> {
        let key = id.key()?;
        let value = dead_letters::encode(dead)?;
        let (records, by_time, by_actor) = dead_letters.trees();
        (&self.tree, records, by_time, by_actor)
            .transaction(|(held, records, by_time, by_actor)| {
                if held.remove(key.as_slice())?.is_none() {
                    return Err(abort(StoreError::NotFound {
                        what: format!("held event {id}"),
                    }));
                }
                dead_letters::put_in((records, by_time, by_actor), dead, &value)
            })
            .map_err(from_tx)
    }
}

fn count<T>(items: impl Iterator<Item = sled::Result<T>>) -> Result<usize> {
    let mut n = 0;
    for item in items {
        item?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{AttemptOutcome, DeadLetterFilter, Store};

    fn event(topic: &str, partition: i32, offset: i64, key: Option<&[u8]>) -> StoredEvent {
        StoredEvent {
            topic: topic.to_string(),
            partition,
            offset,
            timestamp_ms: Some(1_000 + offset),
            key: key.map(<[u8]>::to_vec),
            payload: Some(format!("payload {offset}").into_bytes()),
            headers: vec![crate::StoredHeader::new("trace", Some(vec![0, 1, 2]))],
        }
    }

    fn attempt(n: u32, at: i64) -> AttemptRecord {
        AttemptRecord {
            attempt: n,
            started_at_ms: at,
            duration_ms: 1.5,
            version: 1,
            outcome: AttemptOutcome::Retry,
            error: format!("timeout {n}"),
        }
    }

    /// A never-attempted event waiting in `lane`.
    fn waiting(topic: &str, partition: i32, lane: LaneKey, offset: i64) -> HeldEvent {
        let key = match &lane {
            LaneKey::Key(k) => Some(k.clone()),
            _ => None,
        };
        HeldEvent {
            event: event(topic, partition, offset, key.as_deref()),
            lane,
            attempts: Vec::new(),
            first_attempt_at_ms: None,
            next_attempt_at_ms: None,
            version_override: None,
            blocked_by: None,
        }
    }

    /// A head waiting for its retry.
    fn retrying(
        topic: &str,
        partition: i32,
        lane: LaneKey,
        offset: i64,
        first_at: i64,
    ) -> HeldEvent {
        HeldEvent {
            attempts: vec![attempt(1, first_at)],
            first_attempt_at_ms: Some(first_at),
            next_attempt_at_ms: Some(first_at + 500),
            ..waiting(topic, partition, lane, offset)
        }
    }

    #[test]
    fn blocked_events_are_counted() {
        let held = Store::temporary().unwrap().held("a").unwrap();
        held.put(&retrying("t", 0, key(b"x"), 1, 10)).unwrap();
        assert_eq!(held.blocked_count().unwrap(), 0);
        held.put(&HeldEvent {
            blocked_by: Some(BlockedBy {
                dead_letter: "a:t:0:2".into(),
                dead_at_ms: 9,
            }),
            ..retrying("t", 0, key(b"y"), 2, 10)
        })
        .unwrap();
        assert_eq!(held.blocked_count().unwrap(), 1);
        // A blocked head is not "retrying".
        let retrying = held
            .list(
                &HeldFilter {
                    only_retrying: true,
                    ..HeldFilter::default()
                },
                10,
            )
            .unwrap();
        assert_eq!(retrying.len(), 1);
        assert!(retrying[0].blocked_by.is_none());
    }

    #[test]
    fn only_a_blocking_held_event_uses_format_2_and_both_formats_read_back() {
        let plain = retrying("t", 0, key(b"k"), 5, 100);
        let bytes = encode_held(&plain).unwrap();
        assert_eq!(bytes[0], crate::value::FORMAT_POSTCARD_V1);
        // What versions before blocking wrote and read: the six fields.
        let old: HeldEventV1 = crate::value::decode(WHAT, &bytes).unwrap();
        assert_eq!(old.event, plain.event);
        assert_eq!(decode_held(&bytes).unwrap(), plain);

        let blocking = HeldEvent {
            blocked_by: Some(BlockedBy {
                dead_letter: "a:t:0:5".into(),
                dead_at_ms: 9,
            }),
            ..plain.clone()
        };
        let bytes = encode_held(&blocking).unwrap();
        assert_eq!(bytes[0], crate::value::FORMAT_POSTCARD_V2);
        assert_eq!(decode_held(&bytes).unwrap(), blocking);
        // JSON of the oldest versions has no blocked_by.
        let json = serde_json::to_vec(&serde_json::json!({
            "event": plain.event, "lane": plain.lane, "attempts": plain.attempts,
            "first_attempt_at_ms": 100, "next_attempt_at_ms": 600, "version_override": null
        }))
        .unwrap();
        assert_eq!(decode_held(&json).unwrap(), plain);
        assert!(decode_held(&[0x02, 0xff]).is_err());
    }

    fn key(k: &[u8]) -> LaneKey {
        LaneKey::Key(k.to_vec())
    }

    fn offsets(events: &[HeldEvent]) -> Vec<i64> {
        events.iter().map(|h| h.event.offset).collect()
    }

    #[test]
    fn lane_first_returns_the_lowest_offset_whatever_the_insertion_order() {
        let held = Store::temporary().unwrap().held("a").unwrap();
        for offset in [700, 5, 300, 256, 1 << 33] {
            held.put(&waiting("orders", 0, key(b"k"), offset)).unwrap();
        }
        let first = held.lane_first("orders", 0, &key(b"k")).unwrap().unwrap();
        assert_eq!(first.event.offset, 5);
        assert_eq!(held.lane_len("orders", 0, &key(b"k")).unwrap(), 5);
        assert_eq!(
            offsets(&held.partition("orders", 0).unwrap()),
            vec![5, 256, 300, 700, 1 << 33]
        );
    }

    #[test]
    fn lanes_partitions_and_topics_do_not_bleed_into_each_other() {
        let held = Store::temporary().unwrap().held("a").unwrap();
        // Keys that are prefixes of each other, and keys with 0 bytes.
        let lanes = [
            (key(b"a"), 40),
            (key(b"ab"), 10),
            (key(b"a\0"), 11),
            (key(b"\0"), 12),
            (key(b""), 13),
            (LaneKey::Shared, 14),
            (LaneKey::Own(15), 15),
        ];
        for (lane, offset) in &lanes {
            held.put(&waiting("t", 1, lane.clone(), *offset)).unwrap();
        }
        // Same lane, neighbouring partitions and topics, lower offsets.
        held.put(&waiting("t", 10, key(b"a"), 1)).unwrap();
        held.put(&waiting("t", -1, key(b"a"), 2)).unwrap();
        held.put(&waiting("tt", 1, key(b"a"), 3)).unwrap();
        held.put(&waiting("", 1, key(b"a"), 4)).unwrap();

        for (lane, offset) in &lanes {
            let first = held.lane_first("t", 1, lane).unwrap().unwrap();
            assert_eq!(first.event.offset, *offset, "lane {lane:?}");
            assert_eq!(held.lane_len("t", 1, lane).unwrap(), 1, "lane {lane:?}");
        }
        assert_eq!(held.lane_first("t", 1, &key(b"b")).unwrap(), None);
        assert_eq!(held.lane_first("t", 1, &LaneKey::Own(16)).unwrap(), None);
        assert_eq!(held.partition("t", 1).unwrap().len(), lanes.len());
        assert_eq!(offsets(&held.partition("t", 10).unwrap()), vec![1]);
        assert_eq!(offsets(&held.partition("t", -1).unwrap()), vec![2]);
        assert_eq!(offsets(&held.partition("tt", 1).unwrap()), vec![3]);
        assert_eq!(
            held.partitions().unwrap(),
            vec![
                (String::new(), 1),
                ("t".to_string(), -1),
                ("t".to_string(), 1),
                ("t".to_string(), 10),
                ("tt".to_string(), 1),
            ]
        );
    }

    #[test]
    fn put_replaces_get_reads_and_remove_returns_the_record() {
        let held = Store::temporary().unwrap().held("a").unwrap();
        let first = waiting("orders", 2, key(b"k"), 7);
        held.put(&first).unwrap();
        let retried = retrying("orders", 2, key(b"k"), 7, 1_000);
        held.put(&retried).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held.get(&first.id()).unwrap(), Some(retried.clone()));
        assert_eq!(held.remove(&first.id()).unwrap(), Some(retried));
        assert_eq!(held.get(&first.id()).unwrap(), None);
        assert_eq!(held.remove(&first.id()).unwrap(), None);
        assert!(held.is_empty());
    }

    #[test]
    fn held_ids_display_as_stable_strings_and_parse_back() {
        let cases = [
            (
                HeldId {
                    topic: "orders".into(),
                    partition: 3,
                    lane: key(b"cust-42"),
                    offset: 1017,
                },
                "orders:3:key.637573742d3432:1017",
            ),
            (
                HeldId {
                    topic: "orders".into(),
                    partition: 0,
                    lane: LaneKey::Shared,
                    offset: 5,
                },
                "orders:0:shared:5",
            ),
            (
                HeldId {
                    topic: "orders".into(),
                    partition: 0,
                    lane: LaneKey::Own(9),
                    offset: 9,
                },
                "orders:0:own:9",
            ),
            (
                HeldId {
                    topic: "odd:topic".into(),
                    partition: -1,
                    lane: LaneKey::Own(8),
                    offset: 9,
                },
                "odd:topic:-1:own.8:9",
            ),
            (
                HeldId {
                    topic: "t".into(),
                    partition: 1,
                    lane: key(b"\0:"),
                    offset: 0,
                },
                "t:1:key.003a:0",
            ),
        ];
        for (id, text) in cases {
            assert_eq!(id.to_string(), text);
            assert_eq!(text.parse::<HeldId>().unwrap(), id);
        }
    }

    #[test]
    fn malformed_held_ids_are_refused() {
        for text in [
            "",
            "orders",
            "orders:0:shared",
            ":0:shared:5",
            "orders:x:shared:5",
            "orders:0:shared:x",
            "orders:0:lane:5",
            "orders:0:key.zz:5",
            "orders:0:own.x:5",
        ] {
            assert!(
                matches!(text.parse::<HeldId>(), Err(StoreError::Invalid { .. })),
                "{text:?}"
            );
        }
    }

    #[test]
    fn replace_partition_swaps_one_partition_and_leaves_others_alone() {
        let held = Store::temporary().unwrap().held("a").unwrap();
        held.put(&waiting("t", 0, key(b"x"), 1)).unwrap();
        held.put(&waiting("t", 0, key(b"y"), 2)).unwrap();
        held.put(&waiting("t", 1, key(b"x"), 3)).unwrap();
        held.put(&waiting("u", 0, key(b"x"), 4)).unwrap();

        let restored = vec![
            retrying("t", 0, key(b"x"), 10, 500),
            waiting("t", 0, key(b"x"), 11),
        ];
        held.replace_partition("t", 0, &restored).unwrap();

        assert_eq!(held.partition("t", 0).unwrap(), restored);
        assert_eq!(offsets(&held.partition("t", 1).unwrap()), vec![3]);
        assert_eq!(offsets(&held.partition("u", 0).unwrap()), vec![4]);

        held.replace_partition("t", 0, &[]).unwrap();
        assert!(held.partition("t", 0).unwrap().is_empty());
        assert_eq!(held.len(), 2);
    }

    #[test]
    fn replace_partition_refuses_records_of_another_partition_and_changes_nothing() {
        let held = Store::temporary().unwrap().held("a").unwrap();
        held.put(&waiting("t", 0, key(b"x"), 1)).unwrap();
        let wrong = vec![waiting("t", 0, key(b"x"), 2), waiting("t", 1, key(b"x"), 3)];
        assert!(matches!(
            held.replace_partition("t", 0, &wrong),
            Err(StoreError::Invalid { .. })
        ));
        assert_eq!(offsets(&held.partition("t", 0).unwrap()), vec![1]);
        assert_eq!(held.len(), 1);
    }

    #[test]
    fn list_combines_filters_and_respects_the_limit() {
        let held = Store::temporary().unwrap().held("a").unwrap();
        held.put(&retrying("t", 0, key(b"x"), 1, 100)).unwrap();
        held.put(&waiting("t", 0, key(b"x"), 2)).unwrap();
        held.put(&retrying("t", 0, key(b"y"), 3, 100)).unwrap();
        held.put(&retrying("t", 1, key(b"x"), 4, 100)).unwrap();
        held.put(&retrying("u", 0, key(b"x"), 5, 100)).unwrap();
        held.put(&retrying("u", 0, LaneKey::Shared, 6, 100))
            .unwrap();

        let all = HeldFilter::default();
        assert_eq!(held.list(&all, 100).unwrap().len(), 6);
        assert_eq!(offsets(&held.list(&all, 2).unwrap()), vec![1, 2]);
        assert!(held.list(&all, 0).unwrap().is_empty());

        let topic_t = HeldFilter {
            topic: Some("t".into()),
            ..HeldFilter::default()
        };
        assert_eq!(
            offsets(&held.list(&topic_t, 100).unwrap()),
            vec![1, 2, 3, 4]
        );

        let t0_retrying_x = HeldFilter {
            topic: Some("t".into()),
            partition: Some(0),
            key: Some(b"x".to_vec()),
            only_retrying: true,
        };
        assert_eq!(offsets(&held.list(&t0_retrying_x, 100).unwrap()), vec![1]);

        let partition_0_key_x = HeldFilter {
            partition: Some(0),
            key: Some(b"x".to_vec()),
            ..HeldFilter::default()
        };
        assert_eq!(
            offsets(&held.list(&partition_0_key_x, 100).unwrap()),
            vec![1, 2, 5]
        );
    }

    #[test]
    fn oldest_first_attempt_is_the_earliest_over_attempted_events() {
        let held = Store::temporary().unwrap().held("a").unwrap();
        assert_eq!(held.oldest_first_attempt_ms().unwrap(), None);
        held.put(&waiting("t", 0, key(b"x"), 1)).unwrap();
        assert_eq!(held.oldest_first_attempt_ms().unwrap(), None);
        held.put(&retrying("t", 0, key(b"y"), 2, 5_000)).unwrap();
        held.put(&retrying("t", 1, key(b"y"), 3, 2_000)).unwrap();
        held.put(&retrying("t", 2, key(b"y"), 4, 9_000)).unwrap();
        assert_eq!(held.oldest_first_attempt_ms().unwrap(), Some(2_000));
    }

    fn dead_letter_for(actor: &str, held: &HeldEvent, dead_at: i64) -> DeadLetter {
        let e = &held.event;
        DeadLetter {
            id: DeadLetter::make_id(actor, &e.topic, e.partition, e.offset),
            actor: actor.to_string(),
            version: 1,
            group: "g".to_string(),
            event: e.clone(),
            attempts: held.attempts.clone(),
            reason: "timeout 1".to_string(),
            kind: "attempts_exhausted".to_string(),
            first_attempt_at_ms: held.first_attempt_at_ms.unwrap_or(dead_at),
            dead_at_ms: dead_at,
            redrives: 0,
            blocking: false,
        }
    }

    #[test]
    fn move_to_dead_letters_removes_the_held_record_and_stores_the_dead_letter() {
        let store = Store::temporary().unwrap();
        let held = store.held("billing").unwrap();
        let dead_letters = store.dead_letters();
        let head = retrying("t", 0, key(b"x"), 1, 100);
        let behind = waiting("t", 0, key(b"x"), 2);
        held.put(&head).unwrap();
        held.put(&behind).unwrap();
        let dead = dead_letter_for("billing", &head, 9_000);

        held.move_to_dead_letters(&head.id(), &dead, &dead_letters)
            .unwrap();

        assert_eq!(held.get(&head.id()).unwrap(), None);
        assert_eq!(held.lane_first("t", 0, &key(b"x")).unwrap(), Some(behind));
        assert_eq!(dead_letters.get(&dead.id).unwrap(), Some(dead.clone()));
        let page = dead_letters
            .list(&DeadLetterFilter::default(), 10, None)
            .unwrap();
        assert_eq!(page.items, vec![dead]);
    }

    #[test]
    fn move_to_dead_letters_of_an_event_not_held_changes_nothing() {
        let store = Store::temporary().unwrap();
        let held = store.held("billing").unwrap();
        let dead_letters = store.dead_letters();
        let ghost = retrying("t", 0, key(b"x"), 1, 100);
        let dead = dead_letter_for("billing", &ghost, 9_000);
        assert!(matches!(
            held.move_to_dead_letters(&ghost.id(), &dead, &dead_letters),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(dead_letters.len(), 0);
        assert_eq!(dead_letters.count(&DeadLetterFilter::default()).unwrap(), 0);
    }

    #[test]
    fn held_events_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let head = retrying("t", 0, key(b"x"), 1, 100);
        {
            let store = Store::open(dir.path()).unwrap();
            store.held("billing").unwrap().put(&head).unwrap();
            store.flush().unwrap();
        }
        let store = crate::reopen(dir.path());
        let held = store.held("billing").unwrap();
        assert_eq!(held.get(&head.id()).unwrap(), Some(head));
        assert!(store.held("other").unwrap().is_empty());
    }
}
