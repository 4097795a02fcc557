//! Re-drive envelopes (`RedriveEnvelope::decode`): the value of a record on
//! `<group>.redrive`, which the worker unwraps into the original event.
//!
//! Property: decoding never panics; an envelope that decodes can be
//! presented to an actor at any attempt and re-encodes stably.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wactor_kafka::redrive::RedriveEnvelope;

fuzz_target!(|bytes: &[u8]| {
    // The first byte chooses a null value (a tombstone) now and then.
    let payload = match bytes.split_first() {
        Some((0xff, _)) => None,
        _ => Some(bytes),
    };
    let Ok(envelope) = RedriveEnvelope::decode(payload) else {
        return;
    };
    let _ = envelope.earlier_attempts();
    for attempt in [1, 2, u32::MAX] {
        let event = envelope.presented(attempt);
        assert!(event.attempt >= 1);
    }
    let once = envelope.encode().expect("a decoded envelope encodes");
    let again = RedriveEnvelope::decode(Some(&once)).expect("an encoded envelope decodes");
    assert_eq!(once, again.encode().expect("encodes"), "encoding is stable");
});
