//! The dashboard in a real browser: starts `wactor dev` with two actors
//! (`echo` on `orders`; `scripted` on `jobs`, the fixture that does what
//! its payload says) and runs tests/browser/dashboard.cjs, which drives
//! headless Chromium with playwright-core: the actors are listed, a chart
//! moves after events are produced, a retry in progress is shown, a dead
//! letter whose payload holds HTML shows it as text, re-drive and roll back
//! work by clicking, and no content-security-policy violation or script
//! error happens.
//!
//! Needs Node.js, Chromium (`/usr/bin/chromium`, Debian's `chromium`
//! package, or `WACTOR_CHROMIUM`) and playwright-core (the root
//! package.json's devDependency after `npm ci`, or installed globally by
//! the README's test command). Without them the test fails when `CI` is
//! set (to anything but empty, `0`, `false` or `no`; .ci/run sets it) and
//! otherwise says loudly that it did not run.
//!
//! `WACTOR_DASHBOARD_SCREENSHOT=FILE` also writes a screenshot: that is how
//! docs/img/dashboard.png is made (docs/operations.md, Dashboard).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Stops the process when the test ends, however it ends: Ctrl-C (SIGINT)
/// first, as a user would, then a kill if it has not ended in 20 s.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Has `command`'s process sent SIGTERM when the thread that spawns it
/// ends (Linux): the test's process killed (a CI job's timeout, SIGKILL)
/// runs no `Drop`, and without this `wactor dev` and the browser would be
/// left running, holding their ports. `wactor dev` and playwright end on
/// SIGTERM.
fn ended_with_the_test(command: &mut Command) -> &mut Command {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl(2) only, which is async-signal-safe, between fork
        // and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    command
}

#[cfg(target_os = "linux")]
#[test]
fn a_spawned_process_ends_when_the_test_does() {
    // Spawned from a thread that then ends, as the test's process would.
    let mut child = std::thread::spawn(|| {
        ended_with_the_test(Command::new("sleep").arg("60"))
            .spawn()
            .unwrap()
    })
    .join()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process outlived the thread that spawned it");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

/// What the browser test needs, or why it cannot run.
struct Tools {
    node: PathBuf,
    chromium: PathBuf,
    node_path: String,
}

fn tools() -> Result<Tools, String> {
    let chromium = std::env::var_os("WACTOR_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        return Err(format!(
            "{} does not exist: install Chromium (`apt-get install -y --no-install-recommends \
             chromium`; .ci/run does this) or set WACTOR_CHROMIUM",
            chromium.display()
        ));
    }
    let node = PathBuf::from("node");
    match Command::new(&node).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => return Err("Node.js (`node`) is not on PATH".into()),
    }
    // playwright-core from the repository's node_modules (`npm ci`) or the
    // global ones (the README's `npm install -g`).
    let mut paths = vec![repo_root().join("node_modules")];
    if let Ok(out) = Command::new("npm").args(["root", "-g"]).output() {
        let global = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !global.is_empty() {
            paths.push(PathBuf::from(global));
        }
    }
    let node_path = std::env::join_paths(&paths)
        .map_err(|err| format!("cannot join NODE_PATH: {err}"))?
        .to_string_lossy()
        .into_owned();
    let found = Command::new(&node)
        .args(["-e", "require.resolve('playwright-core')"])
        .env("NODE_PATH", &node_path)
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    if !found {
        return Err(
            "playwright-core is not installed: `npm ci` in the repository root, or \
             `npm install -g playwright-core@1.65.2` (the README's test command does this)"
                .into(),
        );
    }
    Ok(Tools {
        node,
        chromium,
        node_path,
    })
}

