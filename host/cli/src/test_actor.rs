//! `wactor test [DIR]`: run an actor's unit tests, natively, with the
//! language's own test runner and the SDK's fake host:
//!
//! | language | what runs |
//! |----------|-----------|
//! | rust     | `cargo test` |
//! | python   | `python3 -m unittest discover` with `.wactor/sdk/python` on `PYTHONPATH` (the SDK's `wactor.testing` stands in for the host) |
//! | js       | `node --test` with `.wactor/sdk/js` as `@wactor/sdk` (its `testing` module stands in for the host) |
//!
//! These test the actor's logic; `wactor invoke` runs the built component
//! on the real runtime. It owns the commands, not the SDKs' fakes.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use clap::Args;
use wactor_manifest::Language;

use crate::actor_dir::ActorDir;
use crate::sdk_files::{self, SdkLang};

/// Arguments of `wactor test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The actor's directory or its actor.toml (default: the current directory).
    pub dir: Option<PathBuf>,
}

/// Runs `wactor test`; the exit code is the test runner's (1 if it was
/// killed by a signal).
pub fn run(args: TestArgs) -> Result<u8> {
    let actor = ActorDir::open(&args.dir.unwrap_or_else(|| PathBuf::from(".")))?;
    let mut command = match actor.manifest.language {
        Language::Rust => {
            let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            c.arg("test");
            c
        }
        Language::Python => {
            let generated = sdk_files::write(&actor.dir, SdkLang::Python)?;
            let python = std::env::var_os("WACTOR_PYTHON").unwrap_or_else(|| "python3".into());
            let mut c = Command::new(python);
            c.args(["-m", "unittest", "discover", "-s", ".", "-t", "."]);
            c.env("PYTHONPATH", join_paths(&generated.sdk)?);
            c
        }
        Language::Js => {
            let generated = sdk_files::write(&actor.dir, SdkLang::Js)?;
            js_test_command(&actor, &generated.sdk)?
        }
    };
    command.current_dir(&actor.dir);
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command.status().with_context(|| {
        format!(
            "cannot run the {} tests: cannot start {program:?} ({})",
            actor.manifest.language,
            match actor.manifest.language {
                Language::Rust => "is Rust installed?",
                Language::Python => "is Python 3 installed? $WACTOR_PYTHON names another",
                Language::Js => "is Node.js 20.6+ installed? $WACTOR_NODE names another",
            }
        )
    })?;
    Ok(status.code().map(|c| c.clamp(0, 255) as u8).unwrap_or(1))
}

/// `PYTHONPATH` with `sdk` first, then whatever the user had.
fn join_paths(sdk: &std::path::Path) -> Result<std::ffi::OsString> {
    let mut paths = vec![sdk.to_path_buf()];
    if let Some(existing) = std::env::var_os("PYTHONPATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(paths).context("PYTHONPATH cannot hold the SDK's directory")
}

fn js_test_command(_actor: &ActorDir, sdk: &std::path::Path) -> Result<Command> {
    let node = std::env::var_os("WACTOR_NODE").unwrap_or_else(|| "node".into());
    let mut c = Command::new(node);
    let register = sdk.join("testing").join("register.mjs");
    c.arg("--import").arg(register).arg("--test");
    Ok(c)
}
