//! `wactor build [DIR]`: build the actor in DIR (default: the current
//! directory) into the component its `actor.toml` names, with the tool
//! chain of the manifest's `language`:
//!
//! | language | tool (found as)                                   | what runs |
//! |----------|---------------------------------------------------|-----------|
//! | rust     | `cargo` (PATH)                                    | `cargo build --release --target wasm32-wasip2`, then the cdylib's `.wasm` is copied to `component`; with `lean = true`, `--target wasm32-unknown-unknown` and the module is made a component with wit-component ([`lean_component`]) |
//! | python   | `componentize-py` ($WACTOR_COMPONENTIZE_PY, DIR/.venv/bin, PATH) | `componentize-py -d .wactor/wit -w actor componentize app -p . -p .wactor/sdk/python -o COMPONENT` |
//! | js       | `componentize-js` and `esbuild` ($WACTOR_COMPONENTIZE_JS / $WACTOR_ESBUILD, node_modules/.bin in DIR or a parent up to the repository's root, PATH) | esbuild bundles the entry module with `@wactor/sdk` from `.wactor/sdk/js`, then `componentize-js --wit .wactor/wit --world-name actor -o COMPONENT` |
//!
//! With `batch = true` in the manifest, Python and JavaScript build against
//! the world `actor-batch` instead of `actor` (`-w actor-batch`,
//! `--world-name actor-batch`): the SDK then exports `handle-batch` (the
//! Python SDK's `WitWorld.handle_batch`; for JS, esbuild bundles a
//! generated entry module, `.wactor/build/batch-entry.js`, that adds
//! `handleBatch = batch(handle)` to the actor's exports).
//!
//! The WIT contract and the Python/JS SDK sources come from this binary
//! (`sdk_files`). Pinned tool versions are [`COMPONENTIZE_PY_VERSION`] and
//! [`COMPONENTIZE_JS_VERSION`]; another version builds with a warning.
//!
//! It owns finding the tools and the commands; the manifest is
//! `actor_dir`'s, the embedded files `sdk_files`'.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use wactor_manifest::Language;

use crate::actor_dir::ActorDir;
use crate::sdk_files::{self, SdkLang};

/// The componentize-py release the Python SDK is built and tested with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// The componentize-js release the JavaScript SDK is built and tested with.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
/// The esbuild release the JavaScript build bundles with.
pub const ESBUILD_VERSION: &str = "0.28.2";
/// How to install the Python tool chain (once per machine).
pub const PYTHON_TOOL_INSTALL: &str = "pip install componentize-py==0.25.1   # once";
/// How to install the JavaScript tool chain (once per machine).
///
/// componentize-js 0.23.0 imports `@bytecodealliance/preview2-shim` without
/// declaring it, and builds only with 0.25.0 of it (0.26 fails with
/// "reading file .../wit: No such file or directory").
pub const JS_TOOL_INSTALL: &str = "npm install -g @bytecodealliance/componentize-js@0.23.0 \
     @bytecodealliance/preview2-shim@0.25.0 esbuild@0.28.2   # once";

/// Arguments of `wactor build`.
#[derive(Debug, Args)]
#[command(after_help = "\
The language comes from actor.toml's `language` (rust, python or js); the
output is the file its `component` names. docs/actors.md has the tools and
their versions.")]
pub struct BuildArgs {
    /// The actor's directory or its actor.toml (default: the current directory).
    pub dir: Option<PathBuf>,
    /// Write the component here instead of where actor.toml's `component`
    /// says.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
}

