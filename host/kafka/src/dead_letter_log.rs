//! The cluster's dead-letter set: each consumer group's dead letters in a
//! compacted topic, `<group>.dead-letters`, that every host reads into its
//! store, so that any host lists, shows, re-drives and discards every dead
//! letter of the group.
//!
//! Records are keyed `<dead-letter id>#<re-drives>`: one key per death of
//! an event (an event re-driven and dead again is a new key). The value is
//! the dead letter in the store's value format; a tombstone (null value)
//! removes that death (re-driven or discarded). Keying by death is what
//! makes a removal safe: the removal of a letter that was re-driven can
//! never erase the letter of its next death, whatever order hosts write
//! them in, and compaction keeps exactly the deaths not removed.
//!
//! Who writes: the partition's owner, when an event dies (after its local
//! store has it: [`publish`], acknowledged in the background; a letter
//! whose record failed is published again by the next
//! [`republish_needed`] sweep, and at every start); the host that re-drives
//! or discards, the tombstone. Who reads: every host, all partitions, from
//! where it stopped ([`tail`]).
//!
//! What it does not do: decide that an event is dead (the worker), or
//! re-drive (wactor-registry's dead-letter operations).

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use wactor_store::{DeadLetter, DeadLetters};

use crate::changelog::open_compacted;
use crate::error::{KafkaError, Result};
use crate::producer::{max_message_bytes, OutRecord, Producer};
use crate::settings::KafkaSettings;

/// Suffix of a group's dead-letter topic.
pub const DEAD_LETTER_TOPIC_SUFFIX: &str = ".dead-letters";

/// Set when a dead letter's record could not be written: the next sweep
/// publishes the letters never read back.
static REPUBLISH: AtomicBool = AtomicBool::new(true);

/// The dead-letter topic of a consumer group: `<group>.dead-letters`.
pub fn dead_letter_topic(group: &str) -> String {
    format!("{group}{DEAD_LETTER_TOPIC_SUFFIX}")
}

/// Whether a dead letter's record failed since the last call (or this is
/// the first call): the caller then publishes
/// [`DeadLetters::unseen`] letters. Clears the flag.
pub fn republish_needed() -> bool {
    REPUBLISH.swap(false, Ordering::SeqCst)
}

/// Makes the next [`republish_needed`] true.
pub fn request_republish() {
    REPUBLISH.store(true, Ordering::SeqCst);
}

/// The key of one death: `<id>#<redrives>`.
pub fn key_of(id: &str, redrives: u32) -> String {
    format!("{id}#{redrives}")
}

/// Splits a record key into (dead-letter id, re-drives); `None` for a key
/// wactor did not write.
pub fn decode_key(key: &[u8]) -> Option<(&str, u32)> {
    let key = std::str::from_utf8(key).ok()?;
    let (id, redrives) = key.rsplit_once('#')?;
    Some((id, u32::from_str(redrives).ok()?))
}

/// The record of `dead` for its group's topic.
///
/// # Errors
/// [`KafkaError::Topics`] when it cannot be encoded or is larger than
/// `message.max.bytes` (the letter then stays on the host that made it).
pub fn record(settings: &KafkaSettings, dead: &DeadLetter) -> Result<OutRecord> {
    let payload = wactor_store::dead_letters::encode_dead_letter(dead)
        .map_err(|e| KafkaError::Topics(format!("cannot encode dead letter {}: {e}", dead.id)))?;
    let record = OutRecord {
        topic: dead_letter_topic(&dead.group),
        partition: None,
        key: Some(key_of(&dead.id, dead.redrives).into_bytes()),
        payload: Some(payload),
        headers: Vec::new(),
    };
    let limit = max_message_bytes(settings);
    if record.wire_size() > limit {
        return Err(KafkaError::Topics(format!(
            "dead letter {} is {} bytes, over the record limit of {limit} bytes: it stays \
             on the host that made it",
            dead.id,
            record.wire_size()
        )));
    }
    Ok(record)
}

/// The tombstone that removes the death `redrives` of letter `id` of
/// `group` from every host.
pub fn tombstone(group: &str, id: &str, redrives: u32) -> OutRecord {
    OutRecord {
        topic: dead_letter_topic(group),
        partition: None,
        key: Some(key_of(id, redrives).into_bytes()),
        payload: None,
        headers: Vec::new(),
    }
}

