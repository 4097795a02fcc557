//! A partition worker that ends unexpectedly (a host bug, forced here with
//! a fail point) is never a silent `running`: it is shown failed (the
//! actor's state, its partition, `wactor_partition_workers_failed`) and
//! restarted from its last committed offset, and no event is lost.
//!
//! Its own test binary: fail points are process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{manifest, produce, read_at_least, Host, Kafka};
use wactor_registry::Upload;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_worker_that_ends_is_shown_failed_and_restarted_without_losing_events() {
    let scenario = fail::FailScenario::setup();
    let kafka = Kafka::start();
    kafka.topic("crashy", 1);
    kafka.topic("crashy.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = host.registry();
    let component = wactor_tests::guest_bytes("fixture-scripted");
    let spec = manifest("crashy", "crashy", "");
    registry
        .deploy(Upload {
            manifest_toml: &spec,
            component: &component,
            uploaded_by: "test",
            notes: "",
            activate: true,
        })
        .await
        .unwrap();

    // The worker panics on the third record it takes, once.
    fail::cfg("wactor-worker-intake", "2*off->1*panic(worker bug)->off").unwrap();
    let records: Vec<_> = (1..=10)
        .map(|i| (Some(format!("k{i}")), format!("{{\"seq\": {i}}}")))
        .collect();
    produce(&kafka.brokers, "crashy", &records).await;

    // Failed until its restart, 1 s later.
    let mut seen_failed = None;
    for _ in 0..6_000 {
        let actors = registry.actors().await.unwrap();
        let actor = actors.into_iter().find(|a| a.name == "crashy").unwrap();
        let gauge = host
            .metrics
            .partition_workers_failed
            .with_label_values(&["crashy"])
            .get();
        if actor.state == "failed" && gauge == 1 {
            seen_failed = Some(actor);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen_failed.is_some(),
        "the failed worker was shown as failed"
    );
    let actor = seen_failed.unwrap();
    let partition = &actor.partitions[0];
    assert_eq!(partition.state, "failed");
    assert!(
        partition
            .error
            .as_deref()
            .unwrap_or("")
            .contains("worker bug"),
        "{partition:?}"
    );

    let out = read_at_least(&kafka.brokers, "crashy.out", 10, WAIT).await;
    let mut seqs: Vec<i64> = out
        .iter()
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "no event lost");
    let mut running = false;
    for _ in 0..600 {
        let actors = registry.actors().await.unwrap();
        if actors
            .iter()
            .any(|a| a.name == "crashy" && a.state == "running")
        {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(running, "running again after the restart");
    let restarts = host
        .metrics
        .partition_worker_restarts_total
        .with_label_values(&["crashy"])
        .get();
    assert_eq!(restarts, 1);
    registry.shutdown().await;
    scenario.teardown();
}
