//! The shared registry log: the Kafka side of the cluster-wide registry.
//!
//! One compacted topic per cluster of hosts (default
//! [`DEFAULT_REGISTRY_TOPIC`], `wactor.registry`), of which only partition
//! 0 is used, so that every host reads every change in one order. Its
//! records are written by whichever host's API took a change and read by
//! every host, which applies them, in offset order, to its own sled
//! registry (wactor-registry's `shared` module decides what a record
//! means; this module only moves bytes).
//!
//! Two kinds of keys:
//! - `chunk/<sha256>/<index>/<count>`: piece `index` of a component's
//!   bytes, at most [`CHUNK_BYTES`] each (a component is larger than a
//!   Kafka record may be). The key is content-addressed: a component
//!   uploaded twice compacts to one copy.
//! - `op/<id>`: one change (deploy, activate, pause, ...), JSON. Ids are
//!   unique, so compaction never removes a change: the topic is compacted
//!   only so that retention never deletes the registry.
//!
//! What it does not do: decide what a change does (wactor-registry), or
//! keep anything on disk (wactor-store).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::admin::{self, TopicSpec};
use crate::changelog::check_compacted;
use crate::error::{KafkaError, Result};
use crate::producer::OutRecord;
use crate::settings::KafkaSettings;

/// The registry topic of a cluster unless `kafka.registry_topic` names
/// another.
pub const DEFAULT_REGISTRY_TOPIC: &str = "wactor.registry";

/// The partition every registry record goes to and is read from.
pub const REGISTRY_PARTITION: i32 = 0;

/// Largest piece of a component in one record: 512 KiB, well below
/// Kafka's default record limit (1 MB).
pub const CHUNK_BYTES: usize = 512 * 1024;

/// How long the tail waits on the broker for new records (its
/// `fetch.wait.max.ms`): a change reaches every host about this fast.
const TAIL_FETCH_WAIT_MS: &str = "50";

/// One record read from the registry log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its offset in partition 0.
    pub offset: i64,
    /// Its key (UTF-8 when written by wactor).
    pub key: Option<Vec<u8>>,
    /// Its value (`None`: a tombstone).
    pub payload: Option<Vec<u8>>,
}

/// The registry topic of a cluster.
#[derive(Debug, Clone)]
pub struct RegistryLog {
    topic: String,
    settings: KafkaSettings,
}

impl RegistryLog {
    /// Makes sure `topic` exists (compacted, one partition when wactor
    /// creates it) and checks its `cleanup.policy` where the broker answers
    /// DescribeConfigs: with `delete`, retention would erase the registry.
    /// Brokers that cannot be reached are a warning, not an error: reading
    /// and writing the log retry by themselves.
    ///
    /// # Errors
    /// [`KafkaError::Topics`] when the topic is not compacted.
    pub async fn open(settings: &KafkaSettings, topic: &str) -> Result<Self> {
        if let Err(err) = admin::ensure_topics(settings, &[TopicSpec::compacted(topic, 1)]).await {
            tracing::warn!(%topic, error = %err, "cannot make sure the registry topic exists; going on");
        }
        match admin::cleanup_policy(settings, topic).await {
            Ok(Some(policy)) => check_compacted(topic, &policy)?,
            Ok(None) => {}
            Err(err) => tracing::warn!(
                %topic, error = %err,
                "cannot read the registry topic's cleanup.policy; make sure it is compact"
            ),
        }
        Ok(RegistryLog {
            topic: topic.to_string(),
            settings: settings.clone(),
        })
    }

