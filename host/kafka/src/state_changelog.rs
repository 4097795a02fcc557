//! The state changelog: actor state mirrored to a compacted Kafka topic
//! (`<group>.state`), so that the state of a partition's keys moves with
//! the partition to whichever host is assigned it, as a Kafka Streams
//! state store does.
//!
//! State is scoped by source partition ([`wactor_store::ActorState`]). A
//! done call's state writes are produced here, keyed
//! `<topic>:<partition>:<state key>` (a delete is a tombstone), to
//! changelog partition `hash(topic, partition) mod N` (the retry
//! changelog's mapping, [`changelog_partition`]), and acknowledged
//! **before** they are applied to the local store and before the event's
//! offset can be committed (`call`). So the changelog always holds at least
//! what any host's store holds, and a host that is assigned a partition
//! restores its scope by reading one changelog partition to its end before
//! it handles the partition's events ([`restore_scope`]).
//!
//! Each scope also has a *mark*, key `<topic>:<partition>` with an empty
//! value, written after every entry the first time any host restores the
//! scope, and never deleted (so compaction keeps it). A restore that reads
//! the mark takes the changelog as the truth. One that does not (a new
//! group, the changelog just switched on, an upgrade from unscoped state, a
//! first restore cut short, or a scope this host wrote while the changelog
//! was off) merges: the local scope, seeded once from the unscoped state of
//! earlier versions, overlaid with the changelog's records of the scope
//! (newer: a re-drive's writes), or for a scope written while the changelog
//! was off, the local scope alone; it writes the result and then the mark.
//!
//! Not atomic across keys: a call's records are acknowledged one by one,
//! so a call that fails after some were acknowledged (or is dropped at the
//! drain bound with records still queued) leaves them in the changelog,
//! and the next restore brings them in (docs/operations.md, "Failure modes
//! of actor state").
//!
//! Keys are UTF-8 (state keys are strings; Kafka topic names cannot contain
//! `:`), so `kafka-console-consumer --property print.key=true` shows them.
//! It does not decide when writes happen (`call`) or when a restore runs
//! (the worker).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use wactor_runtime::StateReader;
use wactor_store::ActorState;

use crate::changelog::{changelog_partition, open_compacted, read_to_end};
use crate::error::{KafkaError, Result};
use crate::producer::{max_message_bytes, OutRecord, Producer};
use crate::settings::KafkaSettings;

/// One actor group's state changelog topic.
#[derive(Debug, Clone)]
pub struct StateChangelog {
    /// Topic name, `<group>.state`.
    pub topic: String,
    /// Its partition count.
    pub partitions: i32,
    /// The producer's record limit (`message.max.bytes`), bytes.
    max_record_bytes: usize,
}

/// The state changelog topic of a consumer group.
pub fn state_topic(group: &str) -> String {
    format!("{group}.state")
}

impl StateChangelog {
    /// Makes sure the compacted topic exists and reads its partition count
    /// (checks as the retry changelog's, `changelog::open_compacted`).
    ///
    /// # Errors
    /// [`KafkaError::Topics`] when the topic cannot be created or found, or
    /// is not compacted only.
    pub async fn open(settings: &KafkaSettings, topic: String) -> Result<Self> {
        let partitions = open_compacted(settings, &topic).await?;
        Ok(StateChangelog {
            topic,
            partitions,
            max_record_bytes: max_message_bytes(settings),
        })
    }

    /// The changelog partition of source partition `topic[partition]`.
    pub fn partition_of(&self, topic: &str, partition: i32) -> i32 {
        changelog_partition(topic, partition, self.partitions)
    }

