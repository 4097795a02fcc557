//! The `wactor serve` binary killed with SIGKILL while events are retrying
//! and dead letters are being written, then restarted: every event ends
//! done or dead-lettered as the policy says, none is missing, and
//! duplicates stay within at-least-once. The broker (librdkafka's mock
//! cluster) lives in this test process, so it survives the host's death.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use support::{
    committed_offsets, produce, read_at_least, read_until, write_actor, Kafka, ServeProcess,
};
use wactor_store::{DeadLetterFilter, Store};

const WAIT: Duration = Duration::from_secs(120);

/// What the scripted actor is told to do with event `i`.
fn script(i: usize) -> String {
    if i.is_multiple_of(7) {
        format!("{{\"seq\": {i}, \"dead\": true, \"sleep_ms\": 15}}")
    } else if i.is_multiple_of(5) {
        format!("{{\"seq\": {i}, \"fail_until_attempt\": 1, \"sleep_ms\": 15}}")
    } else {
        format!("{{\"seq\": {i}, \"sleep_ms\": 15}}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_killed_mid_stream_loses_nothing_after_a_restart() {
    let kafka = Kafka::start();
    kafka.topic("crash", 2);
    kafka.topic("crash.out", 2);
    let dir = tempfile::tempdir().unwrap();
    write_actor(
        dir.path(),
        "crashy",
        "fixture-scripted",
        "name = \"crashy\"\ntopics = [\"crash\"]\nmax_in_flight = 8\n\
         [retry]\nmax_attempts = 3\ninitial_backoff = \"300ms\"\njitter = \"none\"",
    );
    let total = 700usize;
    let records: Vec<_> = (0..total)
        .map(|i| (Some(format!("k{}", i % 40)), script(i)))
        .collect();
    produce(&kafka.brokers, "crash", &records).await;

    // First run: killed while retries are pending.
    let host = ServeProcess::start(dir.path(), &kafka.brokers);
    read_at_least(&kafka.brokers, "crash.out", 120, WAIT).await;
    // The kill must land after the first commits (so the restart resumes
    // from a committed offset, not from the start): wait for one, as a
    // fast machine can hand out 120 results before the first commit tick.
    let started = std::time::Instant::now();
    let committed = loop {
        let committed = committed_offsets(&kafka.brokers, "wactor.crashy", "crash", 2).await;
        if committed.iter().sum::<i64>() > 0 || started.elapsed() > WAIT {
            break committed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    host.kill();
    assert!(
        committed.iter().sum::<i64>() > 0,
        "offsets were committed while events were handled, before the kill: {committed:?}"
    );
    let after_first = read_at_least(&kafka.brokers, "crash.out", 0, Duration::from_secs(1)).await;
    assert!(
        after_first.len() < total,
        "killed mid-stream ({} of {total} done)",
        after_first.len()
    );

    // Second run: killed again, later in the stream.
    let host = ServeProcess::start(dir.path(), &kafka.brokers);
    read_at_least(&kafka.brokers, "crash.out", 350, WAIT).await;
    host.kill();

    // Third run: to the end.
    let host = ServeProcess::start(dir.path(), &kafka.brokers);
    let expected_done: BTreeSet<i64> = (0..total as i64).filter(|i| i % 7 != 0).collect();
    let wanted = expected_done.clone();
    let out = read_until(&kafka.brokers, "crash.out", WAIT, move |records| {
        let seen: BTreeSet<i64> = records
            .iter()
            .filter_map(|r| r.json()["seq"].as_i64())
            .collect();
        wanted.is_subset(&seen)
    })
    .await;
    // Let the last dead letters and retries settle, then stop cleanly so
    // the store can be opened here.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let clean = host.terminate();
    let log = std::fs::read_to_string(dir.path().join("host.log")).unwrap_or_default();
    let tail: String = log
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        clean,
        "the host exits cleanly on SIGTERM; its log ends with:\n{tail}"
    );

    let seen: BTreeMap<i64, Vec<i64>> = out.iter().fold(BTreeMap::new(), |mut m, r| {
        let json = r.json();
        if let (Some(seq), Some(attempt)) = (json["seq"].as_i64(), json["attempt"].as_i64()) {
            m.entry(seq).or_default().push(attempt);
        }
        m
    });
    let done: BTreeSet<i64> = seen.keys().copied().collect();
    let missing: Vec<_> = expected_done.difference(&done).collect();
    assert!(missing.is_empty(), "events never done: {missing:?}");
    let wrongly_done: Vec<_> = done.iter().filter(|seq| *seq % 7 == 0).collect();
    assert!(
        wrongly_done.is_empty(),
        "dead events reported done: {wrongly_done:?}"
    );
    for (seq, attempts) in &seen {
        if seq % 5 == 0 {
            assert!(
                attempts.iter().all(|a| *a >= 2),
                "event {seq} fails its first attempt, yet was done on attempt {attempts:?}"
            );
        }
    }
    // After the graceful stop everything is committed: a fourth run would
    // redo nothing.
    let committed = committed_offsets(&kafka.brokers, "wactor.crashy", "crash", 2).await;
    assert_eq!(
        committed.iter().sum::<i64>(),
        total as i64,
        "every offset committed at the end: {committed:?}"
    );

    let store = Store::open(&dir.path().join("data/store")).unwrap();
    let dead_letters = store.dead_letters();
    let filter = DeadLetterFilter {
        actor: Some("crashy".into()),
        ..DeadLetterFilter::default()
    };
    let page = dead_letters.list(&filter, 1000, None).unwrap();
    let dead: BTreeSet<i64> = page
        .items
        .iter()
        .map(|d| {
            assert_eq!(d.kind, "actor_dead", "{d:?}");
            let payload: serde_json::Value =
                serde_json::from_slice(d.event.payload_bytes()).unwrap();
            payload["seq"].as_i64().unwrap()
        })
        .collect();
    let expected_dead: BTreeSet<i64> = (0..total as i64).filter(|i| i % 7 == 0).collect();
    assert_eq!(
        dead, expected_dead,
        "every dead event is in the dead-letter set, once"
    );
    assert!(
        store.held("crashy").unwrap().is_empty(),
        "no retry left stranded"
    );
}
