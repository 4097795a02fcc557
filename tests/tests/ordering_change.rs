//! Per-key order survives a change of the actor's ordering mode while
//! events are held (issue 10, scenario 5): a hot swap from `partition` to
//! `key` (and back) once let a key's new events run ahead of its held
//! ones, because they were held in the partition's shared lane. Held
//! events now move to the lanes of the new mode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{eventually, manifest, produce, read_at_least, Host, Kafka};
use wactor_registry::Upload;

const WAIT: Duration = Duration::from_secs(60);

fn spec(ordering: &str) -> String {
    manifest(
        "orderly",
        "orderly",
        &format!(
            "ordering = \"{ordering}\"\n[retry]\nmax_attempts = 3\ninitial_backoff = \"3s\"\njitter = \"none\""
        ),
    )
}

async fn swap_keeps_key_order(from: &str, to: &str) {
    let kafka = Kafka::start();
    kafka.topic("orderly", 1);
    kafka.topic("orderly.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = host.registry();
    let component = wactor_tests::guest_bytes("fixture-scripted");
    let deploy = |manifest: String| {
        let registry = &registry;
        let component = &component;
        async move {
            registry
                .deploy(Upload {
                    manifest_toml: &manifest,
                    component,
                    uploaded_by: "test",
                    notes: "",
                    activate: true,
                })
                .await
                .unwrap()
        }
    };
    deploy(spec(from)).await;
    produce(
        &kafka.brokers,
        "orderly",
        &[(
            Some("a".into()),
            "{\"seq\": 1, \"fail_until_attempt\": 1}".into(),
        )],
    )
    .await;
    let held = host.store.held("orderly").unwrap();
    assert!(
        eventually(WAIT, || held.len() == 1).await,
        "seq 1 waits for its retry"
    );

    deploy(spec(to)).await;
    produce(
        &kafka.brokers,
        "orderly",
        &[
            (Some("a".into()), "{\"seq\": 2}".into()),
            (Some("b".into()), "{\"seq\": 3}".into()),
        ],
    )
    .await;
    let out = read_at_least(&kafka.brokers, "orderly.out", 3, WAIT).await;
    let of_a: Vec<i64> = out
        .iter()
        .filter(|r| r.json()["key"] == "a")
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(of_a, [1, 2], "key a in order after {from} -> {to}");
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_swap_from_partition_to_key_ordering_keeps_held_keys_in_order() {
    swap_keeps_key_order("partition", "key").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_swap_from_key_to_partition_ordering_keeps_held_keys_in_order() {
    swap_keeps_key_order("key", "partition").await;
}
