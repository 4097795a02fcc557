//! Glue between the runtime and the store: the store's actor state seen
//! through the runtime's [`StateReader`], and a `done` call's state writes
//! applied to it as one batch.

use wactor_runtime::{Effects, StateReader, StateWrite};
use wactor_store::{ActorState, StateChange};

/// An actor's committed state, readable by the runtime.
pub struct StoreStateReader(pub ActorState);

impl StateReader for StoreStateReader {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key).map_err(|e| e.to_string())
    }
}

/// Applies a call's state writes atomically.
pub fn apply_state_writes(state: &ActorState, effects: &Effects) -> wactor_store::Result<()> {
    if effects.state_writes.is_empty() {
        return Ok(());
    }
    state.apply(effects.state_writes.iter().map(|(key, write)| {
        let change = match write {
            StateWrite::Set(value) => StateChange::Set(value),
            StateWrite::Delete => StateChange::Delete,
        };
        (key.as_str(), change)
    }))
}
