//! The JSON form of one event, as written by hand in an `event.json` for
//! `wactor invoke` (and printed back in its `--json` output).
//!
//! ```json
//! {
//!   "topic": "bookings",
//!   "partition": 0,
//!   "offset": 42,
//!   "key": "B-1001",
//!   "headers": { "trace-id": "abc" },
//!   "payload": { "type": "booking.cancelled", "booking_id": "B-1001" }
//! }
//! ```
//!
//! Every field is optional. The payload is given one of three ways:
//! `payload` (any JSON value but `null`, sent as its compact JSON text),
//! `payload_text` (a string sent as-is) or `payload_base64` (raw bytes).
//! `"payload": null` makes a tombstone (a null value); no payload at all
//! is an empty value. The key likewise: `key` (text) or `key_base64`.
//! Headers are an object or a list of `[name, value]` pairs; a `null`
//! value is a null header value (`""` is an empty one).
//!
//! It lives here, beside [`Event`], rather than in the CLI so that it can
//! be tested and fuzzed as a library (`host/fuzz`, target `event_file`):
//! the text is whatever a developer or a sample file holds, so no input
//! may make it panic. Printing events back (`invoke`'s output) is the
//! CLI's; [`bytes_for_humans`] and [`bytes_to_json`] are here so that both
//! directions of the format stay in one place.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::Event;

/// Why an event file was refused.
#[derive(Debug, thiserror::Error)]
pub enum EventFileError {
    /// Not JSON, or JSON of the wrong shape (an unknown field, a wrong type).
    #[error("the event is not valid event JSON")]
    Json(#[source] serde_json::Error),
    /// Two ways of giving the same thing (`key` and `key_base64`; more than
    /// one of the payload fields).
    #[error("{0}")]
    Ambiguous(&'static str),
    /// A `*_base64` field that is not base64.
    #[error("`{field}` is not valid base64")]
    Base64 {
        /// The field.
        field: &'static str,
        /// What the decoder said.
        #[source]
        source: base64::DecodeError,
    },
    /// `attempt` is 0.
    #[error("`attempt` starts at 1")]
    ZeroAttempt,
}

/// The result of parsing an event file.
pub type Result<T> = std::result::Result<T, EventFileError>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFile {
    #[serde(default = "default_topic")]
    topic: String,
    #[serde(default)]
    partition: i32,
    #[serde(default)]
    offset: i64,
    #[serde(default)]
    timestamp_ms: Option<i64>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    key_base64: Option<String>,
    /// `None` when absent; `Some(Value::Null)` for `"payload": null`.
    #[serde(default, deserialize_with = "present")]
    payload: Option<serde_json::Value>,
    #[serde(default)]
    payload_text: Option<String>,
    #[serde(default)]
    payload_base64: Option<String>,
    #[serde(default)]
    headers: Option<Headers>,
    #[serde(default = "default_attempt")]
    attempt: u32,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Headers {
    Map(BTreeMap<String, Option<String>>),
    List(Vec<(String, Option<String>)>),
}

/// A field that is present, `null` included (serde's `Option` would read
/// `null` as absent).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

fn default_topic() -> String {
    "dev".to_string()
}

fn default_attempt() -> u32 {
    1
}

/// Parses an event file's text into an [`Event`].
///
/// # Errors
/// [`EventFileError`] says what is wrong with the text.
pub fn parse(text: &str) -> Result<Event> {
    let file: EventFile = serde_json::from_str(text).map_err(EventFileError::Json)?;
    let base64 = |field: &'static str, text: String| {
        B64.decode(text)
            .map_err(|source| EventFileError::Base64 { field, source })
    };
    let key = match (file.key, file.key_base64) {
        (Some(_), Some(_)) => {
            return Err(EventFileError::Ambiguous(
                "give either `key` or `key_base64`, not both",
            ))
        }
        (Some(key), None) => Some(key.into_bytes()),
        (None, Some(b64)) => Some(base64("key_base64", b64)?),
        (None, None) => None,
    };
    let payload = match (file.payload, file.payload_text, file.payload_base64) {
        (Some(serde_json::Value::Null), None, None) => None,
        (Some(json), None, None) => Some(serde_json::to_vec(&json).map_err(EventFileError::Json)?),
        (None, Some(text), None) => Some(text.into_bytes()),
        (None, None, Some(b64)) => Some(base64("payload_base64", b64)?),
        (None, None, None) => Some(Vec::new()),
        _ => {
            return Err(EventFileError::Ambiguous(
                "give only one of `payload`, `payload_text` and `payload_base64`",
            ))
        }
    };
    let value = |v: Option<String>| v.map(String::into_bytes);
    let headers = match file.headers {
        None => Vec::new(),
        Some(Headers::Map(map)) => map.into_iter().map(|(k, v)| (k, value(v))).collect(),
        Some(Headers::List(list)) => list.into_iter().map(|(k, v)| (k, value(v))).collect(),
    };
    if file.attempt == 0 {
        return Err(EventFileError::ZeroAttempt);
    }
    Ok(Event {
        topic: file.topic,
        partition: file.partition,
        offset: file.offset,
        timestamp_ms: file.timestamp_ms,
        key,
        payload,
        headers,
        attempt: file.attempt,
    })
}

/// Bytes shown to a person: text when they are UTF-8, base64 otherwise.
pub fn bytes_for_humans(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => format!("base64:{}", B64.encode(bytes)),
    }
}

/// Bytes in JSON output: `{"text": ...}` or `{"base64": ...}`.
pub fn bytes_to_json(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::json!({ "text": text }),
        Err(_) => serde_json::json!({ "base64": B64.encode(bytes) }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_payload_is_sent_as_compact_json() {
        let event = parse(r#"{"topic":"t","key":"k","payload":{"a": 1}}"#).unwrap();
        assert_eq!(event.payload.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(event.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(event.attempt, 1);
    }

    #[test]
    fn base64_payload_and_header_list_are_decoded() {
        let event =
            parse(r#"{"payload_base64":"AAEC","headers":[["h","v"]],"attempt":3}"#).unwrap();
        assert_eq!(event.payload, Some(vec![0, 1, 2]));
        assert_eq!(event.headers, vec![("h".to_string(), Some(b"v".to_vec()))]);
        assert_eq!(event.attempt, 3);
    }

    #[test]
    fn a_null_payload_is_a_tombstone_and_no_payload_is_an_empty_value() {
        let tombstone = parse(r#"{"key":"k","payload":null}"#).unwrap();
        assert_eq!(tombstone.payload, None);
        let empty = parse(r#"{"key":"k"}"#).unwrap();
        assert_eq!(empty.payload, Some(Vec::new()));
        let text = parse(r#"{"payload_text":""}"#).unwrap();
        assert_eq!(text.payload, Some(Vec::new()));
    }

    #[test]
    fn null_header_values_differ_from_empty_ones() {
        let event = parse(r#"{"headers":{"gone":null,"empty":""}}"#).unwrap();
        assert_eq!(
            event.headers,
            vec![
                ("empty".to_string(), Some(Vec::new())),
                ("gone".to_string(), None)
            ]
        );
        let listed = parse(r#"{"headers":[["gone",null]]}"#).unwrap();
        assert_eq!(listed.headers, vec![("gone".to_string(), None)]);
    }

    #[test]
    fn ambiguous_or_unknown_fields_are_refused() {
        assert!(parse(r#"{"payload":1,"payload_text":"x"}"#).is_err());
        assert!(parse(r#"{"paylod":1}"#).is_err());
        assert!(parse(r#"{"attempt":0}"#).is_err());
        assert!(parse("not json").is_err());
    }
}
