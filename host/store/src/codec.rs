//! Key encodings and value (de)serialization: the one place that decides
//! how composite keys are laid out in bytes, so that sled's lexicographic
//! byte order is the order the other modules need.
//!
//! Building blocks:
//! - strings and byte strings are length-prefixed (u16 or u32, big-endian),
//!   so one key can never be a byte prefix of another's encoding ("a" vs
//!   "ab", keys containing 0 bytes);
//! - signed integers are big-endian with the sign bit flipped, so they sort
//!   numerically, negatives first;
//! - unsigned integers are big-endian.
//!
//! Registry values are JSON ([`to_json`], [`from_json`]); held events and
//! dead letters use the binary format of the `value` module. Nothing here
//! touches sled.

use serde::{de::DeserializeOwned, Serialize};

use crate::{LaneKey, Result, StoreError};

/// Lane tags: the byte that starts a lane's encoding in a held key.
const LANE_SHARED: u8 = 0;
const LANE_KEY: u8 = 1;
const LANE_OWN: u8 = 2;

/// Appends a u16-length-prefixed string (topics, actor names).
pub(crate) fn put_str16(out: &mut Vec<u8>, what: &str, s: &str) -> Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| StoreError::Invalid {
        what: format!("{what}: {} bytes is longer than {}", s.len(), u16::MAX),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Appends u32-length-prefixed bytes (record keys).
pub(crate) fn put_bytes32(out: &mut Vec<u8>, what: &str, bytes: &[u8]) -> Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| StoreError::Invalid {
        what: format!("{what}: {} bytes is longer than {}", bytes.len(), u32::MAX),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends an i32 so that byte order is numeric order.
pub(crate) fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&((v as u32) ^ 0x8000_0000).to_be_bytes());
}

/// Appends an i64 so that byte order is numeric order.
pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&order_i64(v));
}

/// The 8 bytes of an i64 whose byte order is numeric order.
pub(crate) fn order_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ 0x8000_0000_0000_0000).to_be_bytes()
}

/// Appends a big-endian u64.
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Reads a big-endian u64 stored alone as a value (counters).
pub(crate) fn u64_value(what: &str, bytes: &[u8]) -> Result<u64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        what: format!("{what}: expected 8 bytes, found {}", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

/// A big-endian u32 stored alone as a value; `None` if it is not 4 bytes.
pub(crate) fn u32_be(bytes: &[u8]) -> Option<u32> {
    bytes.try_into().ok().map(u32::from_be_bytes)
}

/// Reads a big-endian i64 stored alone as a value (log offsets).
pub(crate) fn i64_value(what: &str, bytes: &[u8]) -> Result<i64> {
    u64_value(what, bytes).map(|v| i64::from_be_bytes(v.to_be_bytes()))
}

/// Reads back what the `put_*` functions wrote, front to back.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn str16(&mut self) -> Option<&'a str> {
        let len = u16::from_be_bytes(self.array()?);
        std::str::from_utf8(self.take(usize::from(len))?).ok()
    }

    pub(crate) fn i32(&mut self) -> Option<i32> {
        Some((u32::from_be_bytes(self.array()?) ^ 0x8000_0000) as i32)
    }

    pub(crate) fn i64(&mut self) -> Option<i64> {
        Some((u64::from_be_bytes(self.array()?) ^ 0x8000_0000_0000_0000) as i64)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Position of the reader: how many bytes were consumed from `whole`.
    pub(crate) fn consumed(&self, whole: &[u8]) -> usize {
        whole.len() - self.rest.len()
    }
}

/// The smallest byte string greater than every string that starts with
/// `prefix`; `None` when there is none (the prefix is all 0xFF).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

// --- held events: (topic, partition, lane, offset) -------------------------

/// Prefix of every held key of one topic.
pub(crate) fn held_topic_prefix(topic: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(2 + topic.len());
    put_str16(&mut out, "topic", topic)?;
    Ok(out)
}

/// Prefix of every held key of one (topic, partition).
pub(crate) fn held_partition_prefix(topic: &str, partition: i32) -> Result<Vec<u8>> {
    let mut out = held_topic_prefix(topic)?;
    put_i32(&mut out, partition);
    Ok(out)
}

/// Prefix of every held key of one lane of one (topic, partition).
pub(crate) fn held_lane_prefix(topic: &str, partition: i32, lane: &LaneKey) -> Result<Vec<u8>> {
    let mut out = held_partition_prefix(topic, partition)?;
    match lane {
        LaneKey::Shared => out.push(LANE_SHARED),
        LaneKey::Key(key) => {
            out.push(LANE_KEY);
            put_bytes32(&mut out, "record key", key)?;
        }
        LaneKey::Own(offset) => {
            out.push(LANE_OWN);
            put_i64(&mut out, *offset);
        }
    }
    Ok(out)
}

/// The full key of one held event.
pub(crate) fn held_key(
    topic: &str,
    partition: i32,
    lane: &LaneKey,
    offset: i64,
) -> Result<Vec<u8>> {
    let mut out = held_lane_prefix(topic, partition, lane)?;
    put_i64(&mut out, offset);
    Ok(out)
}

