//! A closed stdout ends `wactor` quietly, as it ends a C filter (`yes |
//! head`): killed by SIGPIPE, no panic message, nothing on stderr about it.
//! Real processes, with stdout a pipe whose reader is gone: before the first
//! write (`invoke`, a table verb), and after the first line (`consume |
//! head -1`).

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use wactor_kafka::OutRecord;
use wactor_tests::kafka::{produce_raw, Kafka};
use wactor_tests::{guest, Reply, TestServer};

fn wactor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wactor"))
}

/// A pipe's write end whose read end is already closed: the first write to
/// it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe(2)");
    // SAFETY: both descriptors were just returned by pipe(2) and are owned
    // here only.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

/// Runs `command` with stdout a closed pipe.
fn run_into_closed_pipe(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[track_caller]
fn assert_ended_quietly(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{what}: a closed stdout must end wactor quietly; stderr:\n{stderr}"
    );
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGPIPE),
        "{what}: ended as SIGPIPE's default action ends a process ({:?}); stderr:\n{stderr}",
        output.status
    );
}

#[test]
fn invoke_into_a_closed_pipe_ends_quietly() {
    let event = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/echo/event.json");
    let output = run_into_closed_pipe(
        wactor()
            .arg("invoke")
            .arg(guest("echo"))
            .arg("--event")
            .arg(event),
    );
    assert_ended_quietly(&output, "wactor invoke");
}

#[test]
fn a_table_verb_into_a_closed_pipe_ends_quietly() {
    let server = TestServer::start().unwrap();
    server.reply(Reply::status(200).body(r#"{"items":[]}"#));
    let output = run_into_closed_pipe(wactor().args(["actors", "--api", &server.url()]));
    assert_ended_quietly(&output, "wactor actors");

    server.reply(Reply::status(200).body(r#"{"items":[]}"#));
    let output = run_into_closed_pipe(wactor().args(["actors", "--json", "--api", &server.url()]));
    assert_ended_quietly(&output, "wactor actors --json");
}

/// `wactor consume t --from-beginning | head -1`: more records than a pipe
/// holds, the reader gone after the first line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_piped_into_head_ends_quietly() {
    let kafka = Kafka::start();
    kafka.topic("many", 1);
    let payload = vec![b'x'; 1000];
    let records: Vec<OutRecord> = (0..300)
        .map(|i| OutRecord {
            topic: "many".into(),
            partition: Some(0),
            key: Some(format!("k{i}").into_bytes()),
            payload: Some(payload.clone()),
            headers: Vec::new(),
        })
        .collect();
    produce_raw(&kafka.settings(), &records).await;

    let mut child = wactor()
        .args(["consume", "many", "--from-beginning"])
        .env("WACTOR_BROKERS", &kafka.brokers)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    head.read_line(&mut first).unwrap();
    assert!(first.starts_with("--- many [0] offset 0"), "{first}");
    drop(head);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_ended_quietly(&output, "wactor consume | head -1");
}