/// Runs `wactor build`; returns the exit code.
pub fn run(args: BuildArgs) -> Result<u8> {
    let actor = ActorDir::open(&args.dir.unwrap_or_else(|| PathBuf::from(".")))?;
    let started = Instant::now();
    let component = build(&actor, args.out)?;
    let size = std::fs::metadata(&component)
        .with_context(|| format!("the build wrote no {}", component.display()))?
        .len();
    println!(
        "built {} ({}, {:.1} MB) in {:.1} s",
        component.display(),
        actor.manifest.language,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// Builds `actor` into `out` (default: its manifest's `component`);
/// returns the component's path. The tools' own output goes to this
/// process's stderr/stdout.
pub fn build(actor: &ActorDir, out: Option<PathBuf>) -> Result<PathBuf> {
    let component = match out {
        Some(out) => out,
        None => actor.build_output()?,
    };
    check_language(actor)?;
    // Built beside the target and renamed over it: a host or a test reading
    // the component never sees half of one.
    let partial = partial_path(&component)?;
    let built = match actor.manifest.language {
        Language::Rust => build_rust(actor, &partial),
        Language::Python => build_python(actor, &partial),
        Language::Js => build_js(actor, &partial),
    };
    if let Err(err) = built {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }
    std::fs::rename(&partial, &component).with_context(|| {
        format!(
            "cannot move {} to {}",
            partial.display(),
            component.display()
        )
    })?;
    Ok(component)
}

/// The target of a Rust actor's build: `wasm32-wasip2` produces a
/// component; a lean build's `wasm32-unknown-unknown` a core module that
/// [`lean_component`] makes one.
fn rust_target(actor: &ActorDir) -> &'static str {
    if actor.manifest.lean {
        LEAN_TARGET
    } else {
        "wasm32-wasip2"
    }
}

/// The target of a lean Rust build (`lean = true`).
const LEAN_TARGET: &str = "wasm32-unknown-unknown";

fn build_rust(actor: &ActorDir, component: &Path) -> Result<()> {
    let target = rust_target(actor);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(&actor.dir)
        .args([
            "build",
            "--release",
            "--target",
            target,
            "--message-format=json-render-diagnostics",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo (is Rust installed?)")?;
    if !output.status.success() {
        if !target_installed(target) {
            bail!(
                "cargo build failed ({}): the {target} target is not installed; \
                 rustup target add {target}",
                output.status
            );
        }
        bail!("cargo build failed ({})", output.status);
    }
    let built = wasm_artifact(&String::from_utf8_lossy(&output.stdout)).with_context(|| {
        format!(
            "cargo built no .wasm: is {}/Cargo.toml a `crate-type = [\"cdylib\"]` library?",
            actor.dir.display()
        )
    })?;
    if !actor.manifest.lean {
        std::fs::copy(&built, component).with_context(|| {
            format!("cannot copy {} to {}", built.display(), component.display())
        })?;
        return Ok(());
    }
    let module =
        std::fs::read(&built).with_context(|| format!("cannot read {}", built.display()))?;
    let bytes = lean_component(&module)
        .with_context(|| format!("cannot make {} a component", built.display()))?;
    std::fs::write(component, bytes)
        .with_context(|| format!("cannot write {}", component.display()))?;
    Ok(())
}

/// True when rustc's sysroot has `target`'s standard library (what
/// `rustup target add` installs). True as well when that cannot be told,
/// so that the caller does not blame a missing target wrongly.
fn target_installed(target: &str) -> bool {
    let Ok(output) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return true;
    };
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    sysroot.is_empty()
        || Path::new(&sysroot)
            .join("lib/rustlib")
            .join(target)
            .exists()
}

/// Makes a lean build's core module a component, as `wasm-tools component
/// new` does: wit-component reads the component type that wit-bindgen
/// embedded in the module (a custom section) and wraps the module in a
/// component that imports only what the module calls.
///
/// Errors: the module imports something the embedded type does not
/// declare (WASI, say, from a C library; or wasm-bindgen's `__wbindgen_*`,
/// which crates that take this target for a browser pull in, such as
/// chrono's default `wasmbind` feature); or the component exports no
/// `handle` (the crate does not use wactor-sdk's `export_actor!`).
pub fn lean_component(module: &[u8]) -> Result<Vec<u8>> {
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|encoder| encoder.encode())
        .map_err(|err| {
            let text = format!("{err:#}");
            if text.contains("__wbindgen") {
                anyhow::anyhow!(
                    "{text}\n(a dependency uses wasm-bindgen, which is for browsers: turn off \
                     its browser features, e.g. chrono with default-features = false and \
                     features = [\"clock\", \"std\"]; docs/actors.md, \"Lean Rust builds\")"
                )
            } else {
                anyhow::anyhow!(
                    "{text}\n(a lean actor is a wactor-sdk crate built for {LEAN_TARGET})"
                )
            }
        })?;
    if !exports_handle(&component) {
        bail!(
            "the module exports no `handle`: a lean actor is a wactor-sdk crate whose actor \
             type is exported with `wactor_sdk::export_actor!`"
        );
    }
    Ok(component)
}

/// True when `component`'s world exports a function named `handle`.
fn exports_handle(component: &[u8]) -> bool {
    let Ok(wit_component::DecodedWasm::Component(resolve, world)) =
        wit_component::decode(component)
    else {
        return false;
    };
    resolve.worlds[world]
        .exports
        .keys()
        .any(|key| resolve.name_world_key(key) == "handle")
}

/// The `.wasm` file of the cdylib artifact in cargo's JSON messages.
fn wasm_artifact(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .filter_map(|m| {
            m["filenames"].as_array().and_then(|files| {
                files
                    .iter()
                    .filter_map(|f| f.as_str())
                    .find(|f| f.ends_with(".wasm"))
                    .map(PathBuf::from)
            })
        })
        .next()
}

/// The WIT world a Python or JavaScript actor is built against: `actor`,
/// or `actor-batch` when its manifest says `batch = true` (the SDK then
/// provides `handle-batch`).
fn world(actor: &ActorDir) -> &'static str {
    if actor.manifest.batch {
        "actor-batch"
    } else {
        "actor"
    }
}

