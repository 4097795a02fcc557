//! The API's JSON shapes: what handlers send and accept, and what the CLI
//! (the same crate graph) reads back. One place, so that the server and
//! its client cannot drift apart.
//!
//! The shapes are views of the registry's and the store's records, not the
//! records themselves, for two reasons: bytes (keys, payloads, header
//! values) are shown as [`BytesView`] (`{"text": ...}` when they are UTF-8,
//! `{"base64": ...}` otherwise) instead of arrays of numbers, and the API
//! stays stable when an internal record gains a field. Records that are
//! already plain data (versions, activations, attempts) are reused as they
//! are.
//!
//! Conversions from internal records live here too; turning request
//! shapes into registry calls is the handlers' job.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use wactor_registry::{ActorSummary, Deployed, VersionSummary};
use wactor_store::{
    ActivationRecord, AttemptRecord, DeadLetter, HeldEvent, LaneKey, StoredEvent, VersionRecord,
};

/// Bytes as JSON: text when they are valid UTF-8, base64 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BytesView {
    /// The bytes are this UTF-8 text.
    Text {
        /// The text.
        text: String,
    },
    /// The bytes, base64-encoded (standard alphabet, padded).
    Base64 {
        /// The encoded bytes.
        base64: String,
    },
}

impl BytesView {
    /// The view of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => BytesView::Text {
                text: text.to_string(),
            },
            Err(_) => BytesView::Base64 {
                base64: STANDARD.encode(bytes),
            },
        }
    }

    /// The bytes back.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            BytesView::Text { text } => Ok(text.as_bytes().to_vec()),
            BytesView::Base64 { base64 } => STANDARD
                .decode(base64)
                .map_err(|e| format!("invalid base64: {e}")),
        }
    }

    /// One-line form, the one key filters take: the text itself, or
    /// `base64:<encoded>`.
    pub fn to_arg(&self) -> String {
        match self {
            BytesView::Text { text } => text.clone(),
            BytesView::Base64 { base64 } => format!("base64:{base64}"),
        }
    }
}

/// Decodes a key as filters take it: `base64:<encoded>` for any bytes,
/// anything else as the UTF-8 text it is.
pub fn parse_key(arg: &str) -> Result<Vec<u8>, String> {
    match arg.strip_prefix("base64:") {
        Some(encoded) => STANDARD
            .decode(encoded)
            .map_err(|e| format!("key {arg:?}: invalid base64: {e}")),
        None => Ok(arg.as_bytes().to_vec()),
    }
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderView {
    /// Header name (invalid UTF-8 replaced by U+FFFD; see `name_bytes`).
    pub name: String,
    /// The name's exact bytes, only when they are not UTF-8 (a record
    /// dead-lettered for an undecodable header name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_bytes: Option<BytesView>,
    /// Header value; `null` for a null value (`{"text": ""}` is an empty
    /// one).
    pub value: Option<BytesView>,
}

/// A Kafka record as stored with a dead letter or a held event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Offset in the source partition.
    pub offset: i64,
    /// The record's timestamp (ms since the epoch), if the broker gave one.
    pub timestamp_ms: Option<i64>,
    /// The record key; `null` for a keyless record.
    pub key: Option<BytesView>,
    /// The record value; `null` for a tombstone (a null value), which
    /// `{"text": ""}`, an empty value, is not.
    pub payload: Option<BytesView>,
    /// Headers, in order.
    pub headers: Vec<HeaderView>,
}

impl From<&StoredEvent> for EventView {
    fn from(event: &StoredEvent) -> Self {
        EventView {
            topic: event.topic.clone(),
            partition: event.partition,
            offset: event.offset,
            timestamp_ms: event.timestamp_ms,
            key: event.key.as_deref().map(BytesView::of),
            payload: event.payload.as_deref().map(BytesView::of),
            headers: event
                .headers
                .iter()
                .map(|header| HeaderView {
                    name: String::from_utf8_lossy(&header.name).into_owned(),
                    name_bytes: match header.name_str() {
                        Some(_) => None,
                        None => Some(BytesView::of(&header.name)),
                    },
                    value: header.value.as_deref().map(BytesView::of),
                })
                .collect(),
        }
    }
}

