//! The Kafka harness, shared with the benchmarks: see `wactor_tests::kafka`.

#![allow(unused_imports)]

pub use wactor_tests::kafka::*;
