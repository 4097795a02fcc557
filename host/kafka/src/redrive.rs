//! Re-driven dead letters on their way back to the actor.
//!
//! A re-drive is a record on the actor's re-drive topic
//! (`<group>.redrive`), keyed by the event's key, whose value is a
//! [`RedriveEnvelope`]: the dead letter (the original event and its
//! attempts) and the version to run it on. The actor's consumer reads the
//! re-drive topic like its other topics; the worker unwraps the envelope
//! so the actor sees the original event, with its attempt number counting
//! on from the dead letter's history.
//!
//! Attempt numbers continue (a dead letter that died after 5 attempts is
//! re-driven as attempt 6), and the history keeps every attempt, but the
//! retry policy gives a re-drive a fresh budget: attempts and age count
//! from the re-drive, or a re-drive after the last attempt could never be
//! retried.
//!
//! Envelopes are encoded in the store's binary value format
//! ([`wactor_store::value`]: bytes stay bytes, a null payload stays null);
//! JSON envelopes written by earlier versions are still read. An envelope
//! must fit the producer's `message.max.bytes`: a dead letter whose event
//! is too close to that limit cannot be re-driven through Kafka, and the
//! re-drive says so.

use serde::{Deserialize, Serialize};
use wactor_runtime::Event;
use wactor_store::DeadLetter;

use crate::event::from_stored;

/// The value of a re-drive record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedriveEnvelope {
    /// The dead letter being re-driven.
    pub dead_letter: DeadLetter,
    /// The version to run on; `None` for the active one.
    pub version: Option<u64>,
    /// When it was re-driven, ms since the epoch.
    pub redriven_at_ms: i64,
    /// Who re-drove it.
    pub by: String,
}

impl RedriveEnvelope {
    /// Encodes the envelope as a re-drive record's value.
    ///
    /// # Errors
    /// The encoder's message (not expected for these types).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        wactor_store::value::encode("re-drive envelope", self).map_err(|e| e.to_string())
    }

    /// Decodes a re-drive record's value (a tombstone is not one).
    ///
    /// # Errors
    /// Says why the value is not a re-drive envelope.
    pub fn decode(payload: Option<&[u8]>) -> Result<Self, String> {
        let payload = payload.ok_or("not a re-drive record: the value is null")?;
        wactor_store::value::decode("re-drive envelope", payload)
            .map_err(|e| format!("not a re-drive record: {e}"))
    }

    /// Attempts made before this re-drive.
    pub fn earlier_attempts(&self) -> u32 {
        u32::try_from(self.dead_letter.attempts.len()).unwrap_or(u32::MAX)
    }

    /// The original event as the actor sees it, at attempt `attempt` of
    /// this re-drive (1-based).
    pub fn presented(&self, attempt: u32) -> Event {
        from_stored(
            &self.dead_letter.event,
            self.earlier_attempts().saturating_add(attempt),
        )
    }
}
