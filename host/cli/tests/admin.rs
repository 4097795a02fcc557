//! The admin verbs end to end: a real `wactor dev` host (in-process broker,
//! admin API on a free loopback port) as a child process, driven by the
//! `wactor` binary's `deploy`, `versions`, `rollback`, `pause`, `resume`,
//! `dlq`, `retries` and `remove`, checking output and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `wactor dev` child; killed when dropped, pass or fail.
struct DevHost {
    child: Child,
    api: String,
    log: PathBuf,
}

impl Drop for DevHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DevHost {
    fn start(dir: &Path) -> DevHost {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let api = format!("127.0.0.1:{port}");
        let log = dir.join("dev.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_wactor"))
            .args(["dev", "--no-samples", "--no-build", "--wallet-port", "0"])
            .args(["--partitions", "1"])
            .arg("--actors")
            .arg(dir.join("actors"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--api", &api])
            .env_remove("WACTOR_API")
            .env_remove("WACTOR_TOKEN")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut host = DevHost {
            child,
            api: format!("http://{api}"),
            log,
        };
        host.wait_until_ready();
        host
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("wactor dev exited with {status}:\n{}", self.log_text());
            }
            // Ready once the API answers and `wactor dev` has deployed and
            // activated the manifest it was given (it serves the API first).
            let output = self.wactor(&["actors", "--json"]);
            let listing: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
            if output.status.success() && listing["items"][0]["active_version"] == 1 {
                return;
            }
            if Instant::now() > deadline {
                panic!("wactor dev did not come up:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `wactor ARGS --api <this host>`.
    fn wactor(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wactor"))
            .args(args)
            .args(["--api", &self.api])
            .env_remove("WACTOR_API")
            .env_remove("WACTOR_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a verb that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.wactor(args);
        assert!(
            output.status.success(),
            "wactor {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs a verb with `--json` that must succeed; its JSON.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }

    /// Runs a verb that must fail with `code`; its stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.wactor(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(code),
            "wactor {args:?}\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&output.stdout)
        );
        stderr
    }

    /// `(version, active)` of each version of `actor`.
    fn versions(&self, actor: &str) -> Vec<(u64, bool)> {
        self.json(&["versions", actor])["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["version"].as_u64().unwrap(),
                    v["active"].as_bool().unwrap(),
                )
            })
            .collect()
    }
}

fn write_manifest(path: &Path, name: &str, component: &Path, extra: &str) {
    std::fs::write(
        path,
        format!(
            "name = \"{name}\"\ncomponent = \"{}\"\ntopics = [\"orders\"]\n{extra}\n",
            component.display()
        ),
    )
    .unwrap();
}

#[test]
fn admin_verbs_drive_a_real_host_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let component = wactor_tests::guest("fixture-noop");
    let actors = dir.path().join("actors");
    std::fs::create_dir_all(&actors).unwrap();
    let v1 = actors.join("noop.actor.toml");
    write_manifest(&v1, "noop", &component, "");
    let host = DevHost::start(dir.path());
    let path = |p: &Path| p.to_str().unwrap().to_string();

    // v1: `wactor dev` deployed the manifest at start; deploying it again
    // stores nothing new.
    let deployed = host.json(&["deploy", &path(&v1)]);
    assert_eq!(deployed["version"]["version"], 1, "{deployed}");
    assert_eq!(deployed["created"], false);
    assert_eq!(deployed["activated"], true);

    // v2: a changed manifest, with notes; it becomes active.
    let v2 = dir.path().join("noop-v2.toml");
    write_manifest(&v2, "noop", &component, "[config]\nbuild = \"2\"");
    let text = host.ok(&["deploy", &path(&v2), "--notes", "second build"]);
    assert!(text.contains("deployed noop v2"), "{text}");
    assert!(text.contains("it is active"), "{text}");
    assert_eq!(host.versions("noop"), vec![(1, false), (2, true)]);

    let table = host.ok(&["versions", "noop"]);
    let active_row = table
        .lines()
        .find(|l| l.starts_with('*'))
        .unwrap_or_default();
    assert!(
        active_row.contains("v2") && active_row.contains("second build"),
        "{table}"
    );

    // Rollback goes back to v1; activate forward again; an unknown
    // version is "not found".
    let text = host.ok(&["rollback", "noop"]);
    assert!(text.contains("noop: rolled back to v1 (was v2)"), "{text}");
    assert_eq!(host.versions("noop"), vec![(1, true), (2, false)]);
    let text = host.ok(&["activate", "noop", "2"]);
    assert!(text.contains("v2 is active (was v1)"), "{text}");
    host.fails(&["activate", "noop", "9"], 3);
    host.ok(&["rollback", "noop", "--to", "1"]);
    assert_eq!(host.versions("noop"), vec![(1, true), (2, false)]);

    // A new component for an existing actor with its current manifest:
    // identical to v1, so nothing new.
    let same = host.json(&[
        "deploy",
        "--actor",
        "noop",
        "--component",
        &path(&component),
    ]);
    assert_eq!(
        (
            same["created"].as_bool(),
            same["version"]["version"].as_u64()
        ),
        (Some(false), Some(1))
    );

    // Pause and resume.
    host.ok(&["pause", "noop"]);
    let actors_json = host.json(&["actors"]);
    assert_eq!(actors_json["items"][0]["state"], "paused", "{actors_json}");
    let text = host.ok(&["resume", "noop"]);
    assert!(text.contains("noop resumed (v1"), "{text}");
    let listing = host.ok(&["actors"]);
    let mut lines = listing.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("STATE"),
        "{listing}"
    );
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with("noop") && row.contains("v1") && !row.contains("paused"),
        "{listing}"
    );

    // No dead letters yet; re-drive and discard of nothing say so.
    let page = host.json(&["dlq", "list"]);
    assert_eq!(page["items"], serde_json::json!([]));
    assert_eq!(page["total"], 0);
    assert!(host
        .ok(&["dlq", "list", "--since", "1h"])
        .contains("no dead letters"));
    assert!(host
        .ok(&["dlq", "redrive", "--all", "--dry-run"])
        .contains("no dead letter matches"));
    host.fails(&["dlq", "show", "noop:orders:0:1"], 3);
    host.fails(&["dlq", "redrive"], 2);
    host.fails(&["dlq", "discard", "noop:orders:0:1", "--all"], 2);
    assert!(host
        .ok(&["retries", "list", "noop"])
        .contains("no events held"));

    // Unknown actors are exit 3; refused input exit 4, with the reason.
    let stderr = host.fails(&["versions", "ghost"], 3);
    assert!(stderr.contains("no actor named \"ghost\""), "{stderr}");
    host.fails(&["rollback", "ghost"], 3);
    host.fails(
        &[
            "deploy",
            "--actor",
            "ghost",
            "--component",
            &path(&component),
        ],
        3,
    );
    let bad = dir.path().join("bad.toml");
    write_manifest(&bad, "noop", &component, "max_in_flight = 0");
    let stderr = host.fails(&["deploy", &path(&bad)], 4);
    assert!(stderr.contains("max_in_flight"), "{stderr}");
    // The host refused it; the error says which file.
    assert!(
        stderr.contains(&format!(
            "error: {}: manifest field `max_in_flight`",
            path(&bad)
        )),
        "{stderr}"
    );
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not wasm at all").unwrap();
    let stderr = host.fails(&["deploy", &path(&v1), "--component", &path(&garbage)], 4);
    assert!(stderr.contains("not a WebAssembly file"), "{stderr}");
    assert_eq!(host.versions("noop"), vec![(1, true), (2, false)]);
    let stderr = host.fails(&["deploy"], 2);
    assert!(
        stderr.contains("--actor NAME with --component FILE"),
        "{stderr}"
    );

    // --json errors carry the code for scripts.
    let output = host.wactor(&["versions", "ghost", "--json"]);
    let error: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (error["code"].as_str(), error["exit_code"].as_u64()),
        (Some("unknown_actor"), Some(3))
    );

    // Remove.
    host.ok(&["remove", "noop"]);
    assert!(host.ok(&["actors"]).contains("no actors"));
    host.fails(&["pause", "noop"], 3);
}

#[test]
fn an_unreachable_host_is_exit_1_with_a_hint() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_wactor"))
        .args(["actors", "--api", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is the host running?"), "{stderr}");
}

#[test]
fn every_admin_verb_has_examples_in_its_help() {
    for verb in [
        &["deploy"][..],
        &["actors"],
        &["versions"],
        &["activate"],
        &["rollback"],
        &["pause"],
        &["dlq", "list"],
        &["dlq", "show"],
        &["dlq", "redrive"],
        &["dlq", "discard"],
        &["retries", "list"],
        &["retries", "now"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_wactor"))
            .args(verb)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{verb:?}");
        assert!(
            text.contains("Example"),
            "{verb:?} has no examples:\n{text}"
        );
        assert!(
            text.contains("--api") && text.contains("--json"),
            "{verb:?}:\n{text}"
        );
    }
}
