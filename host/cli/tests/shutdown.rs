//! A clean shutdown of `wactor serve` (SIGTERM, SIGINT) against a `wactor
//! broker` process: exit 0 and no ERROR line in its log; and a stop after
//! the broker died is bounded. (`wactor dev`'s Ctrl-C is checked in
//! `dev.rs`.)

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wactor_tests::kafka::{write_actor, ServeProcess};

/// A `wactor broker` process, killed when dropped.
struct Broker {
    child: Child,
    address: String,
}

impl Broker {
    fn start() -> Broker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wactor"))
            .args(["broker", "--topic", "signups:2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        Broker {
            child,
            address: address.trim().to_string(),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `wactor serve` of one actor on `broker`, in a new directory (its log
/// is `host.log` there), once its partitions are assigned.
fn serving(broker: &Broker) -> (ServeProcess, tempfile::TempDir) {
    assert!(
        !broker.address.is_empty(),
        "wactor broker printed no address"
    );
    let dir = tempfile::tempdir().unwrap();
    write_actor(
        dir.path(),
        "greeter",
        "fixture-noop",
        "name = \"greeter\"\ntopics = [\"signups\"]\n",
    );
    let mut serve = ServeProcess::start(dir.path(), &broker.address);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !log_of(&dir).contains("partitions assigned") {
        if let Some(status) = serve.child.try_wait().unwrap() {
            panic!("wactor serve exited with {status}:\n{}", log_of(&dir));
        }
        assert!(
            Instant::now() < deadline,
            "serve did not start:\n{}",
            log_of(&dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (serve, dir)
}

fn log_of(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("host.log")).unwrap_or_default()
}

/// Sends SIG`signal` and waits up to `within` for the exit; returns the
/// exit status and the log.
fn stop(
    serve: &mut ServeProcess,
    dir: &tempfile::TempDir,
    signal: &str,
    within: Duration,
) -> (std::process::ExitStatus, String) {
    let killed = Command::new("kill")
        .args([&format!("-{signal}"), &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop within {within:?} of SIG{signal}:\n{}",
            log_of(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, log_of(dir))
}

fn serve_stops_cleanly_on(signal: &str) {
    let broker = Broker::start();
    let (mut serve, dir) = serving(&broker);
    let (status, text) = stop(&mut serve, &dir, signal, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "SIG{signal}:\n{text}");
    assert!(text.contains("host stopped"), "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        errors.is_empty(),
        "SIG{signal}: ERROR lines:\n{}",
        errors.join("\n")
    );
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    serve_stops_cleanly_on("TERM");
}

#[test]
fn serve_stops_cleanly_on_sigint() {
    serve_stops_cleanly_on("INT");
}

/// The brokers are gone when the host is told to stop: each step that
/// needs them gives up within its bound (leave record 5 s, drain, flush
/// 10 s) instead of the producer's message timeout (5 minutes: the stop
/// took 300 s before the leave record was bounded).
#[test]
fn serve_stops_within_its_bounds_when_the_brokers_are_gone() {
    let broker = Broker::start();
    let (mut serve, dir) = serving(&broker);
    drop(broker);
    // The bounds add up to well under two minutes (the drain bound of the
    // test config is 5 s); five minutes means one of them is missing.
    let (status, text) = stop(&mut serve, &dir, "TERM", Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains("host stopped"), "{text}");
}
