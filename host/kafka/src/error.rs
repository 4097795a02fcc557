//! Errors of the Kafka layer that callers handle: bad settings, a client
//! that cannot be created, topics that cannot be made, a store failure on
//! a path that cannot go on.
//!
//! Per-event failures are not errors here: they become outcomes, metrics
//! and log lines inside the partition workers.

/// What can go wrong setting up or driving Kafka clients.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The `[kafka]` settings are not usable.
    #[error("kafka settings: {0}")]
    Config(String),
    /// librdkafka refused to create a client or an operation failed.
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// Creating or inspecting topics failed.
    #[error("kafka topics: {0}")]
    Topics(String),
    /// Producing a record failed (after librdkafka's own retries).
    #[error("producing to {topic}: {reason}")]
    Produce {
        /// The destination topic.
        topic: String,
        /// What the broker or client said.
        reason: String,
    },
    /// The store failed where the Kafka layer cannot go on without it.
    #[error(transparent)]
    Store(#[from] wactor_store::StoreError),
    /// A consumer thread could not be started or stopped.
    #[error("consumer: {0}")]
    Consumer(String),
}

/// Result alias of this crate.
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;
