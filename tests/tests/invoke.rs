//! End-to-end tests of `wactor invoke`: the built binary on the examples
//! (with their `event.json`) and the fixture actors, checking exit codes,
//! the printed outcome, emits and state, and load errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use wactor_tests::{guest, wactor_bin, Reply, TestServer};

/// Exit codes of `wactor invoke`.
const DONE: i32 = 0;
const LOAD_ERROR: i32 = 1;
const RETRY: i32 = 10;
const DEAD: i32 = 11;
const TRAP: i32 = 12;

fn example_event(example: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(example)
        .join("event.json")
}

fn invoke(component: &Path, event: &Path, extra: &[&str]) -> Output {
    Command::new(wactor_bin())
        .arg("invoke")
        .arg(component)
        .arg("--event")
        .arg(event)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run wactor: {e}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

fn write_event(dir: &Path, name: &str, json: serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, json.to_string()).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn echo_example_is_done_and_emits_to_the_echo_topic() {
    let output = invoke(&guest("echo"), &example_event("echo"), &[]);
    assert_exit(&output, DONE);
    let text = stdout(&output);
    assert!(text.starts_with("outcome: done"), "{text}");
    assert!(text.contains("-> orders.echo key=order-1001"), "{text}");
}

#[test]
fn echo_json_output_has_the_outcome_and_the_record() {
    let output = invoke(
        &guest("echo"),
        &example_event("echo"),
        &["--json", "--config", "out_topic=copies"],
    );
    assert_exit(&output, DONE);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output))
        .unwrap_or_else(|e| panic!("{e}: {}", stdout(&output)));
    assert_eq!(json["result"]["outcome"], "done", "{json}");
    assert_eq!(json["emits"][0]["topic"], "copies");
    assert_eq!(json["emits"][0]["key"]["text"], "order-1001");
}

#[test]
fn search_indexer_example_indexes_the_post_and_its_state_persists() {
    let state_dir = tempdir();
    let state_arg = state_dir.path().to_str().unwrap_or_default().to_string();
    let first = invoke(
        &guest("search-indexer"),
        &example_event("search-indexer"),
        &["--state-dir", &state_arg],
    );
    assert_exit(&first, DONE);
    let text = stdout(&first);
    assert!(text.contains("-> search.index.changed"), "{text}");
    assert!(text.contains("set post:P-1"), "{text}");
    assert!(text.contains("set term:camry"), "{text}");

    // The same event again finds the stored version: a stale duplicate.
    let again = invoke(
        &guest("search-indexer"),
        &example_event("search-indexer"),
        &["--state-dir", &state_arg],
    );
    assert_exit(&again, DONE);
    let text = stdout(&again);
    assert!(
        text.contains("ignoring stale post.created of post P-1 v1"),
        "{text}"
    );
    assert!(!text.contains("state changes"), "{text}");
}