    /// The record of one state write in scope `topic[partition]`: `Some`
    /// value sets the key, `None` is a tombstone (a delete).
    ///
    /// # Errors
    /// [`KafkaError::Produce`] when the record would be larger than the
    /// producer's `message.max.bytes`: no retry can send it, and the
    /// message says which key and how large.
    pub fn entry_record(
        &self,
        topic: &str,
        partition: i32,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<OutRecord> {
        check_scope_topic(&self.topic, topic)?;
        let record = OutRecord {
            topic: self.topic.clone(),
            partition: Some(self.partition_of(topic, partition)),
            key: Some(format!("{topic}:{partition}:{key}").into_bytes()),
            payload: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        };
        let size = record.wire_size();
        if size > self.max_record_bytes {
            return Err(KafkaError::Produce {
                topic: self.topic.clone(),
                reason: format!(
                    "the state write of key {key:?} is {size} bytes as a changelog record; \
                     the producer's limit (message.max.bytes) is {} bytes",
                    self.max_record_bytes
                ),
            });
        }
        Ok(record)
    }

    /// The mark of scope `topic[partition]`: the changelog holds the whole
    /// scope (written last, after every entry of a restore or seed).
    ///
    /// # Errors
    /// As [`StateChangelog::entry_record`] for the topic name.
    pub fn mark_record(&self, topic: &str, partition: i32) -> Result<OutRecord> {
        check_scope_topic(&self.topic, topic)?;
        Ok(OutRecord {
            topic: self.topic.clone(),
            partition: Some(self.partition_of(topic, partition)),
            key: Some(format!("{topic}:{partition}").into_bytes()),
            payload: Some(Vec::new()),
            headers: Vec::new(),
        })
    }

    /// Reads the state of scope `topic[partition]` from the changelog, to
    /// its end. Blocking: run it on a blocking thread.
    ///
    /// # Errors
    /// As `changelog::read_to_end`.
    pub fn restore(
        &self,
        settings: &KafkaSettings,
        producer: &Producer,
        topic: &str,
        partition: i32,
    ) -> Result<RestoredState> {
        let source = self.partition_of(topic, partition);
        let mut latest: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        let mut marked = false;
        let mut records = 0u64;
        read_to_end(
            settings,
            producer,
            &self.topic,
            source,
            |key, value, _offset| {
                let Some((scope_topic, scope_partition, key)) = decode_key(key) else {
                    return;
                };
                if scope_topic != topic || scope_partition != partition {
                    return;
                }
                records += 1;
                match key {
                    Some(key) => {
                        latest.insert(key.to_string(), value.map(<[u8]>::to_vec));
                    }
                    None => marked = true,
                }
            },
        )?;
        Ok(RestoredState {
            latest,
            marked,
            records,
        })
    }
}

/// Refuses a scope topic that contains `:` (no Kafka topic does; a forged
/// re-drive envelope could name one): its keys would read as another
/// scope's.
fn check_scope_topic(changelog: &str, topic: &str) -> Result<()> {
    if topic.is_empty() || topic.contains(':') {
        return Err(KafkaError::Produce {
            topic: changelog.to_string(),
            reason: format!("{topic:?} cannot name a state scope (not a Kafka topic name)"),
        });
    }
    Ok(())
}

/// What a restore read of one scope.
#[derive(Debug, Default)]
pub struct RestoredState {
    /// The last record of each key: `Some` value, or `None` for a
    /// tombstone (a delete).
    pub latest: BTreeMap<String, Option<Vec<u8>>>,
    /// Whether the scope's mark was read: a restore (or seed) of the scope
    /// was written completely before.
    pub marked: bool,
    /// Records of the scope read (before compaction's dedupe).
    pub records: u64,
}

impl RestoredState {
    /// The entries (tombstones left out), in key order.
    pub fn into_entries(self) -> Vec<(String, Vec<u8>)> {
        self.latest
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v)))
            .collect()
    }
}

/// Reads a state changelog key: `(topic, partition, Some(state key))` for
/// an entry, `(topic, partition, None)` for a scope's mark; `None` for a
/// key that is neither (null, not UTF-8, no partition number): such a
/// record is not this changelog's and is skipped.
pub fn decode_key(key: Option<&[u8]>) -> Option<(&str, i32, Option<&str>)> {
    let text = std::str::from_utf8(key?).ok()?;
    let (topic, rest) = text.split_once(':')?;
    if topic.is_empty() {
        return None;
    }
    let (partition, state_key) = match rest.split_once(':') {
        Some((partition, key)) => (partition, Some(key)),
        None => (rest, None),
    };
    if partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic, partition.parse().ok()?, state_key))
}

/// Where a restored scope's state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSource {
    /// Read from the changelog (the local copy was replaced).
    Changelog,
    /// The changelog never knew the scope: the local store's (written to
    /// the changelog now).
    Local,
    /// As `Local`, seeded from the unscoped state of earlier versions.
    Legacy,
}

/// What [`restore_scope`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRestore {
    /// Keys in the scope afterwards.
    pub keys: usize,
    /// Where they came from.
    pub source: StateSource,
    /// How long it took.
    pub took: std::time::Duration,
}

