//! The value format of held events, dead letters and the records the Kafka
//! layer builds from them (changelog records, re-drive envelopes): a
//! compact binary encoding, with a leading format byte so that the format
//! can change again and older values stay readable.
//!
//! ```text
//! 0x01 | postcard (serde, varint integers, byte strings as length + bytes)
//! 0x02 | postcard of a type's second shape (a held event that blocks its
//!      | lane: `held::encode_held`); only such values use it, so every
//!      | other value stays readable by versions that know only 0x01
//! '{'  | JSON: what stores and changelog topics held before (read only)
//! ```
//!
//! Why binary: JSON writes a byte string as an array of numbers, about four
//! times its size, so a 300 KB event held for a retry became a changelog
//! record larger than Kafka's default message limit. Postcard (a stable,
//! documented wire format) stores bytes as they are.
//!
//! Values written by older versions start with `{` (a JSON object) and are
//! read as JSON, so existing stores and changelog topics migrate without a
//! step: every value rewritten is written in the new format.
//!
//! The registry keeps JSON (small records, readable with any tool).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Result, StoreError};

/// The first byte of a value in format 1 (postcard).
pub const FORMAT_POSTCARD_V1: u8 = 0x01;

/// Encodes `value` in the current format: [`FORMAT_POSTCARD_V1`], then
/// postcard. `what` names the record in errors.
///
/// # Errors
/// [`StoreError::Codec`] when serde refuses the value (a type postcard
/// cannot encode; not the case for this crate's types).
pub fn encode<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Vec<u8>> {
    postcard::to_extend(value, vec![FORMAT_POSTCARD_V1]).map_err(|e| StoreError::Codec {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// The first byte of a value in format 2: postcard of a type's second
/// shape (see the module docs).
pub const FORMAT_POSTCARD_V2: u8 = 0x02;

/// Encodes `value` in format 2: [`FORMAT_POSTCARD_V2`], then postcard.
///
/// # Errors
/// As [`encode`].
pub fn encode_v2<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Vec<u8>> {
    postcard::to_extend(value, vec![FORMAT_POSTCARD_V2]).map_err(|e| StoreError::Codec {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// Decodes a value written by [`encode`], or the JSON that older versions
/// wrote (it starts with `{`).
///
/// # Errors
/// [`StoreError::Codec`] when the bytes do not decode as `T`;
/// [`StoreError::Corrupt`] when they start with neither known format.
pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    let codec = |reason: String| StoreError::Codec {
        what: what.to_string(),
        reason,
    };
    match bytes.first() {
        Some(&FORMAT_POSTCARD_V1 | &FORMAT_POSTCARD_V2) => {
            postcard::from_bytes(&bytes[1..]).map_err(|e| codec(e.to_string()))
        }
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| codec(e.to_string())),
        Some(other) => Err(StoreError::Corrupt {
            what: format!("{what}: unknown value format 0x{other:02x}"),
        }),
        None => Err(StoreError::Corrupt {
            what: format!("{what}: empty value"),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{
        AttemptOutcome, AttemptRecord, DeadLetter, HeldEvent, LaneKey, StoredEvent, StoredHeader,
    };

    fn event(payload: Option<Vec<u8>>) -> StoredEvent {
        StoredEvent {
            topic: "bookings".into(),
            partition: 2,
            offset: 77,
            timestamp_ms: Some(1_700_000_000_000),
            key: Some(b"booking-1".to_vec()),
            payload,
            headers: vec![
                StoredHeader::new("trace", Some(b"abc".to_vec())),
                StoredHeader::new("nothing", None),
                StoredHeader::new("empty", Some(Vec::new())),
                StoredHeader::new(vec![0xff, 0xfe], Some(vec![1])),
            ],
        }
    }

    fn held(payload: Option<Vec<u8>>) -> HeldEvent {
        HeldEvent {
            event: event(payload),
            lane: LaneKey::Key(b"booking-1".to_vec()),
            attempts: vec![AttemptRecord {
                attempt: 1,
                started_at_ms: 5,
                duration_ms: 1.25,
                version: 3,
                outcome: AttemptOutcome::Retry,
                error: "wallet down".into(),
            }],
            first_attempt_at_ms: Some(5),
            next_attempt_at_ms: Some(1_005),
            version_override: Some(2),
            blocked_by: None,
        }
    }

    #[test]
    fn held_events_round_trip_with_null_and_empty_values_apart() {
        for payload in [None, Some(Vec::new()), Some(b"{}".to_vec())] {
            let record = held(payload);
            let bytes = encode("held event", &record).unwrap();
            assert_eq!(bytes[0], FORMAT_POSTCARD_V1);
            let back: HeldEvent = decode("held event", &bytes).unwrap();
            assert_eq!(back, record);
        }
    }

    #[test]
    fn a_300_kb_payload_costs_its_size_not_four_times_it() {
        let payload = vec![b'x'; 300 * 1024];
        let record = held(Some(payload.clone()));
        let binary = encode("held event", &record).unwrap();
        let json = serde_json::to_vec(&record).unwrap();
        assert!(
            binary.len() < payload.len() + 1024,
            "{} bytes",
            binary.len()
        );
        assert!(
            json.len() > 3 * payload.len(),
            "JSON was {} bytes",
            json.len()
        );
    }

    #[test]
    fn json_written_by_older_versions_is_still_read() {
        // A held event as the JSON store wrote it before 0.2: header names
        // as strings, header values and payload as arrays of numbers.
        let old = br#"{"event":{"topic":"bookings","partition":2,"offset":77,
            "timestamp_ms":null,"key":[107],"payload":[123,125],
            "headers":[["trace",[97,98]]]},
            "lane":{"Key":[107]},"attempts":[{"attempt":1,"started_at_ms":5,
            "duration_ms":1.5,"version":3,"outcome":"retry","error":"down"}],
            "first_attempt_at_ms":5,"next_attempt_at_ms":9,"version_override":null}"#;
        let back: HeldEvent = decode("held event", old).unwrap();
        assert_eq!(back.event.payload, Some(b"{}".to_vec()));
        assert_eq!(back.event.key, Some(b"k".to_vec()));
        assert_eq!(
            back.event.headers,
            vec![StoredHeader::new("trace", Some(b"ab".to_vec()))]
        );
        assert_eq!(back.attempts[0].error, "down");
        assert_eq!(back.lane, LaneKey::Key(b"k".to_vec()));
    }

    #[test]
    fn dead_letters_round_trip_and_unknown_formats_are_refused() {
        let dead = DeadLetter {
            id: DeadLetter::make_id("a", "bookings", 2, 77),
            actor: "a".into(),
            version: 1,
            group: "g".into(),
            event: event(None),
            attempts: Vec::new(),
            reason: "dead".into(),
            kind: "actor_dead".into(),
            first_attempt_at_ms: 1,
            dead_at_ms: 2,
            redrives: 0,
            blocking: false,
        };
        let bytes = encode("dead letter", &dead).unwrap();
        assert_eq!(decode::<DeadLetter>("dead letter", &bytes).unwrap(), dead);
        assert!(matches!(
            decode::<DeadLetter>("dead letter", &[0x7f, 1, 2]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode::<DeadLetter>("dead letter", &[]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode::<DeadLetter>("dead letter", &[FORMAT_POSTCARD_V1, 9]),
            Err(StoreError::Codec { .. })
        ));
    }
}
