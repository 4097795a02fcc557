//! Kafka delivery on a real Kafka-protocol broker (librdkafka's mock
//! cluster, in process): per-key order under parallelism, emits with their
//! source headers, at-least-once across a restart and across a second host
//! joining and leaving the group, and backpressure; the lag gauge follows
//! the partitions each host reads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use support::{eventually, manifest, produce, read_at_least, seqs_by_key, Host, Kafka};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_key_order_holds_while_keys_run_in_parallel() {
    let kafka = Kafka::start();
    kafka.topic("ordered", 4);
    kafka.topic("ordered.seen", 4);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run(
            "fixture-checker",
            &manifest("checker", "ordered", "max_in_flight = 16"),
        )
        .await;

    let keys = 40;
    let per_key = 25;
    let mut records = Vec::new();
    for seq in 0..per_key {
        for k in 0..keys {
            records.push((Some(format!("key-{k}")), format!("{{\"seq\": {seq}}}")));
        }
    }
    produce(&kafka.brokers, "ordered", &records).await;

    let seen = read_at_least(&kafka.brokers, "ordered.seen", keys * per_key, WAIT).await;
    consumer.stop().await;

    assert_eq!(seen.len(), keys * per_key, "every event handled once");
    let by_key = seqs_by_key(&seen);
    assert_eq!(by_key.len(), keys);
    for (key, seqs) in &by_key {
        let expected: Vec<i64> = (0..per_key as i64).collect();
        assert_eq!(seqs, &expected, "key {key} handled in order");
    }
    assert!(
        host.store.dead_letters().is_empty(),
        "the checker saw no order violation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emitted_records_carry_the_source_key_and_headers() {
    let kafka = Kafka::start();
    kafka.topic("in", 2);
    kafka.topic("in.out", 2);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run(
            "fixture-scripted",
            &manifest("scripted", "in", "[config]\nlabel = \"v1\""),
        )
        .await;
    produce(
        &kafka.brokers,
        "in",
        &[
            (Some("alpha".into()), "{\"seq\": 1}".into()),
            (Some("beta".into()), "{\"seq\": 2}".into()),
        ],
    )
    .await;
    let out = read_at_least(&kafka.brokers, "in.out", 2, WAIT).await;
    consumer.stop().await;

    assert_eq!(out.len(), 2);
    for record in &out {
        let json = record.json();
        let key = json["key"].as_str().unwrap();
        assert_eq!(record.key.as_deref(), Some(key), "keyed by the source key");
        let source = &record.headers["wactor-source"];
        let parts: Vec<&str> = source.split('/').collect();
        assert_eq!(parts.len(), 3, "{source}");
        assert_eq!(parts[0], "in");
        assert_eq!(parts[1], json["partition"].as_i64().unwrap().to_string());
        assert_eq!(parts[2], json["offset"].as_i64().unwrap().to_string());
        assert_eq!(record.headers["wactor-actor"], "scripted@1");
        assert_eq!(json["label"], "v1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_is_handled_across_a_host_restart_mid_stream() {
    let kafka = Kafka::start();
    kafka.topic("stream", 3);
    kafka.topic("stream.out", 3);
    let dir = tempfile::tempdir().unwrap();
    let spec = manifest("restart", "stream", "max_in_flight = 4");
    let total = 600usize;
    let records: Vec<_> = (0..total)
        .map(|i| {
            (
                Some(format!("k{}", i % 30)),
                format!("{{\"seq\": {i}, \"sleep_ms\": 2}}"),
            )
        })
        .collect();
    produce(&kafka.brokers, "stream", &records).await;

    {
        let host = Host::new(dir.path(), kafka.settings());
        let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
        let partial = read_at_least(&kafka.brokers, "stream.out", 150, WAIT).await;
        assert!(partial.len() >= 150);
        consumer.stop().await;
        host.store.flush().unwrap();
    }
    let handled_before =
        read_at_least(&kafka.brokers, "stream.out", 0, Duration::from_secs(2)).await;
    assert!(
        handled_before.len() < total,
        "the restart happened mid-stream"
    );

    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
    let out = support::read_until(&kafka.brokers, "stream.out", WAIT, move |r| {
        let seqs: BTreeSet<i64> = r.iter().filter_map(|r| r.json()["seq"].as_i64()).collect();
        seqs.len() >= total
    })
    .await;
    consumer.stop().await;

    let seqs: BTreeSet<i64> = out
        .iter()
        .filter_map(|r| r.json()["seq"].as_i64())
        .collect();
    assert_eq!(seqs.len(), total, "no event lost across the restart");
    // A graceful stop commits what it finished: few events run twice.
    let duplicates = out.len() - total;
    assert!(
        duplicates <= 30,
        "{duplicates} duplicates after a graceful restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_is_handled_while_a_second_host_joins_and_leaves() {
    let kafka = Kafka::start();
    kafka.topic("shared", 4);
    kafka.topic("shared.out", 4);
    let spec = manifest("grouped", "shared", "max_in_flight = 4");
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let host_a = Host::new(dir_a.path(), kafka.settings());
    let host_b = Host::new(dir_b.path(), kafka.settings());
    let (consumer_a, _slot_a) = host_a.run("fixture-scripted", &spec).await;

    let total = 900usize;
    let batch = |from: usize, to: usize| -> Vec<(Option<String>, String)> {
        (from..to)
            .map(|i| {
                (
                    Some(format!("k{}", i % 50)),
                    format!("{{\"seq\": {i}, \"sleep_ms\": 2}}"),
                )
            })
            .collect()
    };
    produce(&kafka.brokers, "shared", &batch(0, 300)).await;
    read_at_least(&kafka.brokers, "shared.out", 100, WAIT).await;

    // B joins: the group rebalances and the partitions are shared.
    let (consumer_b, _slot_b) = host_b.run("fixture-scripted", &spec).await;
    produce(&kafka.brokers, "shared", &batch(300, 600)).await;
    let joined = eventually(WAIT, || {
        let owned = consumer_b.status().partitions();
        owned.iter().any(|(topic, _, _)| topic == "shared")
    })
    .await;
    assert!(joined, "the second host was assigned partitions");
    read_at_least(&kafka.brokers, "shared.out", 450, WAIT).await;

    // B leaves: its partitions go back to A.
    consumer_b.stop().await;
    produce(&kafka.brokers, "shared", &batch(600, total)).await;
    let out = support::read_until(&kafka.brokers, "shared.out", WAIT, move |r| {
        let seqs: BTreeSet<i64> = r.iter().filter_map(|r| r.json()["seq"].as_i64()).collect();
        seqs.len() >= total
    })
    .await;
    let back_to_a = eventually(WAIT, || {
        let owned = consumer_a.status().partitions();
        owned
            .iter()
            .filter(|(topic, _, _)| topic == "shared")
            .count()
            == 4
    })
    .await;
    consumer_a.stop().await;

    let seqs: BTreeSet<i64> = out
        .iter()
        .filter_map(|r| r.json()["seq"].as_i64())
        .collect();
    assert_eq!(seqs.len(), total, "no event lost through two rebalances");
    assert!(back_to_a, "the first host owns every partition again");
    let by_partition: BTreeMap<i32, usize> = out.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.partition).or_default() += 1;
        m
    });
    assert!(
        by_partition.len() > 1,
        "events of several partitions: {by_partition:?}"
    );
}

