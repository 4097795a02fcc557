//! The `wactor` binary against a standalone Kafka-compatible broker in
//! another process (Tansu, see ../shared/KAFKA.md; .ci/run starts one):
//! `wactor serve` handles events, drains on SIGTERM, resumes at its
//! committed offsets after a restart, and `wactor produce` sends events.
//!
//! The broker's address comes from `WACTOR_TEST_BROKER`. Without it the
//! test says loudly that it did not run; under `CI=true` a missing broker
//! is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::{produce, read_until, write_actor, ServeProcess};
use wactor_kafka::admin::{ensure_topics, TopicSpec};
use wactor_kafka::KafkaSettings;

const WAIT: Duration = Duration::from_secs(120);

fn broker() -> Option<String> {
    match std::env::var("WACTOR_TEST_BROKER") {
        Ok(broker) if !broker.trim().is_empty() => Some(broker),
        _ => {
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                panic!("CI=true but WACTOR_TEST_BROKER is not set: .ci/run must start a broker");
            }
            eprintln!(
                "\n*** SKIPPED serve_e2e: set WACTOR_TEST_BROKER=host:port of a standalone broker \
                 (see ../shared/KAFKA.md; .ci/run starts Tansu) to run it ***\n"
            );
            None
        }
    }
}

fn keys(records: &[support::Record]) -> BTreeSet<String> {
    records
        .iter()
        .filter_map(|r| r.json()["key"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_handles_events_from_a_standalone_broker_across_a_restart() {
    let Some(brokers) = broker() else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("e2e-{nanos}");
    let out = format!("{topic}.out");
    ensure_topics(
        &KafkaSettings::new(&brokers),
        &[TopicSpec::plain(&topic, 3), TopicSpec::plain(&out, 3)],
    )
    .await
    .expect("topics on the standalone broker");

    let dir = tempfile::tempdir().unwrap();
    write_actor(
        dir.path(),
        "e2e",
        "fixture-scripted",
        &format!("name = \"e2e-{nanos}\"\ntopics = [\"{topic}\"]\n[config]\nout_topic = \"{out}\""),
    );

    let host = ServeProcess::start_with(dir.path(), &brokers, true);
    let first: Vec<_> = (0..60)
        .map(|i| (Some(format!("a{i}")), format!("{{\"seq\": {i}}}")))
        .collect();
    produce(&brokers, &topic, &first).await;
    let wanted: BTreeSet<String> = (0..60).map(|i| format!("a{i}")).collect();
    let want = wanted.clone();
    let seen = read_until(&brokers, &out, WAIT, move |r| want.is_subset(&keys(r))).await;
    assert!(
        wanted.is_subset(&keys(&seen)),
        "the first batch was handled"
    );
    assert!(
        host.terminate(),
        "wactor serve drains and exits 0 on SIGTERM"
    );

    // While the host is down, `wactor produce` sends the second batch.
    let status = std::process::Command::new(wactor_tests::wactor_bin())
        .args(["produce", "--brokers", &brokers, "--topic", &topic])
        .args(["--count", "60", "--key", "b{n}", "{\"seq\": {n}}"])
        .status()
        .unwrap();
    assert!(status.success(), "wactor produce exits 0");

    let host = ServeProcess::start_with(dir.path(), &brokers, true);
    let all: BTreeSet<String> = (0..60)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    let want = all.clone();
    let seen = read_until(&brokers, &out, WAIT, move |r| want.is_subset(&keys(r))).await;
    assert!(host.terminate());
    assert_eq!(keys(&seen), all, "both batches handled");
    let duplicates = seen.len() - all.len();
    assert!(
        duplicates <= 10,
        "a graceful restart resumes at the committed offsets ({duplicates} events ran twice)"
    );
}