/// Writes `dead`'s record in the background; a failure is logged and
/// makes the next sweep publish it again.
pub fn publish(settings: &KafkaSettings, producer: &Producer, dead: &DeadLetter) {
    let record = match record(settings, dead) {
        Ok(record) => record,
        Err(err) => {
            tracing::error!(id = %dead.id, error = %err, "dead letter not shared with the cluster");
            return;
        }
    };
    let delivery = producer.enqueue(&record);
    let id = dead.id.clone();
    tokio::spawn(async move {
        if let Err(err) = delivery.await {
            tracing::warn!(%id, error = %err, "dead letter not shared with the cluster yet; retrying later");
            request_republish();
        }
    });
}

/// Makes sure a group's dead-letter topic exists (compacted) and returns
/// its partition count.
pub async fn open(settings: &KafkaSettings, group: &str) -> Result<i32> {
    open_compacted(settings, &dead_letter_topic(group)).await
}

/// Reads every partition of `topic` (with `partitions` partitions) from
/// where this host stopped (the store's positions; the beginning the
/// first time) into `set`, on a thread of its own, until `stop` is set.
/// Records wactor did not write are skipped with a warning.
///
/// # Errors
/// [`KafkaError`] when the client cannot be created or assigned, or the
/// store cannot be read.
pub fn tail(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
    set: DeadLetters,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    let mut config = settings.reader_config();
    config.set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = config.create()?;
    let mut tpl = TopicPartitionList::new();
    for partition in 0..partitions {
        let position = set
            .log_position(topic, partition)
            .map_err(|e| KafkaError::Topics(format!("cannot read the position of {topic}: {e}")))?;
        let offset = position.map_or(Offset::Beginning, Offset::Offset);
        tpl.add_partition_offset(topic, partition, offset)?;
    }
    consumer.assign(&tpl)?;
    let topic = topic.to_string();
    let group = topic
        .strip_suffix(DEAD_LETTER_TOPIC_SUFFIX)
        .unwrap_or(&topic)
        .to_string();
    std::thread::Builder::new()
        .name("wactor-dead-letter-log".into())
        .spawn(move || {
            let mut failing = false;
            while !stop.load(Ordering::SeqCst) {
                let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let message = match message {
                    Ok(message) => message,
                    Err(err) => {
                        if !failing {
                            tracing::warn!(%topic, error = %err, "cannot read the dead-letter topic; retrying");
                        }
                        failing = true;
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    }
                };
                failing = false;
                // A store failure: apply the same record again until it
                // works (or the host stops), never skip it.
                while let Err(err) = apply(&set, &group, message.key(), message.payload()) {
                    tracing::error!(%topic, offset = message.offset(), error = %err, "cannot apply a dead-letter record; trying again");
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                if let Err(err) =
                    set.set_log_position(&topic, message.partition(), message.offset() + 1)
                {
                    tracing::error!(%topic, error = %err, "cannot record the dead-letter topic's position");
                }
            }
        })
        .map_err(|e| KafkaError::Topics(format!("cannot start the dead-letter reader: {e}")))
}

/// Applies one record of `group`'s topic to `set`. A letter must be the
/// group's and its id the one its event and actor make (a record written
/// to one group's topic cannot touch another group's letters); a removal
/// must name a letter of the group.
fn apply(
    set: &DeadLetters,
    group: &str,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
) -> std::result::Result<(), wactor_store::StoreError> {
    let Some((id, redrives)) = key.and_then(decode_key) else {
        tracing::warn!("skipping a dead-letter record whose key wactor did not write");
        return Ok(());
    };
    match payload {
        None => {
            let ours = set.get(id)?.is_none_or(|current| current.group == group);
            if ours {
                set.remove_from_log(id, redrives)?;
            } else {
                tracing::warn!(
                    id,
                    group,
                    "skipping a removal of another group's dead letter"
                );
            }
        }
        Some(bytes) => match wactor_store::dead_letters::decode_dead_letter(bytes) {
            Ok(dead) if !belongs(&dead, group) => tracing::warn!(
                id, group, letter_group = %dead.group,
                "skipping a dead-letter record that is not this group's"
            ),
            Ok(dead) if dead.id == id && dead.redrives == redrives => {
                if set.get(id)?.is_some_and(|current| current.group != group) {
                    tracing::warn!(
                        id,
                        group,
                        "skipping a dead-letter record for another group's letter"
                    );
                } else {
                    set.put_from_log(&dead)?;
                }
            }
            Ok(_) => tracing::warn!(
                id,
                "skipping a dead-letter record whose key and value disagree"
            ),
            Err(err) => {
                tracing::warn!(id, error = %err, "skipping an unreadable dead-letter record")
            }
        },
    }
    Ok(())
}

/// Whether `dead` is a letter of `group` whose id is the one its actor and
/// event make.
fn belongs(dead: &DeadLetter, group: &str) -> bool {
    dead.group == group
        && dead.id
            == DeadLetter::make_id(
                &dead.actor,
                &dead.event.topic,
                dead.event.partition,
                dead.event.offset,
            )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_one_death_of_a_letter_and_ids_may_contain_hashes() {
        assert_eq!(key_of("a:t:0:5", 2), "a:t:0:5#2");
        assert_eq!(decode_key(b"a:t:0:5#2"), Some(("a:t:0:5", 2)));
        assert_eq!(decode_key(b"a#b:t:0:5#0"), Some(("a#b:t:0:5", 0)));
        assert_eq!(decode_key(b"no-count"), None);
        assert_eq!(decode_key(b"x#-1"), None);
        assert_eq!(decode_key(&[0xff, b'#', b'1']), None);
        assert_eq!(
            dead_letter_topic("wactor.billing"),
            "wactor.billing.dead-letters"
        );
    }

    fn letter(group: &str, actor: &str, offset: i64, redrives: u32) -> DeadLetter {
        DeadLetter {
            id: DeadLetter::make_id(actor, "in", 0, offset),
            actor: actor.into(),
            version: 1,
            group: group.into(),
            event: wactor_store::StoredEvent {
                topic: "in".into(),
                partition: 0,
                offset,
                timestamp_ms: None,
                key: None,
                payload: None,
                headers: Vec::new(),
            },
            attempts: Vec::new(),
            reason: "dead".into(),
            kind: "actor_dead".into(),
            first_attempt_at_ms: 1,
            dead_at_ms: 2,
            redrives,
            blocking: false,
        }
    }

    fn put(set: &DeadLetters, group: &str, dead: &DeadLetter) {
        let key = key_of(&dead.id, dead.redrives);
        let value = wactor_store::value::encode("dead letter", dead).unwrap();
        apply(set, group, Some(key.as_bytes()), Some(&value)).unwrap();
    }

    #[test]
    fn one_groups_topic_cannot_touch_another_groups_letters() {
        let set = wactor_store::Store::temporary().unwrap().dead_letters();
        let real = letter("wactor.billing", "billing", 1, 0);
        put(&set, "wactor.billing", &real);
        assert_eq!(set.get(&real.id).unwrap(), Some(real.clone()));
        // The same id, written to another group's topic: skipped.
        let forged = DeadLetter {
            redrives: u32::MAX,
            group: "wactor.other".into(),
            ..real.clone()
        };
        put(&set, "wactor.other", &forged);
        assert_eq!(set.get(&real.id).unwrap(), Some(real.clone()));
        // A letter whose id is not its event's: skipped.
        let mut lying = letter("wactor.billing", "billing", 2, 0);
        lying.id = DeadLetter::make_id("billing", "in", 0, 1);
        put(&set, "wactor.billing", &lying);
        assert_eq!(set.get(&real.id).unwrap(), Some(real.clone()));
        // A removal in another group's topic: skipped; in its own: applied.
        let key = key_of(&real.id, 0);
        apply(&set, "wactor.other", Some(key.as_bytes()), None).unwrap();
        assert!(set.get(&real.id).unwrap().is_some());
        apply(&set, "wactor.billing", Some(key.as_bytes()), None).unwrap();
        assert_eq!(set.get(&real.id).unwrap(), None);
    }
}
