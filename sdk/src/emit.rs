//! Records to publish to Kafka when the call returns [`Outcome::Done`].
//!
//! This module owns the `wactor:actor/emit` import. Records are queued by
//! the host and produced only after the call is done; on retry, dead or a
//! trap they are dropped.
//!
//! ```no_run
//! use wactor_sdk::emit::{self, Record};
//! # fn demo() -> Result<(), wactor_sdk::emit::EmitError> {
//! // The source event's key is used unless the record sets one.
//! emit::send(Record::new("audit.log", "user deleted"))?;
//! emit::send(
//!     Record::json("users.changed", &serde_json::json!({ "id": 7 }))?
//!         .key("7")
//!         .header("schema", "v1"),
//! )?;
//! emit::send_json("users.count", &serde_json::json!({ "count": 12 }))?;
//! // A tombstone (a null value) deletes key "7" from a compacted topic.
//! emit::send(Record::tombstone("users.compacted").key("7"))?;
//! # Ok(())
//! # }
//! ```
//!
//! [`Outcome::Done`]: crate::Outcome::Done

use std::fmt;

use serde::Serialize;

use crate::bindings::wactor::actor::{emit as wit, types::Header};

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    topic: String,
    key: Option<Vec<u8>>,
    /// `None` for a tombstone.
    payload: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// A record for `topic` with `payload` as its value, no key of its own
    /// (the source event's key is used) and no headers.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Record {
            topic: topic.into(),
            key: None,
            payload: Some(payload.into()),
            headers: Vec::new(),
        }
    }

    /// A tombstone for `topic`: a record whose value is null, which deletes
    /// its key from a compacted topic. Its key is the source event's unless
    /// set with [`Record::key`].
    pub fn tombstone(topic: impl Into<String>) -> Self {
        Record {
            topic: topic.into(),
            key: None,
            payload: None,
            headers: Vec::new(),
        }
    }

    /// A record for `topic` whose value is `value` encoded as JSON.
    pub fn json<T: Serialize + ?Sized>(
        topic: impl Into<String>,
        value: &T,
    ) -> Result<Self, EmitError> {
        let payload =
            serde_json::to_vec(value).map_err(|err| EmitError::Encode(err.to_string()))?;
        Ok(Record::new(topic, payload))
    }

    /// Sets the record's key. Without one the host uses the source event's
    /// key, so that follow-up events keep the source's per-key order.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a header. The host adds `wactor-source` and `wactor-actor`
    /// itself.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), Some(value.into())));
        self
    }

    /// Delivers the record `delay` after the call ends instead of at once
    /// (at most 7 days; more is refused by [`send`]). Like every emit it
    /// happens only if the call is done; the host keeps it in the group's
    /// `<group>.delayed` topic until then, across restarts and host moves
    /// (docs/delivery.md, "Delayed emits"). Sets the header
    /// `wactor-delay-ms`.
    pub fn delay(self, delay: std::time::Duration) -> Self {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.header("wactor-delay-ms", ms.to_string())
    }

    /// Delivers the record at `at` (ms since the Unix epoch; a time past
    /// means at once, at most 7 days ahead). Sets the header
    /// `wactor-deliver-at`.
    pub fn deliver_at_ms(self, at: i64) -> Self {
        self.header("wactor-deliver-at", at.to_string())
    }

    /// Adds a header whose value is null (not empty).
    pub fn null_header(mut self, name: impl Into<String>) -> Self {
        self.headers.push((name.into(), None));
        self
    }

    /// The destination topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The record's value; empty for a tombstone.
    pub fn payload(&self) -> &[u8] {
        self.payload.as_deref().unwrap_or_default()
    }

    /// Whether the record is a tombstone (its value is null).
    pub fn is_tombstone(&self) -> bool {
        self.payload.is_none()
    }
}

/// Why a record was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitError {
    /// The host refused the record: an empty topic name, or more records or
    /// bytes than it allows per call. Converts into
    /// [`Outcome::Retry`](crate::Outcome::Retry).
    Rejected(String),
    /// The value could not be encoded as JSON. Converts into
    /// [`Outcome::Dead`](crate::Outcome::Dead).
    Encode(String),
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Rejected(reason) => write!(f, "emit rejected: {reason}"),
            EmitError::Encode(reason) => write!(f, "emit value is not encodable as JSON: {reason}"),
        }
    }
}

impl std::error::Error for EmitError {}

/// Queues `record` for publishing when the call returns `done` (a
/// tombstone is produced with a null value).
pub fn send(record: Record) -> Result<(), EmitError> {
    let record = wit::OutgoingRecord {
        topic: record.topic,
        key: record.key,
        payload: record.payload,
        headers: record
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
    };
    wit::send(&record).map_err(EmitError::Rejected)
}

/// Queues a record for `topic` whose value is `value` encoded as JSON.
pub fn send_json<T: Serialize + ?Sized>(topic: &str, value: &T) -> Result<(), EmitError> {
    send(Record::json(topic, value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_record_has_no_value_and_keeps_its_key() {
        let record = Record::tombstone("users.compacted").key("7");
        assert!(record.is_tombstone());
        assert_eq!(record.payload(), b"");
        assert_eq!(record.key, Some(b"7".to_vec()));
        assert!(!Record::new("t", Vec::new()).is_tombstone());
    }

    #[test]
    fn null_and_empty_headers_stay_apart() {
        let record = Record::new("t", "x").null_header("a").header("b", "");
        assert_eq!(
            record.headers,
            vec![("a".to_string(), None), ("b".to_string(), Some(Vec::new()))]
        );
    }
}
