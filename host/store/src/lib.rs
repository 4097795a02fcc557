//! # wactor-store
//!
//! The host's embedded, durable store, on sled. Nothing else in wactor
//! opens sled, and no sled type appears in this crate's API except inside
//! [`StoreError::Sled`].
//!
//! # Layout
//!
//! One sled database per host (`<data_dir>/store`), one tree per concern:
//!
//! | tree | key | value | module |
//! |------|-----|-------|--------|
//! | `pstate/<actor>` | (topic, partition, tag, state key), see [`state`] | raw bytes | [`state`] |
//! | `state/<actor>` | state key (UTF-8): the unscoped layout of earlier versions, read only to seed | raw bytes | [`state`] |
//! | `held/<actor>` | (topic, partition, lane, offset), see [`held`] | [`HeldEvent`] | [`held`] |
//! | `dead_letters` | dead-letter id | [`DeadLetter`] | [`dead_letters`] |
//! | `dead_letters_by_time` | (dead_at_ms, id) | empty | [`dead_letters`] |
//! | `dead_letters_by_actor` | (actor, dead_at_ms, id) | empty | [`dead_letters`] |
//! | `dead_letters_evicted` | (actor, reason) | u64 BE | [`dead_letters`] |
//! | `registry/actors` | actor name | [`ActorRecord`] | [`registry`] |
//! | `registry/versions` | (actor, version) | [`VersionRecord`] | [`registry`] |
//! | `registry/components` | sha256 (lowercase hex) | component bytes | [`registry`] |
//! | `registry/activations` | (actor, seq) | [`ActivationRecord`] | [`registry`] |
//! | `changelog_layouts` | changelog topic name | partition count (i32 BE) | this file |
//!
//! Per-actor trees (`pstate/`, `held/`) keep actors apart: no actor can
//! read or clobber another's records, and forgetting an actor is dropping
//! its trees (`state/<actor>` too, where an earlier version left one). The dead-letter set and the registry are cluster-wide (in a
//! multi-host deployment, other crates materialize them from compacted
//! Kafka topics into these trees); held events belong to a source
//! partition and can be restored from a changelog with
//! [`HeldEvents::replace_partition`], and so does actor state
//! ([`ActorState::replace_partition`]).
//!
//! Composite keys are built in the `codec` module so that sled's byte order is the
//! order callers need (a lane's lowest offset first, newest dead letter
//! last). Held events and dead letters are stored in the compact binary
//! format of [`value`] (a format byte, then postcard), which still reads
//! the JSON that earlier versions wrote; registry records are JSON.
//!
//! # Atomicity
//!
//! Every operation that touches more than one key is one sled batch or
//! transaction: a call's state changes ([`ActorState::apply`]), a
//! partition restore ([`HeldEvents::replace_partition`]), moving a held
//! event to the dead letters ([`HeldEvents::move_to_dead_letters`]), a dead
//! letter and its time index, a new version with its component bytes, an
//! activation with its history entry. Durability is the caller's choice:
//! [`Store::flush`] / [`Store::flush_async`] wait until everything written
//! so far is on disk (the delivery path flushes before a Kafka offset moves
//! past an event the store has taken over).
//!
//! # Time
//!
//! The store never reads the clock: every time is passed in by the caller
//! as `i64` milliseconds since the Unix epoch, so behaviour is
//! deterministic under test.
//!
//! # Not here
//!
//! Retry policy, ordering decisions, Kafka changelogs and the admin API's
//! shapes live in their own crates; this crate only stores and indexes.

mod codec;
pub mod dead_letters;
mod event;
mod flusher;
pub mod held;
pub mod registry;
pub mod state;
pub mod value;

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};