// --- dead letters: (dead_at_ms, id) -----------------------------------------

/// Key of a dead letter in the time index.
pub(crate) fn dead_letter_time_key(dead_at_ms: i64, id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + id.len());
    put_i64(&mut out, dead_at_ms);
    out.extend_from_slice(id.as_bytes());
    out
}

/// Prefix of one actor's keys in the per-actor dead-letter index.
pub(crate) fn dead_letter_actor_prefix(actor: &str) -> Result<Vec<u8>> {
    actor_prefix(actor)
}

/// Key of a dead letter in the per-actor index: (actor, dead_at_ms, id).
pub(crate) fn dead_letter_actor_key(actor: &str, dead_at_ms: i64, id: &str) -> Result<Vec<u8>> {
    let mut out = actor_prefix(actor)?;
    put_i64(&mut out, dead_at_ms);
    out.extend_from_slice(id.as_bytes());
    Ok(out)
}

// --- registry: (actor, number) ----------------------------------------------

/// Prefix of every key of one actor in the versions and activations trees.
pub(crate) fn actor_prefix(actor: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(2 + actor.len() + 8);
    put_str16(&mut out, "actor name", actor)?;
    Ok(out)
}

/// Key of a numbered record of one actor (a version, an activation).
pub(crate) fn actor_numbered_key(actor: &str, number: u64) -> Result<Vec<u8>> {
    let mut out = actor_prefix(actor)?;
    put_u64(&mut out, number);
    Ok(out)
}

// --- hex and JSON -------------------------------------------------------------

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Bytes of a hex string (either case); `None` if it is not hex.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

/// Serializes a value as JSON.
pub(crate) fn to_json<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| StoreError::Codec {
        what: what.to_string(),
        reason: source.to_string(),
    })
}

/// Deserializes a stored JSON value.
pub(crate) fn from_json<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Codec {
        what: what.to_string(),
        reason: source.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signed_integers_sort_numerically_as_bytes() {
        let values = [i64::MIN, -5, -1, 0, 1, 42, i64::MAX];
        let encoded: Vec<_> = values.iter().map(|v| order_i64(*v)).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]));

        let values = [i32::MIN, -1, 0, 1, i32::MAX];
        let encoded: Vec<_> = values
            .iter()
            .map(|v| {
                let mut out = Vec::new();
                put_i32(&mut out, *v);
                out
            })
            .collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn integers_and_strings_read_back_as_written() {
        let mut out = Vec::new();
        put_str16(&mut out, "topic", "orders").unwrap();
        put_i32(&mut out, -3);
        let mut reader = Reader::new(&out);
        assert_eq!(reader.str16(), Some("orders"));
        assert_eq!(reader.i32(), Some(-3));
        assert_eq!(reader.consumed(&out), out.len());
        assert_eq!(Reader::new(&out[..3]).str16(), None);
    }

    #[test]
    fn a_lane_prefix_never_matches_a_longer_key_or_another_partition() {
        let a = held_lane_prefix("t", 0, &LaneKey::Key(b"a".to_vec())).unwrap();
        let ab = held_key("t", 0, &LaneKey::Key(b"ab".to_vec()), 1).unwrap();
        let a0 = held_key("t", 0, &LaneKey::Key(b"a\0".to_vec()), 1).unwrap();
        assert!(!ab.starts_with(&a));
        assert!(!a0.starts_with(&a));
        let p1 = held_partition_prefix("t", 1).unwrap();
        let p10 = held_key("t", 10, &LaneKey::Shared, 1).unwrap();
        assert!(!p10.starts_with(&p1));
        let topic = held_topic_prefix("t").unwrap();
        let longer_topic = held_key("tt", 0, &LaneKey::Shared, 1).unwrap();
        assert!(!longer_topic.starts_with(&topic));
    }

    #[test]
    fn offsets_within_a_lane_sort_ascending() {
        let lane = LaneKey::Key(vec![0, 0, 1]);
        let keys: Vec<_> = [0, 1, 255, 256, 1 << 40]
            .iter()
            .map(|o| held_key("t", 3, &lane, *o).unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn overlong_topics_are_refused_not_truncated() {
        let topic = "x".repeat(usize::from(u16::MAX) + 1);
        assert!(matches!(
            held_topic_prefix(&topic),
            Err(StoreError::Invalid { .. })
        ));
    }

    #[test]
    fn prefix_successor_bounds_every_extension_of_the_prefix() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        let next = prefix_successor(&[1, 0xff]).unwrap();
        assert!([1u8, 0xff, 0xff, 0xff].as_slice() < next.as_slice());
    }

    #[test]
    fn hex_round_trips_and_rejects_non_hex() {
        let bytes = vec![0, 1, 0xab, 0xff];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex("0001ABff"), Some(bytes));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(""), Some(Vec::new()));
    }
}
