//! Records no ordinary client sends, and records the broker no longer has,
//! on a real Kafka-protocol broker (librdkafka's mock cluster): nothing a
//! producer writes can stop a partition, and nothing is skipped silently.
//!
//! - a header name that is not UTF-8 (issue 9, input 1) is dead-lettered
//!   with the reason and the partition goes on;
//! - binary keys, null values and null header values are handled;
//! - a topic created after the actor subscribed is read within seconds
//!   (input 8);
//! - records deleted by retention before the actor read them are reported
//!   and counted (input 9).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{
    committed_offsets, eventually, manifest, produce, produce_raw_bytes, read_at_least, watermarks,
    Host, Kafka,
};

const WAIT: Duration = Duration::from_secs(60);

async fn committed(kafka: &Kafka, group: &str, topic: &str) -> i64 {
    committed_offsets(&kafka.brokers, group, topic, 1).await[0]
}

async fn wait_committed(kafka: &Kafka, group: &str, topic: &str, offset: i64) -> bool {
    for _ in 0..300 {
        if committed(kafka, group, topic).await >= offset {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn numbered(from: i64, to: i64) -> Vec<(Option<String>, String)> {
    (from..=to)
        .map(|i| (Some(format!("k{i}")), format!("{{\"seq\": {i}}}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_header_name_that_is_not_utf8_is_dead_lettered_and_the_records_after_it_are_handled() {
    let kafka = Kafka::start();
    kafka.topic("orders", 1);
    kafka.topic("orders.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run("fixture-scripted", &manifest("odd", "orders", ""))
        .await;

    let brokers = kafka.brokers.clone();
    tokio::task::spawn_blocking(move || {
        produce_raw_bytes(
            &brokers,
            "orders",
            0,
            Some(b"odd"),
            Some(b"{}"),
            &[(&[0xff, 0xfe], Some(b"v"))],
        )
    })
    .await
    .unwrap();
    produce(&kafka.brokers, "orders", &numbered(1, 20)).await;

    let out = read_at_least(&kafka.brokers, "orders.out", 20, WAIT).await;
    let mut seqs: Vec<i64> = out
        .iter()
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=20).collect::<Vec<_>>(),
        "the 20 records after it"
    );

    let dead_letters = host.store.dead_letters();
    assert!(eventually(WAIT, || dead_letters.len() == 1).await);
    let page = dead_letters.list(&Default::default(), 10, None).unwrap();
    let dead = &page.items[0];
    assert_eq!(dead.kind, "undecodable");
    assert_eq!(
        dead.reason,
        "undecodable header: the name of header 0 is not UTF-8 (bytes ff fe)"
    );
    assert_eq!(dead.event.offset, 0);
    assert_eq!(dead.event.key.as_deref(), Some(&b"odd"[..]));
    assert!(dead.attempts.is_empty(), "the actor never saw it");

    assert!(
        wait_committed(&kafka, "wactor.odd", "orders", 21).await,
        "every offset committed"
    );
    let failed = host
        .metrics
        .partition_workers_failed
        .with_label_values(&["odd"])
        .get();
    assert_eq!(failed, 0, "no worker ended");
    assert!(consumer.status().failures().is_empty());
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn binary_keys_null_values_and_null_header_values_are_handled() {
    let kafka = Kafka::start();
    kafka.topic("odd-fields", 1);
    kafka.topic("odd-fields.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run("fixture-scripted", &manifest("fields", "odd-fields", ""))
        .await;
    let brokers = kafka.brokers.clone();
    tokio::task::spawn_blocking(move || {
        produce_raw_bytes(
            &brokers,
            "odd-fields",
            0,
            Some(&[0xff, 0x00, 0x80]),
            None,
            &[(b"trace", None), (b"empty", Some(b""))],
        );
        produce_raw_bytes(&brokers, "odd-fields", 0, None, Some(b""), &[]);
    })
    .await
    .unwrap();
    let out = read_at_least(&kafka.brokers, "odd-fields.out", 2, WAIT).await;
    let mut offsets: Vec<i64> = out
        .iter()
        .map(|r| r.json()["offset"].as_i64().unwrap())
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, [0, 1], "both records handled");
    assert!(host.store.dead_letters().is_empty());
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_topic_created_after_the_actor_subscribed_is_read_within_seconds() {
    let kafka = Kafka::start();
    kafka.topic("late.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run("fixture-scripted", &manifest("late", "late", ""))
        .await;
    // The consumer has joined and found no such topic.
    tokio::time::sleep(Duration::from_secs(3)).await;
    kafka.topic("late", 1);
    produce(&kafka.brokers, "late", &numbered(1, 1)).await;
    // librdkafka's default metadata refresh (5 minutes) would miss this
    // bound by far; the host's default is 5 s.
    let out = read_at_least(&kafka.brokers, "late.out", 1, Duration::from_secs(30)).await;
    assert_eq!(out.len(), 1, "the new topic's first event was handled");
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_deleted_before_the_actor_read_them_are_reported_and_counted() {
    let kafka = Kafka::start();
    kafka.topic("burst", 1);
    kafka.topic("burst.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let spec = manifest("burst", "burst", "");
    let (consumer, slot) = host.run("fixture-scripted", &spec).await;
    produce(&kafka.brokers, "burst", &numbered(1, 5)).await;
    read_at_least(&kafka.brokers, "burst.out", 5, WAIT).await;
    assert!(wait_committed(&kafka, "wactor.burst", "burst", 5).await);
    consumer.stop().await;

    // While nobody reads, a burst larger than what the mock broker keeps
    // per partition (about 5 MB) pushes the log start past offset 5.
    let pad = "x".repeat(100_000);
    let burst: Vec<_> = (6..=75)
        .map(|i| {
            (
                Some(format!("k{i}")),
                format!("{{\"seq\": {i}, \"pad\": \"{pad}\"}}"),
            )
        })
        .collect();
    produce(&kafka.brokers, "burst", &burst).await;
    let (low, high) = watermarks(&kafka.brokers, "burst", 0).await;
    assert!(
        low > 5,
        "the broker dropped the oldest records (log start {low})"
    );

    let consumer = host.consume(slot).await;
    let expected = usize::try_from(5 + high - low).unwrap();
    let out = read_at_least(&kafka.brokers, "burst.out", expected, WAIT).await;
    assert_eq!(
        out.len(),
        expected,
        "the records still kept are all handled"
    );
    let skipped = host
        .metrics
        .offsets_skipped_total
        .with_label_values(&["burst", "burst", "0"])
        .get();
    assert_eq!(
        skipped,
        u64::try_from(low - 5).unwrap(),
        "every skipped record counted"
    );
    consumer.stop().await;
}