pub use dead_letters::{
    DeadLetter, DeadLetterFilter, DeadLetterPage, DeadLetters, Evicted, Retention,
};
pub use event::{AttemptOutcome, AttemptRecord, LaneKey, StoredEvent, StoredHeader};
pub use held::{BlockedBy, HeldEvent, HeldEvents, HeldFilter, HeldId};
pub use registry::{ActivationRecord, ActorRecord, NewVersion, Registry, VersionRecord};
pub use state::{ActorState, Seeded, StateChange, StateEntry};

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
    /// A record the operation needs does not exist (an unknown actor,
    /// version or held event). `what` names it, e.g. `actor "billing"`.
    #[error("{what} not found")]
    NotFound {
        /// The missing record, readable by a person.
        what: String,
    },
    /// The operation contradicts what is stored (e.g. a sha256 that already
    /// names different component bytes), or kept losing races with
    /// concurrent writers. Nothing was changed.
    #[error("conflict: {what}")]
    Conflict {
        /// What clashed.
        what: String,
    },
    /// Input the store refuses (a malformed held-event id, cursor or
    /// sha256, a key too long to encode). Nothing was changed.
    #[error("invalid {what}")]
    Invalid {
        /// What was wrong, readable by a person.
        what: String,
    },
    /// A value could not be serialized, or a stored value could not be
    /// deserialized (binary or JSON, see [`value`]).
    #[error("cannot encode or decode {what}: {reason}")]
    Codec {
        /// The record involved.
        what: String,
        /// The encoder's or decoder's message.
        reason: String,
    },
    /// A stored key or value does not have the shape this version of the
    /// store writes.
    #[error("corrupt {what}")]
    Corrupt {
        /// The record involved.
        what: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The host's store. Cheap to clone (sled handles are reference counted).
#[derive(Clone)]
pub struct Store {
    /// The database; per-actor trees are opened from it on demand.
    db: sled::Db,
    /// The cluster-wide dead-letter set (its trees are opened once).
    dead_letters: DeadLetters,
    /// The cluster-wide registry (its trees are opened once).
    registry: Registry,
    /// This open store's number in the process (see [`Store::id`]).
    id: u64,
    /// The thread that runs [`Store::flush_async`]'s flushes.
    flusher: std::sync::Arc<flusher::Flusher>,
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
        Self::from_db(db)
    }

    /// A store that lives in a temporary directory and disappears when
    /// dropped (for `wactor invoke` without `--state-dir`, and tests).
    pub fn temporary() -> Result<Self> {
        let db = sled::Config::new().temporary(true).open()?;
        Self::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Self> {
        let dead_letters = DeadLetters::open(&db)?;
        let registry = Registry::open(&db)?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let flusher = flusher::Flusher::start(db.clone()).map_err(|err| {
            StoreError::Sled(sled::Error::Io(std::io::Error::new(
                err.kind(),
                format!("cannot start the store's flush thread: {err}"),
            )))
        })?;
        Ok(Store {
            flusher: std::sync::Arc::new(flusher),
            db,
            dead_letters,
            registry,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// A number that tells this open store (and its clones) from every
    /// other store opened in this process: for process-wide state that
    /// belongs to one host's store (`wactor-kafka`'s partition fences).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The state namespace of one actor (tree `pstate/<actor>`, scoped by
    /// source partition; the unscoped tree `state/<actor>` of earlier
    /// versions is only read, to seed).
    pub fn actor_state(&self, actor: &str) -> Result<ActorState> {
        validate_actor_name(actor)?;
        let tree = self.db.open_tree(format!("pstate/{actor}"))?;
        let legacy = self.legacy_state_tree(actor)?;
        Ok(ActorState::new(tree, legacy))
    }

    /// The unscoped state tree of earlier versions, `state/<actor>`.
    pub(crate) fn legacy_state_tree(&self, actor: &str) -> Result<sled::Tree> {
        validate_actor_name(actor)?;
        Ok(self.db.open_tree(format!("state/{actor}"))?)
    }

    /// The held events of one actor (tree `held/<actor>`).
    pub fn held(&self, actor: &str) -> Result<HeldEvents> {
        validate_actor_name(actor)?;
        let tree = self.db.open_tree(format!("{HELD_TREE_PREFIX}{actor}"))?;
        Ok(HeldEvents::new(tree))
    }

    /// Names of the actors that have (or had) a held-events tree, sorted:
    /// for restoring and reporting across actors.
    pub fn held_actors(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .db
            .tree_names()
            .iter()
            .filter_map(|name| name.strip_prefix(HELD_TREE_PREFIX.as_bytes()))
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        names.sort();
        names
    }

    /// The cluster-wide dead-letter set.
    pub fn dead_letters(&self) -> DeadLetters {
        self.dead_letters.clone()
    }

    /// The cluster-wide registry of actors, versions and components.
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// The partition count this host last saw its changelog `topic` with
    /// (tree `changelog_layouts`), or `None` if it never opened it. A held
    /// event's changelog partition is `hash(source) mod count`, so records
    /// written under one count are not found under another.
    ///
    /// # Errors
    /// [`StoreError::Sled`] on a storage error; [`StoreError::Corrupt`] when
    /// the stored value is not 4 bytes.
    pub fn changelog_layout(&self, topic: &str) -> Result<Option<i32>> {
        let tree = self.db.open_tree(CHANGELOG_LAYOUTS)?;
        match tree.get(topic.as_bytes())? {
            None => Ok(None),
            Some(bytes) => {
                let bytes: [u8; 4] =
                    bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                        what: format!("changelog layout of {topic}"),
                    })?;
                Ok(Some(i32::from_be_bytes(bytes)))
            }
        }
    }

    /// Remembers the partition count of changelog `topic` (see
    /// [`changelog_layout`](Self::changelog_layout)); durable at the next
    /// flush.
    ///
    /// # Errors
    /// [`StoreError::Sled`] on a storage error.
    pub fn set_changelog_layout(&self, topic: &str, partitions: i32) -> Result<()> {
        let tree = self.db.open_tree(CHANGELOG_LAYOUTS)?;
        tree.insert(topic.as_bytes(), &partitions.to_be_bytes())?;
        Ok(())
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Waits, without blocking the calling thread, until everything written
    /// so far is on disk. The fsync runs on the store's flush thread, one
    /// for every call made while the previous one ran (see the `flusher` module for
    /// why not sled's own `flush_async`, which hangs at eight concurrent
    /// calls).
    ///
    /// # Errors
    /// [`StoreError::Sled`] when sled cannot flush (I/O).
    pub async fn flush_async(&self) -> Result<()> {
        self.flusher.flush().await?;
        Ok(())
    }
}

/// The tree of changelog partition counts.
const CHANGELOG_LAYOUTS: &str = "changelog_layouts";

/// Prefix of the per-actor held-events trees.
const HELD_TREE_PREFIX: &str = "held/";

/// Refuses names that cannot name a per-actor tree or key.
pub(crate) fn validate_actor_name(actor: &str) -> Result<()> {
    if actor.is_empty() || actor.len() > 200 || actor.contains('\0') {
        return Err(StoreError::InvalidActorName(actor.to_string()));
    }
    Ok(())
}

/// Turns a sled transaction's error into ours: an abort carries our error,
/// anything else is sled's.
pub(crate) fn from_tx(error: TransactionError<StoreError>) -> StoreError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => StoreError::Sled(error),
    }
}

/// Aborts a transaction with our error.
pub(crate) fn abort(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
}

/// Opening a store again in the process that just dropped it: sled
/// releases its file lock from a background thread, a moment after the
/// drop, so an open right after can find the lock still held. Retried for
/// up to 10 s (tests only: a restarted process does not meet this).
#[cfg(test)]
pub(crate) fn reopen(dir: &Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(dir) {
            Ok(store) => return store,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(err) => panic!("cannot open the store again: {err}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Polls a future to completion on this thread (no runtime needed:
    /// sled's flush future is woken by sled's own thread pool).
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        use std::sync::Arc;
        use std::task::{Context, Poll, Wake};

        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Arc::new(Unpark(std::thread::current())).into();
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn flush_async_persists_writes_and_its_future_is_send() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let state = store.actor_state("counter").unwrap();
            state
                .apply("t", 0, [("a", StateChange::Set(b"1"))])
                .unwrap();
            let flush = store.flush_async();
            assert_send(&flush);
            block_on(flush).unwrap();
        }
        let store = crate::reopen(dir.path());
        let state = store.actor_state("counter").unwrap();
        assert_eq!(state.get("t", 0, "a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn held_actors_lists_actors_with_held_trees() {
        let store = Store::temporary().unwrap();
        store.held("b").unwrap();
        store.held("a").unwrap();
        store.actor_state("c").unwrap();
        assert_eq!(store.held_actors(), vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn invalid_actor_names_are_refused_for_held_events_too() {
        let store = Store::temporary().unwrap();
        assert!(matches!(
            store.held("a\0b"),
            Err(StoreError::InvalidActorName(_))
        ));
        assert!(matches!(
            store.held(&"x".repeat(201)),
            Err(StoreError::InvalidActorName(_))
        ));
    }
}
