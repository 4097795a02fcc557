//! An in-process Kafka-protocol broker for `wactor dev` and the tests:
//! librdkafka's mock cluster, listening on loopback TCP ports, so any Kafka
//! client (other processes too) can use it while this process lives. It
//! keeps everything in memory.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::error::{KafkaError, Result};

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
