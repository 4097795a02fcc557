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
    /// Decodes a re-drive record's value.
    pub fn decode(payload: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(payload).map_err(|e| format!("not a re-drive record: {e}"))
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
