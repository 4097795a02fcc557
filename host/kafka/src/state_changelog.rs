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
//! value, written the first time any host restores the scope and never
//! deleted (so compaction keeps it): a restore that finds neither the mark
//! nor any entry knows the changelog never held the scope (a new group, the
//! changelog just switched on, or an upgrade from unscoped state) and keeps
//! what the local store has, seeded from the unscoped state of earlier
//! versions, and writes it to the changelog.
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

    /// The mark of scope `topic[partition]`: the changelog knows it.
    pub fn mark_record(&self, topic: &str, partition: i32) -> OutRecord {
        OutRecord {
            topic: self.topic.clone(),
            partition: Some(self.partition_of(topic, partition)),
            key: Some(format!("{topic}:{partition}").into_bytes()),
            payload: Some(Vec::new()),
            headers: Vec::new(),
        }
    }

    /// Reads the state of scope `topic[partition]` from the changelog, to
    /// its end. Blocking: run it on a blocking thread.
    ///
    /// # Errors
    /// As `changelog::read_to_end`.
    pub fn restore(
        &self,
        settings: &KafkaSettings,
        topic: &str,
        partition: i32,
    ) -> Result<RestoredState> {
        let source = self.partition_of(topic, partition);
        let mut latest: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        let mut seen = false;
        let mut records = 0u64;
        read_to_end(settings, &self.topic, source, |key, value, _offset| {
            let Some((scope_topic, scope_partition, key)) = decode_key(key) else {
                return;
            };
            if scope_topic != topic || scope_partition != partition {
                return;
            }
            seen = true;
            records += 1;
            if let Some(key) = key {
                latest.insert(key.to_string(), value.map(<[u8]>::to_vec));
            }
        })?;
        let entries = latest
            .into_iter()
            .filter_map(|(key, value)| value.map(|value| (key, value)))
            .collect();
        Ok(RestoredState {
            entries,
            seen,
            records,
        })
    }
}

/// What a restore read of one scope.
#[derive(Debug, Default)]
pub struct RestoredState {
    /// The scope's entries, in key order.
    pub entries: Vec<(String, Vec<u8>)>,
    /// Whether the changelog had any record of the scope (its mark, an
    /// entry or a tombstone).
    pub seen: bool,
    /// Records of the scope read (before compaction's dedupe).
    pub records: u64,
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
        .restore(settings, topic, partition)
        .map_err(|e| format!("cannot read the state changelog: {e}"))?;
    if cancel.load(Ordering::Relaxed) {
        return Err("restore abandoned: the partition was revoked".to_string());
    }
    if restored.seen {
        state
            .replace_partition(topic, partition, &restored.entries)
            .map_err(|e| e.to_string())?;
        return Ok(ScopeRestore {
            keys: restored.entries.len(),
            source: StateSource::Changelog,
            took: started.elapsed(),
        });
    }
    let seeded = state
        .seed_from_legacy(topic, partition)
        .map_err(|e| e.to_string())?;
    let mut records = Vec::with_capacity(seeded.entries.len() + 1);
    for (key, value) in &seeded.entries {
        match changelog.entry_record(topic, partition, key, Some(value)) {
            Ok(record) => records.push(record),
            Err(err) => tracing::error!(
                %topic, partition, key, error = %err,
                "a state entry too large for the changelog is kept on this host only"
            ),
        }
    }
    // The mark last: a restore that sees it has seen every entry before it.
    records.push(changelog.mark_record(topic, partition));
    let deliveries: Vec<_> = records.iter().map(|r| producer.enqueue(r)).collect();
    for result in futures::executor::block_on(futures::future::join_all(deliveries)) {
        result.map_err(|e| format!("cannot write the scope's state to the changelog: {e}"))?;
    }
    Ok(ScopeRestore {
        keys: seeded.entries.len(),
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