/// A dead letter: the event, why it died and every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterView {
    /// `<actor>:<topic>:<partition>:<offset>`.
    pub id: String,
    /// The actor that gave up on it.
    pub actor: String,
    /// The version of the last attempt.
    pub version: u64,
    /// The actor's consumer group.
    pub group: String,
    /// The event.
    pub event: EventView,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptRecord>,
    /// Why it died.
    pub reason: String,
    /// `actor_dead`, `attempts_exhausted` or `max_age_exceeded`.
    pub kind: String,
    /// When the first attempt started (ms since the epoch).
    pub first_attempt_at_ms: i64,
    /// When it was dead-lettered (ms since the epoch).
    pub dead_at_ms: i64,
    /// How many times it was re-driven before.
    pub redrives: u32,
    /// Its event holds its key's lane (`on_dead = "block"`) until it is
    /// re-driven or discarded.
    #[serde(default)]
    pub blocking: bool,
}

impl From<&DeadLetter> for DeadLetterView {
    fn from(dead: &DeadLetter) -> Self {
        DeadLetterView {
            id: dead.id.clone(),
            actor: dead.actor.clone(),
            version: dead.version,
            group: dead.group.clone(),
            event: EventView::from(&dead.event),
            attempts: dead.attempts.clone(),
            reason: dead.reason.clone(),
            kind: dead.kind.clone(),
            first_attempt_at_ms: dead.first_attempt_at_ms,
            dead_at_ms: dead.dead_at_ms,
            redrives: dead.redrives,
            blocking: dead.blocking,
        }
    }
}

/// A page of dead letters, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterPageView {
    /// The dead letters of this page.
    pub items: Vec<DeadLetterView>,
    /// The `after` of the next page; `null` on the last page.
    pub next: Option<String>,
    /// How many match the filter in all (only when asked with `total=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
}

/// An event held for a retry, or waiting behind one of its lane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldView {
    /// Its id, for `retry-now`: `<topic>:<partition>:<lane>:<offset>`.
    pub id: String,
    /// `shared` (the partition's lane), `key` (its key's lane) or `own`.
    pub lane: String,
    /// The event.
    pub event: EventView,
    /// Attempts so far (empty: it waits behind its lane's head).
    pub attempts: Vec<AttemptRecord>,
    /// When the first attempt started.
    pub first_attempt_at_ms: Option<i64>,
    /// When the next attempt is due (for a retrying head).
    pub next_attempt_at_ms: Option<i64>,
    /// The version a re-drive asked for.
    pub version_override: Option<u64>,
    /// True for an event waiting for its retry; false for one waiting
    /// behind it.
    pub retrying: bool,
    /// The dead letter it became, when it blocks its lane (`on_dead =
    /// "block"`): re-drive or discard that letter to release the lane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// The host whose store holds it (cluster listings; absent for a
    /// single host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// The held events of an actor (`GET /v1/actors/{name}/retries`): every
/// host's when the registry is shared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldListingView {
    /// The events, in id order.
    pub items: Vec<HeldView>,
    /// Live hosts that did not answer in time: their partitions' events
    /// are missing from `items`.
    #[serde(default)]
    pub unanswered_hosts: Vec<String>,
    /// Hosts with more matching events than one answer holds (512 KiB):
    /// ask them directly (their API) or narrow the filter.
    #[serde(default)]
    pub truncated_hosts: Vec<String>,
}

impl From<&HeldEvent> for HeldView {
    fn from(held: &HeldEvent) -> Self {
        HeldView {
            id: held.id().to_string(),
            lane: match held.lane {
                LaneKey::Shared => "shared",
                LaneKey::Key(_) => "key",
                LaneKey::Own(_) => "own",
            }
            .to_string(),
            event: EventView::from(&held.event),
            attempts: held.attempts.clone(),
            first_attempt_at_ms: held.first_attempt_at_ms,
            next_attempt_at_ms: held.next_attempt_at_ms,
            version_override: held.version_override,
            retrying: !held.attempts.is_empty() && held.blocked_by.is_none(),
            blocked_by: held.blocked_by.as_ref().map(|b| b.dead_letter.clone()),
            host: None,
        }
    }
}

