//! Dead letters: the cluster-wide set of events that actors gave up on,
//! with everything an operator needs to see why and to re-drive them.
//!
//! Three trees, kept in step inside one sled transaction on every write:
//! - `dead_letters`: id -> [`DeadLetter`] (the binary value format of
//!   [`crate::value`]; JSON written by earlier versions is still read);
//! - `dead_letters_by_time`: (dead_at_ms as sign-flipped i64 BE, id) -> (),
//!   the index that lists newest first and narrows time filters;
//! - `dead_letters_by_actor`: (actor, dead_at_ms, id) -> (), the index that
//!   retention walks oldest first per actor (built from the records when a
//!   store written by an earlier version is opened).
//!
//! A fourth, `dead_letters_evicted`, counts per actor and reason the dead
//! letters that retention removed ([`DeadLetters::enforce_retention`]).
//!
//! Two more serve the cluster's dead-letter topics (`<group>.dead-letters`,
//! wactor-kafka's `dead_letter_log`), which every host reads into this set:
//! - `dead_letters_seen`: id -> the re-drive count (u32 BE) of the last
//!   record of that letter read from its topic: a letter of this set whose
//!   count is not there was never read back, so it must be published;
//! - `dead_letters_log`: (topic, 0, partition i32 BE) -> the next offset
//!   to read (i64 BE).
//!
//! Ids are deterministic ([`DeadLetter::make_id`]), so an event that is
//! delivered twice and dies twice is one entry.
//!
//! # Retention
//!
//! The set is bounded per actor by age and by count ([`Retention`]; the
//! manifest's `[dead_letter] max_age` and `max_count`, 30 days and 100,000
//! by default). Enforcement is a sweep the host runs on a timer: dead
//! letters older than the age limit go first, then the oldest beyond the
//! count limit. Each record's size is bounded by the host's limits on
//! reasons (4 KiB each) and on the events it holds.
//!
//! # Not here
//!
//! Deciding that an event is dead (the retry policy), mirroring dead letters
//! to Kafka and re-driving them belong to delivery and kafka; moving a held
//! event here atomically is [`crate::HeldEvents::move_to_dead_letters`].

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionResult, TransactionalTree};
use sled::Transactional;

use crate::codec;
use crate::{abort, from_tx, AttemptRecord, Result, StoreError, StoredEvent};

/// Everything kept about one dead event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// [`DeadLetter::make_id`]: `<actor>:<topic>:<partition>:<offset>`.
    pub id: String,
    /// The actor that gave up on it.
    pub actor: String,
    /// The actor version of the last attempt.
    pub version: u64,
    /// The actor's consumer group.
    pub group: String,
    /// The event itself.
    pub event: StoredEvent,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptRecord>,
    /// Why it died: the actor's dead reason, or the last error.
    pub reason: String,
    /// `actor_dead`, `attempts_exhausted` or `max_age_exceeded` (from the
    /// retry policy).
    pub kind: String,
    /// When the first attempt started (ms since the Unix epoch).
    pub first_attempt_at_ms: i64,
    /// When it was dead-lettered (ms since the Unix epoch); the list order.
    pub dead_at_ms: i64,
    /// How many times it was re-driven before.
    pub redrives: u32,
    /// Its event holds its lane (`[dead_letter] on_dead = "block"`): a
    /// re-drive or discard must reach the worker of its partition, which
    /// releases the lane. Not part of the serde shape (re-drive envelopes
    /// and format-1 values stay as they were): [`encode_dead_letter`]
    /// writes it as format 2.
    #[serde(skip)]
    pub blocking: bool,
}

/// Encodes a dead letter for the store and `<group>.dead-letters`: format
/// 1 ([`crate::value::FORMAT_POSTCARD_V1`]) unless it blocks its lane,
/// then format 2 (the letter, then `true`).
///
/// # Errors
/// [`StoreError::Codec`] when serde refuses it (not the case for this type).
pub fn encode_dead_letter(dead: &DeadLetter) -> Result<Vec<u8>> {
    if dead.blocking {
        crate::value::encode_v2(WHAT, &(dead, true))
    } else {
        crate::value::encode(WHAT, dead)
    }
}

/// Decodes what [`encode_dead_letter`] wrote (either format), or the JSON
/// of older versions.
///
/// # Errors
/// [`StoreError::Codec`] or [`StoreError::Corrupt`] for bytes that are not
/// a dead letter.
pub fn decode_dead_letter(bytes: &[u8]) -> Result<DeadLetter> {
    if bytes.first() == Some(&crate::value::FORMAT_POSTCARD_V2) {
        let (mut dead, blocking): (DeadLetter, bool) = crate::value::decode(WHAT, bytes)?;
        dead.blocking = blocking;
        return Ok(dead);
    }
    crate::value::decode(WHAT, bytes)
}

impl DeadLetter {
    /// The deterministic id of an actor's dead letter for one record:
    /// `<actor>:<topic>:<partition>:<offset>`.
    pub fn make_id(actor: &str, topic: &str, partition: i32, offset: i64) -> String {
        format!("{actor}:{topic}:{partition}:{offset}")
    }
}

/// Which dead letters to list or count; `None` fields do not filter, the
/// others combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only this actor's.
    pub actor: Option<String>,
    /// Only events from this topic.
    pub topic: Option<String>,
    /// Only events whose record key is exactly this.
    pub key: Option<Vec<u8>>,
    /// Only those whose reason or any attempt's error contains this,
    /// ignoring case.
    pub error_contains: Option<String>,
    /// Only those with `dead_at_ms >= since_ms` (inclusive).
    pub since_ms: Option<i64>,
    /// Only those with `dead_at_ms < until_ms` (exclusive).
    pub until_ms: Option<i64>,
}

