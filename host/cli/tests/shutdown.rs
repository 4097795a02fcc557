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

fn serve_stops_cleanly_on(signal: &str) {
    let broker = Broker::start();
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
    let log = dir.path().join("host.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !read_log().contains("partitions assigned") {
        if let Some(status) = serve.child.try_wait().unwrap() {
            panic!("wactor serve exited with {status}:\n{}", read_log());
        }
        assert!(
            Instant::now() < deadline,
            "serve did not start:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = Command::new("kill")
        .args([&format!("-{signal}"), &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop on SIG{signal}:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = read_log();
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
    let dir = tempfile::tempdir().unwrap();
    write_actor(
        dir.path(),
        "greeter",
        "fixture-noop",
        "name = \"greeter\"\ntopics = [\"signups\"]\n",
    );
    let mut serve = ServeProcess::start(dir.path(), &broker.address);
    let log = dir.path().join("host.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !read_log().contains("partitions assigned") {
        if let Some(status) = serve.child.try_wait().unwrap() {
            panic!("wactor serve exited with {status}:\n{}", read_log());
        }
        assert!(
            Instant::now() < deadline,
            "serve did not start:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(broker);
    let killed = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The bounds add up to well under two minutes (the drain bound of the
    // test config is 5 s); five minutes means one of them is missing.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop within 2 minutes of SIGTERM with the broker gone:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = read_log();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains("host stopped"), "{text}");
}
