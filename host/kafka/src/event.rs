//! Kafka records as events: a borrowed librdkafka message turned into an
//! owned [`Event`] before anything awaits, and events to and from the
//! store's [`StoredEvent`].

use rdkafka::message::{BorrowedMessage, Headers, Message};
use wactor_runtime::Event;
use wactor_store::StoredEvent;

/// Copies a message into an owned event (attempt 1).
pub fn from_message(message: &BorrowedMessage<'_>) -> Event {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Event {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
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
        headers: event.headers.clone(),
    }
}

/// An event from its stored form, at `attempt`.
pub fn from_stored(stored: &StoredEvent, attempt: u32) -> Event {
    Event {
        topic: stored.topic.clone(),
        partition: stored.partition,
        offset: stored.offset,
        timestamp_ms: stored.timestamp_ms,
        key: stored.key.clone(),
        payload: stored.payload.clone(),
        headers: stored.headers.clone(),
        attempt,
    }
}