impl DeadLetterFilter {
    /// Whether `dead` passes the filter.
    pub fn matches(&self, dead: &DeadLetter) -> bool {
        self.actor.as_ref().is_none_or(|a| *a == dead.actor)
            && self.topic.as_ref().is_none_or(|t| *t == dead.event.topic)
            && self
                .key
                .as_ref()
                .is_none_or(|k| dead.event.key.as_ref() == Some(k))
            && self.since_ms.is_none_or(|s| dead.dead_at_ms >= s)
            && self.until_ms.is_none_or(|u| dead.dead_at_ms < u)
            && self.error_contains.as_ref().is_none_or(|needle| {
                let needle = needle.to_lowercase();
                dead.reason.to_lowercase().contains(&needle)
                    || dead
                        .attempts
                        .iter()
                        .any(|a| a.error.to_lowercase().contains(&needle))
            })
    }

    /// True when only the time bounds filter (the index alone answers).
    fn only_time(&self) -> bool {
        self.actor.is_none()
            && self.topic.is_none()
            && self.key.is_none()
            && self.error_contains.is_none()
    }
}

/// One page of [`DeadLetters::list`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterPage {
    /// Newest first.
    pub items: Vec<DeadLetter>,
    /// Pass as `after` to get the next page; `None` when there is none.
    /// Opaque (it encodes the last item's dead_at_ms and id).
    pub next: Option<String>,
}

/// The actor of the record under `key`, for a key that is not of the
/// `<actor>:...` form.
fn decode_record_actor(records: &sled::Tree, key: &[u8]) -> Result<String> {
    match records.get(key)? {
        Some(value) => Ok(decode(&value)?.actor),
        None => Ok(String::new()),
    }
}

/// How long and how many dead letters one actor keeps; `None` fields do
/// not limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Dead letters whose `dead_at_ms` is older than this many milliseconds
    /// are evicted.
    pub max_age_ms: Option<i64>,
    /// At most this many are kept; the oldest (by `dead_at_ms`) are
    /// evicted first.
    pub max_count: Option<u64>,
}

impl Retention {
    /// The defaults: 30 days, 100,000 dead letters per actor.
    pub const DEFAULT: Retention = Retention {
        max_age_ms: Some(30 * 24 * 60 * 60 * 1000),
        max_count: Some(100_000),
    };
}

impl Default for Retention {
    fn default() -> Self {
        Retention::DEFAULT
    }
}

/// Dead letters removed by retention, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evicted {
    /// Removed for being older than `max_age`.
    pub by_age: u64,
    /// Removed for being beyond `max_count`.
    pub by_count: u64,
}

impl Evicted {
    /// Both reasons together.
    pub fn total(&self) -> u64 {
        self.by_age.saturating_add(self.by_count)
    }
}

/// Why retention evicted a dead letter; the byte that ends its counter key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EvictReason {
    Age = 0,
    Count = 1,
}

/// Most dead letters removed in one transaction.
const EVICT_BATCH: usize = 500;

/// The dead-letter set. Cheap to clone.
#[derive(Clone)]
pub struct DeadLetters {
    /// `dead_letters`: id -> record.
    records: sled::Tree,
    /// `dead_letters_by_time`: (dead_at_ms, id) -> ().
    by_time: sled::Tree,
    /// `dead_letters_by_actor`: (actor, dead_at_ms, id) -> ().
    by_actor: sled::Tree,
    /// `dead_letters_evicted`: (actor, reason byte) -> u64 BE.
    evicted: sled::Tree,
    /// `dead_letters_seen`: id -> re-drive count read from the topic.
    seen: sled::Tree,
    /// `dead_letters_log`: (topic, partition) -> next offset.
    log: sled::Tree,
}

const WHAT: &str = "dead letter";

/// Serializes a dead letter, refusing one without an id.
pub(crate) fn encode(dead: &DeadLetter) -> Result<Vec<u8>> {
    if dead.id.is_empty() {
        return Err(StoreError::Invalid {
            what: "dead letter: empty id".to_string(),
        });
    }
    encode_dead_letter(dead)
}

fn decode(bytes: &[u8]) -> Result<DeadLetter> {
    decode_dead_letter(bytes)
}

/// Inserts or replaces `dead` (already `encode`d as `value`) inside a
/// transaction over the three trees (records, by time, by actor), moving
/// its index entries if its dead_at_ms (or actor) changed.
pub(crate) fn put_in(
    (records, by_time, by_actor): (&TransactionalTree, &TransactionalTree, &TransactionalTree),
    dead: &DeadLetter,
    value: &[u8],
) -> ConflictableTransactionResult<(), StoreError> {
    let actor_key =
        codec::dead_letter_actor_key(&dead.actor, dead.dead_at_ms, &dead.id).map_err(abort)?;
    if let Some(old) = records.insert(dead.id.as_bytes(), value)? {
        let old = decode(&old).map_err(abort)?;
        if old.dead_at_ms != dead.dead_at_ms {
            by_time.remove(codec::dead_letter_time_key(old.dead_at_ms, &old.id))?;
        }
        let old_actor_key =
            codec::dead_letter_actor_key(&old.actor, old.dead_at_ms, &old.id).map_err(abort)?;
        if old_actor_key != actor_key {
            by_actor.remove(old_actor_key)?;
        }
    }
    by_time.insert(
        codec::dead_letter_time_key(dead.dead_at_ms, &dead.id),
        sled::IVec::default(),
    )?;
    by_actor.insert(actor_key, sled::IVec::default())?;
    Ok(())
}

/// Removes `dead.id` inside a transaction over the three trees if it is
/// still exactly `dead` (compare-and-delete); whether it did.
fn remove_in(
    (records, by_time, by_actor): (&TransactionalTree, &TransactionalTree, &TransactionalTree),
    dead: &DeadLetter,
) -> ConflictableTransactionResult<bool, StoreError> {
    let Some(current) = records.get(dead.id.as_bytes())? else {
        return Ok(false);
    };
    // Compared decoded: a letter stored by an earlier version is JSON, not
    // the bytes this version would write.
    if decode(&current).map_err(abort)? != *dead {
        return Ok(false);
    }
    records.remove(dead.id.as_bytes())?;
    by_time.remove(codec::dead_letter_time_key(dead.dead_at_ms, &dead.id))?;
    by_actor.remove(
        codec::dead_letter_actor_key(&dead.actor, dead.dead_at_ms, &dead.id).map_err(abort)?,
    )?;
    Ok(true)
}

