//! Integration tests of the `wactor` binary's argument handling. Besides
//! checking the CLI, their presence makes `cargo test --workspace` build the
//! `wactor` binary before any test runs, which the end-to-end tests of the
//! `wactor-tests` crate rely on.

use std::process::Command;

fn wactor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wactor"))
}

#[test]
fn help_lists_the_invoke_command() {
    let output = wactor()
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("invoke"), "{text}");
}

#[test]
fn invoke_of_a_missing_component_fails_with_exit_1_and_names_the_file() {
    let dir = std::env::temp_dir();
    let event = dir.join(format!("wactor-cli-test-{}.json", std::process::id()));
    std::fs::write(&event, "{}").unwrap_or_else(|e| panic!("{e}"));
    let output = wactor()
        .args(["invoke", "/nonexistent/actor.wasm", "--event"])
        .arg(&event)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&event);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read the component /nonexistent/actor.wasm"),
        "{stderr}"
    );
}
