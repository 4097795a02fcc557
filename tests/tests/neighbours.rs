//! Hostile actors with a neighbour (issue 9): while actors on the same host
//! spin until their deadline, bomb their memory, overflow their stack, trap
//! on every event and push every per-call limit, a well-behaved actor on
//! the same host still handles every one of its events, and the host stays
//! up. How much of its throughput the neighbour keeps is measured in the
//! bench (`wactor-bench neighbours`), not asserted here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{eventually, manifest, produce, read_at_least, Host, Kafka};

const WAIT: Duration = Duration::from_secs(120);

/// Quick retries, so the hostile events reach the dead-letter set fast.
const QUICK: &str = "[retry]\nmax_attempts = 2\ninitial_backoff = \"10ms\"\njitter = \"none\"";

fn hostile(name: &str, topic: &str, limits: &str) -> String {
    manifest(name, topic, &format!("{QUICK}\n[limits]\n{limits}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_well_behaved_actor_handles_all_its_events_beside_hostile_ones() {
    let kafka = Kafka::start();
    for topic in ["good", "good.out", "spin", "hog", "deep", "crash", "abuse"] {
        kafka.topic(topic, 2);
    }
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let mut consumers = Vec::new();
    for (guest, spec) in [
        (
            "fixture-loop",
            hostile("spinner", "spin", "call_timeout = \"200ms\""),
        ),
        (
            "fixture-memory-hog",
            hostile("hog", "hog", "memory = \"16MiB\""),
        ),
        ("fixture-recurse", hostile("diver", "deep", "")),
        ("fixture-trap", hostile("crasher", "crash", "")),
        ("fixture-hostile", hostile("abuser", "abuse", "")),
    ] {
        consumers.push(host.run(guest, &spec).await);
    }
    let (good, _slot) = host
        .run(
            "fixture-scripted",
            &manifest("good", "good", "max_in_flight = 16"),
        )
        .await;

    let bad_events = 20;
    let abuse = "{\"state_sets\": 20, \"state_value_bytes\": 33554432, \"log_lines\": 5000, \
                 \"log_line_bytes\": 4096, \"stdout_bytes\": 10000000, \
                 \"emit_topic\": \"wactor.good.retries\", \"then\": \"retry\"}";
    for (topic, payload) in [
        ("spin", "{}"),
        ("hog", "{}"),
        ("deep", "{}"),
        ("crash", "{}"),
        ("abuse", abuse),
    ] {
        let records: Vec<_> = (0..bad_events)
            .map(|i| (Some(format!("b{i}")), payload.to_string()))
            .collect();
        produce(&kafka.brokers, topic, &records).await;
    }
    let good_events = 2_000;
    let records: Vec<_> = (0..good_events)
        .map(|i| (Some(format!("k{}", i % 100)), format!("{{\"seq\": {i}}}")))
        .collect();
    produce(&kafka.brokers, "good", &records).await;

    let out = read_at_least(&kafka.brokers, "good.out", good_events, WAIT).await;
    assert_eq!(
        out.len(),
        good_events,
        "every event of the neighbour handled"
    );

    // The hostile actors' events all end in the dead-letter set (two
    // attempts each), and the host is still up and serving.
    let dead_letters = host.store.dead_letters();
    let all_dead = eventually(WAIT, || dead_letters.len() == 5 * bad_events).await;
    assert!(
        all_dead,
        "hostile events dead-lettered: {}",
        dead_letters.len()
    );
    produce(
        &kafka.brokers,
        "good",
        &[(Some("after".into()), "{\"seq\": -1}".into())],
    )
    .await;
    let out = read_at_least(&kafka.brokers, "good.out", good_events + 1, WAIT).await;
    assert_eq!(out.len(), good_events + 1, "still serving after the storm");
    assert!(host.store.held("good").unwrap().is_empty());

    good.stop().await;
    for (consumer, _) in consumers {
        consumer.stop().await;
    }
}
