//! The WIT contract and the Python and JavaScript guest SDKs, embedded in
//! this binary, and writing them into an actor's `.wactor/` directory.
//!
//! An actor built by `wactor build` is built against the contract of the
//! wactor that builds it: the Python and JavaScript SDKs are sources that
//! the componentizer bundles into the component, so the binary carries them
//! (they will also be published as `wactor-sdk` on PyPI and `@wactor/sdk` on
//! npm; docs/actors.md). `.wactor/` is generated, rewritten on every build
//! and meant to be ignored by version control.
//!
//! It does not run any tool: that is `build_actor` and `test_actor`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use include_dir::{include_dir, Dir};

static WIT: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../wit");
static SDK_PYTHON: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../sdk-python/wactor");
static SDK_JS_SRC: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../sdk-js/src");
static SDK_JS_TESTING: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../sdk-js/testing");
static SDK_JS_PACKAGE: &str = include_str!("../../../sdk-js/package.json");

/// Directories never copied out of the embedded trees (caches, installs).
const SKIPPED: &[&str] = &["__pycache__", "node_modules", ".wactor"];

/// The generated directory inside an actor's directory.
pub const GENERATED_DIR: &str = ".wactor";

/// Paths of what [`write`] produced.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The WIT package directory (`wit/` of this wactor).
    pub wit: PathBuf,
    /// The directory to put on the language's module path: holds the
    /// `wactor` package (Python) or is the `@wactor/sdk` package (JS).
    pub sdk: PathBuf,
}

/// Which SDK to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkLang {
    /// `.wactor/sdk/python/wactor/`.
    Python,
    /// `.wactor/sdk/js/` (package.json, src/, testing/).
    Js,
}

/// Writes `.wactor/wit/` and `.wactor/sdk/<lang>/` under `actor_dir`,
/// replacing what an earlier build left there.
pub fn write(actor_dir: &Path, lang: SdkLang) -> Result<Generated> {
    let root = actor_dir.join(GENERATED_DIR);
    // What is removed and rewritten must be inside the actor's directory:
    // `.wactor` or a directory in it that is a symbolic link is refused.
    refuse_links(&root)?;
    for sub in ["wit", "sdk", "build", "sdk/python", "sdk/js"] {
        refuse_links(&root.join(sub))?;
    }
    let wit = root.join("wit");
    replace_tree(&WIT, &wit)?;
    let sdk = match lang {
        SdkLang::Python => {
            let base = root.join("sdk").join("python");
            replace_tree(&SDK_PYTHON, &base.join("wactor"))?;
            base
        }
        SdkLang::Js => {
            let base = root.join("sdk").join("js");
            replace_tree(&SDK_JS_SRC, &base.join("src"))?;
            replace_tree(&SDK_JS_TESTING, &base.join("testing"))?;
            let package = base.join("package.json");
            std::fs::write(&package, SDK_JS_PACKAGE)
                .with_context(|| format!("cannot write {}", package.display()))?;
            base
        }
    };
    Ok(Generated { wit, sdk })
}

/// Fails if `path` is a symbolic link (a missing path is fine).
pub fn refuse_links(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        anyhow::bail!(
            "{} is a symbolic link: wactor writes and clears generated files there, so it \
             must be a real directory inside the actor's directory (remove the link)",
            path.display()
        );
    }
    Ok(())
}

fn replace_tree(tree: &Dir<'_>, to: &Path) -> Result<()> {
    refuse_links(to)?;
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("cannot clear {}", to.display()))?;
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    write_tree(tree, to, &|bytes| bytes.to_vec()).map(|_| ())
}

/// Writes every file of the embedded `tree` under `to` (paths relative to
/// the tree's own directory), each file's bytes passed through `transform`,
/// leaving out cache and install directories (`__pycache__`,
/// `node_modules`, `.wactor`); returns how many files it wrote. Also what
/// `wactor new` writes its templates with.
pub fn write_tree(
    tree: &Dir<'_>,
    to: &Path,
    transform: &dyn Fn(&[u8]) -> Vec<u8>,
) -> Result<usize> {
    write_below(tree, tree.path(), to, transform)
}

fn write_below(
    tree: &Dir<'_>,
    root: &Path,
    to: &Path,
    transform: &dyn Fn(&[u8]) -> Vec<u8>,
) -> Result<usize> {
    let mut written = 0;
    for file in tree.files() {
        let relative = file.path().strip_prefix(root).unwrap_or(file.path());
        let target = to.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, transform(file.contents()))
            .with_context(|| format!("cannot write {}", target.display()))?;
        written += 1;
    }
    for dir in tree.dirs() {
        let skipped = dir
            .path()
            .file_name()
            .is_some_and(|name| SKIPPED.iter().any(|s| name == *s));
        if !skipped {
            written += write_below(dir, root, to, transform)?;
        }
    }
    Ok(written)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_linked_generated_directory_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(victim.path().join("wit")).unwrap();
        std::fs::write(victim.path().join("wit/mine.txt"), "keep").unwrap();
        std::os::unix::fs::symlink(victim.path(), dir.path().join(GENERATED_DIR)).unwrap();
        let err = write(dir.path(), SdkLang::Python).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(victim.path().join("wit/mine.txt").is_file());

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(GENERATED_DIR)).unwrap();
        std::os::unix::fs::symlink(victim.path(), dir.path().join(GENERATED_DIR).join("build"))
            .unwrap();
        assert!(write(dir.path(), SdkLang::Js).is_err());
        assert!(victim.path().join("wit/mine.txt").is_file());
    }

    #[test]
    fn the_contract_and_the_sdks_are_written_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let python = write(dir.path(), SdkLang::Python).unwrap();
        assert!(
            python.wit.join("world.wit").is_file() || python.wit.read_dir().unwrap().count() > 0
        );
        assert!(python.sdk.join("wactor").join("__init__.py").is_file());
        // A stale file from an earlier build is gone after the next one.
        std::fs::write(python.sdk.join("wactor").join("stale.py"), "x").unwrap();
        let again = write(dir.path(), SdkLang::Python).unwrap();
        assert!(!again.sdk.join("wactor").join("stale.py").exists());
        let js = write(dir.path(), SdkLang::Js).unwrap();
        assert!(js.sdk.join("package.json").is_file());
        assert!(!js.sdk.join("node_modules").exists());
    }
}
