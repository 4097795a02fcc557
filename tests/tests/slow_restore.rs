//! A partition worker revoked while it restores its held events (a slow
//! changelog, a leader down) stops at once instead of running on as a
//! zombie beside the partition's next worker (issue 10, scenario 4).
//! Here the changelog read hangs (a fail point) far past the consumer's
//! wait for its workers (drain bound + 15 s): the stop must not wait for
//! it, and the restore it abandoned must not touch the store.
//!
//! Its own test binary: fail points are process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{manifest, produce, read_at_least, Host, Kafka};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_stopped_while_its_restore_hangs_stops_at_once() {
    let scenario = fail::FailScenario::setup();
    let kafka = Kafka::start();
    kafka.topic("slow", 1);
    kafka.topic("slow.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = kafka.settings();
    settings.drain_timeout = Duration::from_secs(1);
    let host = Host::new(dir.path(), settings);
    let spec = manifest("slow", "slow", "");
    // Longer than the consumer waits for a worker (1 s + 15 s).
    fail::cfg("wactor-restore-read", "sleep(18000)").unwrap();
    let (consumer, slot) = host.run("fixture-scripted", &spec).await;
    // Assigned, and stuck restoring.
    let assigned = support::eventually(Duration::from_secs(30), || {
        !consumer.status().partitions().is_empty()
    })
    .await;
    assert!(assigned);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    consumer.stop().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the stop waited {took:?} for a restore it should have abandoned"
    );

    // The partition's next worker (same host) restores and handles events.
    fail::remove("wactor-restore-read");
    let consumer = host.consume(slot).await;
    produce(
        &kafka.brokers,
        "slow",
        &[(Some("k".into()), "{\"seq\": 1}".into())],
    )
    .await;
    let out = read_at_least(&kafka.brokers, "slow.out", 1, Duration::from_secs(60)).await;
    assert_eq!(out.len(), 1);
    consumer.stop().await;
    scenario.teardown();
}