/// Restores the state scope of `topic[partition]` before its events run:
/// from the changelog when it knows the scope (replacing the local copy),
/// else the local store's scope (seeded once from the unscoped state of
/// earlier versions), written to the changelog with the scope's mark and
/// acknowledged. Without a changelog, only the seeding. Blocking: run it on
/// a blocking thread. `cancel` set (the partition was revoked meanwhile)
/// leaves the store alone.
///
/// # Errors
/// A message saying what failed (reading the changelog, producing to it,
/// the store); the caller retries the whole restore.
pub fn restore_scope(
    state: &ActorState,
    changelog: Option<&StateChangelog>,
    settings: &KafkaSettings,
    producer: &Producer,
    topic: &str,
    partition: i32,
    cancel: &AtomicBool,
) -> std::result::Result<ScopeRestore, String> {
    let started = Instant::now();
    let Some(changelog) = changelog else {
        let seeded = state
            .seed_from_legacy(topic, partition)
            .and_then(|seeded| state.set_local_only(topic, partition).map(|()| seeded))
            .map_err(|e| e.to_string())?;
        return Ok(ScopeRestore {
            keys: seeded.entries.len(),
            source: if seeded.from_legacy {
                StateSource::Legacy
            } else {
                StateSource::Local
            },
            took: started.elapsed(),
        });
    };
    fail::fail_point!("wactor-state-restore-read", |_| Err(
        "state restore failed (fail point)".to_string()
    ));
    let restored = changelog
        .restore(settings, producer, topic, partition)
        .map_err(|e| format!("cannot read the state changelog: {e}"))?;
    if cancel.load(Ordering::Relaxed) {
        return Err("restore abandoned: the partition was revoked".to_string());
    }
    let local_only = state
        .is_local_only(topic, partition)
        .map_err(|e| e.to_string())?;
    if restored.marked && !local_only {
        let entries = restored.into_entries();
        state
            .replace_partition(topic, partition, &entries)
            .map_err(|e| e.to_string())?;
        return Ok(ScopeRestore {
            keys: entries.len(),
            source: StateSource::Changelog,
            took: started.elapsed(),
        });
    }
    // The changelog does not hold the whole scope: it never knew it, a
    // seed was cut short, or this host wrote it while the changelog was off.
    // The local scope (seeded once from the unscoped state) is the base;
    // changelog records of a scope that was never marked are newer than it
    // (a re-drive's writes, a partial seed's copies) and win, but a
    // local-only scope is the truth and the changelog's other keys go.
    let seeded = state
        .seed_from_legacy(topic, partition)
        .map_err(|e| e.to_string())?;
    let mut merged: BTreeMap<String, Vec<u8>> = seeded.entries.into_iter().collect();
    if !local_only {
        for (key, value) in &restored.latest {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
    }
    let mut records = Vec::with_capacity(merged.len() + 1);
    for key in restored.latest.keys() {
        if !merged.contains_key(key) {
            records.push(
                changelog
                    .entry_record(topic, partition, key, None)
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    let mut dropped = Vec::new();
    for (key, value) in &merged {
        // A value too large for a record (possible only for state written
        // before the changelog, or while it was off) cannot move with the
        // partition. Stalling the partition would not help: it is dropped,
        // loudly.
        match changelog.entry_record(topic, partition, key, Some(value)) {
            Ok(record) => records.push(record),
            Err(err) => {
                tracing::error!(
                    %topic, partition, key, bytes = value.len(), error = %err,
                    "a state entry too large for the changelog is dropped from the partition's state"
                );
                dropped.push(key.clone());
            }
        }
    }
    for key in dropped {
        merged.remove(&key);
    }
    // The mark last: a restore that reads it has read every entry before it.
    records.push(
        changelog
            .mark_record(topic, partition)
            .map_err(|e| e.to_string())?,
    );
    let deliveries: Vec<_> = records.iter().map(|r| producer.enqueue(r)).collect();
    for result in futures::executor::block_on(futures::future::join_all(deliveries)) {
        result.map_err(|e| format!("cannot write the scope's state to the changelog: {e}"))?;
    }
    let entries: Vec<(String, Vec<u8>)> = merged.into_iter().collect();
    state
        .replace_partition(topic, partition, &entries)
        .map_err(|e| e.to_string())?;
    Ok(ScopeRestore {
        keys: entries.len(),
        source: if seeded.from_legacy {
            StateSource::Legacy
        } else {
            StateSource::Local
        },
        took: started.elapsed(),
    })
}

/// The state one call reads: the actor's state in the scope of the event's
/// source partition.
pub struct ScopedStateReader {
    /// The actor's state.
    pub state: ActorState,
    /// Source topic of the event.
    pub topic: String,
    /// Source partition of the event.
    pub partition: i32,
}

impl ScopedStateReader {
    /// A reader of `state` in scope `topic[partition]`.
    pub fn shared(state: ActorState, topic: &str, partition: i32) -> Arc<dyn StateReader> {
        Arc::new(ScopedStateReader {
            state,
            topic: topic.to_string(),
            partition,
        })
    }
}

impl StateReader for ScopedStateReader {
    fn get(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, String> {
        self.state
            .get(&self.topic, self.partition, key)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_scope() {
        assert_eq!(
            decode_key(Some(b"orders:3:reversed:b-1")),
            Some(("orders", 3, Some("reversed:b-1")))
        );
        assert_eq!(
            decode_key(Some(b"orders:3:")),
            Some(("orders", 3, Some("")))
        );
        assert_eq!(decode_key(Some(b"orders:3")), Some(("orders", 3, None)));
        for bad in [
            &b"orders"[..],
            b"orders:",
            b":3:k",
            b"orders:x:k",
            b"orders:-1:k",
            b"orders:99999999999:k",
            b"\xff:1:k",
        ] {
            assert_eq!(decode_key(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(decode_key(None), None);
    }
}
