//! Commits advance while a partition works through a backlog (issue 10,
//! scenario 7): the worker's timers (commit tick, due retries) are polled
//! before its always-ready work, so a steady backlog cannot starve them and
//! a crash mid-backlog redoes at most a few commit intervals, not the
//! backlog.
//!
//! 1,000,000 events already in four partitions when the actor starts (the
//! noop fixture: the worker's own loop is what is measured). Every second
//! (ten commit intervals of the test settings) the test reads the group's
//! committed offsets and the count of events handled; whatever was handled
//! at one sample must be committed by the next (less what was still in
//! flight). A worker whose backlog starved its commit tick fails that at
//! the second sample.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{committed_offsets, manifest, Host, Kafka};
use wactor_kafka::{OutRecord, Producer};

const TOTAL: i64 = 1_000_000;
const MAX_IN_FLIGHT: i64 = 4;
/// Partitions of the backlog: librdkafka's mock broker keeps at most 5 MiB
/// of each partition (older records are deleted), and a million records do
/// not fit in one.
const PARTITIONS: i32 = 4;
/// Between samples: ten commit intervals (100 ms in the test settings), so
/// that a sample never falls between a tick and its publication by chance.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// The test gives up when nothing new was handled or committed this long.
const STALL: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_advance_every_tick_while_a_million_event_backlog_is_worked_through() {
    let kafka = Kafka::start();
    kafka.topic("backlog", PARTITIONS);
    let producer = Producer::new(&kafka.settings()).unwrap();
    for chunk in (0..TOTAL).collect::<Vec<_>>().chunks(100_000) {
        let deliveries: Vec<_> = chunk
            .iter()
            .map(|i| {
                producer.enqueue(&OutRecord {
                    topic: "backlog".into(),
                    partition: Some(i32::try_from(i % i64::from(PARTITIONS)).unwrap()),
                    key: Some(format!("k{}", i % 1000).into_bytes()),
                    payload: Some(b"{}".to_vec()),
                    headers: Vec::new(),
                })
            })
            .collect();
        for delivery in deliveries {
            delivery.await.expect("produced");
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run(
            "fixture-noop",
            &manifest(
                "backlogged",
                "backlog",
                &format!("max_in_flight = {MAX_IN_FLIGHT}"),
            ),
        )
        .await;
    let handled = host
        .metrics
        .events_total
        .with_label_values(&["backlogged", "1", "done"]);
    let started = Instant::now();
    let mut progress = Instant::now();
    // (seconds, handled, committed)
    let mut samples: Vec<(u64, i64, i64)> = Vec::new();
    loop {
        let done = i64::try_from(handled.get()).unwrap();
        let committed: i64 =
            committed_offsets(&kafka.brokers, "wactor.backlogged", "backlog", PARTITIONS)
                .await
                .iter()
                .map(|c| (*c).max(0))
                .sum();
        if samples
            .last()
            .is_none_or(|(_, d, c)| (*d, *c) != (done, committed))
        {
            progress = Instant::now();
        }
        samples.push((started.elapsed().as_secs(), done, committed));
        if (committed >= TOTAL && done >= TOTAL) || progress.elapsed() > STALL {
            break;
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    consumer.stop().await;
    for line in host.metrics.render().lines() {
        if !line.starts_with('#') && !line.contains("bucket") && !line.ends_with(" 0") {
            eprintln!("metric {line}");
        }
    }
    eprintln!(
        "backlog of {TOTAL} worked through in {:?}; samples (s, handled, committed): {samples:?}",
        started.elapsed()
    );
    assert_eq!(
        samples.last().unwrap().2,
        TOTAL,
        "the whole backlog committed"
    );
    for pair in samples.windows(2) {
        let (_, handled_before, _) = pair[0];
        let (at, _, committed_after) = pair[1];
        assert!(
            committed_after >= handled_before - MAX_IN_FLIGHT * i64::from(PARTITIONS),
            "at {at} s only {committed_after} committed, though {handled_before} were \
             handled {} s earlier: {samples:?}",
            SAMPLE_EVERY.as_secs()
        );
    }
    let during = samples
        .iter()
        .filter(|(_, _, c)| *c > 0 && *c < TOTAL)
        .count();
    assert!(
        during >= 2,
        "commits advanced while the backlog was worked through: {samples:?}"
    );
}

/// A call that waits (here a 300 ms sleep through wasi clocks, as an HTTP
/// call would) in the middle of a backlog of calls that are done at once:
/// it must still be polled and finished while the backlog goes on, so the
/// partition's commits pass it long before the backlog ends. Issue 15's
/// review: calls done at their first poll were finished by a select branch
/// that came before the running calls' branch and was ready every round,
/// so the waiting call was not polled again until the backlog was gone
/// (and its commits stayed behind it all that time).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_call_in_a_backlog_finishes_and_is_committed_while_the_backlog_goes_on() {
    // One partition: the worker whose backlog it is never runs dry.
    const PARTITIONS: i32 = 1;
    const PER_PARTITION: i64 = 60_000;
    const SLEEPER: i64 = 10;
    let kafka = Kafka::start();
    kafka.topic("waiting", PARTITIONS);
    let producer = Producer::new(&kafka.settings()).unwrap();
    let mut deliveries = Vec::new();
    for partition in 0..PARTITIONS {
        for i in 0..PER_PARTITION {
            let payload = if partition == 0 && i == SLEEPER {
                serde_json::json!({ "seq": i, "sleep_ms": 300 })
            } else {
                serde_json::json!({ "seq": i })
            };
            deliveries.push(producer.enqueue(&OutRecord {
                topic: "waiting".into(),
                partition: Some(partition),
                key: Some(format!("k{}", i % 1000).into_bytes()),
                payload: Some(payload.to_string().into_bytes()),
                headers: Vec::new(),
            }));
        }
    }
    for delivery in deliveries {
        delivery.await.expect("produced");
    }

    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run(
            "fixture-scripted",
            &manifest(
                "waiting",
                "waiting",
                "max_in_flight = 64\n[config]\nout_topic = \"waiting.out\"",
            ),
        )
        .await;
    let handled = host
        .metrics
        .events_total
        .with_label_values(&["waiting", "1", "done"]);
    let total = PER_PARTITION * i64::from(PARTITIONS);
    let started = Instant::now();
    // The first sample with partition 0 committed past the sleeper.
    let mut passed_at = None;
    while started.elapsed() < STALL {
        let done = i64::try_from(handled.get()).unwrap();
        let committed = committed_offsets(&kafka.brokers, "wactor.waiting", "waiting", 1).await;
        if committed.first().is_some_and(|c| *c > SLEEPER) {
            passed_at = Some(done);
            break;
        }
        if done >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    consumer.stop().await;
    eprintln!(
        "passed at {passed_at:?} of {total} after {:?}",
        started.elapsed()
    );
    let passed_at = passed_at.expect("partition 0 committed past the waiting call");
    assert!(
        passed_at < total * 9 / 10,
        "partition 0's commit passed the waiting call only when {passed_at} of {total} \
         events were handled: the call waited for the backlog"
    );
}
