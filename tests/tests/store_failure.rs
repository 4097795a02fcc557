//! A store write that fails stops the partition, visibly, and is retried;
//! it never skips the event (issue 10, scenario 6). Here the dead letter of
//! an event cannot be written once (a fail point, as a full disk would):
//! the partition's worker stops, is shown failed, restarts from its last
//! committed offset, and the event ends in the dead-letter set.
//!
//! Its own test binary: fail points are process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{committed_offsets, eventually, manifest, produce, read_until, Host, Kafka};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_letter_that_cannot_be_stored_stops_the_partition_until_it_can() {
    let scenario = fail::FailScenario::setup();
    let kafka = Kafka::start();
    kafka.topic("disk", 1);
    kafka.topic("disk.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run("fixture-scripted", &manifest("disk", "disk", ""))
        .await;
    fail::cfg("wactor-store-write", "1*return->off").unwrap();
    produce(
        &kafka.brokers,
        "disk",
        &[
            (Some("a".into()), "{\"seq\": 1, \"dead\": true}".into()),
            (Some("b".into()), "{\"seq\": 2}".into()),
            (Some("c".into()), "{\"seq\": 3}".into()),
        ],
    )
    .await;

    let dead_letters = host.store.dead_letters();
    assert!(
        eventually(WAIT, || dead_letters.len() == 1).await,
        "the event is dead-lettered after the restart"
    );
    let restarts = host
        .metrics
        .partition_worker_restarts_total
        .with_label_values(&["disk"])
        .get();
    assert_eq!(restarts, 1, "the failed write stopped the partition once");
    // Output is at least once: an event handled before the restart may be
    // handled (and emitted) again after it, so read until both are there.
    let distinct = |records: &[support::Record]| {
        let mut seqs: Vec<i64> = records
            .iter()
            .filter_map(|r| r.json()["seq"].as_i64())
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs
    };
    let out = read_until(&kafka.brokers, "disk.out", WAIT, move |r| {
        distinct(r).len() >= 2
    })
    .await;
    let mut seqs: Vec<i64> = out
        .iter()
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs, [2, 3]);
    let mut committed = 0;
    for _ in 0..100 {
        committed = committed_offsets(&kafka.brokers, "wactor.disk", "disk", 1).await[0];
        if committed == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(committed, 3, "everything committed in the end");
    consumer.stop().await;
    scenario.teardown();
}
