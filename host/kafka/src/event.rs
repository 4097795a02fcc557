//! Kafka records as events: a borrowed librdkafka message turned into an
//! owned [`Event`] before anything awaits, and events to and from the
//! store's [`StoredEvent`].
//!
//! Null stays null: a record whose value is null (a tombstone) has `payload:
//! None`, one whose value is empty `Some(vec![])`; the same for header
//! values. The store keeps header names as raw bytes ([`StoredHeader`]),
//! the runtime's event as strings (the contract's); see [`from_stored`].

use rdkafka::message::{BorrowedMessage, Headers, Message};
use wactor_runtime::Event;
use wactor_store::{StoredEvent, StoredHeader};

/// Copies a message into an owned event (attempt 1).
pub fn from_message(message: &BorrowedMessage<'_>) -> Event {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Event {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        headers,
        attempt: 1,
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
}