fn build_python(actor: &ActorDir, component: &Path) -> Result<()> {
    let app = actor.dir.join("app.py");
    if !app.is_file() {
        bail!(
            "a Python actor's entry module is app.py: {} does not exist",
            app.display()
        );
    }
    let tool = find_tool(
        "componentize-py",
        "WACTOR_COMPONENTIZE_PY",
        &actor.dir,
        &[".venv/bin", "venv/bin"],
        false,
    )
    .with_context(|| format!("componentize-py is not installed: {PYTHON_TOOL_INSTALL}"))?;
    check_version(&tool, COMPONENTIZE_PY_VERSION);
    let generated = sdk_files::write(&actor.dir, SdkLang::Python)?;
    let component = absolute(component)?;
    let status = Command::new(&tool)
        .current_dir(&actor.dir)
        .arg("-d")
        .arg(&generated.wit)
        .args(["-w", world(actor), "componentize", "app", "-p", "."])
        .arg("-p")
        .arg(&generated.sdk)
        .arg("-o")
        .arg(&component)
        .status()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !status.success() {
        bail!("componentize-py failed ({status})");
    }
    Ok(())
}

fn build_js(actor: &ActorDir, component: &Path) -> Result<()> {
    let entry = js_entry(&actor.dir)?;
    let componentize = find_tool(
        "componentize-js",
        "WACTOR_COMPONENTIZE_JS",
        &actor.dir,
        &[],
        true,
    )
    .with_context(|| format!("componentize-js is not installed: {JS_TOOL_INSTALL}"))?;
    let esbuild = find_tool("esbuild", "WACTOR_ESBUILD", &actor.dir, &[], true)
        .with_context(|| format!("esbuild is not installed: {JS_TOOL_INSTALL}"))?;
    check_version(&componentize, COMPONENTIZE_JS_VERSION);
    check_version(&esbuild, ESBUILD_VERSION);
    let generated = sdk_files::write(&actor.dir, SdkLang::Js)?;
    // The bundle must stay inside the directory componentize-js runs in.
    let build_dir = actor.dir.join(sdk_files::GENERATED_DIR).join("build");
    let bundle = build_dir.join("actor.js");
    let entry = if actor.manifest.batch {
        batch_entry(&build_dir, &absolute(&entry)?)?
    } else {
        entry
    };
    let status = Command::new(&esbuild)
        .current_dir(&actor.dir)
        .arg(&entry)
        .args([
            "--bundle",
            "--format=esm",
            // `browser`, not `neutral`: npm packages that declare only
            // `main` resolve.
            "--platform=browser",
            "--log-level=warning",
            "--external:wactor:*",
            "--external:wasi:*",
        ])
        .arg(format!(
            "--alias:@wactor/sdk={}",
            absolute(&generated.sdk)?.display()
        ))
        .arg(format!("--outfile={}", bundle.display()))
        .status()
        .with_context(|| format!("cannot run {}", esbuild.display()))?;
    if !status.success() {
        bail!("esbuild could not bundle {} ({status})", entry.display());
    }
    let component = absolute(component)?;
    let status = Command::new(&componentize)
        .current_dir(&actor.dir)
        .arg("--wit")
        .arg(&generated.wit)
        .args(["--world-name", world(actor), "-o"])
        .arg(&component)
        .arg(&bundle)
        .status()
        .with_context(|| format!("cannot run {}", componentize.display()))?;
    if !status.success() {
        bail!("componentize-js failed ({status})");
    }
    Ok(())
}

