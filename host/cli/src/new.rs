//! `wactor new NAME --lang rust|python|js`: scaffold a ready actor.
//!
//! Writes a directory with the actor's source, its build file (Rust only:
//! Cargo.toml; Python and JavaScript need none), `actor.toml`, a sample
//! `event.json`, a README and a unit test, from the templates embedded in
//! this binary (`host/cli/templates/<lang>/`). `wactor build`, `wactor test`,
//! `wactor invoke` and `wactor dev --actors .` work on the result without
//! edits.
//!
//! It owns the templates' placeholders and where the Rust SDK dependency
//! points ([`rust_sdk_dependency`]); building is `wactor build`'s.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use include_dir::{include_dir, Dir};

/// The templates, one directory per language.
static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// What the templates may contain, in this order: the actor's name
/// (kebab-case), its module name (snake_case: the component's file
/// stem), the topic it reads, the Rust SDK dependency line, wactor's version.
const PLACEHOLDERS: [&str; 5] = [
    "{{name}}",
    "{{module}}",
    "{{topic}}",
    "{{sdk_dependency}}",
    "{{wactor_version}}",
];

/// Languages `wactor new` scaffolds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust with wactor-sdk (cargo, target wasm32-wasip2; wasm32-unknown-unknown
    /// with `lean = true` in actor.toml).
    Rust,
    /// Python with the `wactor` package (componentize-py).
    Python,
    /// JavaScript with @wactor/sdk (componentize-js).
    #[value(alias = "javascript")]
    Js,
}

impl Lang {
    fn dir(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

/// Arguments of `wactor new`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor new fraud-flagger --lang python
  cd fraud-flagger && wactor build && wactor invoke && wactor dev --actors .")]
pub struct NewArgs {
    /// The actor's name: lower-case letters, digits and `-`, starting with a
    /// letter (it names the directory, the manifest's actor and the
    /// component file).
    pub name: String,
    /// The language of the actor.
    #[arg(long, short = 'l', value_enum, default_value = "rust")]
    pub lang: Lang,
    /// Where to create it (default: ./NAME). Must not exist or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The topic the actor reads (its emits go to TOPIC.out).
    #[arg(long, default_value = "payments")]
    pub topic: String,
    /// Rust only: the wactor-sdk crate's directory, for a path dependency
    /// (default: $WACTOR_SDK_PATH, else the checkout this wactor was built
    /// from, else a git dependency on wactor's repository).
    #[arg(long)]
    pub sdk_path: Option<PathBuf>,
}

/// Runs `wactor new`; returns the exit code.
pub fn run(args: NewArgs) -> Result<u8> {
    check_name(&args.name)?;
    check_topic(&args.topic)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && !dir.is_dir() {
        bail!(
            "{} exists and is not a directory: choose another name or --dir",
            dir.display()
        );
    }
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} already exists and is not empty: choose another name or --dir",
                dir.display()
            );
        }
    }
    let sdk_dependency = match args.lang {
        Lang::Rust => rust_sdk_dependency(args.sdk_path.as_deref())?,
        _ => String::new(),
    };
    let module = args.name.replace('-', "_");
    let values = [
        (PLACEHOLDERS[0], args.name.as_str()),
        (PLACEHOLDERS[1], module.as_str()),
        (PLACEHOLDERS[2], args.topic.as_str()),
        (PLACEHOLDERS[3], sdk_dependency.as_str()),
        (PLACEHOLDERS[4], env!("CARGO_PKG_VERSION")),
    ];
    let template = TEMPLATES
        .get_dir(args.lang.dir())
        .with_context(|| format!("this wactor has no {} template", args.lang.dir()))?;
    let written =
        crate::sdk_files::write_tree(template, &dir, &|bytes| match std::str::from_utf8(bytes) {
            Ok(text) => render(text, &values).into_bytes(),
            Err(_) => bytes.to_vec(),
        })?;

    println!(
        "Created {} ({}, {} files) in {}.\n",
        args.name,
        args.lang.dir(),
        written,
        dir.display()
    );
    println!("Next:");
    println!("  cd {}", dir.display());
    if let Some(hint) = tool_hint(args.lang) {
        println!("  {hint}");
    }
    println!("  wactor build             # -> {module}.wasm");
    println!("  wactor test              # the unit tests");
    println!("  wactor invoke            # run it on event.json");
    println!("  wactor dev --actors .    # a local broker and host running it");
    Ok(0)
}

/// The one-time install of the language's build tool, when it needs one.
fn tool_hint(lang: Lang) -> Option<&'static str> {
    match lang {
        Lang::Rust => Some("rustup target add wasm32-wasip2   # once"),
        Lang::Python => Some(crate::build_actor::PYTHON_TOOL_INSTALL),
        Lang::Js => Some(crate::build_actor::JS_TOOL_INSTALL),
    }
}

