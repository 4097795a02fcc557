//! Re-drive never loses a dead letter (issue 10, scenario 1): 3,000 events
//! that the actor always declares dead are re-driven all at once, with no
//! rate limit; each re-driven event dies again, often before the re-drive
//! call has removed the letter it sent. The set ends with exactly 3,000
//! letters, each re-driven once. Two re-drives of the same letters at once
//! do not run any event twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{eventually, manifest, produce, Host, Kafka};
use wactor_registry::{RedriveRequest, Upload};
use wactor_store::DeadLetterFilter;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redriving_three_thousand_dead_letters_that_die_again_keeps_every_letter() {
    let kafka = Kafka::start();
    kafka.topic("doomed", 4);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = host.registry();
    let component = wactor_tests::guest_bytes("fixture-scripted");
    let spec = manifest("doomed", "doomed", "max_in_flight = 32");
    registry
        .deploy(Upload {
            manifest_toml: &spec,
            component: &component,
            uploaded_by: "test",
            notes: "",
            activate: true,
        })
        .await
        .unwrap();
    let total = 3_000;
    let records: Vec<_> = (0..total)
        .map(|i| {
            (
                Some(format!("k{i}")),
                format!("{{\"seq\": {i}, \"dead\": true}}"),
            )
        })
        .collect();
    produce(&kafka.brokers, "doomed", &records).await;
    let dead_letters = host.store.dead_letters();
    assert!(eventually(WAIT, || dead_letters.len() == total).await);

    // Two re-drives of the whole set at once.
    let request = || RedriveRequest {
        by: "test".into(),
        ..RedriveRequest::default()
    };
    let (first, second) = tokio::join!(registry.redrive(request()), registry.redrive(request()));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        first.redriven + second.redriven,
        total,
        "each letter re-driven by exactly one of the two calls"
    );

    // Every re-driven event dies again: the set holds every letter, each
    // with one re-drive counted.
    let all_back = eventually(WAIT, || {
        let page = dead_letters
            .list(&DeadLetterFilter::default(), 10_000, None)
            .unwrap();
        page.items.len() == total && page.items.iter().all(|d| d.redrives == 1)
    })
    .await;
    let page = dead_letters
        .list(&DeadLetterFilter::default(), 10_000, None)
        .unwrap();
    let twice = page.items.iter().filter(|d| d.redrives > 1).count();
    assert!(
        all_back,
        "{} letters ({} with one re-drive, {twice} run more than once)",
        page.items.len(),
        page.items.iter().filter(|d| d.redrives == 1).count()
    );
    registry.shutdown().await;
}
