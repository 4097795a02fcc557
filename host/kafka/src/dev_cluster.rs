//! An in-process Kafka-protocol broker for `wactor dev` and the tests:
//! librdkafka's mock cluster, listening on loopback TCP ports, so any Kafka
//! client (other processes too) can use it while this process lives. It
//! keeps everything in memory.
//!
//! Retention is librdkafka's, fixed in its code: each partition keeps its
//! newest [`PARTITION_KEEPS_BYTES`] bytes and at most
//! [`PARTITION_KEEPS_RECORDS`] records, dropping the oldest batches beyond
//! that whether or not they were read. A consumer whose position falls
//! behind the log start skips records; wactor reports that (see
//! `recovery`). `wactor dev` spreads topics over 16 partitions by default.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::error::{KafkaError, Result};

/// Bytes each partition of the mock cluster keeps (librdkafka's
/// `mpart->max_size`).
pub const PARTITION_KEEPS_BYTES: usize = 5 * 1024 * 1024;
/// Records each partition of the mock cluster keeps at most (librdkafka's
/// `mpart->max_cnt`).
pub const PARTITION_KEEPS_RECORDS: usize = 100_000;

/// A running mock cluster. Not `Send`: keep it on the thread that made it
/// and drop it last.
pub struct DevCluster {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl DevCluster {
    /// Starts a cluster of `brokers` brokers.
    pub fn start(brokers: i32) -> Result<Self> {
        let cluster = MockCluster::new(brokers)?;
        Ok(DevCluster { cluster })
    }

    /// The bootstrap address to give clients.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates a topic (the mock also creates topics on first use, with its
    /// default partition count).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.cluster
            .create_topic(name, partitions, 1)
            .map_err(|e| KafkaError::Topics(format!("cannot create {name}: {e}")))
    }

    /// The mock cluster, for fault injection in tests.
    pub fn mock(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}
