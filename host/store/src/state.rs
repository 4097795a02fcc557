//! Actor state: each actor's key-value namespace (the guest's state
//! import), one sled tree `state/<actor>` per actor.
//!
//! Owns reading keys and applying one call's writes atomically. It does not
//! decide *when* writes are applied (only after a `done` outcome: that is
//! the runtime's and delivery's business) and knows nothing of values'
//! shapes: they are opaque bytes.

use crate::Result;

/// A change to one state key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange<'a> {
    /// Set the key to this value.
    Set(&'a [u8]),
    /// Remove the key.
    Delete,
}

/// One actor's key-value state. Cheap to clone.
#[derive(Clone)]
pub struct ActorState {
    /// The actor's own tree, `state/<actor>`.
    tree: sled::Tree,
}

impl ActorState {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        ActorState { tree }
    }

    /// Reads one key.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Applies the changes of one call atomically.
    pub fn apply<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a str, StateChange<'a>)>,
    ) -> Result<()> {
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
    use crate::{Store, StoreError};

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
        assert_eq!(
            state.entries().unwrap(),
            vec![("a".to_string(), b"1".to_vec())]
        );
    }

    #[test]
    fn actors_do_not_see_each_others_state() {
        let store = Store::temporary().unwrap();
        let a = store.actor_state("a").unwrap();
        let b = store.actor_state("b").unwrap();
        a.apply([("k", StateChange::Set(b"from a"))]).unwrap();
        assert_eq!(b.get("k").unwrap(), None);
        assert!(b.is_empty());
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
