//! Actor state: each actor's key-value namespace (the guest's state
//! import), scoped by the source partition of the event that reads or
//! writes it, as Kafka Streams scopes its state stores by task.
//!
//! Trees:
//! - `pstate/<actor>`: the state, keyed by (topic, partition, state key).
//!   A key of `(orders, 3)` and the same key of `(orders, 4)` are two
//!   different entries: state lives with the partition whose events wrote
//!   it, so it can move with that partition to another host. Each scope
//!   also has a *seeded* mark (an empty-key entry of its own tag), set the
//!   first time the scope is restored or seeded on this host.
//! - `state/<actor>`: the unscoped layout of wactor before per-partition
//!   state ("legacy"). Never written any more; read once per scope, to seed
//!   a scope that has no state anywhere yet ([`ActorState::seed_from_legacy`]).
//!
//! Owns reading keys, applying one call's writes atomically and replacing
//! one scope in a batch (a restore). It does not decide *when* writes are
//! applied (only after a `done` outcome, and after the state changelog
//! acknowledged them: `wactor-kafka`'s business) and knows nothing of
//! values' shapes: they are opaque bytes.

use crate::codec::{self, Reader};
use crate::{Result, StoreError};

/// Tag of a scope's seeded mark in `pstate/<actor>`.
const TAG_SEEDED: u8 = 0;
/// Tag of a state entry in `pstate/<actor>`.
const TAG_ENTRY: u8 = 1;
/// Tag of a scope's local-only mark: restored while the state changelog
/// was off, so writes since are on this host only.
const TAG_LOCAL_ONLY: u8 = 2;

/// A change to one state key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange<'a> {
    /// Set the key to this value.
    Set(&'a [u8]),
    /// Remove the key.
    Delete,
}

/// One state entry with its scope, as [`ActorState::entries`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    /// Source topic of the scope.
    pub topic: String,
    /// Source partition of the scope.
    pub partition: i32,
    /// The state key.
    pub key: String,
    /// Its value.
    pub value: Vec<u8>,
}

/// One actor's key-value state. Cheap to clone.
#[derive(Clone)]
pub struct ActorState {
    /// `pstate/<actor>`: the scoped state and the seeded marks.
    tree: sled::Tree,
    /// `state/<actor>`: the unscoped state of earlier versions.
    legacy: sled::Tree,
}

/// `topic, partition, tag`: the prefix of every key of one scope's tag.
fn scope_prefix(topic: &str, partition: i32, tag: u8) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(topic.len() + 7);
    codec::put_str16(&mut out, "state topic", topic)?;
    codec::put_i32(&mut out, partition);
    out.push(tag);
    Ok(out)
}

fn entry_key(topic: &str, partition: i32, key: &str) -> Result<Vec<u8>> {
    let mut out = scope_prefix(topic, partition, TAG_ENTRY)?;
    out.extend_from_slice(key.as_bytes());
    Ok(out)
}

impl ActorState {
    pub(crate) fn new(tree: sled::Tree, legacy: sled::Tree) -> Self {
        ActorState { tree, legacy }
    }