    /// Makes sure `topic`, a log of short-lived messages (one partition,
    /// `cleanup.policy = delete`, records kept `retention_ms`), exists:
    /// the cluster's requests to partition owners. Brokers that cannot be
    /// reached are a warning, as for [`open`](Self::open).
    pub async fn open_transient(settings: &KafkaSettings, topic: &str, retention_ms: u64) -> Self {
        let mut spec = TopicSpec::plain(topic, 1);
        spec.configs
            .push(("retention.ms".into(), retention_ms.to_string()));
        if let Err(err) = admin::ensure_topics(settings, &[spec]).await {
            tracing::warn!(%topic, error = %err, "cannot make sure the topic exists; going on");
        }
        RegistryLog {
            topic: topic.to_string(),
            settings: settings.clone(),
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// A record of the log (partition 0) with `key` and `payload`.
    pub fn record(&self, key: String, payload: Vec<u8>) -> OutRecord {
        OutRecord {
            topic: self.topic.clone(),
            partition: Some(REGISTRY_PARTITION),
            key: Some(key.into_bytes()),
            payload: Some(payload),
            headers: Vec::new(),
        }
    }

    /// The chunk records of a component: `chunk/<sha256>/<i>/<n>`, each at
    /// most [`CHUNK_BYTES`]; one empty chunk for empty bytes.
    pub fn chunk_records(&self, sha256: &str, bytes: &[u8]) -> Vec<OutRecord> {
        let pieces: Vec<&[u8]> = if bytes.is_empty() {
            vec![bytes]
        } else {
            bytes.chunks(CHUNK_BYTES).collect()
        };
        let count = pieces.len();
        pieces
            .into_iter()
            .enumerate()
            .map(|(index, piece)| {
                self.record(format!("chunk/{sha256}/{index}/{count}"), piece.to_vec())
            })
            .collect()
    }

    /// The log's (low, high) watermarks: the first offset still kept and
    /// the offset the next record will get. Blocking (up to 10 s).
    ///
    /// # Errors
    /// [`KafkaError::Topics`] when the broker does not answer.
    pub fn watermarks(&self) -> Result<(i64, i64)> {
        let consumer: BaseConsumer = self.settings.reader_config().create()?;
        consumer
            .fetch_watermarks(&self.topic, REGISTRY_PARTITION, Duration::from_secs(10))
            .map_err(|err| {
                KafkaError::Topics(format!(
                    "cannot read the end of the registry log {}: {err}",
                    self.topic
                ))
            })
    }

    /// The key of the record at `offset`: `None` when the log has no
    /// record there (compacted away, or a log recreated since). Blocking
    /// (up to 10 s).
    ///
    /// # Errors
    /// [`KafkaError`] when the client fails, or nothing is read in time.
    pub fn key_at(&self, offset: i64) -> Result<Option<Vec<u8>>> {
        let consumer: BaseConsumer = self.settings.reader_config().create()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, REGISTRY_PARTITION, Offset::Offset(offset))?;
        consumer.assign(&tpl)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message?;
                return Ok((message.offset() == offset)
                    .then(|| message.key().map(<[u8]>::to_vec))
                    .flatten());
            }
        }
        Err(KafkaError::Topics(format!(
            "nothing read at offset {offset} of the registry log {} within 10 s",
            self.topic
        )))
    }

    /// Reads the log from offset `from` on, for as long as `sink` takes
    /// records and `stop` is unset, on a thread of its own; each record is
    /// handed to `sink` in offset order (it blocks the reader while it
    /// waits: back-pressure). Read errors are logged and the read goes on
    /// (the client reconnects by itself); records deleted before they
    /// were read (retention) are skipped to the first one kept, with an
    /// error logged by the client's offset reset.
    ///
    /// # Errors
    /// [`KafkaError`] when the client cannot be created or assigned.
    pub fn tail(
        &self,
        from: i64,
        sink: impl Fn(LogRecord) -> bool + Send + 'static,
        stop: Arc<AtomicBool>,
    ) -> Result<std::thread::JoinHandle<()>> {
        self.tail_at(Offset::Offset(from), sink, stop)
    }

    /// As [`tail`](Self::tail), from the records written after the reader
    /// starts (the end of the log when it first reaches the broker).
    ///
    /// # Errors
    /// [`KafkaError`] when the client cannot be created or assigned.
    pub fn tail_new(
        &self,
        sink: impl Fn(LogRecord) -> bool + Send + 'static,
        stop: Arc<AtomicBool>,
    ) -> Result<std::thread::JoinHandle<()>> {
        self.tail_at(Offset::End, sink, stop)
    }

    fn tail_at(
        &self,
        from: Offset,
        sink: impl Fn(LogRecord) -> bool + Send + 'static,
        stop: Arc<AtomicBool>,
    ) -> Result<std::thread::JoinHandle<()>> {
        let mut config = self.settings.reader_config();
        config.set("fetch.wait.max.ms", TAIL_FETCH_WAIT_MS);
        let consumer: BaseConsumer = config.create()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, REGISTRY_PARTITION, from)?;
        consumer.assign(&tpl)?;
        let topic = self.topic.clone();
        std::thread::Builder::new()
            .name("wactor-registry-log".into())
            .spawn(move || {
                let mut failing = false;
                while !stop.load(Ordering::SeqCst) {
                    let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                        continue;
                    };
                    match message {
                        Ok(message) => {
                            failing = false;
                            let record = LogRecord {
                                offset: message.offset(),
                                key: message.key().map(<[u8]>::to_vec),
                                payload: message.payload().map(<[u8]>::to_vec),
                            };
                            if !sink(record) {
                                return;
                            }
                        }
                        Err(err) => {
                            if !failing {
                                tracing::warn!(%topic, error = %err, "cannot read the registry log; retrying");
                            }
                            failing = true;
                            std::thread::sleep(Duration::from_millis(500));
                        }
                    }
                }
            })
            .map_err(|e| KafkaError::Topics(format!("cannot start the registry log reader: {e}")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn log() -> RegistryLog {
        RegistryLog {
            topic: "wactor.registry".into(),
            settings: KafkaSettings::new("127.0.0.1:9"),
        }
    }

    #[test]
    fn components_are_cut_in_pieces_below_the_record_limit_and_keyed_by_content() {
        let bytes = vec![7u8; CHUNK_BYTES * 2 + 1];
        let records = log().chunk_records("ab", &bytes);
        let keys: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.key.clone().unwrap()).unwrap())
            .collect();
        assert_eq!(keys, ["chunk/ab/0/3", "chunk/ab/1/3", "chunk/ab/2/3"]);
        assert!(records.iter().all(|r| r.partition == Some(0)));
        let joined: Vec<u8> = records
            .iter()
            .flat_map(|r| r.payload.clone().unwrap())
            .collect();
        assert_eq!(joined, bytes);
        assert_eq!(log().chunk_records("ab", b"").len(), 1);
    }
}
