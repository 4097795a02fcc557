//! # wactor-store
//!
//! The host's embedded, durable store, on sled. Nothing else in wactor
//! opens sled.
//!
//! # Layout
//!
//! One sled database per host (`<data_dir>/store`), one tree per concern:
//!
//! - `state/<actor>`: an actor's key-value state (the state import). Each
//!   actor has its own tree, so no actor can read or clobber another's keys,
//!   and removing an actor's state is dropping one tree.
//!
//! Writes of one call are applied as one atomic batch ([`ActorState::apply`]),
//! which is how a `done` call's state changes land all together or not at
//! all. Retries, dead letters and the registry join this crate in their own
//! modules as those features arrive.

use std::path::Path;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an error (I/O, corruption).
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// The database could not be opened.
    #[error("cannot open the store at {path}: {source}")]
    Open {
        /// Directory of the database.
        path: String,
        /// Underlying error.
        source: sled::Error,
    },
    /// An actor name that cannot name a namespace.
    #[error("invalid actor name {0:?}")]
    InvalidActorName(String),
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The host's store. Cheap to clone (sled handles are reference counted).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
}

/// A change to one state key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange<'a> {
    /// Set the key to this value.
    Set(&'a [u8]),
    /// Remove the key.
    Delete,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|source| StoreError::Open {
                path: dir.display().to_string(),
                source,
            })?;
        Ok(Store { db })
    }

    /// A store that lives in a temporary directory and disappears when
    /// dropped (for `wactor invoke` without `--state-dir`, and tests).
    pub fn temporary() -> Result<Self> {
        let db = sled::Config::new().temporary(true).open()?;
        Ok(Store { db })
    }

    /// The state namespace of one actor.
    pub fn actor_state(&self, actor: &str) -> Result<ActorState> {
        if actor.is_empty() || actor.len() > 200 || actor.contains('\0') {
            return Err(StoreError::InvalidActorName(actor.to_string()));
        }
        let tree = self.db.open_tree(format!("state/{actor}"))?;
        Ok(ActorState { tree })
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

/// One actor's key-value state.
#[derive(Clone)]
pub struct ActorState {
    tree: sled::Tree,
}

impl ActorState {
    /// Reads one key.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Applies the changes of one call atomically.
    pub fn apply<'a>(&self, changes: impl IntoIterator<Item = (&'a str, StateChange<'a>)>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (key, change) in changes {
            match change {
                StateChange::Set(value) => batch.insert(key.as_bytes(), value),
                StateChange::Delete => batch.remove(key.as_bytes()),
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Every key and value, in key order (for inspection tools).
    pub fn entries(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.tree
            .iter()
            .map(|item| {
                let (k, v) = item?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True when the actor has no state.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn applied_changes_are_visible_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let state = store.actor_state("counter").unwrap();
            state
                .apply([("a", StateChange::Set(b"1")), ("b", StateChange::Set(b"2"))])
                .unwrap();
            state.apply([("b", StateChange::Delete)]).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let state = store.actor_state("counter").unwrap();
        assert_eq!(state.get("a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(state.get("b").unwrap(), None);
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn actors_do_not_see_each_others_state() {
        let store = Store::temporary().unwrap();
        let a = store.actor_state("a").unwrap();
        let b = store.actor_state("b").unwrap();
        a.apply([("k", StateChange::Set(b"from a"))]).unwrap();
        assert_eq!(b.get("k").unwrap(), None);
        assert_eq!(a.get("k").unwrap(), Some(b"from a".to_vec()));
    }

    #[test]
    fn invalid_actor_names_are_refused() {
        let store = Store::temporary().unwrap();
        assert!(matches!(
            store.actor_state(""),
            Err(StoreError::InvalidActorName(_))
        ));
    }
}
