//! One registry for a cluster of hosts (issue 11, part 1), as operators
//! run it: a `wactor broker` process (librdkafka's mock cluster in a
//! process of its own) and three `wactor serve` processes, each with its
//! own empty disk and no actors directory entry; changes go through the
//! `wactor` CLI to one host's API.
//!
//! - A deploy sent to host A reaches B and C: each runs the new version
//!   (measured: the time from A's answer to B and C running it), and every
//!   partition's events run it.
//! - A roll back sent to C: A and B follow, and events run the old
//!   version again.
//! - Any host's cluster view (`GET /v1/cluster`, `wactor cluster`) lists
//!   every host alive with the partitions it owns.
//! - A dead letter made by one host is listed, shown, re-driven and
//!   discarded from another; every host sees each change.
//! - A fourth host started on an empty disk runs the actor with no deploy
//!   of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{produce, read_until, ServeProcess};

const TOPIC: &str = "cluster.in";
const OUT: &str = "cluster.in.out";
const PARTITIONS: i32 = 6;
const WAIT: Duration = Duration::from_secs(120);
/// What the test allows a change to take to reach every host; the
/// measured time is printed (docs/benchmarks.md reports it).
const PROPAGATION_BOUND: Duration = Duration::from_secs(10);

/// `wactor broker` in a process of its own.
struct BrokerProcess {
    child: Child,
    brokers: String,
}