/// Writes `.wactor/build/batch-entry.js`, the entry module of a JS actor
/// built with `batch = true`: everything `entry` exports, plus
/// `handleBatch`, the SDK's `batch(handle)` (sdk-js/src/batch.js), so the
/// actor's own code stays as it is. Returns its path.
fn batch_entry(build_dir: &Path, entry: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(build_dir)
        .with_context(|| format!("cannot create {}", build_dir.display()))?;
    let specifier = serde_json::to_string(&entry.display().to_string())
        .context("the entry module's path as a JS string")?;
    let module = format!(
        "// Written by `wactor build` (batch = true in actor.toml): the actor's\n\
         // module, and the handle-batch export the SDK makes from its handle.\n\
         export * from {specifier};\n\
         import {{ handle }} from {specifier};\n\
         import {{ batch }} from '@wactor/sdk/src/batch.js';\n\
         export const handleBatch = batch(handle);\n"
    );
    let path = build_dir.join("batch-entry.js");
    std::fs::write(&path, module).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The entry module of a JS actor: package.json's `main`, else
/// `actor.js`, `index.js` or `src/actor.js`.
fn js_entry(dir: &Path) -> Result<PathBuf> {
    let package = dir.join("package.json");
    if let Ok(text) = std::fs::read_to_string(&package) {
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", package.display()))?;
        if let Some(main) = json["main"].as_str() {
            let path = dir.join(main);
            if path.is_file() {
                return Ok(path);
            }
            bail!(
                "{} names main {main:?}, which does not exist",
                package.display()
            );
        }
    }
    for candidate in ["actor.js", "index.js", "src/actor.js"] {
        let path = dir.join(candidate);
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!(
        "no entry module in {}: set `main` in package.json, or write actor.js",
        dir.display()
    )
}

/// Finds a tool: `$env_var`, then `extra` directories of `dir`, then (if
/// `node_modules`) `node_modules/.bin` in `dir` or a parent up to the
/// repository's root (the nearest directory holding `.git`), then PATH.
fn find_tool(
    name: &str,
    env_var: &str,
    dir: &Path,
    extra: &[&str],
    node_modules: bool,
) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    for sub in extra {
        let path = dir.join(sub).join(name);
        if path.is_file() {
            return Some(path);
        }
    }
    if node_modules {
        // `node_modules/.bin` of the actor's directory and of its parents up
        // to the repository's root (the nearest holding `.git`), never above:
        // a tool someone planted in a shared parent such as /tmp is not run.
        let start = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let root = start
            .ancestors()
            .find(|a| a.join(".git").exists())
            .unwrap_or(&start)
            .to_path_buf();
        for ancestor in start.ancestors() {
            let path = ancestor.join("node_modules").join(".bin").join(name);
            if path.is_file() {
                return Some(path);
            }
            if ancestor == root {
                break;
            }
        }
    }
    which::which(name).ok()
}

/// Warns when `tool --version` does not name `wanted`.
fn check_version(tool: &Path, wanted: &str) {
    let printed = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !printed.contains(wanted) {
        eprintln!(
            "warning: {} is {printed:?}; wactor {} is tested with {wanted}",
            tool.display(),
            env!("CARGO_PKG_VERSION")
        );
    }
}

/// Refuses a build whose `language` does not match the files in the
/// actor's directory, naming the language the files suggest (a Python actor
/// with no `language` otherwise fails in cargo with a message about Rust).
fn check_language(actor: &ActorDir) -> Result<()> {
    let has = |name: &str| actor.dir.join(name).is_file();
    let (needs, found) = match actor.manifest.language {
        Language::Rust => ("Cargo.toml", has("Cargo.toml")),
        Language::Python => ("app.py", has("app.py")),
        Language::Js => (
            "package.json or an entry module",
            js_entry(&actor.dir).is_ok(),
        ),
    };
    if found {
        return Ok(());
    }
    let suggestion = if has("app.py") {
        Some("python")
    } else if has("package.json") || has("actor.js") || has("index.js") {
        Some("js")
    } else if has("Cargo.toml") {
        Some("rust")
    } else {
        None
    };
    let language = actor.manifest.language;
    match suggestion {
        Some(other) => bail!(
            "{} says language = \"{language}\"{}, but {} has no {needs}; its files look like \
             {other}: set language = \"{other}\"",
            actor.manifest_path.display(),
            if language.is_rust() { " (the default)" } else { "" },
            actor.dir.display()
        ),
        None => bail!(
            "{} has no {needs}, which a {language} actor needs (`wactor new NAME --lang {language}` \
             shows the layout)",
            actor.dir.display()
        ),
    }
}

/// Whether a source file under `dir` was modified after `time`: every file
/// but built components (`*.wasm`) and generated or installed trees
/// (`.wactor`, `target`, `node_modules`, `__pycache__`, dot-directories).
/// Unreadable entries count as not newer.
pub fn sources_newer_than(dir: &Path, time: std::time::SystemTime) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if path.is_dir() {
            let generated = name.starts_with('.')
                || ["target", "node_modules", "__pycache__"].contains(&name.as_ref());
            !generated && sources_newer_than(&path, time)
        } else {
            !name.ends_with(".wasm")
                && !name.ends_with(".partial")
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| modified > time)
        }
    })
}

