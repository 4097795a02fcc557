//! The actor's own key-value state, kept by the host.
//!
//! This module owns the `wactor:actor/state` import. Each actor has its own
//! namespace. Reads see the writes this call has made so far; writes are
//! applied only if the call returns [`Outcome::Done`](crate::Outcome::Done),
//! so a retried call sees the state as it was before the failed attempt.
//!
//! A write can be refused ([`Rejected`]): a key over 4096 bytes, or more
//! keys or bytes in one call than the manifest's `[limits]
//! max_state_writes` / `max_state_bytes` allow. A refused write changes
//! nothing (the call's earlier writes stay pending); `?` turns it into
//! [`Outcome::Retry`](crate::Outcome::Retry) with the host's reason, as it
//! does a refused emit.
//!
//! `?` works on every call here inside [`Actor::handle`](crate::Actor::handle):
//!
//! ```no_run
//! use wactor_sdk::{state, Actor, Event, Handled, Outcome};
//!
//! struct Tally;
//!
//! impl Actor for Tally {
//!     fn handle(event: Event) -> Handled {
//!         let seen = format!("seen:{}", event.offset);
//!         if state::get(&seen).is_some() {
//!             return Ok(Outcome::Done);
//!         }
//!         state::set(&seen, b"1")?; // Rejected => retry
//!         // StateError: a value that does not decode or a refused write => retry
//!         let mut totals: Vec<u64> = state::get_json("totals")?.unwrap_or_default();
//!         totals.push(event.payload().len() as u64);
//!         state::set_json("totals", &totals)?;
//!         state::delete("draft")?; // Rejected => retry
//!         Ok(Outcome::Done)
//!     }
//! }
//! ```

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bindings::wactor::actor::state as wit;

/// Reads the value stored under `key`.
pub fn get(key: &str) -> Option<Vec<u8>> {
    wit::get(key)
}

/// Stores `value` under `key` (applied if the call is done).
///
/// Fails, writing nothing, when the host refuses the write: a key over
/// 4096 bytes, or a per-call limit (`max_state_writes`, `max_state_bytes`).
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), Rejected> {
    wit::set(key, value.as_ref()).map_err(Rejected)
}

/// Removes `key` (applied if the call is done). Fails like [`set`].
pub fn delete(key: &str) -> Result<(), Rejected> {
    wit::delete(key).map_err(Rejected)
}

/// The host refused a state write; the text is its reason, naming the
/// limit. Converts into [`Outcome::Retry`](crate::Outcome::Retry), so
/// `state::set(key, value)?` ends the call as a refused emit does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "state write rejected: {}", self.0)
    }
}

impl std::error::Error for Rejected {}

/// Reads the value under `key` and decodes it from JSON. `Ok(None)` when
/// the key is absent.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, StateError> {
    match get(key) {
        None => Ok(None),
        Some(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StateError::Decode {
                    key: key.to_string(),
                    source,
                })
        }
    }
}

/// Encodes `value` as JSON and stores it under `key`.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), StateError> {
    let bytes = serde_json::to_vec(value).map_err(|source| StateError::Encode {
        key: key.to_string(),
        source,
    })?;
    set(key, bytes)?;
    Ok(())
}

/// A JSON state value could not be read or written.
///
/// Converts into an [`Outcome`](crate::Outcome) so that `?` works on
/// [`get_json`] and [`set_json`]: a stored value that does not decode and a
/// refused write retry (a fixed version can read the value, a new manifest
/// can raise the limit), a value that does not encode is dead (it never
/// will). Where the actor knows better, map it yourself.
#[derive(Debug)]
pub enum StateError {
    /// The stored value is not the JSON shape asked for.
    Decode {
        /// The state key that was read.
        key: String,
        /// What serde_json found.
        source: serde_json::Error,
    },
    /// The value could not be encoded as JSON.
    Encode {
        /// The state key that was to be written.
        key: String,
        /// What serde_json found.
        source: serde_json::Error,
    },
    /// The host refused the write (see [`Rejected`]); the text is its
    /// reason.
    Rejected(String),
}

impl From<Rejected> for StateError {
    fn from(Rejected(reason): Rejected) -> Self {
        StateError::Rejected(reason)
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Decode { key, source } => {
                write!(f, "state {key} does not decode: {source}")
            }
            StateError::Encode { key, source } => {
                write!(f, "state {key} does not encode: {source}")
            }
            StateError::Rejected(reason) => write!(f, "state write rejected: {reason}"),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Decode { source, .. } | StateError::Encode { source, .. } => Some(source),
            StateError::Rejected(_) => None,
        }
    }
}
