//! Event files for `wactor invoke` and `wactor dev`'s sample events
//! (`wactor_runtime::event_file::parse`): JSON written by hand.
//!
//! Property: parsing never panics, whatever the text; what parses can be
//! printed back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wactor_runtime::event_file::{bytes_for_humans, bytes_to_json, parse};

fuzz_target!(|text: &str| {
    let Ok(event) = parse(text) else {
        return;
    };
    assert!(event.attempt >= 1);
    for bytes in [event.key.as_deref(), event.payload.as_deref()]
        .into_iter()
        .flatten()
    {
        let _ = bytes_for_humans(bytes);
        let _ = bytes_to_json(bytes);
    }
});
