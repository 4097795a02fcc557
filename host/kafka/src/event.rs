//! Kafka records as events: a borrowed librdkafka message turned into an
//! owned record before anything awaits, the checks that make it an
//! [`Event`], and events to and from the store's [`StoredEvent`].
//!
//! Nothing a producer can put in a record panics here. rdkafka's own header
//! accessor unwraps the header name as UTF-8 (a name with bytes `ff fe`
//! panics inside it), so headers are read through librdkafka's C accessor
//! and kept as bytes ([`RawRecord`]); the record becomes an [`Event`] only
//! when the contract can carry it, and otherwise it is [`Undecodable`], which
//! the partition worker dead-letters at once with the reason.
//!
//! Null stays null: a record whose value is null (a tombstone) has `payload:
//! None`, one whose value is empty `Some(vec![])`; the same for header
//! values. The store keeps header names as raw bytes ([`StoredHeader`]), so
//! a dead letter keeps exactly what the broker sent; the runtime's event
//! has them as strings (the contract's); see [`from_stored`].
//!
//! What it does not do: decide what happens to an undecodable record (the
//! worker), or know the store's encoding (wactor-store).

use std::ffi::CStr;

use rdkafka::message::{BorrowedMessage, Message};
use wactor_runtime::Event;
use wactor_store::{StoredEvent, StoredHeader};

/// A record exactly as the broker sent it, owned. Header names are bytes:
/// Kafka's protocol does not promise UTF-8, whatever clients assume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Timestamp in ms since the Unix epoch; `None` when the broker gave
    /// none (or gave -1).
    pub timestamp_ms: Option<i64>,
    /// The key; `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// The value; `None` for a null value (a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Headers in order: name bytes, value (`None` for a null value).
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// A record that the contract cannot carry, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// The record as read.
    pub record: RawRecord,
    /// Why it cannot become an event, e.g. `undecodable header: the name of
    /// header 0 is not UTF-8 (bytes ff fe)`.
    pub reason: String,
}

/// What a partition worker takes from its queue.
#[derive(Debug)]
pub enum Intake {
    /// An event to handle.
    Event(Event),
    /// A record to dead-letter at once.
    Undecodable(Box<Undecodable>),
}

impl Intake {
    /// The record's offset.
    pub fn offset(&self) -> i64 {
        match self {
            Intake::Event(event) => event.offset,
            Intake::Undecodable(bad) => bad.record.offset,
        }
    }
}

/// Copies a message into an owned record. Never panics, whatever the
/// record holds.
pub fn raw_from_message(message: &BorrowedMessage<'_>) -> RawRecord {
    RawRecord {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        headers: raw_headers(message),
    }
}

/// The headers of `message`, read with librdkafka's accessor, which hands
/// out the name as a C string and the value as a pointer and a length.
fn raw_headers(message: &BorrowedMessage<'_>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    use rdkafka::bindings as rd;

    let mut headers_ptr: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is the live message `message` borrows; the
    // headers it returns belong to it and live as long as it does.
    let err = unsafe { rd::rd_kafka_message_headers(message.ptr(), &mut headers_ptr) };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || headers_ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: `headers_ptr` is valid (checked above) for the message's life.
    let count = unsafe { rd::rd_kafka_header_cnt(headers_ptr) };
    let mut out = Vec::with_capacity(count);
    for idx in 0..count {
        let mut name: *const std::os::raw::c_char = std::ptr::null();
        let mut value: *const std::os::raw::c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: out-pointers to locals; `idx < count`.
        let err = unsafe {
            rd::rd_kafka_header_get_all(headers_ptr, idx, &mut name, &mut value, &mut size)
        };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            break;
        }
        // SAFETY: librdkafka stores header names NUL-terminated; `name` is
        // valid while the message is.
        let name = unsafe { CStr::from_ptr(name) }.to_bytes().to_vec();
        let value = (!value.is_null()).then(|| {
            // SAFETY: `value` points at `size` bytes owned by the message.
            unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }.to_vec()
        });
        out.push((name, value));
    }
    out
}

/// Turns a message into what its worker takes: an event, or an undecodable
/// record with its reason.
pub fn from_message(message: &BorrowedMessage<'_>) -> Intake {
    decode(raw_from_message(message))
}

/// Checks that the contract can carry `record`.
pub fn decode(record: RawRecord) -> Intake {
    let mut headers = Vec::with_capacity(record.headers.len());
    for (idx, (name, value)) in record.headers.iter().enumerate() {
        match std::str::from_utf8(name) {
            Ok(name) => headers.push((name.to_string(), value.clone())),
            Err(_) => {
                let reason = format!(
                    "undecodable header: the name of header {idx} is not UTF-8 (bytes {})",
                    hex_prefix(name, 32)
                );
                return Intake::Undecodable(Box::new(Undecodable { record, reason }));
            }
        }
    }
    Intake::Event(Event {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        key: record.key,
        payload: record.payload,
        headers,
        attempt: 1,
    })
}

