//! A partition's state restore that fails (the state changelog unreadable
//! for a while: a fail point) is retried, and no event of the partition
//! runs before it succeeds: the key's events on the new host see the state
//! the old host wrote.
//!
//! Its own test binary: fail points are process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{manifest, produce, read_until, Host, Kafka};

fn seq(n: i64) -> (Option<String>, String) {
    (Some("k".into()), format!("{{\"seq\": {n}}}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_wait_for_a_state_restore_that_fails_before_it_succeeds() {
    let scenario = fail::FailScenario::setup();
    let kafka = Kafka::start();
    kafka.topic("sr", 1);
    kafka.topic("sr.seen", 1);
    let spec = manifest("sr", "sr", "");

    // Host A: seq 1..=5 of key k; the checker keeps `last:k = 5`.
    let dir_a = tempfile::tempdir().unwrap();
    let a = Host::new(dir_a.path(), kafka.settings());
    let (consumer, _slot) = a.run("fixture-checker", &spec).await;
    produce(&kafka.brokers, "sr", &(1..=5).map(seq).collect::<Vec<_>>()).await;
    let seen = read_until(&kafka.brokers, "sr.seen", Duration::from_secs(60), |r| {
        r.len() >= 5
    })
    .await;
    assert_eq!(seen.len(), 5);
    consumer.stop().await;

    // Host B, an empty disk, whose first two state restores fail.
    fail::cfg("wactor-state-restore-read", "2*return->off").unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let b = Host::new(dir_b.path(), kafka.settings());
    let (consumer, _slot) = b.run("fixture-checker", &spec).await;
    // seq 3 is not above the restored `last:k = 5`: the checker declares
    // it dead. seq 6 is done.
    produce(&kafka.brokers, "sr", &[seq(3), seq(6)]).await;
    let seen = read_until(&kafka.brokers, "sr.seen", Duration::from_secs(60), |r| {
        r.len() >= 6
    })
    .await;
    let seqs: Vec<i64> = seen
        .iter()
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5, 6],
        "seq 3 ran on restored state (dead, not emitted again)"
    );
    let dead = b
        .metrics
        .events_total
        .with_label_values(&["sr", "1", "dead"])
        .get();
    assert_eq!(dead, 1, "seq 3 was an order violation on B");
    consumer.stop().await;
    scenario.teardown();
}