/// `<dir>/.<file name>.<pid>.partial` beside `component`.
fn partial_path(component: &Path) -> Result<PathBuf> {
    let name = component
        .file_name()
        .with_context(|| format!("{} is not a file name", component.display()))?;
    let dir = component.parent().unwrap_or(Path::new(""));
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(dir.join(format!(
        ".{}.{}.partial",
        name.to_string_lossy(),
        std::process::id()
    )))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cdylib_wasm_is_found_in_cargos_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"filenames":["/t/libserde.rlib"]}
not json
{"reason":"compiler-artifact","target":{"kind":["cdylib","rlib"]},"filenames":["/t/wasm32-wasip2/release/fraud_flagger.wasm","/t/libfraud_flagger.rlib"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            wasm_artifact(messages),
            Some(PathBuf::from("/t/wasm32-wasip2/release/fraud_flagger.wasm"))
        );
        assert_eq!(wasm_artifact("{\"reason\":\"build-finished\"}"), None);
    }

    #[test]
    fn only_source_files_make_a_component_stale() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/actor.js"), "").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let built = std::time::SystemTime::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!sources_newer_than(dir.path(), built));
        for generated in [".wactor/sdk/x.js", "node_modules/a/b.js", "target/x.rs"] {
            let path = dir.path().join(generated);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        std::fs::write(dir.path().join("x.wasm"), "").unwrap();
        assert!(
            !sources_newer_than(dir.path(), built),
            "generated files are not sources"
        );
        std::fs::write(dir.path().join("src/actor.js"), "// edited").unwrap();
        assert!(sources_newer_than(dir.path(), built));
    }

    #[test]
    fn the_js_entry_is_main_or_a_conventional_name() {
        let dir = tempfile::tempdir().unwrap();
        assert!(js_entry(dir.path()).is_err());
        std::fs::write(dir.path().join("actor.js"), "").unwrap();
        assert_eq!(js_entry(dir.path()).unwrap(), dir.path().join("actor.js"));
        std::fs::write(dir.path().join("package.json"), r#"{"main": "src/x.js"}"#).unwrap();
        assert!(js_entry(dir.path())
            .unwrap_err()
            .to_string()
            .contains("src/x.js"));
    }
}
