//! How the host talks to Kafka: the `[kafka]` table of the host config.
//!
//! This module owns the client settings: the broker list, the librdkafka
//! properties users pass through (security, SASL, SSL, timeouts) and the
//! delivery knobs (commit interval, drain bound, buffering). It also builds
//! the rdkafka client configs, applying the properties the delivery promise
//! depends on *after* the user's, and refusing user properties that would
//! switch the promise off.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use wactor_delivery::duration_str;

use crate::call::HandleSpans;
use crate::error::{KafkaError, Result};
use crate::recovery::ResetPolicy;

/// Default `topic.metadata.refresh.interval.ms` of actor consumers: a topic
/// created after an actor subscribed to it is read within about this long
/// (librdkafka's own default is 5 minutes).
pub const METADATA_REFRESH_MS: &str = "5000";

/// librdkafka properties that wactor sets itself; users may not.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "enable.idempotence",
    "acks",
    "request.required.acks",
];

/// The host's Kafka settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// librdkafka properties passed to every client (consumers, producer,
    /// admin): `security.protocol`, `sasl.mechanism`, `sasl.username`,
    /// `ssl.ca.location`, `auto.offset.reset`, ... The delivery-critical
    /// ones (see `RESERVED`) are refused.
    #[serde(default)]
    pub client: BTreeMap<String, String>,
    /// librdkafka properties for the consumers only (`session.timeout.ms`,
    /// `partition.assignment.strategy`, `fetch.max.bytes`, ...).
    #[serde(default)]
    pub consumer: BTreeMap<String, String>,
    /// librdkafka properties for the producer only (`linger.ms`,
    /// `compression.type`, `message.timeout.ms`, ...).
    #[serde(default)]
    pub producer: BTreeMap<String, String>,
    /// How often finished offsets are stored for commit; default `"1s"`.
    #[serde(default = "default_commit_interval", with = "duration_str")]
    pub commit_interval: Duration,
    /// How long a revoked (or shut down) partition waits for its running
    /// calls before giving them up (they are redelivered); default `"30s"`.
    #[serde(default = "default_drain_timeout", with = "duration_str")]
    pub drain_timeout: Duration,
    /// Events read and not started, per partition, above which the
    /// partition is paused; default 1000. It resumes at half.
    #[serde(default = "default_max_buffered")]
    pub max_buffered_per_partition: usize,
    /// Keep retry state in a compacted changelog topic per actor
    /// (`<group>.retries`), so that a partition's retries move with it to
    /// another host; default true. Turn off only for a single host whose
    /// disk is never lost.
    #[serde(default = "default_true")]
    pub retry_changelog: bool,
    /// Keep actor state in a compacted changelog topic per consumer group
    /// (`<group>.state`), so that the state of a partition's keys moves
    /// with the partition to another host (docs/actors.md, "State");
    /// default true. Off, state stays on the host that wrote it: turn it
    /// off only for a single host whose disk is never lost.
    #[serde(default = "default_true")]
    pub state_changelog: bool,
    /// Partitions of changelog topics wactor creates; default 12.
    #[serde(default = "default_changelog_partitions")]
    pub changelog_partitions: i32,
    /// Replication factor of topics wactor creates; default 1 (set 3 on a
    /// production cluster).
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// Create the topics wactor needs (retry changelogs, re-drive topics)
    /// with the admin API; default true. When false they must exist, or
    /// the brokers must create topics on first use (librdkafka's mock
    /// cluster does, and has no admin API).
    #[serde(default = "default_true")]
    pub manage_topics: bool,
    /// Share the registry (actors, versions, activations, pauses, removals
    /// and component bytes) with every host on the same brokers through
    /// the compacted topic `registry_topic` (docs/operations.md, "Many
    /// hosts"); default true. Off, each host keeps its own registry and a
    /// deploy reaches only the host it was sent to.
    #[serde(default = "default_true")]
    pub shared_registry: bool,
    /// The shared registry's topic; default `wactor.registry`. Hosts that
    /// name the same topic on the same brokers are one cluster.
    #[serde(default = "default_registry_topic")]
    pub registry_topic: String,
    /// Share each group's dead letters with every host through the
    /// compacted topic `<group>.dead-letters`, so that any host lists,
    /// re-drives and discards all of them; default true. Off, each host
    /// keeps the dead letters of the partitions it handled.
    #[serde(default = "default_true")]
    pub shared_dead_letters: bool,
    /// Whether the brokers answer DescribeConfigs, which the checks of
    /// compacted topics' `cleanup.policy` use; default true. Not a key of
    /// the host config: `wactor dev` and the tests turn it off for
    /// librdkafka's mock cluster, which never answers, so that each check
    /// does not wait [`crate::admin::DESCRIBE_TIMEOUT`] for nothing.
    #[serde(skip, default = "default_true")]
    pub describe_configs: bool,
    /// When a call makes its `handle` span; default: before every call.
    /// Not a key of the host config: `wactor serve` and `wactor dev` set
    /// it from their log filter and whether traces are on
    /// ([`HandleSpans::for_log_filter`]).
    #[serde(skip)]
    pub handle_spans: HandleSpans,
}

