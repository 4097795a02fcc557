//! Changelog records (`wactor_kafka::changelog`): the key (a held event's
//! id as text) and the value (a held event, or a tombstone) of a record
//! read back from `<group>.retries` on restore; anyone who can write to
//! that topic chooses them.
//!
//! Property: decoding never panics; an id prints back to itself; a value
//! is only taken as the event its key names (`decode_held`), and such an
//! event written as a changelog record reads back the same.
//!
//! Found: a value whose own id differed from its key (one with an empty
//! topic, whose id cannot even be printed back) was taken into the restore
//! of the key's partition; `decode_held` now refuses it (unit test
//! `a_changelog_value_must_be_the_event_its_key_names`).
//!
//! Input: a flags byte (bit 0: the key is null, bit 1: the value is null),
//! the key's length (u16, big-endian), the key, then the value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wactor_kafka::changelog::{decode_held, decode_key, decode_value, Changelog};
use wactor_store::value;

struct Record<'a> {
    key: Option<&'a [u8]>,
    payload: Option<&'a [u8]>,
}

fn split(bytes: &[u8]) -> Option<Record<'_>> {
    let (&flags, rest) = bytes.split_first()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (key, payload) = rest.split_at(len);
    Some(Record {
        key: (flags & 1 == 0).then_some(key),
        payload: (flags & 2 == 0).then_some(payload),
    })
}

fuzz_target!(|bytes: &[u8]| {
    let Some(record) = split(bytes) else {
        return;
    };
    let changelog = Changelog {
        topic: "fuzz.retries".into(),
        partitions: 7,
    };
    let _ = decode_value(record.payload);
    let Some((text, id)) = decode_key(record.key) else {
        return;
    };
    let printed = id.to_string();
    let (_, back) = decode_key(Some(printed.as_bytes())).expect("a printed id parses");
    assert_eq!(back, id, "id {text:?} printed as {printed:?}");
    let partition = changelog.partition_of(&id.topic, id.partition);
    assert!((0..7).contains(&partition));
    if let Ok(Some(held)) = decode_held(&id, record.payload) {
        assert_eq!(held.id(), id, "a value is the event its key names");
        let out = changelog
            .record(&id, Some(&held))
            .expect("a held event encodes");
        let (_, back_id) = decode_key(out.key.as_deref()).expect("the record's key parses");
        assert_eq!(back_id, id);
        let back = decode_held(&id, out.payload.as_deref())
            .expect("the record's value decodes")
            .expect("not a tombstone");
        assert_eq!(
            value::encode("held event", &back).ok(),
            value::encode("held event", &held).ok()
        );
    }
});
