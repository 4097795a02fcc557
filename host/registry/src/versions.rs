//! The versions of one actor that this host keeps loaded, and when it lets
//! them go.
//!
//! A loaded version is expensive to keep: its compiled code, its
//! copy-on-write memory images (one memfd per memory with data, as large
//! as its data segments), its idle warm instances and recycled store data.
//! It is cheap to load again: compiled artifacts are cached on disk, so a
//! load deserializes (about a millisecond for a small actor) instead of
//! compiling. So [`LoadedVersions`] keeps only:
//!
//! - the **active** version (the next call runs it);
//! - the **previous** active version, so that a rollback is a pointer swap;
//! - versions **pinned** for a re-drive to a named version, for
//!   [`DEFAULT_PIN`] after the re-drive or their last use;
//! - any other version exactly as long as a call that started on it is
//!   still running: the set holds it weakly, the call holds it strongly.
//!
//! Everything else is dropped, and with it (when the last running call
//! ends) its wasmtime `Component`: wasmtime then unmaps the code, closes
//! the memory images and resets the pooling allocator's slots that held
//! them. A re-drive or a held retry that names a version not loaded any
//! more loads it on demand through the [`VersionLoader`] (the store and
//! the artifact cache).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use wactor_kafka::{ActiveVersion, VersionSource};

use crate::error::Result;

/// How long a version loaded for a re-drive to a named version stays
/// loaded after the re-drive was requested or the version last ran an
/// event: 10 minutes.
pub const DEFAULT_PIN: Duration = Duration::from_secs(600);

/// Loads a version of one actor that is not in memory.
pub trait VersionLoader: Send + Sync + 'static {
    /// Loads version `version` (from the store, through the artifact
    /// cache). Blocking: it reads the store and may compile.
    fn load(&self, version: u64) -> Result<Arc<ActiveVersion>>;
}

/// The loaded versions of one actor; see the [module docs](self).
///
/// It is the [`VersionSource`] the actor's partition workers read: once
/// per call, which is what makes a swap atomic.
pub struct LoadedVersions {
    /// The active version; swapped atomically.
    current: RwLock<Option<Arc<ActiveVersion>>>,
    /// Everything else this set remembers.
    kept: Mutex<Kept>,
    /// Loads a version on demand; `None` in tests that load by hand.
    loader: Option<Arc<dyn VersionLoader>>,
    /// How long a pinned version stays after its last use.
    pin_for: Duration,
}

#[derive(Default)]
struct Kept {
    /// The version active before the current one (rollback target).
    previous: Option<Arc<ActiveVersion>>,
    /// Versions kept for re-drives to a named version, until the instant.
    pinned: HashMap<u64, (Arc<ActiveVersion>, Instant)>,
    /// Versions that may still be running calls: alive exactly as long as
    /// a call holds them.
    retired: HashMap<u64, Weak<ActiveVersion>>,
}

impl Kept {
    /// Forgets pins that expired and retired versions no call holds.
    fn sweep(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .pinned
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(version, _)| *version)
            .collect();
        for version in expired {
            if let Some((loaded, _)) = self.pinned.remove(&version) {
                self.retired.insert(version, Arc::downgrade(&loaded));
            }
        }
        self.retired.retain(|_, weak| weak.strong_count() > 0);
    }

    /// A loaded version other than the current one, if any.
    fn find(&self, version: u64) -> Option<Arc<ActiveVersion>> {
        if let Some(previous) = self.previous.as_ref().filter(|p| p.version == version) {
            return Some(previous.clone());
        }
        if let Some((loaded, _)) = self.pinned.get(&version) {
            return Some(loaded.clone());
        }
        self.retired.get(&version).and_then(Weak::upgrade)
    }

    /// Takes `version` out of every role but the current one.
    fn take(&mut self, version: u64) {
        if self.previous.as_ref().is_some_and(|p| p.version == version) {
            self.previous = None;
        }
        self.pinned.remove(&version);
        self.retired.remove(&version);
    }
}

impl LoadedVersions {
    /// An empty set that loads missing versions with `loader`.
    pub fn new(loader: Option<Arc<dyn VersionLoader>>) -> Self {
        LoadedVersions {
            current: RwLock::new(None),
            kept: Mutex::new(Kept::default()),
            loader,
            pin_for: DEFAULT_PIN,
        }
    }