/// One partition an actor reads on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionView {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Records behind the high watermark (-1: unknown).
    pub lag: i64,
    /// `running`, or `failed` while its worker, which ended unexpectedly,
    /// waits for its restart.
    #[serde(default = "running")]
    pub state: String,
    /// Why its worker ended, while `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Restarts of its worker since this host got the partition.
    #[serde(default)]
    pub restarts: u32,
}

fn running() -> String {
    "running".to_string()
}

/// An actor as `GET /v1/actors` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorView {
    /// Name.
    pub name: String,
    /// The version that handles new events (the cluster's choice).
    pub active_version: Option<u64>,
    /// The version this host's consumer hands new events to: the active
    /// one, except while this host is still applying a change (a few
    /// milliseconds) or cannot load it (see its log); `None` when the
    /// actor does not run here.
    #[serde(default)]
    pub running_version: Option<u64>,
    /// `running`, `paused`, `stopped` (no active version) or `failed`.
    pub state: String,
    /// Topics read.
    pub topics: Vec<String>,
    /// Consumer group.
    pub group: String,
    /// Partitions this host reads, with their lag.
    pub partitions: Vec<PartitionView>,
    /// Total lag of this host's partitions.
    pub lag: i64,
    /// Dead letters of this actor.
    pub dead_letters: usize,
    /// Dead letters of this actor removed by retention (`[dead_letter]
    /// max_age` and `max_count`), ever.
    #[serde(default)]
    pub dead_letters_evicted: u64,
    /// Events held for a retry (or behind one) on this host.
    pub held: usize,
    /// Events handled to `done` (re-drives and replays included): summed
    /// over the live hosts of the cluster when the registry is shared
    /// (this host's count now, the others' from their latest heartbeat),
    /// else this host's; each host counts from its start, so a restart or
    /// a host that left takes its count with it.
    #[serde(default)]
    pub handled: u64,
    /// Last activation or pause change (ms since the epoch).
    pub updated_at_ms: i64,
}

impl From<ActorSummary> for ActorView {
    fn from(summary: ActorSummary) -> Self {
        ActorView {
            name: summary.name,
            active_version: summary.active_version,
            running_version: summary.running_version,
            state: summary.state,
            topics: summary.topics,
            group: summary.group,
            partitions: summary
                .partitions
                .into_iter()
                .map(|p| PartitionView {
                    topic: p.topic,
                    partition: p.partition,
                    lag: p.lag,
                    state: p.state,
                    error: p.error,
                    restarts: p.restarts,
                })
                .collect(),
            lag: summary.lag,
            dead_letters: summary.dead_letters,
            dead_letters_evicted: summary.dead_letters_evicted,
            held: summary.held,
            handled: summary.handled,
            updated_at_ms: summary.updated_at_ms,
        }
    }
}

/// One actor in full, as `GET /v1/actors/{name}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorDetail {
    /// What the list shows.
    #[serde(flatten)]
    pub actor: ActorView,
    /// Whether it is paused.
    pub paused: bool,
    /// When the actor was first deployed (ms since the epoch).
    pub created_at_ms: i64,
    /// The manifest (TOML) of the active version.
    pub manifest: String,
    /// Why its consumer is not running, when it failed to start.
    pub failure: Option<String>,
}

/// A version of an actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionView {
    /// The stored version: number, sha256, size, upload time, uploader,
    /// notes, manifest.
    #[serde(flatten)]
    pub record: VersionRecord,
    /// Whether it is the active version.
    pub active: bool,
}

