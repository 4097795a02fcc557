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

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde::Deserialize;
use wactor_runtime::Event;

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
pub fn parse(text: &str) -> Result<Event> {
    let file: EventFile =
        serde_json::from_str(text).context("the event is not valid event JSON")?;
    let key = match (file.key, file.key_base64) {
        (Some(_), Some(_)) => bail!("give either `key` or `key_base64`, not both"),
        (Some(key), None) => Some(key.into_bytes()),
        (None, Some(b64)) => Some(
            B64.decode(b64)
                .context("`key_base64` is not valid base64")?,
        ),
        (None, None) => None,
    };
    let payload = match (file.payload, file.payload_text, file.payload_base64) {
        (Some(serde_json::Value::Null), None, None) => None,
        (Some(json), None, None) => Some(serde_json::to_vec(&json)?),
        (None, Some(text), None) => Some(text.into_bytes()),
        (None, None, Some(b64)) => Some(
            B64.decode(b64)
                .context("`payload_base64` is not valid base64")?,
        ),
        (None, None, None) => Some(Vec::new()),
        _ => bail!("give only one of `payload`, `payload_text` and `payload_base64`"),
    };
    let value = |v: Option<String>| v.map(String::into_bytes);
    let headers = match file.headers {
        None => Vec::new(),
        Some(Headers::Map(map)) => map.into_iter().map(|(k, v)| (k, value(v))).collect(),
        Some(Headers::List(list)) => list.into_iter().map(|(k, v)| (k, value(v))).collect(),
    };
    if file.attempt == 0 {
        bail!("`attempt` starts at 1");
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