/// The `(topic, partition)` pairs with a `wactor_consumer_lag` series for
/// `actor` in `metrics`.
fn lag_series(metrics: &wactor_metrics::Metrics, actor: &str) -> BTreeSet<(String, i32)> {
    use prometheus::core::Collector;
    use wactor_metrics::label;
    let mut series = BTreeSet::new();
    for family in metrics.consumer_lag.collect() {
        for metric in family.get_metric() {
            if label(metric, "actor") == Some(actor) {
                let topic = label(metric, "topic").unwrap().to_string();
                let partition = label(metric, "partition").unwrap().parse().unwrap();
                series.insert((topic, partition));
            }
        }
    }
    series
}

/// The partitions `consumer` reads now.
fn owned(consumer: &wactor_kafka::ActorConsumer) -> BTreeSet<(String, i32)> {
    consumer
        .status()
        .partitions()
        .into_iter()
        .map(|(topic, partition, _)| (topic, partition))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lag_gauge_shows_only_the_partitions_a_host_reads() {
    let kafka = Kafka::start();
    kafka.topic("lagged", 4);
    let spec = manifest("lagged", "lagged", "max_in_flight = 4");
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let host_a = Host::new(dir_a.path(), kafka.settings());
    let host_b = Host::new(dir_b.path(), kafka.settings());
    let (consumer_a, _slot_a) = host_a.run("fixture-noop", &spec).await;
    let records: Vec<_> = (0..200)
        .map(|i| (Some(format!("k{i}")), "x".to_string()))
        .collect();
    produce(&kafka.brokers, "lagged", &records).await;

    // A alone: a series for each of its partitions (statistics every 5 s).
    let a_alone = eventually(WAIT, || {
        let owned_a = owned(&consumer_a);
        owned_a.iter().filter(|(t, _)| t == "lagged").count() == 4
            && lag_series(&host_a.metrics, "lagged") == owned_a
    })
    .await;
    assert!(
        a_alone,
        "A has a series for each partition it reads: {:?} vs {:?}",
        lag_series(&host_a.metrics, "lagged"),
        owned(&consumer_a)
    );

    // B joins: each host has series for exactly the partitions it reads,
    // none for those it gave up.
    let (consumer_b, _slot_b) = host_b.run("fixture-noop", &spec).await;
    let split = eventually(WAIT, || {
        let (owned_a, owned_b) = (owned(&consumer_a), owned(&consumer_b));
        owned_b.iter().any(|(t, _)| t == "lagged")
            && owned_a.iter().any(|(t, _)| t == "lagged")
            && lag_series(&host_a.metrics, "lagged") == owned_a
            && lag_series(&host_b.metrics, "lagged") == owned_b
    })
    .await;
    let (series_a, series_b) = (
        lag_series(&host_a.metrics, "lagged"),
        lag_series(&host_b.metrics, "lagged"),
    );
    assert!(
        split,
        "after the rebalance, A: series {series_a:?}, reads {:?}; B: series {series_b:?}, reads {:?}",
        owned(&consumer_a),
        owned(&consumer_b)
    );
    assert!(
        series_a.is_disjoint(&series_b),
        "no partition has a series on both hosts: A {series_a:?}, B {series_b:?}"
    );

    // B stops: it reads nothing, and has no series left.
    consumer_b.stop().await;
    let series_b = lag_series(&host_b.metrics, "lagged");
    assert!(
        series_b.is_empty(),
        "a stopped consumer leaves no lag series: {series_b:?}"
    );
    consumer_a.stop().await;
    let series_a = lag_series(&host_a.metrics, "lagged");
    assert!(series_a.is_empty(), "nor does A once stopped: {series_a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_actor_pauses_its_partition_instead_of_buffering_without_bound() {
    let kafka = Kafka::start();
    kafka.topic("slow", 1);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = kafka.settings();
    settings.max_buffered_per_partition = 20;
    let host = Host::new(dir.path(), settings);
    let (consumer, _slot) = host
        .run(
            "fixture-sleep",
            &manifest(
                "slow",
                "slow",
                "max_in_flight = 1\n[config]\nsleep_ms = \"20\"",
            ),
        )
        .await;
    let records: Vec<_> = (0..400)
        .map(|i| (Some(format!("k{i}")), "x".to_string()))
        .collect();
    produce(&kafka.brokers, "slow", &records).await;

    let mut most_buffered = 0;
    let paused = eventually(Duration::from_secs(20), || {
        let buffered = host
            .metrics
            .buffered_events
            .with_label_values(&["slow"])
            .get();
        most_buffered = most_buffered.max(buffered);
        host.metrics
            .partition_pauses_total
            .with_label_values(&["slow"])
            .get()
            >= 1
    })
    .await;
    // Watch a little longer: the buffer stays near its bound.
    for _ in 0..50 {
        let buffered = host
            .metrics
            .buffered_events
            .with_label_values(&["slow"])
            .get();
        most_buffered = most_buffered.max(buffered);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let handled = host
        .metrics
        .events_total
        .with_label_values(&["slow", "1", "done"])
        .get();
    consumer.stop().await;

    assert!(paused, "the partition was paused");
    assert!(
        most_buffered <= 60,
        "at most the bound plus what was in flight is buffered, saw {most_buffered}"
    );
    assert!(
        handled > 0 && handled < 400,
        "the actor works through the backlog slowly: {handled}"
    );
}