impl BrokerProcess {
    fn start(dir: &Path, topics: &[&str]) -> Self {
        let address = dir.join("broker.addr");
        let mut command = Command::new(wactor_tests::wactor_bin());
        command.arg("broker").arg("--address-file").arg(&address);
        for topic in topics {
            command.arg("--topic").arg(topic);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wactor broker");
        // Dropped (killed and waited for) if it does not start.
        let mut broker = BrokerProcess {
            child,
            brokers: String::new(),
        };
        let started = Instant::now();
        while broker.brokers.is_empty() {
            assert!(started.elapsed() < WAIT, "wactor broker did not start");
            std::thread::sleep(Duration::from_millis(50));
            broker.brokers = std::fs::read_to_string(&address)
                .map(|text| text.trim().to_string())
                .unwrap_or_default();
        }
        broker
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `wactor serve` host with an empty disk and an empty actors directory.
struct ClusterHost {
    dir: PathBuf,
    process: ServeProcess,
    api: String,
}

impl ClusterHost {
    fn start(root: &Path, name: &str, brokers: &str) -> Self {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("actors")).unwrap();
        ServeProcess::write_config(&dir, brokers, "manage_topics = false");
        let process = ServeProcess::start(&dir, brokers);
        let started = Instant::now();
        let api = loop {
            let log = std::fs::read_to_string(dir.join("host.log")).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| l.contains("host started")) {
                let at = line.find("api=").expect("api= in the start line") + 4;
                let addr: String = line[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                break format!("http://{addr}");
            }
            assert!(
                started.elapsed() < WAIT,
                "host {name} did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        ClusterHost { dir, process, api }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("host.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `GET path` on this host's API, as JSON (`Null` when it fails).
    fn get(&self, path: &str) -> serde_json::Value {
        let addr = self.api.trim_start_matches("http://");
        let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
            return serde_json::Value::Null;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_err() {
            return serde_json::Value::Null;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
    }

    /// (active version, version running here, partitions of [`TOPIC`]
    /// owned here).
    fn actor(&self, name: &str) -> (Option<u64>, Option<u64>, usize) {
        let view = self.get(&format!("/v1/actors/{name}"));
        (
            view["active_version"].as_u64(),
            view["running_version"].as_u64(),
            view["partitions"].as_array().map_or(0, |parts| {
                parts.iter().filter(|p| p["topic"] == TOPIC).count()
            }),
        )
    }

    /// Runs `wactor ARGS --api <this host> --json`; panics unless it exits
    /// 0.
    fn cli(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.push("--json");
        self.cli_text(&all)
    }

    /// Runs `wactor ARGS --api <this host>`; panics unless it exits 0.
    fn cli_text(&self, args: &[&str]) -> String {
        let output = Command::new(wactor_tests::wactor_bin())
            .args(args)
            .arg("--api")
            .arg(&self.api)
            .stdin(Stdio::null())
            .output()
            .expect("run wactor");
        assert!(
            output.status.success(),
            "wactor {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout),
            self.log_tail()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// Writes the manifest of version `label` of the `scripted` actor.
fn manifest_file(root: &Path, label: &str) -> PathBuf {
    let path = root.join(format!("scripted-{label}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"scripted\"\ncomponent = \"{}\"\ntopics = [\"{TOPIC}\"]\n\
             max_in_flight = 4\n[config]\nlabel = \"{label}\"\n",
            wactor_tests::guest("fixture-scripted").display()
        ),
    )
    .unwrap();
    path
}

/// Waits until every host runs `version`; returns how long it took.
fn wait_running(hosts: &[&ClusterHost], version: u64) -> Duration {
    let started = Instant::now();
    loop {
        let states: Vec<_> = hosts.iter().map(|h| h.actor("scripted")).collect();
        if states
            .iter()
            .all(|(active, running, _)| *active == Some(version) && *running == Some(version))
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT,
            "not every host runs v{version}: {states:?}\n{}",
            hosts
                .iter()
                .map(|h| h.log_tail())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until each host owns at least one partition and all are owned.
fn wait_spread(hosts: &[&ClusterHost]) {
    let started = Instant::now();
    loop {
        let owned: Vec<usize> = hosts.iter().map(|h| h.actor("scripted").2).collect();
        if owned.iter().all(|n| *n > 0) && owned.iter().sum::<usize>() == PARTITIONS as usize {
            return;
        }
        assert!(started.elapsed() < WAIT, "partitions not spread: {owned:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `asked`'s `GET /v1/cluster` lists every host of `hosts`
/// alive, each owning the partitions of [`TOPIC`] its own API reports.
fn wait_cluster_view(asked: &ClusterHost, hosts: &[&ClusterHost]) {
    let started = Instant::now();
    loop {
        let view = asked.get("/v1/cluster");
        let owned_in_view = |api: &str| -> Option<Vec<i64>> {
            let host = view["items"]
                .as_array()?
                .iter()
                .find(|h| format!("http://{}", h["api"].as_str().unwrap_or("")) == api)?;
            if host["alive"] != true {
                return None;
            }
            let mut parts: Vec<i64> = host["actors"]
                .as_array()?
                .iter()
                .flat_map(|a| a["partitions"].as_array().cloned().unwrap_or_default())
                .filter(|p| p["topic"] == TOPIC)
                .filter_map(|p| p["partition"].as_i64())
                .collect();
            parts.sort_unstable();
            Some(parts)
        };
        let matches = hosts.iter().all(|h| {
            let own = h.get("/v1/actors/scripted")["partitions"]
                .as_array()
                .map(|parts| {
                    let mut own: Vec<i64> = parts
                        .iter()
                        .filter(|p| p["topic"] == TOPIC)
                        .filter_map(|p| p["partition"].as_i64())
                        .collect();
                    own.sort_unstable();
                    own
                });
            own.is_some() && owned_in_view(&h.api) == own
        });
        if matches {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "the cluster view does not match the hosts: {view}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The partition of a dead-letter id (`<actor>:<topic>:<partition>:<offset>`).
fn id_partition(id: &str) -> Option<i64> {
    id.rsplit(':').nth(1).and_then(|p| p.parse().ok())
}

/// Waits until every host lists exactly one dead letter, re-driven
/// `redrives` times; returns its id.
fn wait_letter_everywhere(hosts: &[&ClusterHost], redrives: u64) -> String {
    let started = Instant::now();
    loop {
        let seen: Vec<Vec<(String, u64)>> = hosts
            .iter()
            .map(|h| {
                h.get("/v1/dead-letters")["items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .map(|d| {
                                (
                                    d["id"].as_str().unwrap_or_default().to_string(),
                                    d["redrives"].as_u64().unwrap_or(u64::MAX),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        if seen
            .iter()
            .all(|s| s.len() == 1 && s[0].1 == redrives && s[0].0 == seen[0][0].0)
        {
            return seen[0][0].0.clone();
        }
        assert!(
            started.elapsed() < WAIT,
            "hosts do not list one letter re-driven {redrives} times: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until no host lists a dead letter.
fn wait_no_letters(hosts: &[&ClusterHost]) {
    let started = Instant::now();
    while !hosts.iter().all(|h| {
        h.get("/v1/dead-letters")["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    }) {
        assert!(
            started.elapsed() < WAIT,
            "a discarded letter is still listed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Produces `n` events numbered from `from` on keys over every partition
/// and returns the labels of their outputs.
async fn labels_of_new_events(brokers: &str, from: usize, n: usize) -> Vec<String> {
    let records: Vec<_> = (from..from + n)
        .map(|i| (Some(format!("k{i}")), format!(r#"{{"seq":{i}}}"#)))
        .collect();
    produce(brokers, TOPIC, &records).await;
    let out = read_until(brokers, OUT, WAIT, move |r| {
        r.iter()
            .filter(|r| r.json()["seq"].as_u64().is_some_and(|s| s as usize >= from))
            .count()
            >= n
    })
    .await;
    out.iter()
        .filter(|r| r.json()["seq"].as_u64().is_some_and(|s| s as usize >= from))
        .map(|r| r.json()["label"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_sent_to_one_host_reaches_every_host_of_the_cluster() {
    let root = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        root.path(),
        &[
            &format!("{TOPIC}:{PARTITIONS}"),
            &format!("{OUT}:{PARTITIONS}"),
        ],
    );
    let brokers = broker.brokers.clone();
    let a = ClusterHost::start(root.path(), "a", &brokers);
    let b = ClusterHost::start(root.path(), "b", &brokers);
    let c = ClusterHost::start(root.path(), "c", &brokers);
    let all = [&a, &b, &c];

    // v1, deployed to A only.
    let v1 = manifest_file(root.path(), "v1");
    a.cli(&["deploy", v1.to_str().unwrap()]);
    wait_running(&all, 1);
    wait_spread(&all);
    // Any host's cluster view shows the three hosts and who owns what.
    wait_cluster_view(&c, &all);
    let table = c.cli_text(&["cluster"]);
    assert!(
        table.contains("(this host)") && table.contains(TOPIC),
        "{table}"
    );
    // `wactor actors` names the owner of each partition, whichever host
    // is asked.
    let table = c.cli_text(&["actors"]);
    assert!(table.contains("HOSTS"), "{table}");
    let owned_cells = table.matches(&format!("[{TOPIC}:")).count();
    assert_eq!(owned_cells, 3, "three hosts own partitions: {table}");

    // v2 to A: B and C run it within the bound.
    let v2 = manifest_file(root.path(), "v2");
    let asked = Instant::now();
    let deployed = a.cli(&["deploy", v2.to_str().unwrap()]);
    let answered = asked.elapsed();
    assert!(deployed.contains("\"version\""), "{deployed}");
    let took = wait_running(&all, 2);
    eprintln!(
        "deploy: A answered after {} ms (CLI run included); every host ran v2 {} ms after that",
        answered.as_millis(),
        took.as_millis()
    );
    assert!(
        took < PROPAGATION_BOUND,
        "a deploy took {took:?} to reach every host"
    );
    let labels = labels_of_new_events(&brokers, 0, 60).await;
    assert!(
        labels.iter().all(|l| l == "v2"),
        "every partition runs v2: {labels:?}"
    );

    // Roll back on C: A and B follow.
    c.cli(&["rollback", "scripted"]);
    let took = wait_running(&all, 1);
    eprintln!(
        "rollback propagation to every host: {} ms",
        took.as_millis()
    );
    let labels = labels_of_new_events(&brokers, 1000, 60).await;
    assert!(
        labels.iter().all(|l| l == "v1"),
        "every partition runs v1 again: {labels:?}"
    );

    // `handled` is summed over the cluster: every host, asked, counts the
    // 120 events the three handled between them (within a heartbeat).
    let deadline = Instant::now() + Duration::from_secs(30);
    for host in all {
        loop {
            let handled = host.get("/v1/actors")["items"][0]["handled"]
                .as_u64()
                .unwrap_or(0);
            if handled >= 120 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} counts {handled} handled events, not the cluster's 120",
                host.api
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let table = c.cli_text(&["actors"]);
    assert!(table.contains("HANDLED"), "{table}");

    // A dead letter made by the owner of its partition is listed, shown
    // and re-driven from every other host.
    produce(
        &brokers,
        TOPIC,
        &[(Some("doomed".into()), r#"{"seq":5000,"dead":true}"#.into())],
    )
    .await;
    let id = wait_letter_everywhere(&all, 0);
    let maker = all
        .iter()
        .position(|h| {
            h.get("/v1/actors/scripted")["partitions"]
                .as_array()
                .is_some_and(|parts| {
                    parts.iter().any(|p| {
                        p["topic"] == TOPIC && p["partition"].as_i64() == id_partition(&id)
                    })
                })
        })
        .expect("a host owns the letter's partition");
    let other = all[(maker + 1) % all.len()];
    let shown = other.cli(&["dlq", "show", &id]);
    assert!(
        shown.contains("\"seq\":5000") || shown.contains("5000"),
        "{shown}"
    );
    other.cli(&["dlq", "redrive", &id]);
    // It dies again on the owner: every host lists its second death.
    wait_letter_everywhere(&all, 1);
    other.cli(&["dlq", "discard", &id]);
    wait_no_letters(&all);

    // A host on an empty disk joins and runs v1 with no deploy.
    let d = ClusterHost::start(root.path(), "d", &brokers);
    wait_running(&[&d], 1);
    let versions = d.get("/v1/actors/scripted/versions");
    assert_eq!(
        versions["items"].as_array().map(Vec::len),
        Some(2),
        "d knows both versions: {versions}"
    );

    for host in [a, b, c, d] {
        assert!(host.process.terminate(), "stops cleanly");
    }
}

/// Runs `wactor ARGS --api <host>` and returns its exit code and stdout.
fn cli_status(host: &ClusterHost, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(wactor_tests::wactor_bin())
        .args(args)
        .arg("--api")
        .arg(&host.api)
        .stdin(Stdio::null())
        .output()
        .expect("run wactor");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Issue 11, part 2: `wactor retries list` and `wactor retries now` asked
/// of one host answer for the events the other host holds (through
/// `wactor.registry.requests`), and a held event run now from the host
/// that does not hold it runs on its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_held_by_another_host_are_listed_and_run_now_from_any_host() {
    let root = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        root.path(),
        &[
            &format!("{TOPIC}:{PARTITIONS}"),
            &format!("{OUT}:{PARTITIONS}"),
        ],
    );
    let brokers = broker.brokers.clone();
    let a = ClusterHost::start(root.path(), "a", &brokers);
    let b = ClusterHost::start(root.path(), "b", &brokers);
    let all = [&a, &b];
    // A retry 10 minutes away: the events stay held for the whole test
    // unless someone runs them now.
    let manifest = root.path().join("scripted-retry.toml");
    std::fs::write(
        &manifest,
        format!(
            "name = \"scripted\"\ncomponent = \"{}\"\ntopics = [\"{TOPIC}\"]\n\
             [retry]\nmax_attempts = 5\ninitial_backoff = \"10m\"\nmax_backoff = \"10m\"\njitter = \"none\"\n",
            wactor_tests::guest("fixture-scripted").display()
        ),
    )
    .unwrap();
    a.cli(&["deploy", manifest.to_str().unwrap()]);
    wait_running(&all, 1);
    wait_spread(&all);
    // Both hosts see each other alive (the asker waits for the hosts its
    // cluster view shows).
    wait_cluster_view(&a, &all);
    wait_cluster_view(&b, &all);

    // A forged request dated at the edge of time, from no host: ignored
    // (it once overflowed and stopped every host answering).
    produce(
        &brokers,
        "wactor.registry.requests",
        &[(
            Some("req/forged".into()),
            r#"{"id":"forged","from":"evil","at_ms":-9223372036854775808,"ask":{"RetryNow":{"actor":"scripted","id":"x"}}}"#
                .into(),
        )],
    )
    .await;

    let n = 24usize;
    let records: Vec<_> = (0..n)
        .map(|i| {
            (
                Some(format!("r{i}")),
                format!(r#"{{"seq":{i},"fail_until_attempt":1}}"#),
            )
        })
        .collect();
    produce(&brokers, TOPIC, &records).await;

    // Every event is held (retrying), wherever it is: A lists all of them,
    // each with the host that holds it, and both hosts appear.
    let started = Instant::now();
    let items = loop {
        let listing: serde_json::Value =
            serde_json::from_str(&a.cli(&["retries", "list", "scripted"])).unwrap();
        let items = listing["items"].as_array().cloned().unwrap_or_default();
        if items.len() == n {
            assert_eq!(
                listing["unanswered_hosts"],
                serde_json::json!([]),
                "{listing}"
            );
            break items;
        }
        assert!(
            started.elapsed() < WAIT,
            "A does not list the {n} held events: {listing}\n{}\n---\n{}",
            a.log_tail(),
            b.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let hosts: std::collections::BTreeSet<String> = items
        .iter()
        .map(|i| i["host"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(hosts.len(), 2, "the events of both hosts: {hosts:?}");
    assert!(items.iter().all(|i| i["retrying"] == true), "{items:?}");

    // B lists the same set.
    let from_b: serde_json::Value =
        serde_json::from_str(&b.cli(&["retries", "list", "scripted"])).unwrap();
    let ids = |items: &[serde_json::Value]| -> Vec<String> {
        items
            .iter()
            .map(|i| i["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        ids(from_b["items"].as_array().unwrap()),
        ids(&items),
        "both hosts list the same held events"
    );

    // An event held by B, run now from A: it runs (attempt 2) on B.
    let b_name = b.get("/v1/cluster")["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["this_host"] == true)
        .map(|h| h["name"].as_str().unwrap().to_string())
        .unwrap();
    let on_b = items
        .iter()
        .find(|i| i["host"] == b_name.as_str())
        .expect("an event held by B");
    let id = on_b["id"].as_str().unwrap().to_string();
    let seq = on_b["event"]["payload"]["text"]
        .as_str()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| p["seq"].as_u64());
    a.cli(&["retries", "now", "scripted", &id]);
    let out = read_until(&brokers, OUT, WAIT, |r| !r.is_empty()).await;
    assert_eq!(out.len(), 1, "only the event run now is done");
    assert_eq!(out[0].json()["attempt"], 2);
    assert_eq!(out[0].json()["seq"].as_u64(), seq);
    let started = Instant::now();
    loop {
        let listing: serde_json::Value =
            serde_json::from_str(&a.cli(&["retries", "list", "scripted"])).unwrap();
        let left = ids(listing["items"].as_array().unwrap());
        if left.len() == n - 1 {
            assert!(!left.contains(&id), "{left:?}");
            break;
        }
        assert!(started.elapsed() < WAIT, "still listed: {listing}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // An id nobody holds: every host answered no, exit code 3 (not found).
    let (code, _) = cli_status(
        &a,
        &[
            "retries",
            "now",
            "scripted",
            &format!("{TOPIC}:0:shared:999999"),
        ],
    );
    assert_eq!(code, Some(3));

    // The table names the hosts.
    let table = b.cli_text(&["retries", "list", "scripted"]);
    assert!(table.contains("HOST") && table.contains(&b_name), "{table}");

    for host in [a, b] {
        assert!(host.process.terminate(), "stops cleanly");
    }
}

/// Writes a manifest of the `scripted` actor with `on_dead = "block"` and
/// `max_attempts` attempts, 200 ms apart.
fn blocking_manifest(root: &Path, label: &str, max_attempts: u32) -> PathBuf {
    let path = root.join(format!("scripted-block-{label}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"scripted\"\ncomponent = \"{}\"\ntopics = [\"{TOPIC}\"]\n\
             [retry]\nmax_attempts = {max_attempts}\ninitial_backoff = \"200ms\"\njitter = \"none\"\n\
             [dead_letter]\non_dead = \"block\"\n[config]\nlabel = \"{label}\"\n",
            wactor_tests::guest("fixture-scripted").display()
        ),
    )
    .unwrap();
    path
}

/// The seqs of the outputs of key `key`, in output order.
fn seqs_of(out: &[support::Record], key: &str) -> Vec<u64> {
    out.iter()
        .filter(|r| r.json()["key"] == key)
        .filter_map(|r| r.json()["seq"].as_u64())
        .collect()
}

/// Issue 11, part 2: with `on_dead = "block"` a dead event's key waits
/// behind its dead letter (later events of the key are held, other keys
/// go on) until an operator re-drives it (it runs first, then the key's
/// held events, in order) or discards it (the held events run), and both
/// work from a host that does not own the partition (through
/// `wactor.registry.requests`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_event_blocks_its_key_until_its_letter_is_redriven_or_discarded_from_any_host() {
    let root = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        root.path(),
        &[
            &format!("{TOPIC}:{PARTITIONS}"),
            &format!("{OUT}:{PARTITIONS}"),
        ],
    );
    let brokers = broker.brokers.clone();
    let a = ClusterHost::start(root.path(), "a", &brokers);
    let b = ClusterHost::start(root.path(), "b", &brokers);
    let all = [&a, &b];
    // One attempt: an event that asks for a retry is dead at once.
    let v1 = blocking_manifest(root.path(), "v1", 1);
    a.cli(&["deploy", v1.to_str().unwrap()]);
    wait_running(&all, 1);
    wait_spread(&all);
    wait_cluster_view(&a, &all);
    wait_cluster_view(&b, &all);

    let key = "blocked";
    produce(
        &brokers,
        TOPIC,
        &[
            (
                Some(key.into()),
                r#"{"seq":1,"fail_until_attempt":1}"#.into(),
            ),
            (Some(key.into()), r#"{"seq":2}"#.into()),
            (Some(key.into()), r#"{"seq":3}"#.into()),
            (Some("free".into()), r#"{"seq":4}"#.into()),
        ],
    )
    .await;
    let id = wait_letter_everywhere(&all, 0);
    // The other key went on.
    read_until(&brokers, OUT, WAIT, |r| !seqs_of(r, "free").is_empty()).await;
    let owner = all
        .iter()
        .position(|h| {
            h.get("/v1/actors/scripted")["partitions"]
                .as_array()
                .is_some_and(|parts| {
                    parts.iter().any(|p| {
                        p["topic"] == TOPIC && p["partition"].as_i64() == id_partition(&id)
                    })
                })
        })
        .expect("a host owns the letter's partition");
    let other = all[(owner + 1) % all.len()];

    // The key is blocked: the dead event heads its lane, the two later
    // events wait behind it, as the other host lists them.
    let started = Instant::now();
    loop {
        let listing: serde_json::Value =
            serde_json::from_str(&other.cli(&["retries", "list", "scripted", "--key", key]))
                .unwrap();
        let items = listing["items"].as_array().cloned().unwrap_or_default();
        let shape: Vec<(Option<String>, bool)> = items
            .iter()
            .map(|i| {
                (
                    i["blocked_by"].as_str().map(str::to_string),
                    i["retrying"] == true,
                )
            })
            .collect();
        if shape == [(Some(id.clone()), false), (None, false), (None, false)] {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the key is not blocked behind {id}: {listing}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = read_until(&brokers, OUT, Duration::from_secs(1), |_| false).await;
    assert_eq!(
        seqs_of(&out, key),
        Vec::<u64>::new(),
        "nothing of the key ran"
    );
    let table = other.cli_text(&["retries", "list", "scripted"]);
    assert!(table.contains("blocked by dead letter"), "{table}");

    // Fixed (three attempts now), re-driven from the host that does not
    // own the partition: the dead event runs first, then the two others.
    let v2 = blocking_manifest(root.path(), "v2", 3);
    other.cli(&["deploy", v2.to_str().unwrap()]);
    wait_running(&all, 2);
    let report: serde_json::Value =
        serde_json::from_str(&other.cli(&["dlq", "redrive", &id])).unwrap();
    assert_eq!(report["redriven"], 1, "{report}");
    let out = read_until(&brokers, OUT, WAIT, |r| seqs_of(r, key).len() >= 3).await;
    assert_eq!(seqs_of(&out, key), [1, 2, 3], "the key's events, in order");
    wait_no_letters(&all);

    // Dead again (a dead answer is final), discarded from the other host:
    // the held event behind it runs, the dead one never does.
    produce(
        &brokers,
        TOPIC,
        &[
            (Some(key.into()), r#"{"seq":5,"dead":true}"#.into()),
            (Some(key.into()), r#"{"seq":6}"#.into()),
        ],
    )
    .await;
    let id = wait_letter_everywhere(&all, 0);
    let out = read_until(&brokers, OUT, Duration::from_secs(1), |_| false).await;
    assert_eq!(seqs_of(&out, key), [1, 2, 3], "6 waits behind 5");
    let shown: serde_json::Value = serde_json::from_str(&other.cli(&["dlq", "show", &id])).unwrap();
    assert_eq!(shown["blocking"], true, "{shown}");

    // While no host runs the partition (paused), a re-drive or discard of
    // a blocking letter is refused and changes nothing: it would run the
    // event outside its lane, or leave the key blocked behind nothing.
    other.cli(&["pause", "scripted"]);
    for verb in ["redrive", "discard"] {
        let (code, out) = cli_status(other, &["dlq", verb, &id, "--json"]);
        assert_eq!(code, Some(1), "{verb} refused: {out}");
        assert!(out.contains("no host runs its"), "{out}");
    }
    wait_letter_everywhere(&all, 0);
    other.cli(&["resume", "scripted"]);
    wait_spread(&all);
    let report: serde_json::Value =
        serde_json::from_str(&other.cli(&["dlq", "discard", &id])).unwrap();
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    let out = read_until(&brokers, OUT, WAIT, |r| seqs_of(r, key).len() >= 4).await;
    assert_eq!(seqs_of(&out, key), [1, 2, 3, 6]);
    wait_no_letters(&all);
    let listing: serde_json::Value =
        serde_json::from_str(&other.cli(&["retries", "list", "scripted"])).unwrap();
    assert_eq!(listing["items"], serde_json::json!([]), "{listing}");

    for host in [a, b] {
        assert!(host.process.terminate(), "stops cleanly");
    }
}

/// A blocked key moves with its partition: the owner is SIGKILLed, the
/// other host restores the partition (the blocked head and the events
/// behind it, from `<group>.retries`), keeps the key blocked (a new event
/// of the key waits too), and a discard releases it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blocked_key_stays_blocked_when_its_partition_moves_to_another_host() {
    let root = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        root.path(),
        &[
            &format!("{TOPIC}:{PARTITIONS}"),
            &format!("{OUT}:{PARTITIONS}"),
        ],
    );
    let brokers = broker.brokers.clone();
    let a = ClusterHost::start(root.path(), "a", &brokers);
    let b = ClusterHost::start(root.path(), "b", &brokers);
    let v1 = blocking_manifest(root.path(), "v1", 1);
    a.cli(&["deploy", v1.to_str().unwrap()]);
    wait_running(&[&a, &b], 1);
    wait_spread(&[&a, &b]);

    let key = "moving";
    produce(
        &brokers,
        TOPIC,
        &[
            (Some(key.into()), r#"{"seq":1,"dead":true}"#.into()),
            (Some(key.into()), r#"{"seq":2}"#.into()),
        ],
    )
    .await;
    let id = wait_letter_everywhere(&[&a, &b], 0);
    let a_owns = a.get("/v1/actors/scripted")["partitions"]
        .as_array()
        .is_some_and(|parts| {
            parts
                .iter()
                .any(|p| p["topic"] == TOPIC && p["partition"].as_i64() == id_partition(&id))
        });
    let (owner, survivor) = if a_owns { (a, b) } else { (b, a) };
    // The key is blocked on its owner (the held event is in the
    // changelog once listed).
    let blocked_listing = |host: &ClusterHost| -> Vec<(Option<String>, u64)> {
        let listing: serde_json::Value =
            serde_json::from_str(&host.cli(&["retries", "list", "scripted", "--key", key]))
                .unwrap_or_default();
        listing["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|i| {
                (
                    i["blocked_by"].as_str().map(str::to_string),
                    i["event"]["offset"].as_u64().unwrap_or(u64::MAX),
                )
            })
            .collect()
    };
    let started = Instant::now();
    while blocked_listing(&owner).len() != 2 {
        assert!(started.elapsed() < WAIT, "the key is not blocked");
        std::thread::sleep(Duration::from_millis(200));
    }
    owner.process.kill();

    // The survivor takes every partition and restores the block.
    wait_spread(&[&survivor]);
    produce(
        &brokers,
        TOPIC,
        &[(Some(key.into()), r#"{"seq":3}"#.into())],
    )
    .await;
    let started = Instant::now();
    loop {
        let listing = blocked_listing(&survivor);
        if listing.len() == 3 {
            assert_eq!(listing[0].0.as_deref(), Some(id.as_str()), "{listing:?}");
            assert!(listing[1..].iter().all(|(b, _)| b.is_none()), "{listing:?}");
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the survivor does not hold the key blocked: {listing:?}\n{}",
            survivor.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = read_until(&brokers, OUT, Duration::from_secs(1), |_| false).await;
    assert_eq!(
        seqs_of(&out, key),
        Vec::<u64>::new(),
        "nothing of the key ran"
    );

    survivor.cli(&["dlq", "discard", &id]);
    let out = read_until(&brokers, OUT, WAIT, |r| seqs_of(r, key).len() >= 2).await;
    assert_eq!(seqs_of(&out, key), [2, 3]);
    assert!(survivor.process.terminate(), "stops cleanly");
}
