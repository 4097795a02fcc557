//! [`Event`]: the Kafka record an actor is called with, and helpers to read
//! its key, payload and headers.
//!
//! This module owns decoding the payload ([`Event::json`], [`PayloadError`]);
//! it does not talk to the host.

use std::fmt;
use std::str::Utf8Error;

use serde::de::DeserializeOwned;

/// One Kafka record, as delivered to an actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The topic the record was read from.
    pub topic: String,
    /// The partition within `topic`.
    pub partition: i32,
    /// The record's offset within its partition.
    pub offset: i64,
    /// The record's timestamp in milliseconds since the Unix epoch, when the
    /// broker reported one.
    pub timestamp_ms: Option<i64>,
    /// The record's key. Events with the same key are delivered in order (in
    /// the default `key` ordering mode).
    pub key: Option<Vec<u8>>,
    /// The record's value: `None` for a null value (a tombstone, which marks
    /// its key as deleted in a compacted topic), `Some` of an empty vector
    /// for an empty value. Most actors read it with [`Event::payload`],
    /// [`Event::payload_str`] or [`Event::json`] and check
    /// [`Event::is_tombstone`] first where deletes matter.
    pub payload: Option<Vec<u8>>,
    /// The record's headers (name, value), in the order the producer wrote
    /// them. Names may repeat; a `None` value is a null header value, which
    /// Kafka tells apart from an empty one.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Which delivery attempt this call is: 1 for the first, 2 for the first
    /// retry, and so on.
    pub attempt: u32,
}

impl Event {
    /// Builds an event by hand (attempt 1, partition 0, offset 0, no key, no
    /// headers), for unit tests of the pure parts of an actor.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Event {
            topic: topic.into(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: None,
            payload: Some(payload.into()),
            headers: Vec::new(),
            attempt: 1,
        }
    }

    /// Builds a tombstone (a record whose value is null) by hand, for unit
    /// tests: like [`Event::new`] without a payload.
    pub fn tombstone(topic: impl Into<String>) -> Self {
        Event {
            payload: None,
            ..Event::new(topic, Vec::new())
        }
    }

    /// Returns this event with `key` set (builder style, for tests).
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Returns this event with one more header (builder style, for tests).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), Some(value.into())));
        self
    }

    /// Returns this event with one more header whose value is null (builder
    /// style, for tests).
    pub fn with_null_header(mut self, name: impl Into<String>) -> Self {
        self.headers.push((name.into(), None));
        self
    }

    /// Whether the record's value is null: a tombstone, which deletes its
    /// key in a compacted topic. An empty value is not a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.payload.is_none()
    }

    /// The record's value as bytes; empty for a tombstone (use
    /// [`Event::is_tombstone`] to tell a tombstone from an empty value).
    pub fn payload(&self) -> &[u8] {
        self.payload.as_deref().unwrap_or_default()
    }

    /// The key as text: `None` when the event has no key or the key is not
    /// valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|key| std::str::from_utf8(key).ok())
    }

    /// The payload as text. Fails with [`PayloadError::NotUtf8`] (which `?`
    /// turns into [`Outcome::Dead`](crate::Outcome::Dead)) when it is not
    /// valid UTF-8.
    pub fn payload_str(&self) -> Result<&str, PayloadError> {
        std::str::from_utf8(self.payload()).map_err(PayloadError::NotUtf8)
    }

    /// Decodes the payload as JSON into `T`. A tombstone has no JSON to
    /// decode: it fails like an empty payload (check
    /// [`Event::is_tombstone`] first if the actor handles deletes).
    ///
    /// A payload that does not decode can never succeed, so the error
    /// converts into [`Outcome::Dead`](crate::Outcome::Dead) with `?`:
    ///
    /// ```no_run
    /// # use wactor_sdk::{Event, Handled, Outcome};
    /// #[derive(serde::Deserialize)]
    /// struct Signup { email: String }
    ///
    /// fn handle(event: Event) -> Handled {
    ///     let signup: Signup = event.json()?;
    ///     wactor_sdk::info!("welcome {}", signup.email);
    ///     Ok(Outcome::Done)
    /// }
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        serde_json::from_slice(self.payload()).map_err(PayloadError::Json)
    }

    /// The value of the first header called `name` (Kafka header names are
    /// case-sensitive): `None` when there is no such header or its value
    /// is null ([`Event::has_header`] tells the two apart).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .and_then(|(_, value)| value.as_deref())
    }

    /// Whether a header called `name` is present, whatever its value (a
    /// null one included).
    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(header, _)| header == name)
    }

    /// The value of the first header called `name`, as text: `None` when it
    /// is absent or not valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }
}

/// The payload is not what the actor expects.
///
/// Converts into [`Outcome::Dead`](crate::Outcome::Dead): the same bytes
/// will fail the same way on every attempt.
#[derive(Debug)]
pub enum PayloadError {
    /// The payload is not valid UTF-8.
    NotUtf8(Utf8Error),
    /// The payload is not valid JSON, or not the JSON shape asked for
    /// (a missing field, a wrong type).
    Json(serde_json::Error),
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::NotUtf8(err) => write!(f, "payload is not UTF-8: {err}"),
            PayloadError::Json(err) => write!(f, "malformed JSON payload: {err}"),
        }
    }
}

impl std::error::Error for PayloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PayloadError::NotUtf8(err) => Some(err),
            PayloadError::Json(err) => Some(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Seq {
        seq: u32,
    }

    #[test]
    fn json_payload_decodes() {
        let event = Event::new("t", r#"{"seq": 4}"#);
        assert!(matches!(event.json::<Seq>(), Ok(Seq { seq: 4 })));
    }

    #[test]
    fn json_error_names_the_missing_field() {
        let event = Event::new("t", r#"{"other": 4}"#);
        match event.json::<Seq>() {
            Err(err) => assert!(err.to_string().contains("missing field `seq`"), "{err}"),
            Ok(seq) => panic!("decoded {seq:?}"),
        }
    }

    #[test]
    fn key_and_headers_read_as_text() {
        let event = Event::new("t", vec![0xff])
            .with_key("user-1")
            .with_header("trace", "abc")
            .with_header("trace", "second");
        assert_eq!(event.key_str(), Some("user-1"));
        assert_eq!(event.header_str("trace"), Some("abc"));
        assert_eq!(event.header("Trace"), None);
        assert!(event.payload_str().is_err());
    }

    #[test]
    fn a_tombstone_is_told_apart_from_an_empty_payload() {
        let tombstone = Event::tombstone("t").with_key("user-1");
        assert!(tombstone.is_tombstone());
        assert_eq!(tombstone.payload(), b"");
        let empty = Event::new("t", Vec::new());
        assert!(!empty.is_tombstone());
        assert_eq!(empty.payload(), b"");
        assert_ne!(tombstone.payload, empty.payload);
    }

    #[test]
    fn a_null_header_is_present_but_has_no_value() {
        let event = Event::new("t", "x")
            .with_null_header("gone")
            .with_header("empty", "");
        assert!(event.has_header("gone"));
        assert_eq!(event.header("gone"), None);
        assert_eq!(event.header("empty"), Some(&b""[..]));
        assert!(!event.has_header("absent"));
        assert_eq!(event.headers[0], ("gone".to_string(), None));
    }
}