/// Default [`KafkaSettings::registry_topic`]: `wactor.registry`.
pub fn default_registry_topic() -> String {
    crate::registry_log::DEFAULT_REGISTRY_TOPIC.to_string()
}

/// Default [`KafkaSettings::commit_interval`]: 1 s.
pub fn default_commit_interval() -> Duration {
    Duration::from_secs(1)
}

/// Default [`KafkaSettings::drain_timeout`]: 30 s.
pub fn default_drain_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Default [`KafkaSettings::max_buffered_per_partition`]: 1000.
pub fn default_max_buffered() -> usize {
    1000
}

fn default_true() -> bool {
    true
}

/// Default [`KafkaSettings::changelog_partitions`]: 12.
pub fn default_changelog_partitions() -> i32 {
    12
}

/// Default [`KafkaSettings::replication_factor`]: 1.
pub fn default_replication() -> i32 {
    1
}

impl KafkaSettings {
    /// Settings for `brokers` with every default.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            client: BTreeMap::new(),
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
            commit_interval: default_commit_interval(),
            drain_timeout: default_drain_timeout(),
            max_buffered_per_partition: default_max_buffered(),
            retry_changelog: true,
            state_changelog: true,
            changelog_partitions: default_changelog_partitions(),
            replication_factor: default_replication(),
            manage_topics: true,
            shared_registry: true,
            registry_topic: default_registry_topic(),
            shared_dead_letters: true,
            describe_configs: true,
            handle_spans: HandleSpans::default(),
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.brokers.trim().is_empty() {
            return Err(KafkaError::Config("kafka.brokers is empty".into()));
        }
        for (table, properties) in [
            ("client", &self.client),
            ("consumer", &self.consumer),
            ("producer", &self.producer),
        ] {
            if let Some(key) = properties.keys().find(|k| RESERVED.contains(&k.as_str())) {
                return Err(KafkaError::Config(format!(
                    "kafka.{table}.{key:?} is set by wactor itself (it is part of the delivery promise); remove it"
                )));
            }
        }
        if self.commit_interval < Duration::from_millis(10) {
            return Err(KafkaError::Config(
                "kafka.commit_interval must be at least 10ms".into(),
            ));
        }
        if self.max_buffered_per_partition == 0 {
            return Err(KafkaError::Config(
                "kafka.max_buffered_per_partition must be at least 1".into(),
            ));
        }
        self.reset_policy()?;
        if self.changelog_partitions < 1 || self.replication_factor < 1 {
            return Err(KafkaError::Config(
                "kafka.changelog_partitions and kafka.replication_factor must be at least 1".into(),
            ));
        }
        if self.shared_registry && self.registry_topic.trim().is_empty() {
            return Err(KafkaError::Config(
                "kafka.registry_topic is empty (set kafka.shared_registry = false to keep the registry on this host)".into(),
            ));
        }
        Ok(())
    }

    /// The user's properties (common, then the client kind's) and the
    /// broker list.
    fn base(&self, kind: Option<&BTreeMap<String, String>>) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in self.client.iter().chain(kind.into_iter().flatten()) {
            config.set(key, value);
        }
        config.set("bootstrap.servers", &self.brokers);
        config
    }

    /// Where a partition of an actor's own topics with no committed offset
    /// (or whose offset fell out of the broker's log) starts:
    /// `[kafka.client]`/`[kafka.consumer]` `auto.offset.reset`, `earliest`
    /// (default) or `latest`. It never applies to the topics wactor writes
    /// for the group itself (`<group>.redrive`, `.delayed`, `.replay`,
    /// `.schedule`): those always start at their earliest offset, or a
    /// re-drive, delayed emit, replay or firing written before the group
    /// first committed would be skipped (see
    /// [`consumer_config`](Self::consumer_config)).
    ///
    /// # Errors
    /// [`KafkaError::Config`] for any other value.
    pub fn reset_policy(&self) -> Result<ResetPolicy> {
        let name = self
            .consumer
            .get("auto.offset.reset")
            .or_else(|| self.client.get("auto.offset.reset"))
            .map_or("earliest", String::as_str);
        ResetPolicy::parse(name).ok_or_else(|| {
            KafkaError::Config(format!(
                "auto.offset.reset = {name:?}: wactor takes earliest or latest"
            ))
        })
    }

    /// Whether the user set `key` for consumers.
    fn consumer_sets(&self, key: &str) -> bool {
        self.client.contains_key(key) || self.consumer.contains_key(key)
    }

    /// Config of an actor's group consumer. Offsets are stored only after an
    /// event's outcome is final and committed in the background from what
    /// was stored.
    ///
    /// librdkafka's `auto.offset.reset` is always `earliest`, whatever the
    /// user set: one consumer reads the actor's topics and the group's
    /// internal ones, and librdkafka applies one policy to all of them, so
    /// the user's [`reset_policy`](Self::reset_policy) is applied by the
    /// consumer to the actor's own topics only (a new partition under
    /// `latest` passes over what precedes its end at assignment; a position
    /// out of the log is moved to the end), and the internal topics start
    /// at their beginning. `topic.metadata.refresh.interval.ms` defaults to
    /// [`METADATA_REFRESH_MS`], so topics created (and partitions added)
    /// after an actor subscribed are read within that bound.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = self.base(Some(&self.consumer));
        if !self.consumer_sets("topic.metadata.refresh.interval.ms") {
            config.set("topic.metadata.refresh.interval.ms", METADATA_REFRESH_MS);
        }
        let commit_ms = self.commit_interval.as_millis().max(10).to_string();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", &commit_ms)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        config
    }

    /// Config of a consumer that reads partitions it assigns itself (the
    /// changelog restore): no group membership, no commits.
    pub fn reader_config(&self) -> ClientConfig {
        let mut config = self.base(Some(&self.consumer));
        config
            .set("group.id", "wactor.reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest");
        config
    }

    /// Config of the producer (emits, changelog, dead-letter mirror):
    /// acknowledged by all in-sync replicas, idempotent, so a retried send
    /// is not written twice.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.base(Some(&self.producer));
        if !self.client.contains_key("linger.ms") && !self.producer.contains_key("linger.ms") {
            config.set("linger.ms", "2");
        }
        config.set("acks", "all").set("enable.idempotence", "true");
        config
    }

    /// Config of an admin client.
    pub fn admin_config(&self) -> ClientConfig {
        self.base(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn delivery_settings_win_over_user_properties() {
        let mut settings = KafkaSettings::new("b:9092");
        settings
            .client
            .insert("security.protocol".into(), "SASL_SSL".into());
        let config = settings.consumer_config("wactor.a");
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("group.id"), Some("wactor.a"));
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(
            config.get("topic.metadata.refresh.interval.ms"),
            Some("5000")
        );
        assert_eq!(settings.producer_config().get("acks"), Some("all"));
    }

    #[test]
    fn a_users_latest_reset_is_the_policy_but_never_librdkafkas() {
        for table in ["client", "consumer"] {
            let mut settings = KafkaSettings::new("b:9092");
            let properties = if table == "client" {
                &mut settings.client
            } else {
                &mut settings.consumer
            };
            properties.insert("auto.offset.reset".into(), "latest".into());
            settings.validate().unwrap();
            assert_eq!(settings.reset_policy().unwrap(), ResetPolicy::Latest);
            // The consumer also reads the group's internal topics, which
            // must start at their beginning; the policy is applied to the
            // actor's topics by the consumer itself.
            assert_eq!(
                settings.consumer_config("g").get("auto.offset.reset"),
                Some("earliest"),
                "kafka.{table}"
            );
        }
    }

    #[test]
    fn consumer_and_producer_properties_reach_only_their_clients() {
        let mut settings = KafkaSettings::new("b:9092");
        settings
            .consumer
            .insert("session.timeout.ms".into(), "6000".into());
        settings.producer.insert("linger.ms".into(), "20".into());
        assert_eq!(
            settings.consumer_config("g").get("session.timeout.ms"),
            Some("6000")
        );
        assert_eq!(settings.producer_config().get("session.timeout.ms"), None);
        assert_eq!(settings.producer_config().get("linger.ms"), Some("20"));
        assert_eq!(settings.consumer_config("g").get("linger.ms"), None);
    }

    #[test]
    fn reserved_user_properties_are_refused_by_name() {
        let mut settings = KafkaSettings::new("b:9092");
        settings
            .client
            .insert("enable.auto.offset.store".into(), "true".into());
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.contains("enable.auto.offset.store"), "{err}");
    }

    #[test]
    fn host_config_reads_durations_and_defaults() {
        let settings: KafkaSettings =
            toml::from_str("brokers = \"a:1\"\ncommit_interval = \"250ms\"\n[client]\n\"sasl.mechanism\" = \"PLAIN\"")
                .unwrap();
        assert_eq!(settings.commit_interval, Duration::from_millis(250));
        assert_eq!(settings.drain_timeout, Duration::from_secs(30));
        assert!(settings.retry_changelog);
        assert_eq!(
            settings.client.get("sasl.mechanism").map(String::as_str),
            Some("PLAIN")
        );
        settings.validate().unwrap();
    }
}
