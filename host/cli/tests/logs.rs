//! `wactor logs` against a real `wactor dev`: an actor's own log lines
//! come back with their event's coordinates, version and outcome, and
//! `--follow` prints a new event's line within a second or two.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wactor dev` in `dir` (running the echo example, which logs a
/// debug line per event, on topic `signups`) and waits for its banner.
fn start_dev(dir: &Path, api: &str) -> (Killed, String) {
    std::fs::write(
        dir.join("actor.toml"),
        format!(
            "name = \"echoer\"\ncomponent = \"{}\"\ntopics = [\"signups\"]\n\n[config]\nout_topic = \"signups.echo\"\n",
            wactor_tests::guest("echo").display()
        ),
    )
    .unwrap();
    let stdout: PathBuf = dir.join("dev.out");
    let child = Command::new(env!("CARGO_BIN_EXE_wactor"))
        .current_dir(dir)
        .args(["dev", "--actors", ".", "--no-samples", "--no-build"])
        .args([
            "--wallet-port",
            "0",
            "--gateway-port",
            "0",
            "--partitions",
            "1",
        ])
        .args(["--api", api])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("WACTOR_LOG")
        .env_remove("WACTOR_API")
        .env_remove("WACTOR_BROKERS")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(dir.join("dev.err")).unwrap())
        .spawn()
        .unwrap();
    let mut dev = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = std::fs::read_to_string(&stdout).unwrap_or_default();
        if out.contains("Ctrl-C stops it") && out.ends_with("\n\n") {
            return (dev, out);
        }
        if let Some(status) = dev.0.try_wait().unwrap() {
            panic!(
                "wactor dev exited with {status}: {}",
                std::fs::read_to_string(dir.join("dev.err")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "wactor dev did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn produce(brokers: &str, key: &str) {
    let produced = Command::new(env!("CARGO_BIN_EXE_wactor"))
        .args(["produce", "--topic", "signups", "--key", key, "hi"])
        .env("WACTOR_BROKERS", brokers)
        .output()
        .unwrap();
    assert!(produced.status.success(), "{produced:?}");
}

/// `wactor logs ARGS --json --api ...`: the objects it printed.
fn logs_json(api: &str, args: &[&str]) -> (Option<i32>, Vec<serde_json::Value>) {
    let output = Command::new(env!("CARGO_BIN_EXE_wactor"))
        .arg("logs")
        .args(args)
        .args(["--json", "--api", &format!("http://{api}")])
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (output.status.code(), lines)
}

#[test]
fn logs_shows_an_actors_lines_with_their_events_and_follows_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let api = format!("127.0.0.1:{}", free_port());
    let (_dev, banner) = start_dev(dir.path(), &api);
    let brokers = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("Kafka broker (in-process):"))
        .map(|b| b.trim().to_string())
        .expect("the banner names the broker");

    // Unknown actor: exit code 3 (404).
    let (code, _) = logs_json(&api, &["nobody"]);
    assert_eq!(code, Some(3));

    produce(&brokers, "user-1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        let (code, lines) = logs_json(&api, &["echoer"]);
        assert_eq!(code, Some(0));
        if let Some(line) = lines.into_iter().next() {
            break line;
        }
        assert!(Instant::now() < deadline, "no log line of echoer");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(line["topic"], "signups", "{line}");
    assert_eq!(line["partition"], 0, "{line}");
    assert_eq!(line["offset"], 0, "{line}");
    assert_eq!(line["key"], "user-1", "{line}");
    assert_eq!(line["attempt"], 1, "{line}");
    assert_eq!(line["version"], 1, "{line}");
    assert_eq!(line["level"], "debug", "{line}");
    assert_eq!(line["outcome"], "done", "{line}");
    assert_eq!(line["sequence"], 1, "{line}");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .starts_with("echoing 2 bytes"),
        "{line}"
    );
    // The level filter: echo logs at debug only.
    let (_, warn) = logs_json(&api, &["echoer", "--level", "warn"]);
    assert!(warn.is_empty(), "{warn:?}");
    let (_, recent) = logs_json(&api, &["echoer", "--since", "10m"]);
    assert_eq!(recent.len(), 1);

    // --follow prints a new event's line soon after it is handled.
    let mut follow = Killed(
        Command::new(env!("CARGO_BIN_EXE_wactor"))
            .args(["logs", "echoer", "--follow", "--json"])
            .args(["--api", &format!("http://{api}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (lines_tx, lines_rx) = mpsc::channel();
    let stdout = follow.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let first: serde_json::Value =
        serde_json::from_str(&lines_rx.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(first["key"], "user-1");
    produce(&brokers, "user-2");
    // Once the host has the line, --follow prints it within its poll
    // interval (300 ms) and a margin.
    let deadline = Instant::now() + Duration::from_secs(30);
    while logs_json(&api, &["echoer"]).1.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second event was not handled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second: serde_json::Value = serde_json::from_str(
        &lines_rx
            .recv_timeout(Duration::from_millis(1500))
            .expect("--follow printed the new line within 1.5 s of the host having it"),
    )
    .unwrap();
    assert_eq!(second["key"], "user-2", "{second}");
    assert_eq!(second["offset"], 1, "{second}");
    assert_eq!(second["sequence"], 2, "{second}");
}
