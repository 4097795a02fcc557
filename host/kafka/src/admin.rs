//! Topics wactor needs: creating them (the retry changelogs, dead-letter
//! mirrors, re-drive topics) and reading their partition counts.
//!
//! On a real cluster topics are created with the admin API, with the
//! settings given (changelogs are compacted); topics that exist already are
//! not asked for. librdkafka's mock cluster does not implement that API
//! (CreateTopics goes unanswered) but creates topics on first use: with
//! `kafka.manage_topics = false` (what `wactor dev` sets) wactor only
//! looks the topics up, which creates them there, and with `manage_topics
//! = true` a CreateTopics that times out ([`CREATE_TIMEOUT`]) falls back to
//! that, with a warning. On a real cluster the fallback only finds topics
//! if the brokers auto-create them, with their defaults: the changelogs'
//! `cleanup.policy` check then refuses a topic that is not compacted.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
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
    if !settings.manage_topics {
        // The brokers create topics on first use; a metadata request for
        // each topic is a use.
        return create_by_first_use(settings, topics, |name| {
            format!("topic {name} does not exist and kafka.manage_topics is off: create it")
        })
        .await;
    }
    let existing = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || existing_topics(&settings))
            .await
            .map_err(|e| KafkaError::Topics(format!("metadata task failed: {e}")))??
    };
    let missing: Vec<TopicSpec> = topics
        .iter()
        .filter(|spec| !existing.contains(&spec.name))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let known_mute = lock_mute().contains(&settings.brokers);
    let created = if known_mute {
        Err(KafkaError::Topics(
            "CreateTopics timed out before on these brokers".into(),
        ))
    } else {
        create_topics(settings, &missing).await
    };
    match created {
        Err(KafkaError::Topics(reason)) if is_unanswered(&reason) => {
            lock_mute().insert(settings.brokers.clone());
            tracing::warn!(
                topics = %names(&missing), error = %reason,
                "the brokers do not answer CreateTopics (librdkafka's mock cluster does not \
                 implement it); asking for the topics by their first use instead"
            );
            create_by_first_use(settings, &missing, |name| {
                format!(
                    "cannot create {name}: CreateTopics was not answered ({reason}) and the \
                     brokers do not create topics on first use: create it"
                )
            })
            .await
        }
        other => other,
    }
}

/// Asks for each topic by a metadata request that lets the brokers create
/// it (where they create topics on first use); `missing(name)` is the
/// error of a topic still not found.
async fn create_by_first_use(
    settings: &KafkaSettings,
    topics: &[TopicSpec],
    missing: impl Fn(&str) -> String,
) -> Result<()> {
    let mut settings = settings.clone();
    settings.manage_topics = false;
    for spec in topics {
        let settings = settings.clone();
        let name = spec.name.clone();
        let found = tokio::task::spawn_blocking(move || partition_count(&settings, &name))
            .await
            .map_err(|e| KafkaError::Topics(format!("metadata task failed: {e}")))??;
        if found.is_none() {
            return Err(KafkaError::Topics(missing(&spec.name)));
        }
    }
    Ok(())
}

/// How long a CreateTopics request may go unanswered before
/// [`ensure_topics`] falls back to creating topics by their first use.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bootstrap lists whose brokers left a CreateTopics unanswered: later
/// topics there go straight to the fallback (one wait per process, not one
/// per topic).
fn lock_mute() -> std::sync::MutexGuard<'static, std::collections::HashSet<String>> {
    static MUTE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let mute = MUTE.get_or_init(Default::default);
    match mute.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Whether a CreateTopics error says the brokers never answered.
fn is_unanswered(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    reason.contains("timed out") || reason.contains("timedout") || reason.contains("unsupported")
}

/// The names of the topics the brokers know, without creating any.
/// Blocking.
fn existing_topics(settings: &KafkaSettings) -> Result<std::collections::HashSet<String>> {
    let mut config = settings.reader_config();
    config.set("allow.auto.create.topics", "false");
    let consumer: BaseConsumer = config.create()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.name().to_string())
        .collect())
}

/// Creates `topics` with the admin API; one that exists meanwhile is fine.
async fn create_topics(settings: &KafkaSettings, topics: &[TopicSpec]) -> Result<()> {
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
    let options = AdminOptions::new()
        .operation_timeout(Some(CREATE_TIMEOUT))
        .request_timeout(Some(CREATE_TIMEOUT));
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

/// How long [`cleanup_policy`] waits for the brokers' answer: 2 s.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The `cleanup.policy` of `topic` as the brokers report it (DescribeConfigs),
/// or `None` when they report no value for it (or an empty one), or when
/// `settings.describe_configs` is off. Waits at most
/// [`DESCRIBE_TIMEOUT`] (this runs at every actor start).
///
/// # Errors
/// [`KafkaError::Topics`] when the brokers cannot be asked or do not answer
/// for the topic in time (librdkafka's mock cluster has no DescribeConfigs
/// and never answers).
pub async fn cleanup_policy(settings: &KafkaSettings, topic: &str) -> Result<Option<String>> {
    if !settings.describe_configs {
        return Ok(None);
    }
    let admin: AdminClient<DefaultClientContext> = settings.admin_config().create()?;
    let options = AdminOptions::new().request_timeout(Some(DESCRIBE_TIMEOUT));
    let resources = [ResourceSpecifier::Topic(topic)];
    let results = admin
        .describe_configs(resources.iter(), &options)
        .await
        .map_err(|err| KafkaError::Topics(format!("cannot describe {topic}: {err}")))?;
    match results.into_iter().next() {
        Some(Ok(resource)) => Ok(resource
            .get("cleanup.policy")
            .and_then(|entry| entry.value.clone())
            .filter(|value| !value.trim().is_empty())),
        Some(Err(code)) => Err(KafkaError::Topics(format!(
            "cannot describe {topic}: {code}"
        ))),
        None => Err(KafkaError::Topics(format!("no description of {topic}"))),
    }
}

/// The number of partitions of `topic`, or `None` when it does not exist.
/// Blocking: call it from a blocking context.
///
/// With `manage_topics` off, the request lets the brokers create the
/// topic (where they allow it), so a topic used this way exists after.
pub fn partition_count(settings: &KafkaSettings, topic: &str) -> Result<Option<i32>> {
    let mut config = settings.reader_config();
    if !settings.manage_topics {
        config.set("allow.auto.create.topics", "true");
    }
    let consumer: BaseConsumer = config.create()?;
    // A topic just created may answer without partitions at first.
    for _ in 0..20 {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| i32::try_from(t.partitions().len()).unwrap_or(i32::MAX))
            .filter(|&n| n > 0);
        if count.is_some() {
            return Ok(count);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(None)
}
