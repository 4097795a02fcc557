//! Actor manifests (`ActorManifest::parse`): `actor.toml` as uploaded to
//! the admin API by anyone holding a token, then turned into runtime
//! settings and a retry policy.
//!
//! Property: parsing never panics; a manifest that parses converts to
//! settings, computes every backoff, and prints as TOML that parses back
//! to the same manifest.

#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use wactor_delivery::retry::Failure;
use wactor_manifest::ActorManifest;

/// A random source that always says 0: decisions must not depend on luck
/// to stay in bounds.
struct Zero;

impl rand::RngCore for Zero {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        dest.fill(0);
        Ok(())
    }
}

fuzz_target!(|text: &str| {
    let Ok(manifest) = ActorManifest::parse(text) else {
        return;
    };
    let settings = manifest.actor_settings(1);
    assert_eq!(settings.limits.memory_bytes, manifest.limits.memory.0);
    let _ = manifest.group();
    for topic in &manifest.topics {
        let _ = manifest.dead_letter_topic(topic);
    }
    let policy = &manifest.retry;
    let epoch = SystemTime::UNIX_EPOCH;
    for attempt in [0, 1, 2, 63, 64, 1_000, policy.max_attempts, u32::MAX] {
        assert!(policy.base_backoff(attempt) <= policy.max_backoff);
        for failure in [
            Failure::Trap,
            Failure::Retry {
                requested_delay: Some(Duration::MAX),
            },
        ] {
            let _ = policy.decide(
                attempt,
                epoch,
                epoch + Duration::from_secs(1),
                failure,
                &mut Zero,
            );
        }
    }
    let printed = manifest.to_toml();
    let back = ActorManifest::parse(&printed)
        .unwrap_or_else(|e| panic!("the printed manifest does not parse: {e}\n{printed}"));
    assert_eq!(back, manifest, "printed as\n{printed}");
});
