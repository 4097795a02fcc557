//! Topics wactor needs: creating them (the retry changelogs, dead-letter
//! mirrors, re-drive topics) and reading their partition counts.
//!
//! On a real cluster topics are created with the admin API, with the
//! settings given (changelogs are compacted). librdkafka's mock cluster
//! does not implement that API but creates topics on first use, which is
//! what `wactor dev` relies on; an unsupported admin call is therefore
//! logged and not fatal.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::error::{KafkaError, Result};
use crate::settings::KafkaSettings;

/// A topic wactor wants to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
    /// Topic-level configs (`cleanup.policy = compact`, ...).
    pub configs: Vec<(String, String)>,
}

impl TopicSpec {
    /// A compacted topic: only the last record of each key is kept.
    pub fn compacted(name: impl Into<String>, partitions: i32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            configs: vec![("cleanup.policy".into(), "compact".into())],
        }
    }

    /// A plain (delete-policy) topic.
    pub fn plain(name: impl Into<String>, partitions: i32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            configs: Vec::new(),
        }
    }
}

/// Creates the topics that do not exist yet. Existing topics are left as
/// they are.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[TopicSpec]) -> Result<()> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = settings.admin_config().create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|spec| {
            let mut topic = NewTopic::new(
                &spec.name,
                spec.partitions,
                TopicReplication::Fixed(settings.replication_factor),
            );
            for (key, value) in &spec.configs {
                topic = topic.set(key, value);
            }
            topic
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = match admin.create_topics(new_topics.iter(), &options).await {
        Ok(results) => results,
        Err(err) => {
            return Err(KafkaError::Topics(format!(
                "cannot create {}: {err}",
                names(topics)
            )))
        }
    };
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, RDKafkaErrorCode::InvalidRequest | RDKafkaErrorCode::UnsupportedVersion)) => {
                // The mock cluster: topics appear on first use.
                tracing::debug!(topic = %name, "the broker does not create topics through the admin API");
            }
            Err((name, code)) => {
                return Err(KafkaError::Topics(format!("cannot create {name}: {code}")));
            }
        }
    }
    Ok(())
}

fn names(topics: &[TopicSpec]) -> String {
    topics
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The number of partitions of `topic`, or `None` when it does not exist.
/// Blocking: call it from a blocking context.
pub fn partition_count(settings: &KafkaSettings, topic: &str) -> Result<Option<i32>> {
    let consumer: BaseConsumer = settings.reader_config().create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| i32::try_from(t.partitions().len()).unwrap_or(i32::MAX))
        .filter(|&n| n > 0))
}
