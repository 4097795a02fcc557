//! A partition worker that does not answer its stop in time (stuck in a
//! wait: a durability wait, a leader down) is fenced (issue 10, scenarios 4
//! and 8): the consumer aborts its task when it gives up on it, so nothing
//! the worker would do later reaches the store or the changelog, and the
//! partition's next worker on the same host starts only once it is gone.
//! Without the fence the stuck worker wakes up after the consumer moved on,
//! finishes its call and writes a held event that nobody owns.
//!
//! Its own test binary: fail points are process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{manifest, produce, read_at_least, Host, Kafka};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_that_does_not_answer_its_stop_in_time_is_aborted_and_writes_nothing_after() {
    let scenario = fail::FailScenario::setup();
    let kafka = Kafka::start();
    kafka.topic("stuck", 1);
    kafka.topic("stuck.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = kafka.settings();
    settings.drain_timeout = Duration::from_secs(1);
    let host = Host::new(dir.path(), settings);
    let spec = manifest("stuck", "stuck", "");
    let (consumer, slot) = host.run("fixture-scripted", &spec).await;

    produce(
        &kafka.brokers,
        "stuck",
        &[(Some("k0".into()), "{\"seq\": 1}".into())],
    )
    .await;
    read_at_least(&kafka.brokers, "stuck.out", 1, WAIT).await;
    // Running when the stop comes: after 2 s its first attempt asks for a
    // retry, which a worker that went on would hold (a store write).
    produce(
        &kafka.brokers,
        "stuck",
        &[(
            Some("k1".into()),
            "{\"seq\": 2, \"fail_until_attempt\": 1, \"sleep_ms\": 2000}".into(),
        )],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The worker starts its stop 25 s late: longer than the consumer
    // waits for it (drain bound 1 s + 15 s).
    fail::cfg("wactor-worker-stop", "return(25000)").unwrap();
    let started = Instant::now();
    consumer.stop().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(22),
        "the stop waited {took:?} for a worker it should have given up on"
    );

    // Past the moment the stuck worker would have gone on.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(started.elapsed())).await;
    let held = host.store.held("stuck").unwrap();
    assert!(
        held.is_empty(),
        "the fenced worker wrote {} held event(s) after the consumer gave up on it",
        held.len()
    );

    // The partition's next worker on this host runs the event again (it was
    // never committed): its retry, then done.
    fail::remove("wactor-worker-stop");
    let consumer = host.consume(slot).await;
    let out = read_at_least(&kafka.brokers, "stuck.out", 2, WAIT).await;
    let seqs: Vec<i64> = out
        .iter()
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.contains(&2), "event 2 redelivered and done: {seqs:?}");
    consumer.stop().await;
    scenario.teardown();
}
