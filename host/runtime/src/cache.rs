//! The on-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes milliseconds to seconds;
//! loading a serialized artifact takes well under a millisecond. Artifacts
//! are keyed by the component's sha256 and the engine's compatibility hash
//! (wasmtime version and every setting that affects code generation), so a
//! host restart or a rollback loads without compiling, and an upgraded
//! wasmtime never loads an incompatible artifact.
//!
//! The cache directory must be owned by the host: loading an artifact is
//! `unsafe` in wasmtime because a tampered file is native code. On unix the
//! cache checks it: a directory (or an artifact file) owned by another user
//! or writable by group or others is refused (the directory: the cache is
//! not used; a file: it is recompiled and replaced). Never point it into a
//! project's tree: whoever wrote the project could have written an artifact
//! (wactor dev and wactor invoke use the user's own cache directory). A file that
//! fails to load is recompiled and replaced. Files are written atomically
//! (temporary file, then rename) and read into memory, never mapped, so a
//! concurrent writer or a truncated file cannot crash a running host.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::error::{Result, RuntimeError};

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a cached artifact.
    Hit,
    /// Compiled now (and cached, if a directory is configured).
    Compiled,
}

/// Compiled-artifact cache; `None` directory disables it.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ArtifactCache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> Result<Self> {
        if let Some(dir) = &dir {
            let cache_err = |source| RuntimeError::Cache {
                path: dir.display().to_string(),
                source,
            };
            std::fs::create_dir_all(dir).map_err(cache_err)?;
            let meta = std::fs::metadata(dir).map_err(cache_err)?;
            if !trusted(&meta) {
                return Err(cache_err(untrusted_error()));
            }
        }
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(ArtifactCache { dir, engine_key })
    }

    fn path_for(&self, sha256: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|dir| dir.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// Loads the artifact of `bytes` (whose digest is `sha256`), compiling
    /// and storing it when it is not cached.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<(Component, CacheOutcome)> {
        let path = self.path_for(sha256);
        if let Some(path) = path.as_deref().filter(|p| p.exists()) {
            // The artifact is read into memory rather than mapped
            // (`deserialize_file`): a mapped file that is truncated or
            // rewritten in place while the host runs would kill the whole
            // process with SIGBUS, and reading a few hundred KiB costs
            // microseconds.
            let loaded = std::fs::symlink_metadata(path)
                .map_err(|e| e.to_string())
                .and_then(|meta| {
                    if meta.is_file() && trusted(&meta) {
                        Ok(())
                    } else {
                        Err(untrusted_error().to_string())
                    }
                })
                .and_then(|()| std::fs::read(path).map_err(|e| e.to_string()))
                .and_then(|artifact| {
                    // SAFETY: the file was written by `store` below into the
                    // host's own cache directory, from a component compiled by an
                    // engine with the same compatibility hash (part of the file
                    // name); wasmtime checks its header and version before use.
                    unsafe { Component::deserialize(engine, &artifact) }
                        .map_err(|e| format!("{e:#}"))
                });
            match loaded {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(err) => tracing::warn!(
                    path = %path.display(),
                    error = %err,
                    "cached artifact unusable; recompiling"
                ),
            }
        }
        let component =
            Component::new(engine, bytes).map_err(|e| RuntimeError::Invalid(format!("{e:#}")))?;
        if let Some(path) = path {
            if let Err(err) = store(&component, &path) {
                // A cache that cannot be written costs time, not correctness.
                tracing::warn!(error = %err, "cannot write compiled artifact to the cache");
            }
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

/// Whether a cache directory or artifact may be trusted: on unix, owned by
/// this process's effective user and not writable by group or others.
#[cfg(unix)]
fn trusted(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    meta.uid() == euid && meta.mode() & 0o022 == 0
}

#[cfg(not(unix))]
fn trusted(_meta: &std::fs::Metadata) -> bool {
    true
}

fn untrusted_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        "owned by another user or writable by group or others: compiled \
         artifacts are native code, so the cache must be yours alone",
    )
}

fn store(component: &Component, path: &Path) -> Result<()> {
    let io_err = |source| RuntimeError::Cache {
        path: path.display().to_string(),
        source,
    };
    let bytes = component
        .serialize()
        .map_err(|e| RuntimeError::Invalid(format!("cannot serialize: {e:#}")))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(io_err)?;
    Ok(())
}

/// Feeds `Hash` output into sha256, so the key is stable across processes.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Hex sha256 of a component's bytes: its identity in the registry and the
/// cache.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("artifacts");
        std::fs::create_dir(&cache).unwrap();
        chmod(&cache, 0o777);
        let err = ArtifactCache::new(&engine, Some(cache.clone())).unwrap_err();
        assert!(err.to_string().contains("yours alone"), "{err}");
        chmod(&cache, 0o755);
        ArtifactCache::new(&engine, Some(cache)).unwrap();
    }

    #[test]
    fn an_artifact_others_can_write_is_recompiled_not_loaded() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(&engine, Some(dir.path().to_path_buf())).unwrap();
        let bytes = b"(component)".to_vec();
        let (_, first) = cache.load(&engine, &bytes, "abc").unwrap();
        assert_eq!(first, CacheOutcome::Compiled);
        let (_, second) = cache.load(&engine, &bytes, "abc").unwrap();
        assert_eq!(second, CacheOutcome::Hit);
        let artifact = cache.path_for("abc").unwrap();
        chmod(&artifact, 0o666);
        let (_, third) = cache.load(&engine, &bytes, "abc").unwrap();
        assert_eq!(
            third,
            CacheOutcome::Compiled,
            "a writable-by-others file is not trusted"
        );
        // Recompiled and replaced by a file of its own.
        let (_, fourth) = cache.load(&engine, &bytes, "abc").unwrap();
        assert_eq!(fourth, CacheOutcome::Hit);
    }
}
