//! The records that held events and dead letters share: an owned copy of a
//! Kafka record, one attempt's outcome, and the ordering lane an event
//! belongs to.
//!
//! Plain serde data: no sled here, and no behaviour beyond what identifies
//! a record. The wire-level event (the WIT record) and the retry policy
//! that produces attempts live elsewhere.

use serde::{Deserialize, Serialize};

/// One Kafka record as stored (owned copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Offset in the source partition (>= 0 for real records).
    pub offset: i64,
    /// The record's timestamp, when the broker gave one.
    pub timestamp_ms: Option<i64>,
    /// The record's key; `None` for a keyless record.
    pub key: Option<Vec<u8>>,
    /// The record's value.
    pub payload: Vec<u8>,
    /// The record's headers, in order (names may repeat).
    pub headers: Vec<(String, Vec<u8>)>,
}

/// How one attempt to handle an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The actor returned `done`.
    Done,
    /// The actor asked for a retry.
    Retry,
    /// The actor declared the event dead.
    Dead,
    /// The call trapped (panic, deadline, memory limit).
    Trap,
    /// A host-side failure, e.g. producing the call's emits failed.
    Failed,
}

/// One attempt to handle an event, as shown to operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1-based attempt number.
    pub attempt: u32,
    /// When the call started (ms since the Unix epoch).
    pub started_at_ms: i64,
    /// How long the call took, in milliseconds.
    pub duration_ms: f64,
    /// The actor version that handled it.
    pub version: u64,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The error or retry reason; empty for `done`.
    pub error: String,
}

/// Which ordering lane an event belongs to (what must run in order).
///
/// `Ord` (variant order, then contents) is for in-memory maps and heaps;
/// the store's key order is the `codec` module's, not this.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LaneKey {
    /// One lane for the whole partition (`partition` ordering, or keyless
    /// events under `key` ordering).
    Shared,
    /// The lane of one record key (`key` ordering).
    Key(Vec<u8>),
    /// A lane of its own (`none` ordering): the event's offset.
    Own(i64),
}
