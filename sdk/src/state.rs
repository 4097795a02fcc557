//! The actor's own key-value state, kept by the host.
//!
//! This module owns the `wactor:actor/state` import. Each actor has its own
//! namespace. Reads see the writes this call has made so far; writes are
//! applied only if the call returns [`Outcome::Done`](crate::Outcome::Done),
//! so a retried call sees the state as it was before the failed attempt.
//!
//! ```no_run
//! use wactor_sdk::state;
//! # fn demo() -> Result<(), wactor_sdk::state::StateError> {
//! if state::get("seen:42").is_none() {
//!     state::set("seen:42", b"1");
//! }
//! let mut totals: Vec<u64> = state::get_json("totals")?.unwrap_or_default();
//! totals.push(3);
//! state::set_json("totals", &totals)?;
//! state::delete("seen:41");
//! # Ok(())
//! # }
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
pub fn set(key: &str, value: impl AsRef<[u8]>) {
    wit::set(key, value.as_ref());
}

/// Removes `key` (applied if the call is done).
pub fn delete(key: &str) {
    wit::delete(key);
}

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
    set(key, bytes);
    Ok(())
}

/// A JSON state value could not be read or written.
///
/// There is no blanket conversion into an [`Outcome`](crate::Outcome):
/// whether a corrupt value should retry (a fixed version may read it) or be
/// dead depends on the actor, so map it yourself.
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
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Decode { source, .. } | StateError::Encode { source, .. } => Some(source),
        }
    }
}
