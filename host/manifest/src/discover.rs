//! Which files of a directory are actor manifests: the rule `wactor dev
//! --actors DIR` and `wactor serve`'s `actors_dir` share.
//!
//! - `DIR/actor.toml`, when it exists, is the only manifest: `DIR` is one
//!   actor (an actor's own crate or project directory).
//! - Otherwise, every `DIR/*/actor.toml` (one actor per subdirectory) and
//!   every `DIR/*.actor.toml` (several manifests side by side), sorted by
//!   path.
//!
//! Nothing else is read: `Cargo.toml`, `pyproject.toml`, `package.json`
//! and other tools' files are never taken for manifests. Other `*.toml`
//! files directly in `DIR` are reported as ignored, so that a manifest
//! named by an older rule (`DIR/orders.toml`) is not dropped silently.

use std::path::{Path, PathBuf};

/// The name of an actor's manifest in its own directory.
pub const MANIFEST_FILE: &str = "actor.toml";

/// The ending of manifests kept side by side in one directory.
pub const MANIFEST_SUFFIX: &str = ".actor.toml";

/// Files other tools own that sit beside manifests: never manifests, and
/// not worth a warning when they are passed over.
const TOOL_FILES: &[&str] = &[
    "Cargo.toml",
    "pyproject.toml",
    "rustfmt.toml",
    ".rustfmt.toml",
    "clippy.toml",
    ".clippy.toml",
    "rust-toolchain.toml",
    "deny.toml",
    "config.toml",
];

/// Why a directory could not be searched.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The directory (or an entry of it) could not be read.
    #[error("cannot read the actors directory {path}: {source}")]
    Read {
        /// The directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The manifests of a directory, and the `*.toml` files passed over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The manifests, sorted.
    pub manifests: Vec<PathBuf>,
    /// Other `*.toml` files directly in the directory (tools' own files
    /// such as `Cargo.toml` left out), sorted: not read.
    pub ignored: Vec<PathBuf>,
}

/// The rule, in one line, for messages.
pub const RULE: &str = "DIR/actor.toml if it exists, else DIR/*/actor.toml and DIR/*.actor.toml";

/// Finds the manifests of `dir` by the module's rule.
pub fn manifests_in(dir: &Path) -> Result<Found, DiscoverError> {
    let read_error = |source| DiscoverError::Read {
        path: dir.display().to_string(),
        source,
    };
    let own = dir.join(MANIFEST_FILE);
    if own.is_file() {
        return Ok(Found {
            manifests: vec![own],
            ignored: Vec::new(),
        });
    }
    let mut found = Found::default();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_dir() {
            let manifest = path.join(MANIFEST_FILE);
            if manifest.is_file() {
                found.manifests.push(manifest);
            }
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(MANIFEST_SUFFIX) && name.len() > MANIFEST_SUFFIX.len() {
            found.manifests.push(path);
        } else if name.ends_with(".toml") && !TOOL_FILES.contains(&name) {
            found.ignored.push(path);
        }
    }
    found.manifests.sort();
    found.ignored.sort();
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }

    fn names(dir: &Path, paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn an_actors_own_directory_is_its_manifest_and_never_its_cargo_toml() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in ["Cargo.toml", "pyproject.toml", "package.json", "actor.toml"] {
            touch(&root.join(file));
        }
        touch(&root.join("sub/actor.toml"));
        let found = manifests_in(root).unwrap();
        assert_eq!(names(root, &found.manifests), ["actor.toml"]);
        assert!(found.ignored.is_empty());
    }

    #[test]
    fn a_directory_of_actors_has_subdirectory_and_suffixed_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "b/actor.toml",
            "a/actor.toml",
            "a/Cargo.toml",
            "c/Cargo.toml",
            "orders.actor.toml",
            ".actor.toml",
            "Cargo.toml",
            "pyproject.toml",
            "legacy.toml",
            "notes.txt",
        ] {
            touch(&root.join(file));
        }
        let found = manifests_in(root).unwrap();
        assert_eq!(
            names(root, &found.manifests),
            ["a/actor.toml", "b/actor.toml", "orders.actor.toml"]
        );
        assert_eq!(names(root, &found.ignored), [".actor.toml", "legacy.toml"]);
    }

    #[test]
    fn a_crate_without_a_manifest_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("Cargo.toml"));
        touch(&root.join("src/lib.rs"));
        assert_eq!(manifests_in(root).unwrap(), Found::default());
        let missing = manifests_in(&root.join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}
