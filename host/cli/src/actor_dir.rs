//! An actor's directory as the developer commands see it: where its
//! manifest (`actor.toml`), its component and its sample event
//! (`event.json`) are. `wactor new` writes this layout, `wactor build` fills
//! in the component, `wactor test` and `wactor invoke` read it.
//!
//! It owns the lookup rules and their error messages (each names the file
//! and says what to do); it does not parse events, build or run anything.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use wactor_manifest::ActorManifest;

/// The manifest's file name in an actor's directory.
pub const MANIFEST_FILE: &str = "actor.toml";
/// The sample event's file name in an actor's directory.
pub const EVENT_FILE: &str = "event.json";

/// An actor's directory with its parsed manifest.
#[derive(Debug, Clone)]
pub struct ActorDir {
    /// The directory holding the manifest.
    pub dir: PathBuf,
    /// The manifest's path.
    pub manifest_path: PathBuf,
    /// The parsed, validated manifest.
    pub manifest: ActorManifest,
}

impl ActorDir {
    /// Opens `path`: a directory holding `actor.toml`, or a manifest file.
    ///
    /// Errors name the file: a directory without `actor.toml` (with a hint
    /// at `wactor new`), or a manifest that does not parse or validate.
    pub fn open(path: &Path) -> Result<ActorDir> {
        if !path.exists() {
            bail!(
                "{} does not exist: name an actor's directory, its {MANIFEST_FILE}, or a component",
                path.display()
            );
        }
        let manifest_path = if path.is_dir() {
            let candidate = path.join(MANIFEST_FILE);
            if !candidate.is_file() {
                bail!(
                    "{} has no {MANIFEST_FILE}: run this in an actor's directory \
                     (`wactor new NAME` makes one) or name the manifest or component",
                    display_dir(path)
                );
            }
            candidate
        } else {
            path.to_path_buf()
        };
        // The error names the file itself (`ManifestError::File`).
        let manifest = ActorManifest::load(&manifest_path)?;
        // Absolute, so that tools run with the actor's directory as their
        // working directory read the same paths.
        let manifest_path = std::path::absolute(&manifest_path)
            .with_context(|| format!("cannot resolve {}", manifest_path.display()))?;
        let dir = manifest_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        Ok(ActorDir {
            dir,
            manifest_path,
            manifest,
        })
    }

    /// The component file the manifest names, resolved against the
    /// manifest's directory (whether or not it exists yet).
    pub fn component_path(&self) -> Result<PathBuf> {
        match &self.manifest.component {
            Some(component) => Ok(self.dir.join(component)),
            None => bail!(
                "{} names no `component`: add `component = \"{}.wasm\"` (the file `wactor build` writes)",
                self.manifest_path.display(),
                self.manifest.name.replace('-', "_")
            ),
        }
    }

    /// Where `wactor build` may write the component: the manifest's
    /// `component`, which must be a relative path inside the actor's
    /// directory (no `..`) ending in `.wasm`, so that a manifest cannot make
    /// a build overwrite another file.
    pub fn build_output(&self) -> Result<PathBuf> {
        let named = self.manifest.component.clone().unwrap_or_default();
        let inside = named.is_relative()
            && named.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            });
        if !inside || !actor_dir_is_wasm(&named) {
            bail!(
                "{}: `wactor build` writes only a `component` inside the actor's directory \
                 ending in .wasm (e.g. \"{}.wasm\"), not {:?}; use --out to write elsewhere",
                self.manifest_path.display(),
                self.manifest.name.replace('-', "_"),
                named.display().to_string()
            );
        }
        self.component_path()
    }

    /// The component file, which must exist (else: "run `wactor build`").
    pub fn existing_component(&self) -> Result<PathBuf> {
        let path = self.component_path()?;
        if !path.is_file() {
            bail!(
                "the component {} (named in {}) does not exist yet: run `wactor build` in {}",
                path.display(),
                self.manifest_path.display(),
                display_dir(&self.dir)
            );
        }
        Ok(path)
    }

    /// The sample event beside the manifest, if there is one.
    pub fn sample_event(&self) -> Option<PathBuf> {
        let path = self.dir.join(EVENT_FILE);
        path.is_file().then_some(path)
    }
}

/// Whether `path` names a component file rather than an actor directory or
/// a manifest: a `.wasm` file name.
pub fn is_component_file(path: &Path) -> bool {
    actor_dir_is_wasm(path)
}

fn actor_dir_is_wasm(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
}

fn display_dir(path: &Path) -> String {
    if path.as_os_str().is_empty() || path == Path::new(".") {
        "the current directory".to_string()
    } else {
        path.display().to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_a_manifest_says_so_and_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\n").unwrap();
        let err = ActorDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("has no actor.toml"), "{err}");
        assert!(err.contains("wactor new"), "{err}");
    }

    #[test]
    fn the_component_is_resolved_against_the_manifest_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            "name = \"fraud-flagger\"\ncomponent = \"fraud_flagger.wasm\"\ntopics = [\"payments\"]\n",
        )
        .unwrap();
        let actor = ActorDir::open(dir.path()).unwrap();
        assert_eq!(
            actor.component_path().unwrap(),
            dir.path().join("fraud_flagger.wasm")
        );
        let err = actor.existing_component().unwrap_err().to_string();
        assert!(err.contains("wactor build"), "{err}");
        assert!(actor.sample_event().is_none());
        std::fs::write(dir.path().join(EVENT_FILE), "{}").unwrap();
        assert_eq!(actor.sample_event(), Some(dir.path().join(EVENT_FILE)));
    }

    #[test]
    fn a_build_writes_only_a_wasm_file_inside_the_actor_directory() {
        let dir = tempfile::tempdir().unwrap();
        for (component, ok) in [
            ("x.wasm", true),
            ("out/x.wasm", true),
            ("../victim/important.txt", false),
            ("../x.wasm", false),
            ("/etc/x.wasm", false),
            ("x.txt", false),
        ] {
            std::fs::write(
                dir.path().join(MANIFEST_FILE),
                format!("name = \"x\"\ncomponent = \"{component}\"\ntopics = [\"t\"]\n"),
            )
            .unwrap();
            let actor = ActorDir::open(dir.path()).unwrap();
            assert_eq!(actor.build_output().is_ok(), ok, "{component}");
        }
    }

    #[test]
    fn a_relative_directory_is_made_absolute() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            "name = \"x\"\ncomponent = \"x.wasm\"\ntopics = [\"t\"]\n",
        )
        .unwrap();
        let actor = ActorDir::open(dir.path()).unwrap();
        assert!(actor.dir.is_absolute());
        assert!(actor.component_path().unwrap().is_absolute());
    }

    #[test]
    fn a_bad_manifest_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        std::fs::write(&path, "name = \"x\"\n").unwrap();
        let err = format!("{:#}", ActorDir::open(&path).unwrap_err());
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}
