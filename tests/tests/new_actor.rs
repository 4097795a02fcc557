//! From an empty directory outside the repository to a live actor, as a new
//! user would, in each language (issue 13): five commands after installing
//! wactor and the language's tool chain:
//!
//! 1. `wactor new fraud-flagger --lang L`
//! 2. `wactor build` (in the new directory)
//! 3. `wactor invoke` (on its event.json)
//! 4. `wactor dev --actors .` (a local broker and host; it sends event.json)
//! 5. `wactor produce --topic payments ...`
//!
//! and the produced event is seen handled in `wactor dev`'s own output. The
//! test then also reads `payments.out` with `wactor consume` to check what
//! the actor emitted, and stops `wactor dev` with Ctrl-C (SIGINT).
//!
//! Only the ports (`--api 127.0.0.1:0`, no stand-in services) and the
//! cache directories (so that Rust and the compiled components are not
//! built from scratch each run) differ from what a user types.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wactor_tests::wactor_bin;

const WAIT: Duration = Duration::from_secs(180);

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// `wactor ARGS` in `dir`, with the shared caches.
fn wactor(dir: &Path) -> Command {
    let mut command = Command::new(wactor_bin());
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("CARGO_TARGET_DIR", target_dir().join("new-actors"))
        .env(
            "WACTOR_CACHE_DIR",
            target_dir().join("new-actors-artifacts"),
        )
        .env_remove("WACTOR_BROKERS")
        .env_remove("WACTOR_API");
    command
}

fn ok(output: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `wactor dev`'s output lines (stdout and stderr), collected as they come.
struct Dev {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Dev {
    fn start(dir: &Path) -> Dev {
        let mut child = wactor(dir)
            .args(["dev", "--actors", ".", "--api", "127.0.0.1:0"])
            .args(["--wallet-port", "0", "--gateway-port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Dev { child, lines }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line for which `pick` returns something.
    fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(found) = self.lines.lock().unwrap().iter().find_map(|l| pick(l)) {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "wactor dev exited ({status}) before {what}:\n{}",
                    self.text()
                );
            }
            assert!(
                started.elapsed() < WAIT,
                "no {what} from wactor dev:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGINT, as Ctrl-C; the exit status.
    fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return (status, self.text());
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("wactor dev did not stop on SIGINT:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broker address in `wactor dev`'s banner.
fn brokers_in(line: &str) -> Option<String> {
    for marker in ["WACTOR_BROKERS=", "Kafka broker (in-process): "] {
        if let Some(at) = line.find(marker) {
            let rest = &line[at + marker.len()..];
            let addr: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
                .collect();
            if !addr.is_empty() {
                return Some(addr);
            }
        }
    }
    None
}

fn five_commands_to_a_live_actor(lang: &str) {
    let home = tempfile::tempdir().unwrap();
    assert!(
        !home.path().starts_with(env!("CARGO_MANIFEST_DIR")),
        "the test must run outside the repository"
    );

    // 1. Scaffold.
    let created = ok(
        wactor(home.path())
            .args(["new", "fraud-flagger", "--lang", lang])
            .output()
            .unwrap(),
        "wactor new",
    );
    assert!(created.contains("wactor build"), "{created}");
    let dir = home.path().join("fraud-flagger");

    // 2. Build.
    let built = ok(wactor(&dir).arg("build").output().unwrap(), "wactor build");
    assert!(built.contains("fraud_flagger.wasm"), "{built}");

    // 3. Invoke on the sample event: a 250000-cent payment is flagged.
    let invoked = ok(
        wactor(&dir).arg("invoke").output().unwrap(),
        "wactor invoke",
    );
    assert!(invoked.contains("outcome: done"), "{invoked}");
    assert!(invoked.contains("-> payments.out"), "{invoked}");
    assert!(invoked.contains("\"flagged\":true"), "{invoked}");

    // 4. A local broker and host running it.
    let mut dev = Dev::start(&dir);
    let brokers = dev.wait_for("broker address", brokers_in);
    dev.wait_for("the sample event handled", |l| {
        (l.contains("fraud-flagger") && l.contains("done in")).then_some(())
    });

    // 5. Produce an event; wactor dev shows it handled (its offset is the
    // second of the topic's partition, after the sample event's).
    ok(
        wactor(&dir)
            .args(["produce", "--brokers", &brokers, "--topic", "payments"])
            .args(["--key", "user-9"])
            .arg(r#"{"id":"tx-9","user":"user-9","amount_cents":990}"#)
            .output()
            .unwrap(),
        "wactor produce",
    );
    dev.wait_for("the produced event handled", |l| {
        let handled = l.contains("fraud-flagger") && l.contains("done in");
        (handled && l.contains("user-9")).then_some(())
    });

    // What it emitted: both verdicts, the small payment not flagged.
    let consumed = ok(
        wactor(&dir)
            .args(["consume", "payments.out", "--from-beginning", "--json"])
            .args(["--brokers", &brokers])
            .output()
            .unwrap(),
        "wactor consume",
    );
    let mut verdicts: Vec<serde_json::Value> = consumed
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|record| {
            let text = record["payload_text"].as_str().unwrap_or_default();
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {record}"))
        })
        .collect();
    // Two keys, maybe two partitions: no order between them.
    verdicts.sort_by_key(|v| v["id"].as_str().unwrap_or_default().to_string());
    assert_eq!(verdicts.len(), 2, "{consumed}");
    assert_eq!(verdicts[0]["id"], "tx-1001");
    assert_eq!(verdicts[0]["flagged"], true);
    assert_eq!(verdicts[1]["id"], "tx-9");
    assert_eq!(verdicts[1]["flagged"], false);

    let (status, output) = dev.interrupt();
    assert!(status.success(), "wactor dev exited {status}:\n{output}");
}

#[test]
fn rust() {
    five_commands_to_a_live_actor("rust");
}

/// A lean Rust actor (`lean = true` in actor.toml): `wactor build` builds
/// it for wasm32-unknown-unknown and makes it a component that imports no
/// WASI interface; it runs as the default build does.
#[test]
fn rust_lean() {
    let home = tempfile::tempdir().unwrap();
    ok(
        wactor(home.path())
            .args(["new", "fraud-flagger", "--lang", "rust"])
            .output()
            .unwrap(),
        "wactor new",
    );
    let dir = home.path().join("fraud-flagger");
    let manifest = dir.join("actor.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("lean = true\n{text}")).unwrap();

    let built = ok(wactor(&dir).arg("build").output().unwrap(), "wactor build");
    assert!(built.contains("fraud_flagger.wasm"), "{built}");
    let component = std::fs::read(dir.join("fraud_flagger.wasm")).unwrap();
    let wit_component::DecodedWasm::Component(resolve, world) =
        wit_component::decode(&component).unwrap()
    else {
        panic!("not a component");
    };
    let imports: Vec<String> = resolve.worlds[world]
        .imports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .collect();
    assert!(
        !imports.iter().any(|name| name.starts_with("wasi:")),
        "{imports:?}"
    );

    let invoked = ok(
        wactor(&dir).arg("invoke").output().unwrap(),
        "wactor invoke",
    );
    assert!(invoked.contains("outcome: done"), "{invoked}");
    assert!(invoked.contains("\"flagged\":true"), "{invoked}");
}

#[test]
fn python() {
    five_commands_to_a_live_actor("python");
}

#[test]
fn js() {
    five_commands_to_a_live_actor("js");
}
