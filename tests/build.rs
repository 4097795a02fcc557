//! Builds every example and fixture actor to `wasm32-wasip2` (release) with
//! a nested `cargo build`, as Spin's test-components and wasmtime's
//! test-programs do, and tells the crate where the components are through
//! `WACTOR_GUESTS_DIR`.
//!
//! The guests of [`LEAN_GUESTS`] are built a second time as lean actors
//! (`wasm32-unknown-unknown`, made components with `wit-component`, as
//! `wactor build` does for `lean = true`): `<name with _>_lean.wasm` in the
//! same directory.
//!
//! The nested build uses its own target directory (`<target>/guests`): the
//! outer build holds the lock of the main one, so sharing it would
//! deadlock. Variables that the outer cargo sets for *host* code (rustflags,
//! wrappers such as clippy-driver, profile overrides, the jobserver) are
//! removed so they do not leak into the guest build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Packages built as guests; their components are `<name with _>.wasm`.
const GUESTS: &[&str] = &[
    "echo",
    "payment-reversal",
    "daily-settlement",
    "search-indexer",
    "fixture-trap",
    "fixture-loop",
    "fixture-memory-hog",
    "fixture-recurse",
    "fixture-emit-then-retry",
    "fixture-flaky",
    "fixture-noop",
    "fixture-sleep",
    "fixture-scripted",
    "fixture-checker",
    "fixture-wrong-world",
    "fixture-hostile",
    "fixture-big-data",
    "fixture-nulls",
    "fixture-contract-v01",
    "fixture-noop-batch",
    "fixture-batch",
    "fixture-batch-hostile",
];

const TARGET: &str = "wasm32-wasip2";

/// Guests also built lean; their components are `<name with _>_lean.wasm`.
const LEAN_GUESTS: &[&str] = &["fixture-noop", "fixture-trap", "fixture-memory-hog", "echo"];

/// The target of a lean build.
const LEAN_TARGET: &str = "wasm32-unknown-unknown";

/// Variables of the outer build that must not reach the guest build.
const LEAKY_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
];

fn main() {
    if let Err(message) = run() {
        eprintln!("\nerror: {message}\n");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .ok_or("the tests crate has no parent directory")?
        .to_path_buf();
    for path in ["sdk", "wit", "examples", "tests/fixtures"] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    check_target(TARGET)?;
    check_target(LEAN_TARGET)?;

    let target_root = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => absolute(&workspace, Path::new(&dir)),
        None => workspace.join("target"),
    };
    let target_dir = target_root.join("guests");

    cargo_build(&workspace, &target_dir, TARGET, GUESTS)?;
    let guests_dir = target_dir.join(TARGET).join("release");
    for guest in GUESTS {
        let wasm = guests_dir.join(format!("{}.wasm", guest.replace('-', "_")));
        if !wasm.exists() {
            return Err(format!(
                "the guest build did not produce {}",
                wasm.display()
            ));
        }
    }

    cargo_build(&workspace, &target_dir, LEAN_TARGET, LEAN_GUESTS)?;
    let lean_dir = target_dir.join(LEAN_TARGET).join("release");
    for guest in LEAN_GUESTS {
        let name = guest.replace('-', "_");
        let module = lean_dir.join(format!("{name}.wasm"));
        let bytes = std::fs::read(&module)
            .map_err(|err| format!("cannot read {}: {err}", module.display()))?;
        let component = wit_component::ComponentEncoder::default()
            .validate(true)
            .module(&bytes)
            .and_then(|encoder| encoder.encode())
            .map_err(|err| format!("cannot make {} a component: {err:#}", module.display()))?;
        let out = guests_dir.join(format!("{name}_lean.wasm"));
        std::fs::write(&out, component)
            .map_err(|err| format!("cannot write {}: {err}", out.display()))?;
    }
    println!("cargo:rustc-env=WACTOR_GUESTS_DIR={}", guests_dir.display());
    Ok(())
}

/// Runs `cargo build --release --target TARGET` of `guests` into
/// `target_dir`, without the outer build's variables.
fn cargo_build(
    workspace: &Path,
    target_dir: &Path,
    target: &str,
    guests: &[&str],
) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--target", target, "--target-dir"])
        .arg(target_dir);
    for guest in guests {
        cmd.args(["-p", guest]);
    }
    for var in LEAKY_VARS {
        cmd.env_remove(var);
    }
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("CARGO_PROFILE_") {
            cmd.env_remove(var);
        }
    }
    // A lean guest profile: no debug info makes components small and quick
    // for wasmtime to compile; symbol names stay for readable traps.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .env("CARGO_TERM_COLOR", "never")
        // Never let cargo's stdout (reserved for build-script directives)
        // through.
        .stdout(Stdio::null())
        .stderr(Stdio::piped());

    let output = cmd
        .output()
        .map_err(|err| format!("cannot run {}: {err}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        return Err(format!(
            "building the guest actors for {target} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Fails with the command to run when `target`'s standard library is not
/// installed.
fn check_target(target: &str) -> Result<(), String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|err| format!("cannot run rustc: {err}"))?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let std_dir = Path::new(&sysroot).join("lib/rustlib").join(target);
    if !std_dir.exists() {
        return Err(format!(
            "the {target} target is not installed (no {}); the example and fixture actors \
             are built for it. Install it with:\n\n    rustup target add {target}\n",
            std_dir.display()
        ));
    }
    Ok(())
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set (run through cargo)"))
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}