impl From<VersionSummary> for VersionView {
    fn from(summary: VersionSummary) -> Self {
        VersionView {
            record: summary.record,
            active: summary.active,
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployedView {
    /// The version stored, or the identical one that already existed.
    pub version: VersionView,
    /// False when an identical version (same component and manifest)
    /// already existed: nothing new was stored.
    pub created: bool,
    /// Whether it is now the active version.
    pub activated: bool,
    /// Validation and compile time (or cache load), ms.
    pub compile_ms: f64,
    /// Whether the compiled artifact came from the cache.
    pub cache_hit: bool,
    /// Time from the start of the deploy to the swap, ms.
    pub total_ms: f64,
}

impl From<Deployed> for DeployedView {
    fn from(deployed: Deployed) -> Self {
        DeployedView {
            version: VersionView {
                record: deployed.version,
                active: deployed.activated,
            },
            created: deployed.created,
            activated: deployed.activated,
            compile_ms: deployed.compile_ms,
            cache_hit: deployed.cache_hit,
            total_ms: deployed.total_ms,
        }
    }
}

/// A list response: `{"items": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Items<T> {
    /// The items.
    pub items: Vec<T>,
}

/// An activation (activate, rollback) as the history shows it.
pub type ActivationView = ActivationRecord;

/// The answer to `DELETE /v1/actors/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// The actor removed.
    pub removed: String,
}

/// The answer to `retry-now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryingNow {
    /// The held event's id.
    pub id: String,
}

/// One dead letter a batch could not handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchFailure {
    /// The dead letter.
    pub id: String,
    /// What went wrong.
    pub error: String,
}

/// What a re-drive or a discard did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Dead letters that matched.
    pub matched: usize,
    /// Re-drives sent (re-drive only; 0 in a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redriven: Option<usize>,
    /// Dead letters removed (discard only; 0 in a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discarded: Option<usize>,
    /// The ids concerned (the first 1000).
    pub ids: Vec<String>,
    /// Dead letters that could not be handled, with why.
    pub failed: Vec<BatchFailure>,
}

/// The body of an error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong, for a person.
    pub error: String,
    /// A stable code for programs: `unauthorized`, `forbidden`, `bad_request`,
    /// `bad_manifest`, `bad_component`, `too_large`, `unknown_actor`,
    /// `unknown_version`, `not_found`, `name_mismatch`,
    /// `nothing_to_roll_back`, `conflict`, `internal`.
    pub code: String,
    /// The manifest field at fault (`bad_manifest` errors that name one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `POST /v1/actors/{name}/activate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    /// The version to activate.
    pub version: u64,
}

/// `POST /v1/actors/{name}/rollback` (the body is optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version to go back to; default: the one active before the
    /// current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
}

/// A point in time in a request: milliseconds since the epoch, or text
/// (RFC 3339, or milliseconds as a string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TimeArg {
    /// Milliseconds since the epoch.
    Ms(i64),
    /// RFC 3339 text, or milliseconds as text.
    Text(String),
}

/// Which dead letters a re-drive or a discard selects (all given fields
/// must match).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterBody {
    /// Only this actor's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only events of this topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Only events with this key (text, or `base64:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Only those whose reason or an attempt's error contains this
    /// (ignoring case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Dead-lettered at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<TimeArg>,
    /// Dead-lettered before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<TimeArg>,
}

/// `POST /v1/dead-letters/redrive`: give exactly one of `id`, a non-empty
/// `filter`, or `"all": true`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedriveBody {
    /// One dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The dead letters that match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterBody>,
    /// Every dead letter (required to select all: an empty request is
    /// refused, so that nobody re-drives everything by accident).
    #[serde(default)]
    pub all: bool,
    /// Run them on this version; default: the active one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Only say what would be re-driven.
    #[serde(default)]
    pub dry_run: bool,
    /// At most this many re-drives per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
}

/// `POST /v1/dead-letters/discard`: the selection rules of a re-drive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscardBody {
    /// One dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The dead letters that match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterBody>,
    /// Every dead letter.
    #[serde(default)]
    pub all: bool,
    /// Only say what would be discarded.
    #[serde(default)]
    pub dry_run: bool,
}