    /// The same, with pins that last `pin_for` (tests).
    pub fn with_pin_duration(mut self, pin_for: Duration) -> Self {
        self.pin_for = pin_for;
        self
    }

    fn kept(&self) -> MutexGuard<'_, Kept> {
        match self.kept.lock() {
            Ok(kept) => kept,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Makes `version` the one the next call runs and returns the one it
    /// replaces. The replaced version becomes the previous one (kept for
    /// a rollback); the version previous until now is let go (it lives on
    /// while calls still run on it). The new active version keeps warm
    /// instances; the others keep none.
    pub fn activate(&self, version: Arc<ActiveVersion>) -> Option<Arc<ActiveVersion>> {
        let mut kept = self.kept();
        kept.take(version.version);
        version.actor.set_retired(false);
        let replaced = match self.current.write() {
            Ok(mut current) => current.replace(version.clone()),
            Err(poisoned) => poisoned.into_inner().replace(version.clone()),
        };
        if let Some(old) = replaced.as_ref().filter(|o| o.version != version.version) {
            old.actor.set_retired(true);
            if let Some(before) = kept.previous.replace(old.clone()) {
                if before.version != old.version {
                    kept.retired.insert(before.version, Arc::downgrade(&before));
                }
            }
        }
        kept.sweep(Instant::now());
        replaced
    }

    /// Keeps `version` loaded (not active) for [`DEFAULT_PIN`] from now:
    /// a re-drive to it is on its way.
    pub fn pin(&self, version: Arc<ActiveVersion>) {
        if self.current().is_some_and(|c| c.version == version.version) {
            return;
        }
        let mut kept = self.kept();
        if kept
            .previous
            .as_ref()
            .is_some_and(|p| p.version == version.version)
        {
            return;
        }
        version.actor.set_retired(true);
        let until = Instant::now() + self.pin_for;
        kept.retired.remove(&version.version);
        kept.pinned.insert(version.version, (version, until));
        kept.sweep(Instant::now());
    }

    /// `version` if it is loaded, without loading it.
    pub fn get_loaded(&self, version: u64) -> Option<Arc<ActiveVersion>> {
        if let Some(current) = self.current().filter(|c| c.version == version) {
            return Some(current);
        }
        let mut kept = self.kept();
        let found = kept.find(version)?;
        if let Some((_, until)) = kept.pinned.get_mut(&version) {
            *until = Instant::now() + self.pin_for;
        }
        Some(found)
    }

    /// The version numbers loaded now (active, previous, pinned, and
    /// retired ones still running calls), ascending.
    pub fn loaded(&self) -> Vec<u64> {
        let mut kept = self.kept();
        kept.sweep(Instant::now());
        let mut versions: Vec<u64> = self.current().map(|c| c.version).into_iter().collect();
        versions.extend(kept.previous.as_ref().map(|p| p.version));
        versions.extend(kept.pinned.keys().copied());
        versions.extend(kept.retired.keys().copied());
        versions.sort_unstable();
        versions.dedup();
        versions
    }

    /// How many versions are loaded now (see [`loaded`](Self::loaded)).
    pub fn loaded_count(&self) -> usize {
        self.loaded().len()
    }

    /// Loads `version` on demand and pins it.
    fn load_on_demand(&self, version: u64) -> Option<Arc<ActiveVersion>> {
        let loader = self.loader.as_ref()?;
        let loaded = match blocking(|| loader.load(version)) {
            Ok(loaded) => loaded,
            Err(err) => {
                tracing::warn!(version, error = %err, "cannot load the version a re-drive names");
                return None;
            }
        };
        // Another call may have loaded it meanwhile: use that one.
        if let Some(existing) = self.get_loaded(version) {
            return Some(existing);
        }
        tracing::info!(version, "version loaded on demand");
        self.pin(loaded.clone());
        Some(loaded)
    }
}

impl VersionSource for LoadedVersions {
    fn current(&self) -> Option<Arc<ActiveVersion>> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn get(&self, version: u64) -> Option<Arc<ActiveVersion>> {
        self.get_loaded(version)
            .or_else(|| self.load_on_demand(version))
    }
}

/// Runs blocking `f` from async code: on a multi-threaded tokio runtime
/// the worker hands its other tasks off first, elsewhere it just runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
