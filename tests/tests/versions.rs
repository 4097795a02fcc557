//! Live versions through the registry on a real Kafka-protocol broker: a
//! hot swap while events flow (each event handled once, by v1 or v2, and a
//! key never goes back to v1), rollback, refused uploads that change
//! nothing, and a restarted host that runs the same versions from its
//! artifact cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{manifest, produce, read_at_least, read_until, Host, Kafka};
use wactor_registry::{HostParts, Registry, RegistryError, Upload};
use wactor_runtime::{Runtime, RuntimeError, RuntimeSettings};

const WAIT: Duration = Duration::from_secs(60);

fn registry(host: &Host) -> Registry {
    host.registry()
}

fn labelled(label: &str) -> String {
    manifest(
        "swapper",
        "swap",
        &format!("max_in_flight = 8\n[config]\nlabel = \"{label}\""),
    )
}

fn upload<'a>(manifest: &'a str, component: &'a [u8]) -> Upload<'a> {
    Upload {
        manifest_toml: manifest,
        component,
        uploaded_by: "test",
        notes: "",
        activate: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_swap_under_load_hands_every_event_to_exactly_one_version() {
    let kafka = Kafka::start();
    kafka.topic("swap", 4);
    kafka.topic("swap.out", 4);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = registry(&host);
    let component = wactor_tests::guest_bytes("fixture-scripted");
    let v1_manifest = labelled("v1");
    let v1 = registry
        .deploy(upload(&v1_manifest, &component))
        .await
        .unwrap();
    assert_eq!(
        (v1.version.version, v1.created, v1.activated),
        (1, true, true)
    );

    // A producer keeps events flowing while v2 is deployed.
    let total = 400usize;
    let brokers = kafka.brokers.clone();
    let producing = tokio::spawn(async move {
        for chunk in 0..20 {
            let records: Vec<_> = (chunk * 20..chunk * 20 + 20)
                .map(|i| {
                    (
                        Some(format!("k{}", i % 16)),
                        format!("{{\"seq\": {i}, \"sleep_ms\": 2}}"),
                    )
                })
                .collect();
            produce(&brokers, "swap", &records).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    read_at_least(&kafka.brokers, "swap.out", 60, WAIT).await;
    let v2_manifest = labelled("v2");
    let started = Instant::now();
    let v2 = registry
        .deploy(upload(&v2_manifest, &component))
        .await
        .unwrap();
    let swap_ms = started.elapsed().as_millis();
    assert_eq!((v2.version.version, v2.activated), (2, true));
    assert!(
        v2.cache_hit,
        "same component bytes: the artifact came from the cache"
    );
    producing.await.unwrap();

    let out = read_at_least(&kafka.brokers, "swap.out", total, WAIT).await;
    let mut by_seq: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut labels_by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut sorted = out.clone();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    for record in &sorted {
        let json = record.json();
        let label = json["label"].as_str().unwrap().to_string();
        let expected_header = if label == "v1" {
            "swapper@1"
        } else {
            "swapper@2"
        };
        assert_eq!(record.headers["wactor-actor"], expected_header);
        by_seq
            .entry(json["seq"].as_i64().unwrap())
            .or_default()
            .push(label.clone());
        labels_by_key
            .entry(json["key"].as_str().unwrap().to_string())
            .or_default()
            .push(label);
    }
    assert_eq!(by_seq.len(), total, "no event lost");
    assert!(
        by_seq.values().all(|labels| labels.len() == 1),
        "no event handled twice"
    );
    let v1_count = by_seq.values().filter(|l| l[0] == "v1").count();
    assert!(
        v1_count >= 60 && v1_count < total,
        "the switch happened mid-stream: {v1_count} on v1"
    );
    for (key, labels) in &labels_by_key {
        let first_v2 = labels
            .iter()
            .position(|l| l == "v2")
            .unwrap_or(labels.len());
        assert!(
            labels[first_v2..].iter().all(|l| l == "v2"),
            "key {key} went back to v1 after v2: {labels:?}"
        );
    }
    eprintln!("deploy of v2 (validate, store, swap): {swap_ms} ms");

    // Rollback returns to v1 at once, from the loaded artifact.
    let started = Instant::now();
    let activation = registry.rollback("swapper", None, "test").await.unwrap();
    let rollback_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!((activation.version, activation.previous), (1, Some(2)));
    produce(
        &kafka.brokers,
        "swap",
        &[(Some("after".into()), "{\"seq\": 10000}".into())],
    )
    .await;
    let out = read_until(&kafka.brokers, "swap.out", WAIT, |r| {
        r.iter().any(|r| r.json()["seq"] == 10000)
    })
    .await;
    let after = out.iter().find(|r| r.json()["seq"] == 10000).unwrap();
    assert_eq!(after.json()["label"], "v1", "the next event runs v1");
    eprintln!("rollback: {rollback_ms:.2} ms");

    let versions = registry.versions("swapper").unwrap();
    let active: Vec<u64> = versions
        .iter()
        .filter(|v| v.active)
        .map(|v| v.record.version)
        .collect();
    assert_eq!(active, [1]);
    let history: Vec<(u64, String)> = registry
        .history("swapper")
        .unwrap()
        .into_iter()
        .map(|a| (a.version, a.reason))
        .collect();
    assert_eq!(
        history,
        [
            (1, "deploy".into()),
            (2, "deploy".into()),
            (1, "rollback".into())
        ]
    );
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_name_their_problem_and_change_nothing() {
    let kafka = Kafka::start();
    kafka.topic("swap", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = registry(&host);
    let good = wactor_tests::guest_bytes("fixture-noop");
    let spec = labelled("v1");
    registry.deploy(upload(&spec, &good)).await.unwrap();
    let before = (
        registry.versions("swapper").unwrap().len(),
        registry.actor("swapper").unwrap().active_version,
    );

    let wrong_world = wactor_tests::guest_bytes("fixture-wrong-world");
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        ("garbage", b"not wasm at all".to_vec(), spec.clone()),
        ("core module", b"\0asm\x01\0\0\0".to_vec(), spec.clone()),
        ("wrong world", wrong_world, spec.clone()),
        (
            "bad manifest",
            good.clone(),
            "name = \"swapper\"\ntopics = []\n".into(),
        ),
        (
            "bad manifest field",
            good.clone(),
            labelled("v9").replace("max_in_flight = 8", "max_in_flight = 0"),
        ),
    ];
    for (what, component, manifest) in cases {
        let err = registry
            .deploy(upload(&manifest, &component))
            .await
            .expect_err(what);
        let text = err.to_string();
        match what {
            "garbage" => assert!(
                matches!(err, RegistryError::Component(RuntimeError::NotWasm(_))),
                "{what}: {text}"
            ),
            "core module" => assert!(
                matches!(err, RegistryError::Component(RuntimeError::NotAComponent)),
                "{what}: {text}"
            ),
            "wrong world" => assert!(
                matches!(
                    err,
                    RegistryError::Component(
                        RuntimeError::WrongWorld(_) | RuntimeError::MissingExport(_)
                    )
                ),
                "{what}: {text}"
            ),
            "bad manifest" => assert!(text.contains("topics"), "{what}: {text}"),
            _ => assert!(text.contains("max_in_flight"), "{what}: {text}"),
        }
        let after = (
            registry.versions("swapper").unwrap().len(),
            registry.actor("swapper").unwrap().active_version,
        );
        assert_eq!(after, before, "{what} changed the registry");
    }

    // Too large: a runtime with a small component limit.
    let small = Runtime::new(RuntimeSettings {
        max_component_bytes: 1024,
        ..RuntimeSettings::default()
    })
    .unwrap();
    let strict = Registry::new(HostParts {
        runtime: Arc::new(small),
        ..registry.parts().clone()
    });
    let err = strict.deploy(upload(&spec, &good)).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Component(RuntimeError::TooLarge { .. })),
        "{err}"
    );
    assert_eq!(registry.versions("swapper").unwrap().len(), before.0);

    // The same bytes and manifest again: no new version.
    let again = registry.deploy(upload(&spec, &good)).await.unwrap();
    assert_eq!((again.version.version, again.created), (1, false));
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_host_runs_the_same_versions_without_recompiling() {
    let kafka = Kafka::start();
    kafka.topic("swap", 2);
    kafka.topic("swap.out", 2);
    let dir = tempfile::tempdir().unwrap();
    let component = wactor_tests::guest_bytes("fixture-scripted");
    {
        let host = Host::new(dir.path(), kafka.settings());
        let registry = registry(&host);
        registry
            .deploy(upload(&labelled("v1"), &component))
            .await
            .unwrap();
        registry
            .deploy(upload(&labelled("v2"), &component))
            .await
            .unwrap();
        registry.rollback("swapper", None, "test").await.unwrap();
        registry.shutdown().await;
        host.store.flush().unwrap();
    }
    let host = Host::new(dir.path(), kafka.settings());
    let registry = registry(&host);
    let started = registry.start_all().await.unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].actor, "swapper");
    assert_eq!(
        started[0].version, 1,
        "the rolled-back version is still active"
    );
    assert!(started[0].cache_hit, "no recompilation after a restart");
    assert!(started[0].error.is_none());
    produce(
        &kafka.brokers,
        "swap",
        &[(Some("r".into()), "{\"seq\": 1}".into())],
    )
    .await;
    let out = read_at_least(&kafka.brokers, "swap.out", 1, WAIT).await;
    assert_eq!(out[0].json()["label"], "v1");
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_actor_leaves_events_in_kafka_until_it_is_resumed() {
    let kafka = Kafka::start();
    kafka.topic("swap", 2);
    kafka.topic("swap.out", 2);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = registry(&host);
    let component = wactor_tests::guest_bytes("fixture-scripted");
    registry
        .deploy(upload(&labelled("v1"), &component))
        .await
        .unwrap();
    produce(
        &kafka.brokers,
        "swap",
        &[(Some("a".into()), "{\"seq\": 1}".into())],
    )
    .await;
    read_at_least(&kafka.brokers, "swap.out", 1, WAIT).await;

    let paused = registry.pause("swapper").await.unwrap();
    assert!(paused.paused);
    let listed = registry.actors().await.unwrap();
    assert_eq!(listed[0].state, "paused");
    let batch: Vec<_> = (2..12)
        .map(|i| (Some(format!("k{i}")), format!("{{\"seq\": {i}}}")))
        .collect();
    produce(&kafka.brokers, "swap", &batch).await;
    let while_paused = read_until(&kafka.brokers, "swap.out", Duration::from_secs(3), |_| {
        false
    })
    .await;
    assert_eq!(while_paused.len(), 1, "nothing is handled while paused");

    registry.resume("swapper").await.unwrap();
    let out = read_at_least(&kafka.brokers, "swap.out", 11, WAIT).await;
    assert_eq!(out.len(), 11, "the waiting events are handled after resume");
    assert_eq!(registry.actors().await.unwrap()[0].state, "running");
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_that_reads_another_topic_resubscribes() {
    let kafka = Kafka::start();
    kafka.topic("swap", 1);
    kafka.topic("extra", 1);
    kafka.topic("swap.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = registry(&host);
    let component = wactor_tests::guest_bytes("fixture-scripted");
    registry
        .deploy(upload(&labelled("v1"), &component))
        .await
        .unwrap();
    let both = manifest(
        "swapper",
        "swap",
        "[config]\nlabel = \"v2\"\nout_topic = \"swap.out\"",
    )
    .replace("topics = [\"swap\"]", "topics = [\"swap\", \"extra\"]");
    let v2 = registry.deploy(upload(&both, &component)).await.unwrap();
    assert_eq!(v2.version.version, 2);
    produce(
        &kafka.brokers,
        "extra",
        &[(Some("x".into()), "{\"seq\": 5}".into())],
    )
    .await;
    produce(
        &kafka.brokers,
        "swap",
        &[(Some("y".into()), "{\"seq\": 6}".into())],
    )
    .await;
    let out = read_at_least(&kafka.brokers, "swap.out", 2, WAIT).await;
    let seqs: std::collections::BTreeSet<i64> = out
        .iter()
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [5, 6].into(), "events of the new topic are read too");
    assert!(out.iter().all(|r| r.json()["label"] == "v2"));
    let topics = &registry.actors().await.unwrap()[0].topics;
    assert_eq!(topics, &["swap".to_string(), "extra".to_string()]);
    registry.shutdown().await;
}