/// The query of `GET /v1/dead-letters`. Empty values are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    /// Only this actor's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only events of this topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Only events with this key (text, or `base64:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Only those whose reason or an attempt's error contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Dead-lettered at or after (RFC 3339 or ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Dead-lettered before (RFC 3339 or ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Page size, 1 to 1000; default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// The previous page's `next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Also count every match (`total`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<bool>,
}

/// The query of `GET /v1/actors/{name}/retries`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetriesQuery {
    /// Only events of this topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Only events with this key (text, or `base64:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// At most this many, 1 to 10000; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only events waiting for their own retry, not those behind them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_retrying: Option<bool>,
}

/// The query of `POST /v1/actors/{name}/versions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Activate the new version at once (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_bytes_show_as_text_and_others_as_base64() {
        assert_eq!(
            serde_json::to_value(BytesView::of(b"order-42")).ok(),
            Some(serde_json::json!({"text": "order-42"}))
        );
        assert_eq!(
            serde_json::to_value(BytesView::of(&[0xff, 0x00, 0x10])).ok(),
            Some(serde_json::json!({"base64": "/wAQ"}))
        );
    }

    #[test]
    fn bytes_views_read_back_to_the_same_bytes() {
        for bytes in [&b"plain"[..], &[0xff, 0xfe][..], &[][..]] {
            let json = serde_json::to_string(&BytesView::of(bytes)).unwrap_or_default();
            let back: BytesView = serde_json::from_str(&json).unwrap_or(BytesView::Text {
                text: "unreadable".into(),
            });
            assert_eq!(back.to_bytes().as_deref(), Ok(bytes));
            assert_eq!(parse_key(&back.to_arg()).as_deref(), Ok(bytes));
        }
    }

    #[test]
    fn a_tombstone_shows_a_null_payload_and_an_empty_value_does_not() {
        use wactor_store::StoredHeader;
        let event = |payload: Option<Vec<u8>>| StoredEvent {
            topic: "t".into(),
            partition: 0,
            offset: 1,
            timestamp_ms: None,
            key: Some(b"k".to_vec()),
            payload,
            headers: vec![
                StoredHeader::new("gone", None),
                StoredHeader::new("empty", Some(Vec::new())),
                StoredHeader::new(vec![0xff], Some(b"v".to_vec())),
            ],
        };
        let tombstone = serde_json::to_value(EventView::from(&event(None))).unwrap_or_default();
        let empty =
            serde_json::to_value(EventView::from(&event(Some(Vec::new())))).unwrap_or_default();
        assert_eq!(tombstone["payload"], serde_json::Value::Null);
        assert_eq!(empty["payload"], serde_json::json!({"text": ""}));
        assert_eq!(
            tombstone["headers"],
            serde_json::json!([
                {"name": "gone", "value": null},
                {"name": "empty", "value": {"text": ""}},
                {"name": "\u{fffd}", "name_bytes": {"base64": "/w=="}, "value": {"text": "v"}}
            ])
        );
    }

    #[test]
    fn key_arguments_are_text_or_prefixed_base64() {
        assert_eq!(parse_key("cust-7"), Ok(b"cust-7".to_vec()));
        assert_eq!(parse_key("base64:/wAQ"), Ok(vec![0xff, 0x00, 0x10]));
        assert!(parse_key("base64:***").is_err());
    }

    #[test]
    fn time_arguments_take_numbers_and_text() {
        let filter: FilterBody =
            serde_json::from_str(r#"{"since": 5, "until": "2024-05-01T00:00:00Z"}"#)
                .unwrap_or_default();
        assert_eq!(filter.since, Some(TimeArg::Ms(5)));
        assert_eq!(
            filter.until,
            Some(TimeArg::Text("2024-05-01T00:00:00Z".into()))
        );
    }

    #[test]
    fn unknown_fields_in_a_redrive_are_refused() {
        // A typo must not widen a destructive selection.
        let typo = serde_json::from_str::<RedriveBody>(r#"{"filter": {"actr": "billing"}}"#);
        assert!(typo.is_err());
    }
}
