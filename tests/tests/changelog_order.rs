//! Nothing reaches the retry changelog before the local writes it depends
//! on are durable (issue 10, scenario 2). A held event that dies is moved to
//! the dead-letter set and its changelog record becomes a tombstone; if the
//! tombstone were produced before the store flushed, a crash in between
//! would lose the dead letter (the next owner trusts the changelog). Here
//! the store's flush fails (a fail point: as far as Kafka can tell, the
//! host died before flushing), and the tombstone must wait for it.
//!
//! Its own test binary: fail points are process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{manifest, produce, read_until, Host, Kafka, Record};

const WAIT: Duration = Duration::from_secs(60);
const CHANGELOG: &str = "wactor.ordered.retries";

async fn changelog(kafka: &Kafka, at_least: usize, wait: Duration) -> Vec<Record> {
    read_until(&kafka.brokers, CHANGELOG, wait, move |r| {
        r.len() >= at_least
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changelog_tombstone_waits_for_the_flush_of_the_dead_letter_it_stands_for() {
    let scenario = fail::FailScenario::setup();
    let kafka = Kafka::start();
    kafka.topic("ord", 1);
    kafka.topic(CHANGELOG, 4);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let spec = manifest(
        "ordered",
        "ord",
        "[retry]\nmax_attempts = 2\ninitial_backoff = \"2s\"\njitter = \"none\"",
    );
    let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
    produce(
        &kafka.brokers,
        "ord",
        &[(
            Some("k".into()),
            "{\"seq\": 1, \"fail_until_attempt\": 9}".into(),
        )],
    )
    .await;

    // Attempt 1 failed: the held record is in the changelog.
    let records = changelog(&kafka, 1, WAIT).await;
    assert_eq!(records.len(), 1);
    assert!(
        !records[0].value.is_empty(),
        "a held record, not a tombstone"
    );

    // From now on the store cannot flush. Attempt 2 (2 s later) fails for
    // good: the event moves to the dead-letter set, which is not durable.
    fail::cfg("wactor-store-flush", "return").unwrap();
    let dead_letters = host.store.dead_letters();
    assert!(support::eventually(WAIT, || dead_letters.len() == 1).await);
    let records = changelog(&kafka, 2, Duration::from_secs(3)).await;
    assert_eq!(
        records.len(),
        1,
        "no tombstone while the dead letter is not on disk: {records:?}"
    );

    // The store flushes again: now the tombstone follows.
    fail::remove("wactor-store-flush");
    let records = changelog(&kafka, 2, WAIT).await;
    assert_eq!(records.len(), 2, "the tombstone after the flush");
    assert!(records[1].value.is_empty(), "a tombstone: {:?}", records[1]);
    consumer.stop().await;
    scenario.teardown();
}
