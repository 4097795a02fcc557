//! Stored held events and dead letters (`wactor_store::value`): the binary
//! format (0x01 + postcard) and the JSON written before 0.2, read back from
//! a store or a changelog that may hold anything.
//!
//! Property: decoding never panics or allocates without bound, and what
//! decodes re-encodes to bytes that decode to the same encoding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wactor_store::{value, DeadLetter, HeldEvent};

fn round_trip<T: Serialize + DeserializeOwned>(what: &str, bytes: &[u8]) {
    let Ok(decoded) = value::decode::<T>(what, bytes) else {
        return;
    };
    let once = value::encode(what, &decoded).expect("a decoded value encodes");
    let again: T = value::decode(what, &once).expect("an encoded value decodes");
    let twice = value::encode(what, &again).expect("a decoded value encodes");
    assert_eq!(once, twice, "{what}: encoding is stable");
}

fuzz_target!(|bytes: &[u8]| {
    round_trip::<HeldEvent>("held event", bytes);
    round_trip::<DeadLetter>("dead letter", bytes);
});