/// Names that make a valid actor name, Rust crate name and directory.
fn check_name(name: &str) -> Result<()> {
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !starts_with_letter || !allowed || name.ends_with('-') {
        bail!(
            "{name:?} cannot name a new actor: use lower-case letters, digits and `-`, \
             starting with a letter (e.g. fraud-flagger)"
        );
    }
    wactor_manifest::validate_name(name)?;
    Ok(())
}

/// A topic the new actor can read and whose `.out` it can emit to.
fn check_topic(topic: &str) -> Result<()> {
    wactor_manifest::validate_topic("--topic", topic)?;
    let out = format!("{topic}.out");
    if let Err(reason) = wactor_runtime::check_emit_topic(&out) {
        bail!("--topic {topic:?}: the new actor emits to {out:?}, which actors may not: {reason}");
    }
    Ok(())
}

/// The `wactor-sdk = ...` line of a new Rust actor's Cargo.toml.
///
/// A path dependency on `explicit`, else on `$WACTOR_SDK_PATH`, else on the
/// `sdk/` directory of the checkout this binary was built from (what
/// `cargo install --path host/cli` leaves usable); without any of them, a
/// git dependency on wactor's repository at this version's tag. The crate
/// reads the WIT contract from `../wit` beside it, which both a checkout
/// and a git dependency have (docs/actors.md, "The Rust SDK dependency").
pub fn rust_sdk_dependency(explicit: Option<&Path>) -> Result<String> {
    let from_env = std::env::var_os("WACTOR_SDK_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
    let candidates: Vec<(PathBuf, bool)> = match (explicit, from_env) {
        (Some(path), _) => vec![(path.to_path_buf(), true)],
        (None, Some(path)) => vec![(path, true)],
        (None, None) => vec![(built_from, false)],
    };
    for (path, required) in candidates {
        if path.join("Cargo.toml").is_file() {
            let path = path
                .canonicalize()
                .with_context(|| format!("cannot resolve {}", path.display()))?;
            let text = path.to_string_lossy().replace('\\', "/");
            return Ok(format!("wactor-sdk = {{ path = {} }}", toml_string(&text)));
        }
        if required {
            bail!(
                "{} is not the wactor-sdk crate (no Cargo.toml there)",
                path.display()
            );
        }
    }
    Ok(format!(
        "wactor-sdk = {{ git = {}, tag = \"v{}\" }}",
        toml_string(env!("CARGO_PKG_REPOSITORY")),
        env!("CARGO_PKG_VERSION")
    ))
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn render(text: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(text.to_string(), |acc, (placeholder, value)| {
            acc.replace(placeholder, value)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_be_a_crate_or_a_directory_are_refused() {
        for bad in ["", "Fraud", "9lives", "a_b", "a.b", "a-", "../x", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["fraud-flagger", "a", "x9"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn a_topic_whose_out_topic_is_reserved_is_refused() {
        for bad in [
            "__consumer_offsets",
            "wactor.registry",
            "orders.dlq.x",
            "x.state",
        ] {
            let out_reserved = wactor_runtime::check_emit_topic(&format!("{bad}.out")).is_err();
            assert_eq!(check_topic(bad).is_err(), out_reserved, "{bad}");
        }
        assert!(check_topic("__consumer_offsets").is_err());
        check_topic("payments").unwrap();
        let err = check_name("My_Actor").unwrap_err().to_string();
        assert!(err.contains("lower-case letters, digits and `-`"), "{err}");
    }

    #[test]
    fn every_language_renders_with_no_placeholder_left() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let dir = tempfile::tempdir().unwrap();
            let to = dir.path().join("fraud-flagger");
            run(NewArgs {
                name: "fraud-flagger".into(),
                lang,
                dir: Some(to.clone()),
                topic: "payments".into(),
                sdk_path: None,
            })
            .unwrap();
            let manifest = wactor_manifest::ActorManifest::load(&to.join("actor.toml")).unwrap();
            assert_eq!(manifest.name, "fraud-flagger");
            assert!(to.join("event.json").is_file());
            assert!(to.join("README.md").is_file());
            for entry in walk(&to) {
                let text = std::fs::read_to_string(&entry).unwrap_or_default();
                for placeholder in PLACEHOLDERS {
                    assert!(
                        !text.contains(placeholder),
                        "{} keeps {placeholder}",
                        entry.display()
                    );
                }
            }
        }
    }

    #[test]
    fn an_existing_directory_with_files_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = run(NewArgs {
            name: "x".into(),
            lang: Lang::Rust,
            dir: Some(dir.path().to_path_buf()),
            topic: "payments".into(),
            sdk_path: None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
