//! Which topics an actor may emit to.
//!
//! The host keeps its own bookkeeping in Kafka topics that it also reads:
//! `<group>.retries` (the retry changelog: a record there is a held event,
//! an empty record a tombstone for one), `<group>.redrive` (re-driven dead
//! letters, handed to the actor as events) and the dead-letter mirrors
//! (`<topic>.<actor>.dlq` or a name ending in `.dlq`). Kafka itself keeps
//! `__consumer_offsets` and `__transaction_state`. An actor that could
//! write to any of them could delete or forge another actor's held events,
//! inject events into another actor, or corrupt the cluster.
//!
//! The rule is by name alone, so that no choice of group or actor name can
//! get around it; [`check_emit_topic`] is the one place it lives. Refused
//! (ASCII case is ignored):
//!
//! - names Kafka itself refuses: empty, longer than 249, `.` or `..`, or a
//!   character other than `a-z A-Z 0-9 . _ -`;
//! - names starting with `_` (Kafka's `__consumer_offsets`,
//!   `__transaction_state` and every `__` topic; the ecosystem's `_schemas`,
//!   `_confluent-*`);
//! - names starting with `wactor.` (the default consumer groups and
//!   anything the host adds later);
//! - names ending with `.retries`, `.redrive`, `.state`, `.dead-letters`
//!   or `.dlq` (the host's changelogs, re-drive and dead-letter topics of
//!   a group with a name of the manifest's choosing).
//!
//! The manifest holds custom dead-letter mirror topics to the same rule
//! (they must end in `.dlq`), which is what makes the suffix complete.

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_LEN: usize = 249;

/// Topic-name prefixes reserved for Kafka, its ecosystem and the host.
pub const RESERVED_TOPIC_PREFIXES: &[&str] = &["_", "wactor."];

/// Topic-name suffixes reserved for the host's retry changelogs, re-drive
/// topics and dead-letter mirrors.
pub const RESERVED_TOPIC_SUFFIXES: &[&str] =
    &[".retries", ".redrive", ".state", ".dead-letters", ".dlq"];

/// Checks that an actor may emit to `topic`.
///
/// Returns `Err` with a sentence for the actor (and its logs) saying what
/// is wrong with the name; see the [module docs](self) for the rule.
pub fn check_emit_topic(topic: &str) -> Result<(), String> {
    if let Some(problem) = kafka_name_problem(topic) {
        return Err(format!("emit: {problem}"));
    }
    if let Some(reason) = reserved_topic(topic) {
        return Err(format!(
            "emit: topic {topic:?} is reserved ({reason}); actors cannot write to it"
        ));
    }
    Ok(())
}

/// Why `topic` is reserved for Kafka or the host, or `None` when it is
/// not. The name is assumed to be a valid Kafka name.
pub fn reserved_topic(topic: &str) -> Option<&'static str> {
    let lower = topic.to_ascii_lowercase();
    if lower.starts_with('_') {
        return Some("names starting with '_' are Kafka's and its ecosystem's internal topics");
    }
    if lower.starts_with("wactor.") {
        return Some("names starting with 'wactor.' belong to the host");
    }
    if lower.ends_with(".retries") {
        return Some("names ending in '.retries' are the host's retry changelogs");
    }
    if lower.ends_with(".redrive") {
        return Some("names ending in '.redrive' are the host's re-drive topics");
    }
    if lower.ends_with(".state") {
        return Some("names ending in '.state' are the host's actor-state changelogs");
    }
    if lower.ends_with(".dead-letters") {
        return Some("names ending in '.dead-letters' are the host's shared dead-letter sets");
    }
    if lower.ends_with(".dlq") {
        return Some("names ending in '.dlq' are the host's dead-letter mirrors");
    }
    None
}

/// What makes `topic` an invalid Kafka topic name, if anything.
pub fn kafka_name_problem(topic: &str) -> Option<String> {
    if topic.is_empty() {
        return Some("the topic name is empty".into());
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Some(format!(
            "the topic name is {} bytes long; Kafka allows at most {MAX_TOPIC_LEN}",
            topic.len()
        ));
    }
    if topic == "." || topic == ".." {
        return Some(format!("{topic:?} is not a valid topic name"));
    }
    if let Some(bad) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "the topic name {topic:?} contains {bad:?}; Kafka allows only a-z, A-Z, 0-9, '.', '_' and '-'"
        ));
    }
    None
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_topics_are_allowed() {
        for topic in [
            "orders",
            "orders.out",
            "emails.welcome",
            "payments_v2",
            "a-b.c_d",
            "retries",
            "my.retries.log",
            "dlq",
            "wactor",
            "wactor-events",
            "state",
            "order.state.changed",
        ] {
            assert_eq!(check_emit_topic(topic), Ok(()), "{topic}");
        }
    }

    #[test]
    fn the_host_internal_topics_of_any_group_are_refused() {
        for topic in [
            "wactor.payments.retries",
            "wactor.payments.redrive",
            "payments.retries",
            "custom-group.redrive",
            "bookings.payment-reversal.dlq",
            "my-mirror.dlq",
            "wactor.registry",
            "WACTOR.x",
            "Group.RETRIES",
            "x.Redrive",
            "x.DLQ",
            "custom-group.state",
            "custom-group.dead-letters",
            "X.State",
        ] {
            let err = check_emit_topic(topic).expect_err(topic);
            assert!(err.contains("reserved"), "{topic}: {err}");
        }
    }

    #[test]
    fn kafka_internal_topics_are_refused() {
        for topic in [
            "__consumer_offsets",
            "__transaction_state",
            "__anything",
            "_schemas",
        ] {
            let err = check_emit_topic(topic).expect_err(topic);
            assert!(err.contains("reserved"), "{topic}: {err}");
        }
    }

    #[test]
    fn names_kafka_refuses_are_refused_with_the_reason() {
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        for (topic, needle) in [
            ("", "empty"),
            (".", "not a valid"),
            ("..", "not a valid"),
            ("has space", "' '"),
            ("slash/topic", "'/'"),
            ("ünï", "'ü'"),
            (long.as_str(), "at most 249"),
        ] {
            let err = check_emit_topic(topic).expect_err(topic);
            assert!(err.contains(needle), "{topic:?}: {err}");
        }
        assert_eq!(check_emit_topic(&"a".repeat(MAX_TOPIC_LEN)), Ok(()));
    }
}
