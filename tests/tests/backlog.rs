//! Commits advance while a partition works through a backlog (issue 10,
//! scenario 7): the worker's timers (commit tick, due retries) are polled
//! before its always-ready work, so a steady backlog cannot starve them and
//! a crash mid-backlog redoes at most a commit interval, not the backlog.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{committed_offsets, manifest, produce, Host, Kafka};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_advance_while_a_backlog_is_worked_through() {
    let kafka = Kafka::start();
    kafka.topic("backlog", 1);
    kafka.topic("backlog.out", 1);
    // A few seconds of work: about a millisecond per event, 4 at a time.
    let total: i64 = 4_000;
    let records: Vec<_> = (0..total)
        .map(|i| {
            (
                Some(format!("k{}", i % 1000)),
                format!("{{\"seq\": {i}, \"sleep_ms\": 1}}"),
            )
        })
        .collect();
    produce(&kafka.brokers, "backlog", &records).await;

    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run(
            "fixture-scripted",
            &manifest("backlogged", "backlog", "max_in_flight = 4"),
        )
        .await;
    let mut seen = BTreeSet::new();
    let mut samples = Vec::new();
    let started = Instant::now();
    loop {
        let committed =
            committed_offsets(&kafka.brokers, "wactor.backlogged", "backlog", 1).await[0];
        seen.insert(committed);
        samples.push((started.elapsed().as_millis(), committed));
        if committed >= total || started.elapsed() > Duration::from_secs(180) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consumer.stop().await;
    eprintln!(
        "backlog worked through in {:?}; commits (ms, offset): {samples:?}",
        started.elapsed()
    );
    assert!(
        seen.contains(&total),
        "the whole backlog committed: {seen:?}"
    );
    let during: Vec<_> = seen.iter().filter(|c| **c > 0 && **c < total).collect();
    assert!(
        during.len() >= 3,
        "commits advanced while the backlog was worked through: {during:?}"
    );
}