    /// Reads `key` in the scope of source partition `topic[partition]`.
    ///
    /// # Errors
    /// [`StoreError::Sled`] on a storage error; [`StoreError::Invalid`] for
    /// a topic name longer than 65,535 bytes.
    pub fn get(&self, topic: &str, partition: i32, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree
            .get(entry_key(topic, partition, key)?)?
            .map(|v| v.to_vec()))
    }

    /// Applies the changes of one call to the scope of `topic[partition]`,
    /// atomically (one sled batch).
    ///
    /// # Errors
    /// As [`ActorState::get`]; nothing is applied on error.
    pub fn apply<'a>(
        &self,
        topic: &str,
        partition: i32,
        changes: impl IntoIterator<Item = (&'a str, StateChange<'a>)>,
    ) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (key, change) in changes {
            let key = entry_key(topic, partition, key)?;
            match change {
                StateChange::Set(value) => batch.insert(key, value),
                StateChange::Delete => batch.remove(key),
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// The entries of one scope, in key order.
    ///
    /// # Errors
    /// As [`ActorState::get`]; [`StoreError::Corrupt`] for a stored key
    /// that is not UTF-8 after its scope.
    pub fn partition_entries(&self, topic: &str, partition: i32) -> Result<Vec<(String, Vec<u8>)>> {
        let prefix = scope_prefix(topic, partition, TAG_ENTRY)?;
        self.tree
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, v) = item?;
                let key =
                    std::str::from_utf8(&k[prefix.len()..]).map_err(|_| StoreError::Corrupt {
                        what: format!("a state key of {topic}:{partition} is not UTF-8"),
                    })?;
                Ok((key.to_string(), v.to_vec()))
            })
            .collect()
    }

    /// Replaces the whole scope of `topic[partition]` with `entries` and
    /// marks it seeded, in one batch (a restore from the changelog).
    ///
    /// # Errors
    /// As [`ActorState::get`]; nothing is changed on error.
    pub fn replace_partition(
        &self,
        topic: &str,
        partition: i32,
        entries: &[(String, Vec<u8>)],
    ) -> Result<()> {
        let prefix = scope_prefix(topic, partition, TAG_ENTRY)?;
        let mut batch = sled::Batch::default();
        for key in self.tree.scan_prefix(&prefix).keys() {
            batch.remove(key?);
        }
        for (key, value) in entries {
            batch.insert(entry_key(topic, partition, key)?, value.as_slice());
        }
        batch.insert(scope_prefix(topic, partition, TAG_SEEDED)?, &[][..]);
        batch.remove(scope_prefix(topic, partition, TAG_LOCAL_ONLY)?);
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Marks the scope of `topic[partition]` as written on this host only
    /// (restored while the state changelog was off): the next restore with
    /// a changelog takes this host's copy as the truth and writes it there
    /// ([`ActorState::replace_partition`] clears the mark).
    ///
    /// # Errors
    /// As [`ActorState::get`].
    pub fn set_local_only(&self, topic: &str, partition: i32) -> Result<()> {
        self.tree
            .insert(scope_prefix(topic, partition, TAG_LOCAL_ONLY)?, &[][..])?;
        Ok(())
    }

    /// Whether [`ActorState::set_local_only`] marked the scope.
    ///
    /// # Errors
    /// As [`ActorState::get`].
    pub fn is_local_only(&self, topic: &str, partition: i32) -> Result<bool> {
        Ok(self
            .tree
            .contains_key(scope_prefix(topic, partition, TAG_LOCAL_ONLY)?)?)
    }

    /// Whether the scope of `topic[partition]` was restored or seeded on
    /// this host before.
    ///
    /// # Errors
    /// As [`ActorState::get`].
    pub fn is_seeded(&self, topic: &str, partition: i32) -> Result<bool> {
        Ok(self
            .tree
            .contains_key(scope_prefix(topic, partition, TAG_SEEDED)?)?)
    }

    /// Seeds the scope of `topic[partition]` when it was never seeded on
    /// this host: an empty scope gets a copy of the unscoped state of
    /// earlier versions (every key: which partition wrote a key is not
    /// known, and a key read from the wrong partition is only an extra
    /// entry), and the scope is marked seeded, in one batch. Returns the
    /// scope's entries afterwards; `seeded_from_legacy` tells whether the
    /// copy happened.
    ///
    /// # Errors
    /// As [`ActorState::partition_entries`].
    pub fn seed_from_legacy(&self, topic: &str, partition: i32) -> Result<Seeded> {
        let current = self.partition_entries(topic, partition)?;
        if self.is_seeded(topic, partition)? || !current.is_empty() {
            if !self.is_seeded(topic, partition)? {
                self.tree
                    .insert(scope_prefix(topic, partition, TAG_SEEDED)?, &[][..])?;
            }
            return Ok(Seeded {
                entries: current,
                from_legacy: false,
            });
        }
        let legacy = self.legacy_entries()?;
        self.replace_partition(topic, partition, &legacy)?;
        Ok(Seeded {
            from_legacy: !legacy.is_empty(),
            entries: legacy,
        })
    }

    /// The unscoped state of earlier versions, in key order.
    ///
    /// # Errors
    /// [`StoreError::Sled`] on a storage error.
    pub fn legacy_entries(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.legacy
            .iter()
            .map(|item| {
                let (k, v) = item?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    /// Every scoped entry, in (topic, partition, key) order (for
    /// inspection tools).
    ///
    /// # Errors
    /// [`StoreError::Sled`] on a storage error; [`StoreError::Corrupt`] for
    /// a key this version does not write.
    pub fn entries(&self) -> Result<Vec<StateEntry>> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            let mut reader = Reader::new(&k);
            let parsed = (|| {
                let topic = reader.str16()?.to_string();
                let partition = reader.i32()?;
                let rest = reader.rest();
                let (&tag, key) = rest.split_first()?;
                Some((topic, partition, tag, key))
            })();
            let Some((topic, partition, tag, key)) = parsed else {
                return Err(StoreError::Corrupt {
                    what: "a scoped state key".into(),
                });
            };
            if tag != TAG_ENTRY {
                continue;
            }
            out.push(StateEntry {
                topic,
                partition,
                key: String::from_utf8_lossy(key).into_owned(),
                value: v.to_vec(),
            });
        }
        Ok(out)
    }

    /// Number of scoped entries (seeded marks not counted).
    pub fn len(&self) -> usize {
        self.tree
            .iter()
            .keys()
            .filter(|k| {
                k.as_ref().is_ok_and(|k| {
                    let mut reader = Reader::new(k);
                    reader.str16().is_some()
                        && reader.i32().is_some()
                        && reader.rest().first() == Some(&TAG_ENTRY)
                })
            })
            .count()
    }

    /// True when the actor has no scoped state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`ActorState::seed_from_legacy`] left in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    /// The scope's entries, in key order.
    pub entries: Vec<(String, Vec<u8>)>,
    /// Whether they were copied from the unscoped state just now.
    pub from_legacy: bool,
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
                .apply(
                    "t",
                    0,
                    [("a", StateChange::Set(b"1")), ("b", StateChange::Set(b"2"))],
                )
                .unwrap();
            state.apply("t", 0, [("b", StateChange::Delete)]).unwrap();
            store.flush().unwrap();
        }
        let store = crate::reopen(dir.path());
        let state = store.actor_state("counter").unwrap();
        assert_eq!(state.get("t", 0, "a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(state.get("t", 0, "b").unwrap(), None);
        assert_eq!(state.len(), 1);
        assert_eq!(
            state.entries().unwrap(),
            vec![StateEntry {
                topic: "t".into(),
                partition: 0,
                key: "a".into(),
                value: b"1".to_vec()
            }]
        );
    }

    #[test]
    fn a_key_of_one_partition_is_not_the_same_key_of_another() {
        let store = Store::temporary().unwrap();
        let state = store.actor_state("a").unwrap();
        state
            .apply("t", 1, [("k", StateChange::Set(b"p1"))])
            .unwrap();
        assert_eq!(state.get("t", 2, "k").unwrap(), None);
        assert_eq!(state.get("u", 1, "k").unwrap(), None);
        // A topic that is a prefix of another, and keys that look like
        // another scope's encoding, stay apart.
        state
            .apply("tt", 1, [("k", StateChange::Set(b"tt"))])
            .unwrap();
        assert_eq!(state.get("t", 1, "k").unwrap(), Some(b"p1".to_vec()));
        assert_eq!(state.partition_entries("t", 1).unwrap().len(), 1);
    }

    #[test]
    fn actors_do_not_see_each_others_state() {
        let store = Store::temporary().unwrap();
        let a = store.actor_state("a").unwrap();
        let b = store.actor_state("b").unwrap();
        a.apply("t", 0, [("k", StateChange::Set(b"from a"))])
            .unwrap();
        assert_eq!(b.get("t", 0, "k").unwrap(), None);
        assert!(b.is_empty());
        assert_eq!(a.get("t", 0, "k").unwrap(), Some(b"from a".to_vec()));
    }

    #[test]
    fn a_restore_replaces_one_scope_and_marks_it_seeded() {
        let store = Store::temporary().unwrap();
        let state = store.actor_state("a").unwrap();
        state
            .apply(
                "t",
                0,
                [
                    ("old", StateChange::Set(b"x")),
                    ("k", StateChange::Set(b"1")),
                ],
            )
            .unwrap();
        state
            .apply("t", 1, [("other", StateChange::Set(b"y"))])
            .unwrap();
        assert!(!state.is_seeded("t", 0).unwrap());
        state
            .replace_partition("t", 0, &[("k".into(), b"2".to_vec())])
            .unwrap();
        assert!(state.is_seeded("t", 0).unwrap());
        assert_eq!(
            state.partition_entries("t", 0).unwrap(),
            vec![("k".to_string(), b"2".to_vec())]
        );
        assert_eq!(state.get("t", 1, "other").unwrap(), Some(b"y".to_vec()));
        assert_eq!(state.len(), 2, "the seeded mark is not an entry");
    }

    #[test]
    fn unscoped_state_seeds_each_empty_scope_once() {
        let store = Store::temporary().unwrap();
        // The layout of earlier versions: tree `state/<actor>`, raw keys.
        store
            .legacy_state_tree("pay")
            .unwrap()
            .insert("reversed:b1", b"m".as_slice())
            .unwrap();
        let state = store.actor_state("pay").unwrap();
        let seeded = state.seed_from_legacy("t", 0).unwrap();
        assert!(seeded.from_legacy);
        assert_eq!(
            state.get("t", 0, "reversed:b1").unwrap(),
            Some(b"m".to_vec())
        );
        // Once seeded, a scope emptied by the actor stays empty.
        state
            .apply("t", 0, [("reversed:b1", StateChange::Delete)])
            .unwrap();
        let again = state.seed_from_legacy("t", 0).unwrap();
        assert!(!again.from_legacy);
        assert!(again.entries.is_empty());
        // A scope that has state of its own is not overwritten.
        state
            .apply("t", 1, [("own", StateChange::Set(b"1"))])
            .unwrap();
        let own = state.seed_from_legacy("t", 1).unwrap();
        assert!(!own.from_legacy);
        assert_eq!(own.entries, vec![("own".to_string(), b"1".to_vec())]);
        assert!(state.is_seeded("t", 1).unwrap());
    }

    #[test]
    fn a_local_only_mark_lasts_until_the_next_replace() {
        let store = Store::temporary().unwrap();
        let state = store.actor_state("a").unwrap();
        assert!(!state.is_local_only("t", 0).unwrap());
        state.set_local_only("t", 0).unwrap();
        assert!(state.is_local_only("t", 0).unwrap());
        assert!(!state.is_local_only("t", 1).unwrap());
        assert_eq!(state.len(), 0, "marks are not entries");
        state.replace_partition("t", 0, &[]).unwrap();
        assert!(!state.is_local_only("t", 0).unwrap());
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
