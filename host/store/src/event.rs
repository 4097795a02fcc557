//! The records that held events and dead letters share: an owned copy of a
//! Kafka record, one attempt's outcome, and the ordering lane an event
//! belongs to.
//!
//! Plain serde data: no sled here, and no behaviour beyond what identifies
//! a record. The wire-level event (the WIT record) and the retry policy
//! that produces attempts live elsewhere.
//!
//! These types are stored in the binary value format of the `value`
//! module, and still read from the JSON that stores before it wrote
//! (header names were JSON strings, values arrays of numbers; a null value
//! was stored as an empty one and reads back as empty).

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One Kafka record as stored (owned copy): exactly what the broker sent,
/// null values and non-UTF-8 header names included.
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
    #[serde(serialize_with = "opt_bytes_out", deserialize_with = "opt_bytes_in")]
    pub key: Option<Vec<u8>>,
    /// The record's value: `None` for a null value (a tombstone), `Some`
    /// of an empty vector for an empty one.
    pub payload: Option<Vec<u8>>,
    /// The record's headers, in order (names may repeat).
    pub headers: Vec<StoredHeader>,
}

impl StoredEvent {
    /// The value's bytes; empty for a tombstone.
    pub fn payload_bytes(&self) -> &[u8] {
        self.payload.as_deref().unwrap_or_default()
    }
}

/// One Kafka header as stored: the name as the raw bytes the broker sent
/// (Kafka header names are meant to be UTF-8 strings, but nothing enforces
/// it: a record whose header name is not UTF-8 is dead-lettered, and its
/// dead letter must keep exactly what arrived), and the value, `None` when
/// it is null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHeader {
    /// The name's bytes, normally UTF-8 ([`StoredHeader::name_str`]).
    #[serde(serialize_with = "bytes_out", deserialize_with = "bytes_in")]
    pub name: Vec<u8>,
    /// The value; `None` for a null value.
    #[serde(serialize_with = "opt_bytes_out", deserialize_with = "opt_bytes_in")]
    pub value: Option<Vec<u8>>,
}

impl StoredHeader {
    /// A header from a name and a value (`None`: a null value).
    pub fn new(name: impl Into<Vec<u8>>, value: Option<Vec<u8>>) -> Self {
        StoredHeader {
            name: name.into(),
            value,
        }
    }

    /// The name as text, when it is UTF-8 (always, except for records
    /// dead-lettered because of an undecodable header name).
    pub fn name_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.name).ok()
    }
}

/// Bytes that serialize as a byte string.
struct ByteStr<'a>(&'a [u8]);

impl Serialize for ByteStr<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Bytes read by [`bytes_in`].
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bytes_in(deserializer).map(ByteBuf)
    }
}

/// Writes optional bytes as an optional byte string: one copy, not one
/// call per byte.
fn opt_bytes_out<S: Serializer>(bytes: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => serializer.serialize_some(&ByteStr(bytes)),
        None => serializer.serialize_none(),
    }
}

/// Reads what [`opt_bytes_out`] wrote, and the JSON of older stores (a list
/// of numbers, or null).
fn opt_bytes_in<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
    Ok(Option::<ByteBuf>::deserialize(deserializer)?.map(|b| b.0))
}

/// Writes bytes as a byte string (length and bytes in the binary format).
fn bytes_out<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Reads bytes written by [`bytes_out`], and the JSON of older stores,
/// which wrote header names as strings.
fn bytes_in<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct BytesOrText;

    impl<'de> Visitor<'de> for BytesOrText {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes, a string or a list of bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            Ok(v.as_bytes().to_vec())
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Vec<u8>, E> {
            Ok(v.into_bytes())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element::<u8>()? {
                out.push(byte);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_byte_buf(BytesOrText)
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
