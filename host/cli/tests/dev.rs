//! `wactor dev` as a user meets it: run from an actor's own directory
//! (`--actors .`, where `Cargo.toml` sits beside `actor.toml`), with
//! manifest errors that name their file, and stopped with Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `wactor dev --actors .` run in `dir`, with everything else kept off
/// fixed ports and out of the way.
fn dev_command(dir: &Path, api: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wactor"));
    command
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
        .stdin(Stdio::null());
    command
}

/// An actor's crate: `Cargo.toml`, `pyproject.toml` and `package.json` (none
/// of them manifests) beside `actor.toml` with `manifest` as its text.
fn actor_crate(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"greeter\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"x\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("package.json"), "{}").unwrap();
    if !manifest.is_empty() {
        std::fs::write(dir.path().join("actor.toml"), manifest).unwrap();
    }
    dir
}

fn noop_manifest(name: &str) -> String {
    format!(
        "name = \"{name}\"\ncomponent = \"{}\"\ntopics = [\"signups\"]\n",
        wactor_tests::guest("fixture-noop").display()
    )
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

#[test]
fn a_bad_manifest_is_named_by_its_file_and_cargo_toml_is_never_read() {
    let dir = actor_crate("name = \"greeter\"\ntopics = []\n");
    let output = run(&mut dev_command(
        dir.path(),
        &format!("127.0.0.1:{}", free_port()),
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("actor.toml: manifest field `topics`"),
        "{stderr}"
    );
    assert!(!stderr.contains("Cargo.toml"), "{stderr}");
}

#[test]
fn a_crate_without_actor_toml_says_where_manifests_are_looked_for() {
    let dir = actor_crate("");
    let output = run(&mut dev_command(
        dir.path(),
        &format!("127.0.0.1:{}", free_port()),
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no actor manifests in ."), "{stderr}");
    assert!(
        stderr.contains("DIR/actor.toml if it exists, else DIR/*/actor.toml and DIR/*.actor.toml"),
        "{stderr}"
    );
}

/// A running `wactor dev`; killed when dropped, pass or fail.
struct Dev {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Dev {
    fn start(dir: &Path, api: &str) -> Dev {
        let stdout = dir.join("dev.out");
        let stderr = dir.join("dev.err");
        let child = dev_command(dir, api)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut dev = Dev {
            child: Some(child),
            stdout,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !dev.out().contains("Ctrl-C stops it") || !dev.out().ends_with("\n\n") {
            if let Some(status) = dev.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "wactor dev exited with {status}:\n{}{}",
                    dev.out(),
                    dev.err()
                );
            }
            assert!(
                Instant::now() < deadline,
                "wactor dev did not start:\n{}",
                dev.err()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        dev
    }

    fn out(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn err(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `signal` (`INT`, `TERM`) and waits for the exit.
    fn stop(mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("wactor dev did not stop after SIG{signal}:\n{}", self.err());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn wactor_json(api: &str, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_wactor"))
        .args(args)
        .args(["--json", "--api", &format!("http://{api}")])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

#[test]
fn dev_runs_the_actor_of_its_own_directory_and_stops_quietly_on_ctrl_c() {
    let dir = actor_crate(&noop_manifest("greeter"));
    let api = format!("127.0.0.1:{}", free_port());
    let dev = Dev::start(dir.path(), &api);
    let banner = dev.out();
    assert!(
        banner
            .lines()
            .any(|l| l.trim_start().starts_with("greeter") && l.contains("reads signups")),
        "{banner}"
    );
    // The admin verbs see it.
    let actors = Command::new(env!("CARGO_BIN_EXE_wactor"))
        .args(["actors", "--json", "--api", &format!("http://{api}")])
        .output()
        .unwrap();
    let listing: serde_json::Value = serde_json::from_slice(&actors.stdout).unwrap();
    assert_eq!(listing["items"][0]["name"], "greeter", "{listing}");

    // Events sent to it are counted in HANDLED (this host only: no cluster).
    let brokers = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("Kafka broker (in-process):"))
        .map(|b| b.trim().to_string())
        .expect("the banner names the broker");
    let produced = Command::new(env!("CARGO_BIN_EXE_wactor"))
        .args([
            "produce", "--topic", "signups", "--count", "3", "--key", "k{n}", "hi",
        ])
        .env("WACTOR_BROKERS", &brokers)
        .output()
        .unwrap();
    assert!(produced.status.success(), "{produced:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listing = wactor_json(&api, &["actors"]);
        if listing["items"][0]["handled"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "not handled: {listing}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let table = Command::new(env!("CARGO_BIN_EXE_wactor"))
        .args(["actors", "--api", &format!("http://{api}")])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let column = header
        .iter()
        .position(|h| *h == "HANDLED")
        .expect("a HANDLED column");
    assert_eq!(row[column], "3", "{table}");

    let stderr = dev.stderr.clone();
    let status = dev.stop("INT");
    let log = std::fs::read_to_string(stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    // The in-process broker stops with dev: librdkafka's complaints about
    // it are not shown, nor any other ERROR.
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "ERROR lines:\n{}", errors.join("\n"));
}

/// `--data-dir` is cleared at every start, so only a directory `wactor dev`
/// made (or an empty one) is: pointing it at a project refuses, with
/// nothing removed (a reviewer lost app.py and actor.toml to
/// `wactor dev --actors . --data-dir .`).
#[test]
fn a_data_dir_holding_other_files_is_refused_and_left_alone() {
    let dir = actor_crate(&noop_manifest("greeter"));
    let api = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_wactor"));
    command
        .current_dir(dir.path())
        .args(["dev", "--actors", ".", "--no-samples", "--no-build"])
        .args(["--wallet-port", "0", "--gateway-port", "0", "--api", &api])
        .args(["--data-dir", "."])
        .env_remove("WACTOR_LOG")
        .stdin(Stdio::null());
    let output = run(&mut command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("did not write"), "{stderr}");
    for file in ["actor.toml", "Cargo.toml", "package.json", "pyproject.toml"] {
        assert!(dir.path().join(file).is_file(), "{file} removed");
    }
}