/// The first `max` bytes of `bytes` in hex, space-separated, with `…` when
/// there are more.
fn hex_prefix(bytes: &[u8], max: usize) -> String {
    let mut out: Vec<String> = bytes.iter().take(max).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > max {
        out.push("…".into());
    }
    out.join(" ")
}

/// The stored form of a record the contract cannot carry: kept as read,
/// header names as bytes, for the dead-letter set.
pub fn raw_to_stored(record: &RawRecord) -> StoredEvent {
    StoredEvent {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        key: record.key.clone(),
        payload: record.payload.clone(),
        headers: record
            .headers
            .iter()
            .map(|(name, value)| StoredHeader::new(name.as_slice(), value.clone()))
            .collect(),
    }
}

/// The stored form of an event.
pub fn to_stored(event: &Event) -> StoredEvent {
    StoredEvent {
        topic: event.topic.clone(),
        partition: event.partition,
        offset: event.offset,
        timestamp_ms: event.timestamp_ms,
        key: event.key.clone(),
        payload: event.payload.clone(),
        headers: event
            .headers
            .iter()
            .map(|(name, value)| StoredHeader::new(name.as_bytes(), value.clone()))
            .collect(),
    }
}

/// An event from its stored form, at `attempt`. A header name that is not
/// UTF-8 (kept only by dead letters of records refused for it) is passed
/// on with its invalid bytes replaced by U+FFFD.
pub fn from_stored(stored: &StoredEvent, attempt: u32) -> Event {
    Event {
        topic: stored.topic.clone(),
        partition: stored.partition,
        offset: stored.offset,
        timestamp_ms: stored.timestamp_ms,
        key: stored.key.clone(),
        payload: stored.payload.clone(),
        headers: stored
            .headers
            .iter()
            .map(|h| {
                (
                    String::from_utf8_lossy(&h.name).into_owned(),
                    h.value.clone(),
                )
            })
            .collect(),
        attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(headers: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> RawRecord {
        RawRecord {
            topic: "orders".into(),
            partition: 0,
            offset: 7,
            timestamp_ms: None,
            key: Some(vec![0xff, 0x00]),
            payload: None,
            headers,
        }
    }

    #[test]
    fn a_header_name_that_is_not_utf8_makes_the_record_undecodable() {
        let intake = decode(record(vec![
            (b"ok".to_vec(), Some(b"v".to_vec())),
            (vec![0xff, 0xfe], Some(b"v".to_vec())),
        ]));
        let Intake::Undecodable(bad) = intake else {
            panic!("expected an undecodable record");
        };
        assert_eq!(
            bad.reason,
            "undecodable header: the name of header 1 is not UTF-8 (bytes ff fe)"
        );
        assert_eq!(bad.record.headers[1].0, vec![0xff, 0xfe]);
    }

    #[test]
    fn binary_keys_null_values_and_null_header_values_decode() {
        let intake = decode(record(vec![(b"trace".to_vec(), None)]));
        let Intake::Event(event) = intake else {
            panic!("expected an event");
        };
        assert_eq!(event.key, Some(vec![0xff, 0x00]));
        assert_eq!(event.offset, 7);
        assert_eq!(event.payload, None, "a null value stays null");
        assert_eq!(event.headers, vec![("trace".to_string(), None)]);
    }

    #[test]
    fn an_undecodable_record_is_stored_with_its_raw_header_name_and_null_value() {
        let Intake::Undecodable(bad) =
            decode(record(vec![(vec![0xff, 0xfe], Some(b"v".to_vec()))]))
        else {
            panic!("expected an undecodable record");
        };
        let stored = raw_to_stored(&bad.record);
        assert_eq!(stored.headers[0].name, vec![0xff, 0xfe]);
        assert_eq!(stored.payload, None, "the null value stays null");
    }

    #[test]
    fn null_and_empty_values_and_headers_survive_the_store_form() {
        let event = Event {
            topic: "t".into(),
            partition: 1,
            offset: 9,
            timestamp_ms: Some(3),
            key: Some(b"k".to_vec()),
            payload: None,
            headers: vec![("a".into(), None), ("b".into(), Some(Vec::new()))],
            attempt: 1,
        };
        let stored = to_stored(&event);
        assert_eq!(stored.payload, None);
        assert_eq!(stored.headers[0], StoredHeader::new("a", None));
        assert_eq!(from_stored(&stored, 1), event);
        let empty = Event {
            payload: Some(Vec::new()),
            ..event
        };
        assert_eq!(from_stored(&to_stored(&empty), 1), empty);
    }

    #[test]
    fn long_undecodable_names_are_cut_in_the_reason() {
        let intake = decode(record(vec![(vec![0xff; 100], None)]));
        let Intake::Undecodable(bad) = intake else {
            panic!("expected an undecodable record");
        };
        assert!(bad.reason.ends_with("ff …)"), "{}", bad.reason);
    }
}