fn write_manifest(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn scripted_manifest(label: &str) -> String {
    format!(
        "name = \"scripted\"\ncomponent = \"{}\"\ntopics = [\"jobs\"]\n\n\
         [retry]\nmax_attempts = 1000\ninitial_backoff = \"30s\"\nmax_backoff = \"1m\"\n\n\
         [config]\nlabel = \"{label}\"\n",
        wactor_tests::guest("fixture-scripted").display()
    )
}

/// Starts `wactor dev` on `dir/actors` and waits for its banner; returns
/// it and the broker it names.
fn start_dev(dir: &Path, api: &str) -> (Stopped, String) {
    write_manifest(
        &dir.join("actors/echo/actor.toml"),
        &format!(
            "name = \"echo\"\ncomponent = \"{}\"\ntopics = [\"orders\"]\n",
            wactor_tests::guest("echo").display()
        ),
    );
    write_manifest(
        &dir.join("actors/scripted/actor.toml"),
        &scripted_manifest("v1"),
    );
    let stdout = dir.join("dev.out");
    let child = ended_with_the_test(&mut Command::new(env!("CARGO_BIN_EXE_wactor")))
        .current_dir(dir)
        .args(["dev", "--actors", "actors", "--no-samples", "--no-build"])
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
        .env_remove("WACTOR_SERIES_STEP")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(dir.join("dev.err")).unwrap())
        .spawn()
        .unwrap();
    let mut dev = Stopped(child);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = std::fs::read_to_string(&stdout).unwrap_or_default();
        if out.contains("Ctrl-C stops it") && out.ends_with("\n\n") {
            let brokers = out
                .lines()
                .find_map(|l| l.trim().strip_prefix("Kafka broker (in-process):"))
                .map(|b| b.trim().to_string())
                .expect("the banner names the broker");
            return (dev, brokers);
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

/// Whether `CI` says this runs under CI: set to anything but empty, `0`
/// or `false` (CI services set `true`, some `1`, `yes` or `True`; .ci/run
/// sets `true`). Under CI missing tools fail the test instead of skipping it.
fn under_ci(value: Option<std::ffi::OsString>) -> bool {
    value.is_some_and(|value| {
        let value = value.to_string_lossy().trim().to_ascii_lowercase();
        !matches!(value.as_str(), "" | "0" | "false" | "no")
    })
}

#[test]
fn any_ci_value_but_false_makes_missing_tools_fail() {
    for set in ["true", "1", "yes", "True", "TRUE", "on"] {
        assert!(under_ci(Some(set.into())), "CI={set}");
    }
    for unset in ["", "0", "false", "False", "no"] {
        assert!(!under_ci(Some(unset.into())), "CI={unset}");
    }
    assert!(!under_ci(None));
}

#[test]
fn dashboard_in_a_browser_shows_charts_retries_dead_letters_and_rolls_back() {
    let tools = match tools() {
        Ok(tools) => tools,
        Err(why) if under_ci(std::env::var_os("CI")) => {
            panic!("the dashboard browser test cannot run under CI: {why}")
        }
        Err(why) => {
            eprintln!(
                "\n!!! SKIPPED: the dashboard browser test did not run: {why}\n\
                 !!! (under CI=true this fails)\n"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let api = format!("127.0.0.1:{}", free_port());
    let (_dev, brokers) = start_dev(dir.path(), &api);
    let v2 = dir.path().join("v2/actor.toml");
    write_manifest(&v2, &scripted_manifest("v2"));

    let mut command = Command::new(&tools.node);
    ended_with_the_test(&mut command)
        .arg(repo_root().join("tests/browser/dashboard.cjs"))
        .env("NODE_PATH", &tools.node_path)
        .env("WACTOR_API", format!("http://{api}"))
        .env("WACTOR_BROKERS", &brokers)
        .env("WACTOR_BIN", env!("CARGO_BIN_EXE_wactor"))
        .env("WACTOR_CHROMIUM", &tools.chromium)
        .env("SCRIPTED_V2", &v2)
        .stdin(Stdio::null());
    if let Some(shot) = std::env::var_os("WACTOR_DASHBOARD_SCREENSHOT") {
        command.arg("--screenshot").arg(shot);
    }
    let out_path = dir.path().join("browser.out");
    let child = command
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(dir.path().join("browser.err")).unwrap())
        .spawn()
        .unwrap();
    let mut browser = Stopped(child);
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = browser.0.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = format!(
        "{}{}",
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(dir.path().join("browser.err")).unwrap_or_default()
    );
    let dev_err = || std::fs::read_to_string(dir.path().join("dev.err")).unwrap_or_default();
    match status {
        Some(status) if status.success() => println!("{output}"),
        Some(status) => panic!(
            "the browser test failed ({status}):\n{output}\n--- wactor dev's log:\n{}",
            dev_err()
        ),
        None => panic!(
            "the browser test did not end in 10 minutes:\n{output}\n--- wactor dev's log:\n{}",
            dev_err()
        ),
    }
}
