//! Kafka records as the broker hands them over (`wactor_kafka::event`):
//! any key, value and headers (header names need not be UTF-8), turned
//! into an event or an undecodable record, and into the stored form that
//! held events and dead letters keep.
//!
//! Property: nothing a producer can put in a record panics; the stored
//! form keeps the record losslessly and survives the value format.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wactor_kafka::event::{self, Intake, RawRecord};
use wactor_store::{value, StoredEvent};

#[derive(Debug, Arbitrary)]
struct Input {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fuzz_target!(|input: Input| {
    let record = RawRecord {
        topic: input.topic,
        partition: input.partition,
        offset: input.offset,
        timestamp_ms: input.timestamp_ms,
        key: input.key,
        payload: input.payload,
        headers: input.headers,
    };
    let stored = event::raw_to_stored(&record);
    let stored_again = match event::decode(record.clone()) {
        Intake::Event(event) => {
            assert_eq!(event.attempt, 1);
            let stored = event::to_stored(&event);
            // Back to an event and to the stored form: nothing lost.
            let back = event::from_stored(&stored, 1);
            assert_eq!(back, event);
            stored
        }
        Intake::Undecodable(bad) => {
            assert_eq!(bad.record, record);
            assert!(
                bad.reason.len() < 256,
                "a reason of {} bytes",
                bad.reason.len()
            );
            event::raw_to_stored(&bad.record)
        }
    };
    assert_eq!(stored_again, stored);
    let bytes = value::encode("event", &stored).expect("a stored event encodes");
    let back: StoredEvent = value::decode("event", &bytes).expect("and decodes");
    assert_eq!(back, stored);
});
