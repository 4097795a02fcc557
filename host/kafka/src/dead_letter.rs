//! Dead letters: building the record of an event that ends dead, and its
//! optional mirror to a Kafka topic.
//!
//! The record in the store is what makes dead-lettering safe: the offset
//! moves past the event only once it is written and flushed. The Kafka
//! mirror (`[dead_letter] topic` in the manifest) is a copy for other
//! tools; it is produced best effort (librdkafka retries it) and its
//! failure is logged and counted, not allowed to stall the partition.

use wactor_delivery::DeadReason;
use wactor_manifest::ActorManifest;
use wactor_store::{AttemptRecord, DeadLetter, StoredEvent};

use crate::actor::ActorContext;
use crate::producer::{Delivery, OutRecord};

/// Header prefix of the context headers on mirrored dead letters.
pub const DLQ_HEADER_PREFIX: &str = "wactor-dlq-";

/// The name of a dead-letter reason as stored.
pub fn kind_name(reason: DeadReason) -> &'static str {
    match reason {
        DeadReason::ActorDead => "actor_dead",
        DeadReason::AttemptsExhausted => "attempts_exhausted",
        DeadReason::MaxAgeExceeded => "max_age_exceeded",
        DeadReason::Undecodable => "undecodable",
        DeadReason::TooLargeToHold => "too_large",
    }
}

/// The facts of one death.
pub struct Death<'a> {
    /// The event as the actor saw it.
    pub event: &'a StoredEvent,
    /// Every attempt, the last included.
    pub attempts: Vec<AttemptRecord>,
    /// Why the policy gave up.
    pub kind: DeadReason,
    /// The version of the last attempt.
    pub version: u64,
    /// When the first attempt started.
    pub first_attempt_at_ms: i64,
    /// Now.
    pub now_ms: i64,
    /// Re-drives before this death.
    pub redrives: u32,
    /// What the kind alone does not say (sizes for `too_large`).
    pub detail: Option<String>,
}

/// Builds the dead letter of `death`.
pub fn build(ctx: &ActorContext, death: Death<'_>) -> DeadLetter {
    let last_error = death
        .attempts
        .last()
        .map(|a| a.error.clone())
        .unwrap_or_default();
    let reason = match (death.kind, death.detail) {
        (DeadReason::ActorDead, _) => last_error,
        (kind, Some(detail)) if last_error.is_empty() => format!("{kind}: {detail}"),
        (kind, Some(detail)) => format!("{kind}: {detail}; last error: {last_error}"),
        (kind, None) => format!("{kind}: {last_error}"),
    };
    DeadLetter {
        id: DeadLetter::make_id(
            &ctx.name,
            &death.event.topic,
            death.event.partition,
            death.event.offset,
        ),
        actor: ctx.name.clone(),
        version: death.version,
        group: ctx.group.clone(),
        event: death.event.clone(),
        attempts: death.attempts,
        reason,
        kind: kind_name(death.kind).to_string(),
        first_attempt_at_ms: death.first_attempt_at_ms,
        dead_at_ms: death.now_ms,
        redrives: death.redrives,
        blocking: false,
    }
}

/// Produces the mirror of `dead` if the manifest asks for one.
pub fn mirror(ctx: &ActorContext, manifest: &ActorManifest, dead: &DeadLetter) -> Option<Delivery> {
    let topic = manifest.dead_letter_topic(&dead.event.topic)?;
    // The event's own headers, null values kept null. Kafka clients can
    // only produce UTF-8 header names: a name that is not (kept raw in the
    // store) is mirrored with its invalid bytes replaced.
    let mut headers: Vec<(String, Option<Vec<u8>>)> = dead
        .event
        .headers
        .iter()
        .map(|h| {
            (
                String::from_utf8_lossy(&h.name).into_owned(),
                h.value.clone(),
            )
        })
        .collect();
    let mut put = |name: &str, value: String| {
        headers.push((
            format!("{DLQ_HEADER_PREFIX}{name}"),
            Some(value.into_bytes()),
        ));
    };
    put("id", dead.id.clone());
    put("actor", dead.actor.clone());
    put("version", dead.version.to_string());
    put("group", dead.group.clone());
    put(
        "source",
        format!(
            "{}/{}/{}",
            dead.event.topic, dead.event.partition, dead.event.offset
        ),
    );
    put("reason", dead.reason.clone());
    put("kind", dead.kind.clone());
    put("attempts", dead.attempts.len().to_string());
    put("first-attempt-at-ms", dead.first_attempt_at_ms.to_string());
    put("dead-at-ms", dead.dead_at_ms.to_string());
    Some(ctx.producer.enqueue(&OutRecord {
        topic,
        partition: None,
        key: dead.event.key.clone(),
        // A tombstone is mirrored as a tombstone.
        payload: dead.event.payload.clone(),
        headers,
    }))
}
