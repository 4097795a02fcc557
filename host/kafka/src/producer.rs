//! The host's one Kafka producer: records actors emit, retry changelog
//! entries, dead-letter mirrors, re-driven events, and `wactor produce`.
//!
//! A send is two steps: [`Producer::enqueue`] hands the record to
//! librdkafka at once (it copies the bytes) and returns a [`Delivery`] to
//! await for the broker's acknowledgement. Callers that must not block (a
//! partition worker's loop) enqueue and collect the deliveries; others
//! simply `send(..).await`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;

use crate::error::{KafkaError, Result};
use crate::settings::KafkaSettings;

/// How long an enqueue waits for room in librdkafka's queue.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutRecord {
    /// Destination topic.
    pub topic: String,
    /// Explicit partition; `None` lets the key decide.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value; `None` is a tombstone (a null value).
    pub payload: Option<Vec<u8>>,
    /// Headers; a `None` value is a null header value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl OutRecord {
    /// The bytes librdkafka counts against `message.max.bytes`, framing
    /// included (an upper bound: [`RECORD_OVERHEAD`] per record and per
    /// header).
    pub fn wire_size(&self) -> usize {
        RECORD_OVERHEAD
            + self.key.as_ref().map_or(0, Vec::len)
            + self.payload.as_ref().map_or(0, Vec::len)
            + self
                .headers
                .iter()
                .map(|(name, value)| {
                    RECORD_OVERHEAD + name.len() + value.as_ref().map_or(0, Vec::len)
                })
                .sum::<usize>()
    }
}

/// Framing bytes counted per record (and per header) on top of key, value
/// and header bytes: more than a Kafka v2 record's worst case (about 40
/// bytes), so that a record this module calls small enough is never refused
/// by librdkafka's own size check.
pub const RECORD_OVERHEAD: usize = 64;

/// librdkafka's default `message.max.bytes`: 1,000,000 bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;

/// The largest record the host's producer sends: `message.max.bytes` from
/// `[kafka.producer]` (or `[kafka.client]`), else librdkafka's default of
/// 1,000,000 bytes. Records the host builds itself (changelog records,
/// re-drive envelopes) are checked against it before they are produced.
/// Brokers have their own limit (`message.max.bytes` on the broker,
/// `max.message.bytes` on a topic); keep them at least this large.
pub fn max_message_bytes(settings: &KafkaSettings) -> usize {
    settings
        .producer
        .get("message.max.bytes")
        .or_else(|| settings.client.get("message.max.bytes"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
}

/// Whether a produce error says the record is too large, for the client
/// (`message.max.bytes`) or the broker (its or the topic's limit): a
/// failure that no retry can fix.
pub fn is_too_large(error: &KafkaError) -> bool {
    let text = error.to_string().to_ascii_lowercase();
    text.contains("too large")
        || text.contains("msgsizetoolarge")
        || text.contains("message_too_large")
}

fn is_queue_full(err: &rdkafka::error::KafkaError) -> bool {
    matches!(
        err,
        rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
    )
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// The acknowledgement of one enqueued record.
pub struct Delivery {
    topic: String,
    inner: Option<DeliveryFuture>,
    failed: Option<String>,
}

impl Delivery {
    /// A delivery that failed before reaching librdkafka (`reason` says
    /// why): it resolves at once to [`KafkaError::Produce`].
    pub(crate) fn failed(topic: &str, reason: impl Into<String>) -> Self {
        Delivery {
            topic: topic.to_string(),
            inner: None,
            failed: Some(reason.into()),
        }
    }
}

impl Future for Delivery {
    type Output = Result<Delivered>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(reason) = this.failed.take() {
            return Poll::Ready(Err(KafkaError::Produce {
                topic: this.topic.clone(),
                reason,
            }));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err(KafkaError::Produce {
                topic: this.topic.clone(),
                reason: "delivery polled after completion".into(),
            }));
        };
        match Pin::new(inner).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                this.inner = None;
                Poll::Ready(match result {
                    Ok(Ok(delivery)) => Ok(Delivered {
                        partition: delivery.partition,
                        offset: delivery.offset,
                    }),
                    Ok(Err((err, _message))) => Err(KafkaError::Produce {
                        topic: this.topic.clone(),
                        reason: err.to_string(),
                    }),
                    Err(_canceled) => Err(KafkaError::Produce {
                        topic: this.topic.clone(),
                        reason: "the producer was shut down before the broker answered".into(),
                    }),
                })
            }
        }
    }
}

/// A cheap-to-clone handle on the host's producer.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
}

impl Producer {
    /// Creates the producer.
    pub fn new(settings: &KafkaSettings) -> Result<Self> {
        let inner: FutureProducer = settings.producer_config().create()?;
        Ok(Producer { inner })
    }

