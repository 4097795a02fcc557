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
const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutRecord {
    /// Destination topic.
    pub topic: String,
    /// Explicit partition; `None` lets the key decide.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value; `None` is a tombstone.
    pub payload: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
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
    /// acknowledgement. Waits up to a few seconds for queue room when
    /// librdkafka's queue is full, then reports the failure through the
    /// returned [`Delivery`].
    pub fn enqueue(&self, record: &OutRecord) -> Delivery {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
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
        let started = std::time::Instant::now();
        loop {
            match self.inner.send_result(future) {
                Ok(inner) => {
                    return Delivery {
                        topic: record.topic.clone(),
                        inner: Some(inner),
                        failed: None,
                    }
                }
                Err((err, back)) => {
                    let full = matches!(
                        err,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    );
                    if full && started.elapsed() < QUEUE_WAIT {
                        // The queue drains in librdkafka's own threads.
                        self.inner.poll(Timeout::After(Duration::from_millis(10)));
                        future = back;
                        continue;
                    }
                    return Delivery {
                        topic: record.topic.clone(),
                        inner: None,
                        failed: Some(err.to_string()),
                    };
                }
            }
        }
    }

    /// Produces `record` and waits for the acknowledgement.
    pub async fn send(&self, record: &OutRecord) -> Result<Delivered> {
        self.enqueue(record).await
    }

    /// Waits up to `timeout` for every enqueued record to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(Timeout::After(timeout))?;
        Ok(())
    }
}
