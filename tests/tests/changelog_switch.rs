//! Restore never drops held events (issue 10, scenario 3): switching
//! `retry_changelog` from false to true (the documented path from one host
//! to many) once replaced a partition's local held events with the new,
//! empty changelog, after the source offsets had been committed past them.
//! Now a changelog that has no record of a partition leaves the local held
//! events in place and receives them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{eventually, manifest, produce, read_at_least, read_until, Host, Kafka};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switching_the_retry_changelog_on_keeps_the_events_held_locally() {
    let kafka = Kafka::start();
    kafka.topic("switch", 1);
    kafka.topic("switch.out", 1);
    kafka.topic("wactor.switcher.retries", 4);
    let dir = tempfile::tempdir().unwrap();
    let spec = manifest(
        "switcher",
        "switch",
        "[retry]\nmax_attempts = 3\ninitial_backoff = \"4s\"\njitter = \"none\"",
    );

    // One host, local retries only: the event fails once and waits.
    let mut local = kafka.settings();
    local.retry_changelog = false;
    let host = Host::new(dir.path(), local);
    let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
    produce(
        &kafka.brokers,
        "switch",
        &[(
            Some("k".into()),
            "{\"seq\": 1, \"fail_until_attempt\": 1}".into(),
        )],
    )
    .await;
    let held = host.store.held("switcher").unwrap();
    assert!(eventually(WAIT, || held.len() == 1).await, "held locally");
    consumer.stop().await;
    drop(held);
    drop(host);

    // The same host with the changelog on (the changelog is empty).
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
    let out = read_at_least(&kafka.brokers, "switch.out", 1, WAIT).await;
    assert_eq!(out.len(), 1, "the held event ran again and was done");
    assert_eq!(out[0].json()["attempt"], 2);
    // And it went through the changelog: a held record, then its tombstone.
    let changelog = read_until(&kafka.brokers, "wactor.switcher.retries", WAIT, |records| {
        records.len() >= 2
    })
    .await;
    assert!(!changelog[0].value.is_empty(), "the migrated held record");
    consumer.stop().await;
}