    /// Hands `record` to librdkafka now; await the result for the broker's
    /// acknowledgement. When librdkafka's queue is full it waits up to
    /// [`QUEUE_WAIT`] (5 s) for room, in order (on a multi-threaded tokio
    /// runtime through `block_in_place`, so no other task waits with it),
    /// then reports the failure through the returned [`Delivery`].
    pub fn enqueue(&self, record: &OutRecord) -> Delivery {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let mut future: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&record.topic).headers(headers);
        if let Some(partition) = record.partition {
            future = future.partition(partition);
        }
        if let Some(key) = &record.key {
            future = future.key(key.as_slice());
        }
        if let Some(payload) = &record.payload {
            future = future.payload(payload.as_slice());
        }
        match self.inner.send_result(future) {
            Ok(inner) => Delivery {
                topic: record.topic.clone(),
                inner: Some(inner),
                failed: None,
            },
            Err((err, back)) if is_queue_full(&err) => {
                // Waiting for room keeps the records' order (a later record
                // must not overtake this one), so it blocks; on a tokio worker
                // it does so through `block_in_place`, so that the worker's
                // other tasks (every partition's timers and ticks) move to
                // another thread meanwhile.
                let wait = || self.wait_for_room(record, back);
                match tokio::runtime::Handle::try_current() {
                    Ok(handle)
                        if handle.runtime_flavor()
                            == tokio::runtime::RuntimeFlavor::MultiThread =>
                    {
                        tokio::task::block_in_place(wait)
                    }
                    _ => wait(),
                }
            }
            Err((err, _)) => Delivery::failed(&record.topic, err.to_string()),
        }
    }

    /// Retries a record refused with a full queue, up to [`QUEUE_WAIT`].
    fn wait_for_room<'a>(
        &self,
        record: &'a OutRecord,
        mut future: FutureRecord<'a, [u8], [u8]>,
    ) -> Delivery {
        let started = std::time::Instant::now();
        loop {
            // The queue drains in librdkafka's own threads.
            self.inner.poll(Timeout::After(Duration::from_millis(10)));
            match self.inner.send_result(future) {
                Ok(inner) => {
                    return Delivery {
                        topic: record.topic.clone(),
                        inner: Some(inner),
                        failed: None,
                    }
                }
                Err((err, back)) => {
                    if is_queue_full(&err) && started.elapsed() < QUEUE_WAIT {
                        future = back;
                        continue;
                    }
                    return Delivery::failed(&record.topic, err.to_string());
                }
            }
        }
    }

    /// Produces `record` and waits for the acknowledgement.
    pub async fn send(&self, record: &OutRecord) -> Result<Delivered> {
        self.enqueue(record).await
    }

    /// The low and high watermark of `topic[partition]` (the first offset
    /// kept and the offset the next record gets), asked of the brokers
    /// through this producer's connections: a client that is already
    /// connected answers in one round trip, where a new consumer first has
    /// to connect and learn the cluster (100 ms to over a second).
    /// Blocking: call it from a blocking thread.
    ///
    /// # Errors
    /// The client's error when the brokers do not answer within `timeout`.
    pub fn watermarks(&self, topic: &str, partition: i32, timeout: Duration) -> Result<(i64, i64)> {
        Ok(self
            .inner
            .client()
            .fetch_watermarks(topic, partition, Timeout::After(timeout))?)
    }

    /// Waits up to `timeout` for every enqueued record to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(Timeout::After(timeout))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_limit_comes_from_the_producer_or_client_table_or_the_default() {
        let mut settings = KafkaSettings::new("localhost:9092");
        assert_eq!(max_message_bytes(&settings), 1_000_000);
        settings
            .client
            .insert("message.max.bytes".into(), "2000000".into());
        assert_eq!(max_message_bytes(&settings), 2_000_000);
        settings
            .producer
            .insert("message.max.bytes".into(), "300000".into());
        assert_eq!(max_message_bytes(&settings), 300_000);
    }

    #[test]
    fn a_record_wire_size_counts_key_value_headers_and_framing() {
        let record = OutRecord {
            topic: "t".into(),
            partition: None,
            key: Some(vec![0; 10]),
            payload: Some(vec![0; 100]),
            headers: vec![("h".into(), Some(vec![0; 5])), ("n".into(), None)],
        };
        assert_eq!(record.wire_size(), 64 + 10 + 100 + (64 + 1 + 5) + (64 + 1));
    }

    #[test]
    fn size_errors_are_recognised() {
        let too_large = KafkaError::Produce {
            topic: "t".into(),
            reason:
                "Message production error: MessageSizeTooLarge (Broker: Message size too large)"
                    .into(),
        };
        assert!(is_too_large(&too_large));
        let other = KafkaError::Produce {
            topic: "t".into(),
            reason: "Local: Message timed out".into(),
        };
        assert!(!is_too_large(&other));
    }
}