#[test]
fn a_null_payload_in_the_event_file_is_a_tombstone_and_an_emitted_tombstone_prints_as_null() {
    let dir = tempdir();
    let event = write_event(
        dir.path(),
        "tombstone.json",
        serde_json::json!({"topic": "users", "key": "user-7", "payload": null,
            "headers": {"emit-tombstone": "users.compacted", "gone": null}}),
    );
    let output = invoke(&guest("fixture-nulls"), &event, &["--json"]);
    assert_exit(&output, DONE);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output))
        .unwrap_or_else(|e| panic!("{e}: {}", stdout(&output)));
    let emits = &json["emits"];
    assert_eq!(emits[0]["topic"], "users.compacted");
    assert_eq!(emits[0]["payload"], serde_json::Value::Null, "{json}");
    let report: serde_json::Value =
        serde_json::from_str(emits[1]["payload"]["text"].as_str().unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(report["tombstone"], true, "{json}");
    assert_eq!(
        report["headers"],
        serde_json::json!([["emit-tombstone", "users.compacted"], ["gone", null]])
    );

    let empty = write_event(
        dir.path(),
        "empty.json",
        serde_json::json!({"key": "user-8"}),
    );
    let output = invoke(&guest("fixture-nulls"), &empty, &[]);
    assert_exit(&output, DONE);
    assert!(
        stdout(&output).contains("\"tombstone\":false"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn search_indexer_declares_a_malformed_event_dead() {
    let dir = tempdir();
    let event = write_event(
        dir.path(),
        "bad.json",
        serde_json::json!({"payload_text": "{oops"}),
    );
    let output = invoke(&guest("search-indexer"), &event, &[]);
    assert_exit(&output, DEAD);
    assert!(
        stdout(&output).contains("outcome: dead: malformed JSON payload"),
        "{}",
        stdout(&output)
    );
}

fn payment_args(server: &TestServer, state_dir: &Path) -> Vec<String> {
    vec![
        "--config".into(),
        format!("wallet_url={}", server.url()),
        "--allow-host".into(),
        server.host_port(),
        "--state-dir".into(),
        state_dir.display().to_string(),
    ]
}

fn invoke_payment(server: &TestServer, state_dir: &Path, event: &Path) -> Output {
    let args = payment_args(server, state_dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    invoke(&guest("payment-reversal"), event, &args)
}

#[test]
fn payment_reversal_example_reverses_once_across_invocations() {
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    let state_dir = tempdir();
    let first = invoke_payment(
        &server,
        state_dir.path(),
        &example_event("payment-reversal"),
    );
    assert_exit(&first, DONE);
    let text = stdout(&first);
    assert!(text.contains("-> wallet.reversal.completed"), "{text}");
    assert!(text.contains("set reversed:B-1001"), "{text}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("idempotency-key"), Some("B-1001"));

    // The marker persisted in --state-dir: the second delivery does nothing.
    let second = invoke_payment(
        &server,
        state_dir.path(),
        &example_event("payment-reversal"),
    );
    assert_exit(&second, DONE);
    assert!(
        !stdout(&second).contains("record(s):"),
        "{}",
        stdout(&second)
    );
    assert_eq!(server.requests().len(), 1, "no second wallet call");
}

#[test]
fn payment_reversal_exits_10_on_a_503_and_11_on_a_404() {
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    server.reply(Reply::status(503).header("Retry-After", "30"));
    server.reply(Reply::status(404).body("no such reservation"));
    let state_dir = tempdir();

    let busy = invoke_payment(
        &server,
        state_dir.path(),
        &example_event("payment-reversal"),
    );
    assert_exit(&busy, RETRY);
    assert!(
        stdout(&busy).contains("outcome: retry after 30000 ms: wallet answered 503"),
        "{}",
        stdout(&busy)
    );

    let missing = invoke_payment(
        &server,
        state_dir.path(),
        &example_event("payment-reversal"),
    );
    assert_exit(&missing, DEAD);
    assert!(
        stdout(&missing).contains("wallet refused the reversal with 404"),
        "{}",
        stdout(&missing)
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn payment_reversal_is_denied_a_host_that_is_not_allowed() {
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    let output = invoke(
        &guest("payment-reversal"),
        &example_event("payment-reversal"),
        &["--config", &format!("wallet_url={}", server.url())],
    );
    assert_exit(&output, RETRY);
    assert!(stdout(&output).contains("denied"), "{}", stdout(&output));
    assert!(server.requests().is_empty());
}

#[test]
fn a_panicking_actor_exits_12_with_its_message() {
    let output = invoke(&guest("fixture-trap"), &example_event("echo"), &[]);
    assert_exit(&output, TRAP);
    let text = stdout(&output);
    assert!(text.contains("outcome: trap (panic)"), "{text}");
    assert!(text.contains("fixture trap: boom at offset 42"), "{text}");
}

#[test]
fn an_endless_loop_is_stopped_at_its_deadline() {
    let started = Instant::now();
    let output = invoke(
        &guest("fixture-loop"),
        &example_event("echo"),
        &["--timeout-ms", "300"],
    );
    let took = started.elapsed();
    assert_exit(&output, TRAP);
    assert!(
        stdout(&output).contains("outcome: trap (deadline exceeded)"),
        "{}",
        stdout(&output)
    );
    // Generous: process start and compiling the component are included.
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn unbounded_allocation_is_stopped_at_the_memory_limit() {
    let output = invoke(
        &guest("fixture-memory-hog"),
        &example_event("echo"),
        &["--memory-mib", "16"],
    );
    assert_exit(&output, TRAP);
    assert!(
        stdout(&output).contains("outcome: trap (memory limit exceeded)"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn effects_of_a_retried_call_are_dropped_and_not_saved() {
    let state_dir = tempdir();
    let state_arg = state_dir.path().display().to_string();
    let output = invoke(
        &guest("fixture-emit-then-retry"),
        &example_event("echo"),
        &["--state-dir", &state_arg],
    );
    assert_exit(&output, RETRY);
    let text = stdout(&output);
    assert!(text.contains("outcome: retry: emitted and wrote"), "{text}");
    assert!(!text.contains("record(s):"), "{text}");
    assert!(!text.contains("state changes"), "{text}");
    assert!(
        text.contains("effects of a call that is not `done` are dropped"),
        "{text}"
    );
}

#[test]
fn a_file_that_is_not_wasm_is_refused_with_exit_1() {
    let dir = tempdir();
    let path = dir.path().join("garbage.wasm");
    std::fs::write(&path, b"definitely not wasm").unwrap_or_else(|e| panic!("{e}"));
    let output = invoke(&path, &example_event("echo"), &[]);
    assert_exit(&output, LOAD_ERROR);
    assert!(
        stderr(&output).contains("not a WebAssembly file"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_core_module_is_refused_with_exit_1_and_a_hint() {
    let dir = tempdir();
    let path = dir.path().join("core.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap_or_else(|e| panic!("{e}"));
    let output = invoke(&path, &example_event("echo"), &[]);
    assert_exit(&output, LOAD_ERROR);
    let text = stderr(&output);
    assert!(
        text.contains("core WebAssembly module, not a component"),
        "{text}"
    );
    assert!(text.contains("wasm32-wasip2"), "{text}");
}

#[test]
fn a_component_of_another_world_is_refused_with_exit_1_naming_handle() {
    let output = invoke(&guest("fixture-wrong-world"), &example_event("echo"), &[]);
    assert_exit(&output, LOAD_ERROR);
    let text = stderr(&output);
    assert!(text.contains("handle"), "{text}");
    assert!(text.contains("wactor:actor"), "{text}");
}

#[test]
fn an_invalid_event_file_is_refused_with_exit_1() {
    let dir = tempdir();
    let event = write_event(dir.path(), "typo.json", serde_json::json!({"paylod": {}}));
    let output = invoke(&guest("echo"), &event, &[]);
    assert_exit(&output, LOAD_ERROR);
    assert!(stderr(&output).contains("typo.json"), "{}", stderr(&output));
}

#[test]
fn an_invalid_manifest_is_refused_naming_the_file_once_and_the_field() {
    let dir = tempdir();
    std::fs::write(dir.path().join("actor.toml"), "name = \"x\"\ntopics = []\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(wactor_bin())
        .arg("invoke")
        .arg(dir.path())
        .args(["--payload", "{}"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_exit(&output, LOAD_ERROR);
    let text = stderr(&output);
    assert_eq!(text.matches("actor.toml").count(), 1, "{text}");
    assert!(text.contains("topics"), "{text}");
}