/// Key of a read position in `dead_letters_log`.
fn log_key(topic: &str, partition: i32) -> Vec<u8> {
    let mut key = topic.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// Key of an actor's eviction counter for one reason.
fn evicted_key(actor: &str, reason: EvictReason) -> Result<Vec<u8>> {
    let mut key = codec::actor_prefix(actor)?;
    key.push(reason as u8);
    Ok(key)
}

/// The opaque cursor of an index key.
fn cursor_of(index_key: &[u8]) -> String {
    codec::hex(index_key)
}

/// The index key a cursor stands for.
fn index_key_of(cursor: &str) -> Result<Vec<u8>> {
    codec::unhex(cursor)
        .filter(|key| key.len() > 8)
        .ok_or_else(|| StoreError::Invalid {
            what: format!("dead-letter cursor {cursor:?}"),
        })
}

type Range = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The index range a filter's time bounds (and a cursor) allow, or `None`
/// when it is empty.
fn index_range(filter: &DeadLetterFilter, before: Option<Vec<u8>>) -> Option<Range> {
    let low = match filter.since_ms {
        Some(since) => Bound::Included(codec::order_i64(since).to_vec()),
        None => Bound::Unbounded,
    };
    let until = filter
        .until_ms
        .map(|until| codec::order_i64(until).to_vec());
    let high = match (until, before) {
        (Some(a), Some(b)) => Bound::Excluded(a.min(b)),
        (Some(key), None) | (None, Some(key)) => Bound::Excluded(key),
        (None, None) => Bound::Unbounded,
    };
    if let (Bound::Included(low), Bound::Excluded(high)) = (&low, &high) {
        if low >= high {
            return None;
        }
    }
    Some((low, high))
}

impl DeadLetters {
    pub(crate) fn open(db: &sled::Db) -> Result<Self> {
        let set = DeadLetters {
            records: db.open_tree("dead_letters")?,
            by_time: db.open_tree("dead_letters_by_time")?,
            by_actor: db.open_tree("dead_letters_by_actor")?,
            evicted: db.open_tree("dead_letters_evicted")?,
            seen: db.open_tree("dead_letters_seen")?,
            log: db.open_tree("dead_letters_log")?,
        };
        if set.by_actor.is_empty() && !set.records.is_empty() {
            set.rebuild_actor_index()?;
        }
        Ok(set)
    }

    /// Builds the per-actor index from the records (a store written before
    /// the index existed).
    fn rebuild_actor_index(&self) -> Result<()> {
        let mut batch = sled::Batch::default();
        let mut n = 0usize;
        for value in self.records.iter().values() {
            let dead = decode(&value?)?;
            batch.insert(
                codec::dead_letter_actor_key(&dead.actor, dead.dead_at_ms, &dead.id)?,
                sled::IVec::default(),
            );
            n += 1;
        }
        self.by_actor.apply_batch(batch)?;
        tracing::info!(dead_letters = n, "built the per-actor dead-letter index");
        Ok(())
    }

    /// The three trees a dead letter lives in, for transactions that span
    /// other modules' trees.
    pub(crate) fn trees(&self) -> (&sled::Tree, &sled::Tree, &sled::Tree) {
        (&self.records, &self.by_time, &self.by_actor)
    }

    /// Inserts `dead`, or replaces the entry with the same id (its index
    /// entries move with it).
    pub fn put(&self, dead: &DeadLetter) -> Result<()> {
        let value = encode(dead)?;
        (&self.records, &self.by_time, &self.by_actor)
            .transaction(|(records, by_time, by_actor)| {
                put_in((records, by_time, by_actor), dead, &value)
            })
            .map_err(from_tx)
    }

    /// The dead letter with this id.
    pub fn get(&self, id: &str) -> Result<Option<DeadLetter>> {
        self.records
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Removes the dead letter `dead.id` only if it is still exactly
    /// `dead` (compare-and-delete): a re-drive removes the letter it sent,
    /// never a newer one that the re-driven event wrote when it died again.
    /// Returns whether it removed it.
    pub fn remove_if_unchanged(&self, dead: &DeadLetter) -> Result<bool> {
        (&self.records, &self.by_time, &self.by_actor)
            .transaction(|(records, by_time, by_actor)| {
                remove_in((records, by_time, by_actor), dead)
            })
            .map_err(from_tx)
    }

    /// [`remove_if_unchanged`](Self::remove_if_unchanged) of each letter
    /// of `dead` (distinct ids), in one transaction: sled's transaction
    /// lock, which every other store operation waits for, is taken once
    /// for them all rather than once each. Returns, in order, whether each
    /// was removed. On an error nothing is removed.
    pub fn remove_each_if_unchanged(&self, dead: &[DeadLetter]) -> Result<Vec<bool>> {
        (&self.records, &self.by_time, &self.by_actor)
            .transaction(|(records, by_time, by_actor)| {
                dead.iter()
                    .map(|d| remove_in((records, by_time, by_actor), d))
                    .collect()
            })
            .map_err(from_tx)
    }

    /// Applies a dead letter read from the cluster's topic: stored unless
    /// this set has the same letter from a later death (more re-drives),
    /// and marked as seen. Returns whether it was stored.
    pub fn put_from_log(&self, dead: &DeadLetter) -> Result<bool> {
        let newer_here = self
            .get(&dead.id)?
            .is_some_and(|d| d.redrives > dead.redrives);
        if !newer_here {
            self.put(dead)?;
        }
        self.seen
            .insert(dead.id.as_bytes(), &dead.redrives.to_be_bytes())?;
        Ok(!newer_here)
    }

    /// Applies a removal read from the cluster's topic (a re-drive or a
    /// discard of the letter `id` after `redrives` re-drives): removes the
    /// letter unless it is from a later death. Returns whether it removed
    /// one.
    pub fn remove_from_log(&self, id: &str, redrives: u32) -> Result<bool> {
        let seen_later = self
            .seen
            .get(id.as_bytes())?
            .is_some_and(|v| codec::u32_be(&v).is_some_and(|n| n > redrives));
        if !seen_later {
            self.seen.remove(id.as_bytes())?;
        }
        match self.get(id)? {
            Some(current) if current.redrives <= redrives => {
                Ok(self.remove_if_unchanged(&current)?)
            }
            _ => Ok(false),
        }
    }

    /// The letters of this set whose current death was never read back
    /// from the cluster's topic (written here, and their record not
    /// acknowledged, or not read back yet), oldest first.
    pub fn unseen(&self) -> Result<Vec<DeadLetter>> {
        let mut out = Vec::new();
        for entry in self.records.iter() {
            let (id, value) = entry?;
            let seen = self.seen.get(&id)?.and_then(|v| codec::u32_be(&v));
            let dead = decode(&value)?;
            if seen != Some(dead.redrives) {
                out.push(dead);
            }
        }
        out.sort_by_key(|d| d.dead_at_ms);
        Ok(out)
    }

    /// Where reading `topic[partition]` goes on (the next offset), if it
    /// was read before.
    pub fn log_position(&self, topic: &str, partition: i32) -> Result<Option<i64>> {
        self.log
            .get(log_key(topic, partition))?
            .map(|v| codec::i64_value("dead-letter log position", &v))
            .transpose()
    }

    /// Records that `topic[partition]` was read up to `next` (exclusive).
    pub fn set_log_position(&self, topic: &str, partition: i32, next: i64) -> Result<()> {
        self.log
            .insert(log_key(topic, partition), &next.to_be_bytes())?;
        Ok(())
    }

    /// Removes (discards) the dead letter with this id, returning it.
    pub fn remove(&self, id: &str) -> Result<Option<DeadLetter>> {
        (&self.records, &self.by_time, &self.by_actor)
            .transaction(|(records, by_time, by_actor)| {
                let Some(old) = records.remove(id.as_bytes())? else {
                    return Ok(None);
                };
                let old = decode(&old).map_err(abort)?;
                by_time.remove(codec::dead_letter_time_key(old.dead_at_ms, &old.id))?;
                by_actor.remove(
                    codec::dead_letter_actor_key(&old.actor, old.dead_at_ms, &old.id)
                        .map_err(abort)?,
                )?;
                Ok(Some(old))
            })
            .map_err(from_tx)
    }

    /// Applies `retention` to `actor`'s dead letters at `now_ms`: removes
    /// those that died more than `max_age_ms` ago, then the oldest beyond
    /// `max_count`, and adds them to the actor's eviction counters. Returns
    /// what this call removed. Reads index keys only (no record is
    /// decoded), and removes in transactions of a few hundred, so writers
    /// are never held up for long; a dead letter replaced meanwhile (it
    /// died again) is left alone.
    pub fn enforce_retention(
        &self,
        actor: &str,
        retention: &Retention,
        now_ms: i64,
    ) -> Result<Evicted> {
        let prefix = codec::dead_letter_actor_prefix(actor)?;
        let mut total: u64 = 0;
        for key in self.by_actor.scan_prefix(&prefix).keys() {
            key?;
            total += 1;
        }
        let cutoff = retention
            .max_age_ms
            .map(|age| now_ms.saturating_sub(age.max(0)));
        let keep = retention.max_count.unwrap_or(u64::MAX);
        let mut remaining = total;
        let mut chosen: Vec<(i64, String, EvictReason)> = Vec::new();
        for key in self.by_actor.scan_prefix(&prefix).keys() {
            let key = key?;
            let mut reader = codec::Reader::new(&key[prefix.len()..]);
            let Some(dead_at) = reader.i64() else {
                return Err(StoreError::Corrupt {
                    what: format!("dead-letter actor index key {}", codec::hex(&key)),
                });
            };
            let id = String::from_utf8_lossy(reader.rest()).into_owned();
            let reason = if cutoff.is_some_and(|c| dead_at < c) {
                EvictReason::Age
            } else if remaining > keep {
                EvictReason::Count
            } else {
                break;
            };
            chosen.push((dead_at, id, reason));
            remaining -= 1;
        }
        let mut evicted = Evicted::default();
        for batch in chosen.chunks(EVICT_BATCH) {
            let done = self.evict(actor, batch)?;
            evicted.by_age += done.by_age;
            evicted.by_count += done.by_count;
        }
        Ok(evicted)
    }

    /// Removes one batch of dead letters of `actor` chosen by retention
    /// and counts them, in one transaction.
    fn evict(&self, actor: &str, batch: &[(i64, String, EvictReason)]) -> Result<Evicted> {
        let age_key = evicted_key(actor, EvictReason::Age)?;
        let count_key = evicted_key(actor, EvictReason::Count)?;
        let mut keys = Vec::with_capacity(batch.len());
        for (dead_at, id, reason) in batch {
            keys.push((
                codec::dead_letter_actor_key(actor, *dead_at, id)?,
                codec::dead_letter_time_key(*dead_at, id),
                id.as_bytes().to_vec(),
                *reason,
            ));
        }
        (&self.records, &self.by_time, &self.by_actor, &self.evicted)
            .transaction(|(records, by_time, by_actor, evicted)| {
                let mut done = Evicted::default();
                for (actor_key, time_key, id, reason) in &keys {
                    // Gone or replaced since the scan: not ours to remove.
                    if by_actor.remove(actor_key.as_slice())?.is_none() {
                        continue;
                    }
                    by_time.remove(time_key.as_slice())?;
                    records.remove(id.as_slice())?;
                    match reason {
                        EvictReason::Age => done.by_age += 1,
                        EvictReason::Count => done.by_count += 1,
                    }
                }
                for (key, n) in [(&age_key, done.by_age), (&count_key, done.by_count)] {
                    if n == 0 {
                        continue;
                    }
                    let before = match evicted.get(key.as_slice())? {
                        Some(v) => codec::u64_value("eviction counter", &v).map_err(abort)?,
                        None => 0,
                    };
                    evicted.insert(key.as_slice(), &before.saturating_add(n).to_be_bytes())?;
                }
                Ok(done)
            })
            .map_err(from_tx)
    }

    /// How many of `actor`'s dead letters retention has removed, ever.
    pub fn evicted(&self, actor: &str) -> Result<Evicted> {
        let read = |reason| -> Result<u64> {
            match self.evicted.get(evicted_key(actor, reason)?)? {
                Some(v) => codec::u64_value("eviction counter", &v),
                None => Ok(0),
            }
        };
        Ok(Evicted {
            by_age: read(EvictReason::Age)?,
            by_count: read(EvictReason::Count)?,
        })
    }

    /// The actors that have dead letters, sorted by name length then
    /// bytes (the index order). Seeks past each actor: one lookup per
    /// actor, not per dead letter.
    pub fn actors(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut from = Vec::new();
        while let Some(item) = self.by_actor.range(from.as_slice()..).next() {
            let key = item?.0;
            let mut reader = codec::Reader::new(&key);
            let Some(actor) = reader.str16() else {
                return Err(StoreError::Corrupt {
                    what: format!("dead-letter actor index key {}", codec::hex(&key)),
                });
            };
            out.push(actor.to_string());
            match codec::prefix_successor(&key[..reader.consumed(&key)]) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// One page of the dead letters that pass `filter`, newest first (by
    /// dead_at_ms, ties by id, both descending). `after` is the previous
    /// page's `next`: pages continue strictly after it, without gaps or
    /// repeats, even if entries were added or removed in between (entries
    /// added newer than the cursor show up on a fresh first page). A
    /// `limit` of 0 is taken as 1, so every page makes progress.
    pub fn list(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
        after: Option<&str>,
    ) -> Result<DeadLetterPage> {
        let limit = limit.max(1);
        let before = after.map(index_key_of).transpose()?;
        let mut items = Vec::new();
        let mut last_key: Option<Vec<u8>> = None;
        let mut next = None;
        self.scan(filter, before, |key, dead| {
            if items.len() == limit {
                // One more match exists: there is a next page.
                next = last_key.as_deref().map(cursor_of);
                return false;
            }
            items.push(dead);
            last_key = Some(key.to_vec());
            true
        })?;
        Ok(DeadLetterPage { items, next })
    }

    /// How many dead letters pass `filter`. With only time bounds, the
    /// index answers without reading the records.
    pub fn count(&self, filter: &DeadLetterFilter) -> Result<usize> {
        if filter.only_time() {
            let Some(range) = index_range(filter, None) else {
                return Ok(0);
            };
            let mut n = 0;
            for key in self.by_time.range(range).keys() {
                key?;
                n += 1;
            }
            return Ok(n);
        }
        let mut n = 0;
        self.scan(filter, None, |_, _| {
            n += 1;
            true
        })?;
        Ok(n)
    }

    /// Number of dead letters per actor, by actor name. Reads keys only:
    /// an id starts with `<actor>:` and actor names have no `:`.
    pub fn count_by_actor(&self) -> Result<BTreeMap<String, usize>> {
        let mut counts = BTreeMap::new();
        for key in self.records.iter().keys() {
            let key = key?;
            let actor = match key.iter().position(|&b| b == b':') {
                Some(end) => String::from_utf8_lossy(&key[..end]).into_owned(),
                None => decode_record_actor(&self.records, &key)?,
            };
            *counts.entry(actor).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// Number of dead letters of one actor (a prefix scan of keys).
    pub fn count_for_actor(&self, actor: &str) -> Result<usize> {
        let prefix = format!("{actor}:");
        let mut count = 0;
        for key in self.records.scan_prefix(prefix.as_bytes()).keys() {
            key?;
            count += 1;
        }
        Ok(count)
    }

    /// Number of dead letters.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Visits the dead letters that pass `filter`, newest first, strictly
    /// before the index key `before`, until `visit` returns false.
    fn scan(
        &self,
        filter: &DeadLetterFilter,
        before: Option<Vec<u8>>,
        mut visit: impl FnMut(&[u8], DeadLetter) -> bool,
    ) -> Result<()> {
        let Some(range) = index_range(filter, before) else {
            return Ok(());
        };
        for key in self.by_time.range(range).keys().rev() {
            let key = key?;
            let Some(id) = key.get(8..) else {
                return Err(StoreError::Corrupt {
                    what: format!("dead-letter index key {}", codec::hex(&key)),
                });
            };
            let Some(value) = self.records.get(id)? else {
                // Only a write that bypassed this module leaves a dangling
                // index entry; the record is gone, so there is nothing to show.
                tracing::warn!(
                    id = %String::from_utf8_lossy(id),
                    "dead-letter index entry without a record; skipped"
                );
                continue;
            };
            let dead = decode(&value)?;
            if filter.matches(&dead) && !visit(&key, dead) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{AttemptOutcome, Store};

    fn dead(actor: &str, topic: &str, offset: i64, dead_at: i64) -> DeadLetter {
        DeadLetter {
            id: DeadLetter::make_id(actor, topic, 0, offset),
            actor: actor.to_string(),
            version: 3,
            group: format!("{actor}-group"),
            event: StoredEvent {
                topic: topic.to_string(),
                partition: 0,
                offset,
                timestamp_ms: None,
                key: Some(format!("key-{}", offset % 2).into_bytes()),
                payload: Some(b"{}".to_vec()),
                headers: Vec::new(),
            },
            attempts: vec![AttemptRecord {
                attempt: 1,
                started_at_ms: dead_at - 10,
                duration_ms: 2.0,
                version: 3,
                outcome: AttemptOutcome::Retry,
                error: format!("upstream said {offset}"),
            }],
            reason: "gave up".to_string(),
            kind: "attempts_exhausted".to_string(),
            first_attempt_at_ms: dead_at - 10,
            dead_at_ms: dead_at,
            redrives: 0,
            blocking: false,
        }
    }

    fn ids(items: &[DeadLetter]) -> Vec<&str> {
        items.iter().map(|d| d.id.as_str()).collect()
    }

    /// Every page of a listing, following the cursors.
    fn all_pages(
        set: &DeadLetters,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Vec<Vec<DeadLetter>> {
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = set.list(filter, limit, after.as_deref()).unwrap();
            pages.push(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn ids_are_deterministic() {
        assert_eq!(
            DeadLetter::make_id("billing", "orders", 3, 42),
            "billing:orders:3:42"
        );
    }

    #[test]
    fn list_is_newest_first_with_ties_broken_by_id() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("a", "t", 1, 100)).unwrap();
        set.put(&dead("a", "t", 2, 300)).unwrap();
        set.put(&dead("b", "t", 3, 200)).unwrap();
        set.put(&dead("c", "t", 4, 200)).unwrap();
        let page = set.list(&DeadLetterFilter::default(), 10, None).unwrap();
        assert_eq!(
            ids(&page.items),
            vec!["a:t:0:2", "c:t:0:4", "b:t:0:3", "a:t:0:1"]
        );
        assert_eq!(page.next, None);
    }

    #[test]
    fn paging_continues_without_gaps_or_repeats() {
        let set = Store::temporary().unwrap().dead_letters();
        // Several entries share a dead_at, so pages split inside a tie.
        for offset in 0..23 {
            set.put(&dead("a", "t", offset, 1_000 + offset / 3))
                .unwrap();
        }
        let full = set
            .list(&DeadLetterFilter::default(), 100, None)
            .unwrap()
            .items;
        assert_eq!(full.len(), 23);

        for limit in [1, 2, 5, 7, 23] {
            let pages = all_pages(&set, &DeadLetterFilter::default(), limit);
            assert!(pages.iter().all(|p| !p.is_empty() && p.len() <= limit));
            let joined: Vec<DeadLetter> = pages.into_iter().flatten().collect();
            assert_eq!(joined, full, "limit {limit}");
        }
        // An exact fit has no empty last page.
        let page = set.list(&DeadLetterFilter::default(), 23, None).unwrap();
        assert_eq!(page.next, None);
    }

    #[test]
    fn a_cursor_stays_valid_when_entries_change_between_pages() {
        let set = Store::temporary().unwrap().dead_letters();
        for offset in 0..6 {
            set.put(&dead("a", "t", offset, 1_000 + offset)).unwrap();
        }
        let first = set.list(&DeadLetterFilter::default(), 2, None).unwrap();
        assert_eq!(ids(&first.items), vec!["a:t:0:5", "a:t:0:4"]);
        // The last item of the page is discarded, and a newer entry arrives.
        set.remove("a:t:0:4").unwrap();
        set.put(&dead("a", "t", 9, 5_000)).unwrap();
        let second = set
            .list(&DeadLetterFilter::default(), 2, first.next.as_deref())
            .unwrap();
        assert_eq!(ids(&second.items), vec!["a:t:0:3", "a:t:0:2"]);
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let set = Store::temporary().unwrap().dead_letters();
        for cursor in ["", "zz", "0011", "abc"] {
            assert!(matches!(
                set.list(&DeadLetterFilter::default(), 5, Some(cursor)),
                Err(StoreError::Invalid { .. })
            ));
        }
    }

    #[test]
    fn filters_combine() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("billing", "orders", 1, 100)).unwrap();
        set.put(&dead("billing", "orders", 2, 200)).unwrap();
        set.put(&dead("billing", "refunds", 3, 300)).unwrap();
        set.put(&dead("search", "orders", 4, 400)).unwrap();
        let mut shouting = dead("search", "orders", 5, 500);
        shouting.reason = "Connection REFUSED by db".to_string();
        set.put(&shouting).unwrap();

        let list = |filter: DeadLetterFilter| {
            let items = set.list(&filter, 100, None).unwrap().items;
            assert_eq!(set.count(&filter).unwrap(), items.len(), "{filter:?}");
            items.into_iter().map(|d| d.id).collect::<Vec<_>>()
        };

        let billing_orders = DeadLetterFilter {
            actor: Some("billing".into()),
            topic: Some("orders".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(
            list(billing_orders.clone()),
            vec!["billing:orders:0:2", "billing:orders:0:1"]
        );

        let billing_orders_key_1 = DeadLetterFilter {
            key: Some(b"key-1".to_vec()),
            ..billing_orders
        };
        assert_eq!(list(billing_orders_key_1), vec!["billing:orders:0:1"]);

        let refused = DeadLetterFilter {
            error_contains: Some("connection refused".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(refused), vec!["search:orders:0:5"]);

        let in_attempt_error = DeadLetterFilter {
            error_contains: Some("UPSTREAM SAID 3".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(in_attempt_error), vec!["billing:refunds:0:3"]);

        // since is inclusive, until exclusive.
        let window = DeadLetterFilter {
            since_ms: Some(200),
            until_ms: Some(400),
            ..DeadLetterFilter::default()
        };
        assert_eq!(
            list(window.clone()),
            vec!["billing:refunds:0:3", "billing:orders:0:2"]
        );

        let window_orders = DeadLetterFilter {
            topic: Some("orders".into()),
            ..window
        };
        assert_eq!(list(window_orders), vec!["billing:orders:0:2"]);

        let empty_window = DeadLetterFilter {
            since_ms: Some(400),
            until_ms: Some(400),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(empty_window), Vec::<String>::new());

        let nobody = DeadLetterFilter {
            actor: Some("nobody".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(nobody), Vec::<String>::new());
    }

    #[test]
    fn filtered_paging_follows_the_filter_across_pages() {
        let set = Store::temporary().unwrap().dead_letters();
        for offset in 0..20 {
            let actor = if offset % 3 == 0 { "a" } else { "b" };
            set.put(&dead(actor, "t", offset, 1_000 + offset)).unwrap();
        }
        let only_a = DeadLetterFilter {
            actor: Some("a".into()),
            ..DeadLetterFilter::default()
        };
        let pages = all_pages(&set, &only_a, 3);
        let joined: Vec<String> = pages.into_iter().flatten().map(|d| d.id).collect();
        let expected: Vec<String> = (0..20)
            .rev()
            .filter(|o| o % 3 == 0)
            .map(|o| format!("a:t:0:{o}"))
            .collect();
        assert_eq!(joined, expected);
    }

    #[test]
    fn replacing_an_entry_moves_its_time_index_entry() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("a", "t", 1, 100)).unwrap();
        set.put(&dead("a", "t", 2, 200)).unwrap();
        // The same event dies again later (a re-drive that failed).
        let mut again = dead("a", "t", 1, 300);
        again.redrives = 1;
        set.put(&again).unwrap();

        assert_eq!(set.len(), 2);
        assert_eq!(set.by_time.len(), 2);
        let page = set.list(&DeadLetterFilter::default(), 10, None).unwrap();
        assert_eq!(ids(&page.items), vec!["a:t:0:1", "a:t:0:2"]);
        assert_eq!(page.items[0].redrives, 1);
        let before_250 = DeadLetterFilter {
            until_ms: Some(250),
            ..DeadLetterFilter::default()
        };
        assert_eq!(set.count(&before_250).unwrap(), 1);
    }

    #[test]
    fn removing_an_entry_removes_its_time_index_entry() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("a", "t", 1, 100)).unwrap();
        set.put(&dead("a", "t", 2, 200)).unwrap();
        assert_eq!(
            set.remove("a:t:0:1").unwrap().map(|d| d.dead_at_ms),
            Some(100)
        );
        assert_eq!(set.remove("a:t:0:1").unwrap(), None);
        assert_eq!(set.get("a:t:0:1").unwrap(), None);
        assert_eq!(set.len(), 1);
        assert_eq!(set.by_time.len(), 1);
        assert_eq!(set.count(&DeadLetterFilter::default()).unwrap(), 1);
    }

    #[test]
    fn counts_by_actor() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("b", "t", 1, 100)).unwrap();
        set.put(&dead("a", "t", 2, 100)).unwrap();
        set.put(&dead("b", "t", 3, 100)).unwrap();
        let counts = set.count_by_actor().unwrap();
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            vec![("a".to_string(), 1), ("b".to_string(), 2)]
        );
    }

    #[test]
    fn a_dead_letter_without_an_id_is_refused() {
        let set = Store::temporary().unwrap().dead_letters();
        let mut nameless = dead("a", "t", 1, 100);
        nameless.id.clear();
        assert!(matches!(
            set.put(&nameless),
            Err(StoreError::Invalid { .. })
        ));
        assert!(set.is_empty());
    }

    #[test]
    fn retention_by_count_evicts_the_oldest_of_that_actor_only_and_counts_them() {
        let set = Store::temporary().unwrap().dead_letters();
        for offset in 0..5 {
            set.put(&dead("a", "t", offset, 1_000 + offset)).unwrap();
        }
        set.put(&dead("b", "t", 9, 10)).unwrap();
        let keep_three = Retention {
            max_age_ms: None,
            max_count: Some(3),
        };
        let evicted = set.enforce_retention("a", &keep_three, 2_000).unwrap();
        assert_eq!(
            evicted,
            Evicted {
                by_age: 0,
                by_count: 2
            }
        );
        let left = set
            .list(&DeadLetterFilter::default(), 10, None)
            .unwrap()
            .items;
        assert_eq!(ids(&left), vec!["a:t:0:4", "a:t:0:3", "a:t:0:2", "b:t:0:9"]);
        assert_eq!(set.by_time.len(), 4);
        assert_eq!(set.by_actor.len(), 4);
        // Nothing more to do the second time; the counter keeps the total.
        assert_eq!(
            set.enforce_retention("a", &keep_three, 2_000).unwrap(),
            Evicted::default()
        );
        assert_eq!(set.evicted("a").unwrap().by_count, 2);
        assert_eq!(set.evicted("b").unwrap(), Evicted::default());
    }

    #[test]
    fn retention_by_age_evicts_what_died_before_the_cutoff() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("a", "t", 1, 1_000)).unwrap();
        set.put(&dead("a", "t", 2, 5_000)).unwrap();
        set.put(&dead("a", "t", 3, 9_000)).unwrap();
        let ten_seconds = Retention {
            max_age_ms: Some(6_000),
            max_count: Some(100),
        };
        let evicted = set.enforce_retention("a", &ten_seconds, 11_000).unwrap();
        assert_eq!(
            evicted,
            Evicted {
                by_age: 1,
                by_count: 0
            }
        );
        assert_eq!(set.get("a:t:0:1").unwrap(), None);
        assert!(set.get("a:t:0:2").unwrap().is_some());
        // Age first, then count: one more beyond a count of 1.
        let one = Retention {
            max_age_ms: Some(6_000),
            max_count: Some(1),
        };
        let evicted = set.enforce_retention("a", &one, 11_000).unwrap();
        assert_eq!(
            evicted,
            Evicted {
                by_age: 0,
                by_count: 1
            }
        );
        assert_eq!(
            set.evicted("a").unwrap(),
            Evicted {
                by_age: 1,
                by_count: 1
            }
        );
        assert_eq!(set.count(&DeadLetterFilter::default()).unwrap(), 1);
    }

    #[test]
    fn a_dead_letter_that_died_again_moves_in_the_actor_index() {
        let set = Store::temporary().unwrap().dead_letters();
        set.put(&dead("a", "t", 1, 100)).unwrap();
        set.put(&dead("a", "t", 2, 200)).unwrap();
        set.put(&dead("a", "t", 1, 300)).unwrap();
        assert_eq!(set.by_actor.len(), 2);
        let keep_one = Retention {
            max_age_ms: None,
            max_count: Some(1),
        };
        set.enforce_retention("a", &keep_one, 400).unwrap();
        // The one that died again is the newest: it stays.
        assert!(set.get("a:t:0:1").unwrap().is_some());
        assert_eq!(set.get("a:t:0:2").unwrap(), None);
        set.remove("a:t:0:1").unwrap();
        assert!(set.by_actor.is_empty());
    }

    #[test]
    fn removing_several_unchanged_letters_at_once_keeps_those_that_changed() {
        let set = Store::temporary().unwrap().dead_letters();
        let sent: Vec<DeadLetter> = (1..=4).map(|o| dead("a", "t", o, 100 + o)).collect();
        for d in &sent {
            set.put(d).unwrap();
        }
        // Letter 2 died again after it was sent; letter 3 is gone.
        let mut again = sent[1].clone();
        again.redrives = 1;
        again.dead_at_ms = 500;
        set.put(&again).unwrap();
        set.remove(&sent[2].id).unwrap();
        let removed = set.remove_each_if_unchanged(&sent).unwrap();
        assert_eq!(removed, vec![true, false, false, true]);
        // Only the letter of the later death is left, with its index entries.
        assert_eq!(set.get(&sent[1].id).unwrap(), Some(again));
        assert_eq!(set.len(), 1);
        assert_eq!(set.by_time.len(), 1);
        assert_eq!(set.by_actor.len(), 1);
        assert_eq!(
            set.remove_each_if_unchanged(&[]).unwrap(),
            Vec::<bool>::new()
        );
    }

    #[test]
    fn the_actor_index_is_built_for_a_store_that_had_none() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let set = store.dead_letters();
            set.put(&dead("a", "t", 1, 100)).unwrap();
            set.put(&dead("bb", "t", 2, 100)).unwrap();
            set.by_actor.clear().unwrap();
            store.flush().unwrap();
        }
        let store = crate::reopen(dir.path());
        let set = store.dead_letters();
        assert_eq!(set.by_actor.len(), 2);
        assert_eq!(
            set.actors().unwrap(),
            vec!["a".to_string(), "bb".to_string()]
        );
    }

    #[test]
    fn a_dead_letter_stored_as_json_by_an_earlier_version_is_read_indexed_and_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let old = br#"{"id":"a:t:0:1","actor":"a","version":1,"group":"g",
            "event":{"topic":"t","partition":0,"offset":1,"timestamp_ms":null,
                     "key":[107],"payload":[],"headers":[["h",[118]]]},
            "attempts":[],"reason":"gone","kind":"actor_dead",
            "first_attempt_at_ms":90,"dead_at_ms":100,"redrives":0}"#;
        {
            // What 0.1 left on disk: a JSON record, its time index, no
            // per-actor index.
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            db.open_tree("dead_letters")
                .unwrap()
                .insert("a:t:0:1", &old[..])
                .unwrap();
            db.open_tree("dead_letters_by_time")
                .unwrap()
                .insert(codec::dead_letter_time_key(100, "a:t:0:1"), &[][..])
                .unwrap();
            db.flush().unwrap();
        }
        let store = crate::reopen(dir.path());
        let set = store.dead_letters();
        let read = set.get("a:t:0:1").unwrap().unwrap();
        assert_eq!(read.event.payload, Some(Vec::new()));
        assert_eq!(
            read.event.headers,
            vec![crate::StoredHeader::new("h", Some(b"v".to_vec()))]
        );
        assert_eq!(set.actors().unwrap(), vec!["a".to_string()]);
        let by_age = Retention {
            max_age_ms: Some(50),
            max_count: None,
        };
        assert_eq!(set.enforce_retention("a", &by_age, 200).unwrap().by_age, 1);
        assert!(set.is_empty());
    }

    #[test]
    fn dead_letters_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dead("a", "t", 1, 100);
        {
            let store = Store::open(dir.path()).unwrap();
            store.dead_letters().put(&entry).unwrap();
            store.flush().unwrap();
        }
        let store = crate::reopen(dir.path());
        let set = store.dead_letters();
        assert_eq!(set.get(&entry.id).unwrap(), Some(entry.clone()));
        assert_eq!(
            set.list(&DeadLetterFilter::default(), 5, None)
                .unwrap()
                .items,
            vec![entry]
        );
    }

    #[test]
    fn letters_from_the_log_never_replace_a_later_death_and_are_marked_seen() {
        let set = Store::temporary().unwrap().dead_letters();
        let first = dead("billing", "t", 1, 100);
        set.put(&first).unwrap();
        assert_eq!(ids(&set.unseen().unwrap()), [first.id.as_str()]);
        assert!(set.put_from_log(&first).unwrap());
        assert!(set.unseen().unwrap().is_empty());
        // It died again here after a re-drive: not seen until read back.
        let again = DeadLetter {
            redrives: 1,
            dead_at_ms: 200,
            ..first.clone()
        };
        set.put(&again).unwrap();
        assert_eq!(set.unseen().unwrap().len(), 1);
        // An older record of it arriving late does not bring it back.
        assert!(!set.put_from_log(&first).unwrap());
        assert_eq!(set.get(&first.id).unwrap(), Some(again.clone()));
        assert!(set.put_from_log(&again).unwrap());
        assert!(set.unseen().unwrap().is_empty());
    }

    #[test]
    fn a_removal_from_the_log_removes_that_death_or_an_earlier_one_only() {
        let set = Store::temporary().unwrap().dead_letters();
        let first = dead("billing", "t", 1, 100);
        let again = DeadLetter {
            redrives: 1,
            ..first.clone()
        };
        set.put_from_log(&again).unwrap();
        // The removal of the first death (its re-drive) comes after.
        assert!(!set.remove_from_log(&first.id, 0).unwrap());
        assert_eq!(set.get(&first.id).unwrap(), Some(again.clone()));
        assert!(set.unseen().unwrap().is_empty(), "still seen");
        assert!(set.remove_from_log(&first.id, 1).unwrap());
        assert_eq!(set.get(&first.id).unwrap(), None);
        assert!(!set.remove_from_log("unknown", 3).unwrap());
    }

    #[test]
    fn log_positions_are_kept_per_topic_and_partition() {
        let set = Store::temporary().unwrap().dead_letters();
        assert_eq!(set.log_position("g.dead-letters", 0).unwrap(), None);
        set.set_log_position("g.dead-letters", 0, 7).unwrap();
        set.set_log_position("g.dead-letters", 1, 9).unwrap();
        set.set_log_position("g2.dead-letters", 0, 1).unwrap();
        assert_eq!(set.log_position("g.dead-letters", 0).unwrap(), Some(7));
        assert_eq!(set.log_position("g.dead-letters", 1).unwrap(), Some(9));
        assert_eq!(set.log_position("g2.dead-letters", 0).unwrap(), Some(1));
    }
}
