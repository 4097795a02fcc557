//! The registry shared through `wactor.registry` (issue 11, part 1), with
//! hosts in this test process on librdkafka's mock cluster: each host its
//! own store, runtime and artifact cache, as `wactor serve` has.
//!
//! - Two hosts deploying at once get consecutive version numbers in the
//!   log's order, and both registries end identical.
//! - A roll back whose expected active version is no longer active is
//!   refused on every host (the rule for concurrent changes).
//! - A host that joins with an empty disk gets every actor, version and
//!   activation and runs the active version, with no deploy of its own.
//! - A host upgraded from a single-host registry publishes its actors; the
//!   cluster's choice wins for an actor it knew already.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{manifest, produce, read_until, Host, Kafka};
use wactor_kafka::registry_log::DEFAULT_REGISTRY_TOPIC;
use wactor_kafka::OutRecord;
use wactor_registry::{Registry, RegistryError, Upload};

const WAIT: Duration = Duration::from_secs(60);

/// A guest whose component is larger than one registry log chunk.
const BIG_GUEST: &str = "fixture-big-data";

fn labelled(actor: &str, label: &str) -> String {
    manifest(
        actor,
        "shared",
        &format!("max_in_flight = 4\n[config]\nlabel = \"{label}\""),
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

/// A mock broker with the actors' topic and its output topic.
fn broker() -> Kafka {
    let kafka = Kafka::start();
    kafka.topic("shared", 2);
    kafka.topic("shared.out", 2);
    kafka
}

/// A host of the cluster: attached to the registry log, applying it.
async fn join(host: &Host) -> Arc<Registry> {
    host.join_cluster(DEFAULT_REGISTRY_TOPIC).await
}

/// (version, sha256, uploaded_at_ms, active) of each version of `actor`.
fn versions_of(registry: &Registry, actor: &str) -> Vec<(u64, String, i64, bool)> {
    registry
        .versions(actor)
        .unwrap()
        .into_iter()
        .map(|v| {
            (
                v.record.version,
                v.record.sha256,
                v.record.uploaded_at_ms,
                v.active,
            )
        })
        .collect()
}

async fn wait_same(a: &Registry, b: &Registry, actor: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (left, right) = (
            a.versions(actor).map(|_| versions_of(a, actor)).ok(),
            b.versions(actor).map(|_| versions_of(b, actor)).ok(),
        );
        if left.is_some() && left == right {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "registries differ: {left:?} vs {right:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deploys_are_numbered_in_the_logs_order_and_every_host_agrees() {
    let kafka = broker();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (host_a, host_b) = (
        Host::new(dir_a.path(), kafka.settings()),
        Host::new(dir_b.path(), kafka.settings()),
    );
    let a = join(&host_a).await;
    let b = join(&host_b).await;
    let component = wactor_tests::guest_bytes("fixture-scripted");

    let v1 = labelled("swap", "v1");
    let first = a.deploy(upload(&v1, &component)).await.unwrap();
    assert_eq!((first.version.version, first.activated), (1, true));
    assert!(b.wait_active("swap", 1, WAIT).await, "b runs v1");

    let (m2, m3) = (labelled("swap", "from-a"), labelled("swap", "from-b"));
    let (from_a, from_b) = tokio::join!(
        a.deploy(upload(&m2, &component)),
        b.deploy(upload(&m3, &component))
    );
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    // The label of version 2: whichever deploy the log holds first.
    let label_of_v2 = if from_a.version.version == 2 {
        "from-a"
    } else {
        "from-b"
    };
    let mut numbers = [from_a.version.version, from_b.version.version];
    numbers.sort_unstable();
    assert_eq!(numbers, [2, 3], "one number each, none twice");
    wait_same(&a, &b, "swap").await;
    let last = a.actor("swap").unwrap().active_version.unwrap();
    assert_eq!(last, 3, "the later change in the log is active");
    assert!(a.wait_active("swap", 3, WAIT).await && b.wait_active("swap", 3, WAIT).await);
    assert_eq!(a.history("swap").unwrap(), b.history("swap").unwrap());

    // A stale roll back (it expects version 2 to be active; 3 is), as a
    // host that had not seen the last deploy would send it: every host
    // refuses it.
    let op = serde_json::json!({
        "id": "00000000000000000000000000000stale",
        "at_ms": 1,
        "by": "test",
        "change": {"kind": "activate", "actor": "swap", "version": 1,
                   "reason": "rollback", "expect_active": 2}
    });
    let mut settings = kafka.settings();
    settings.manage_topics = false;
    support::produce_raw(
        &settings,
        &[OutRecord {
            topic: DEFAULT_REGISTRY_TOPIC.into(),
            partition: Some(0),
            key: Some(b"op/00000000000000000000000000000stale".to_vec()),
            payload: Some(serde_json::to_vec(&op).unwrap()),
            headers: Vec::new(),
        }],
    )
    .await;
    // A real roll back from b after it (its expected version is 3).
    let rolled = b.rollback("swap", None, "test").await.unwrap();
    assert_eq!((rolled.version, rolled.previous), (2, Some(3)));
    wait_same(&a, &b, "swap").await;
    assert_eq!(a.actor("swap").unwrap().active_version, Some(2));
    assert!(
        a.history("swap")
            .unwrap()
            .iter()
            .all(|h| h.version != 1 || h.reason == "deploy"),
        "the stale roll back to v1 was applied nowhere: {:?}",
        a.history("swap").unwrap()
    );

    // Events run v2 on both hosts' partitions.
    assert!(a.wait_active("swap", 2, WAIT).await && b.wait_active("swap", 2, WAIT).await);
    let records: Vec<_> = (0..20)
        .map(|i| (Some(format!("k{i}")), format!(r#"{{"seq":{i}}}"#)))
        .collect();
    produce(&kafka.brokers, "shared", &records).await;
    let out = read_until(&kafka.brokers, "shared.out", WAIT, |r| r.len() >= 20).await;
    let labels: Vec<_> = out.iter().map(|r| r.json()["label"].clone()).collect();
    assert!(
        labels.iter().all(|l| *l == label_of_v2),
        "every event ran the active version, v2 ({label_of_v2}): {labels:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_with_an_empty_disk_joins_and_runs_the_clusters_actors() {
    let kafka = broker();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host_a = Host::new(dir_a.path(), kafka.settings());
    let a = join(&host_a).await;
    let component = wactor_tests::guest_bytes("fixture-scripted");
    // A component larger than one chunk (512 KiB) travels in pieces.
    let big = wactor_tests::guest_bytes(BIG_GUEST);
    assert!(
        big.len() > 512 * 1024,
        "{BIG_GUEST} spans chunks: {}",
        big.len()
    );
    let (m1, m2) = (labelled("joiner", "v1"), labelled("joiner", "v2"));
    a.deploy(upload(&m1, &big)).await.unwrap();
    a.deploy(upload(&m2, &component)).await.unwrap();
    a.pause("joiner").await.unwrap();
    a.resume("joiner").await.unwrap();

    // b starts with nothing: no deploy, no actors directory.
    let host_b = Host::new(dir_b.path(), kafka.settings());
    let b = join(&host_b).await;
    assert_eq!(versions_of(&a, "joiner"), versions_of(&b, "joiner"));
    assert!(b.wait_active("joiner", 2, WAIT).await, "b runs v2 at once");
    assert!(!b.actor("joiner").unwrap().paused);

    // Pause on b reaches a; remove on a reaches b.
    b.pause("joiner").await.unwrap();
    assert!(
        support::eventually(WAIT, || a.actor("joiner").is_ok_and(|r| r.paused)).await,
        "a sees the pause"
    );
    a.remove("joiner").await.unwrap();
    assert!(
        support::eventually(WAIT, || matches!(
            b.actor("joiner"),
            Err(RegistryError::UnknownActor(_))
        ))
        .await,
        "b sees the removal"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_host_registry_is_published_when_the_host_joins_a_cluster() {
    let kafka = broker();
    let component = wactor_tests::guest_bytes("fixture-scripted");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host_a = Host::new(dir_a.path(), kafka.settings());
    let a = join(&host_a).await;
    let cluster_v = labelled("both", "cluster");
    a.deploy(upload(&cluster_v, &component)).await.unwrap();

    // b ran alone before: its own registry, not attached.
    let host_b = Host::new(dir_b.path(), kafka.settings());
    {
        let alone = host_b.registry();
        let (old1, old2) = (labelled("legacy", "old-1"), labelled("legacy", "old-2"));
        alone.deploy(upload(&old1, &component)).await.unwrap();
        alone.deploy(upload(&old2, &component)).await.unwrap();
        alone.rollback("legacy", None, "test").await.unwrap();
        let mine = labelled("both", "b-alone");
        alone.deploy(upload(&mine, &component)).await.unwrap();
        alone.shutdown().await;
    }
    let b = join(&host_b).await;
    // The actor only b knew reaches the cluster with its active version.
    assert!(
        support::eventually(WAIT, || a
            .actor("legacy")
            .is_ok_and(|r| r.active_version == Some(1)))
        .await,
        "a knows legacy, v1 active"
    );
    wait_same(&a, &b, "legacy").await;
    assert_eq!(versions_of(&a, "legacy").len(), 2);
    // The actor the cluster knew keeps running the cluster's version; b's
    // own version is kept as an inactive version.
    wait_same(&a, &b, "both").await;
    let both = versions_of(&b, "both");
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(
        both[0].3 && !both[1].3,
        "the cluster's v1 stays active: {both:?}"
    );
    assert!(b.wait_active("both", 1, WAIT).await);
    a.shutdown().await;
    b.shutdown().await;
}

/// A host whose topic was recreated while it was away (here: it comes
/// back to a topic that holds other changes, more of them than it had
/// applied) notices, publishes its registry and rebuilds from the topic,
/// instead of skipping the changes it believes it applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_coming_back_to_a_recreated_topic_rebuilds_instead_of_skipping() {
    let kafka = broker();
    let component = wactor_tests::guest_bytes("fixture-scripted");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host_b = Host::new(dir_b.path(), kafka.settings());
    {
        let b = host_b.join_cluster("old.registry").await;
        let m = labelled("only-b", "b");
        b.deploy(upload(&m, &component)).await.unwrap();
        b.shutdown().await;
    }
    // The "recreated" topic: other changes, more records than b applied.
    let host_a = Host::new(dir_a.path(), kafka.settings());
    let a = host_a.join_cluster("new.registry").await;
    let m = labelled("only-a", "a");
    a.deploy(upload(&m, &component)).await.unwrap();
    for _ in 0..5 {
        a.pause("only-a").await.unwrap();
        a.resume("only-a").await.unwrap();
    }
    let b = host_b.join_cluster("new.registry").await;
    // b has a's actor, and a has b's (published again).
    assert!(
        support::eventually(WAIT, || b.actor("only-a").is_ok()
            && a.actor("only-b").is_ok())
        .await,
        "both registries hold both actors: a {:?}, b {:?}",
        a.actor("only-b").map(|r| r.active_version),
        b.actor("only-a").map(|r| r.active_version)
    );
    wait_same(&a, &b, "only-a").await;
    wait_same(&a, &b, "only-b").await;
    a.shutdown().await;
    b.shutdown().await;
}

/// A stray piece of a component in the topic (a forged record, or a
/// writer that cuts components otherwise) does not keep that component
/// from being assembled; and a removed actor is not brought back by a
/// host's actors directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stray_chunks_do_not_block_a_deploy_and_removed_actors_stay_removed() {
    let kafka = broker();
    let component = wactor_tests::guest_bytes("fixture-scripted");
    let sha256 = wactor_runtime::sha256_hex(&component);
    let mut settings = kafka.settings();
    settings.manage_topics = false;
    support::produce_raw(
        &settings,
        &[OutRecord {
            topic: DEFAULT_REGISTRY_TOPIC.into(),
            partition: Some(0),
            key: Some(format!("chunk/{sha256}/1/2").into_bytes()),
            payload: Some(b"not the component".to_vec()),
            headers: Vec::new(),
        }],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let a = join(&host).await;
    let m = labelled("gone", "v1");
    let deployed = a.deploy(upload(&m, &component)).await.unwrap();
    assert!(deployed.activated);
    assert!(
        a.wait_active("gone", 1, WAIT).await,
        "runs in spite of the stray piece"
    );

    a.remove("gone").await.unwrap();
    let again = a.deploy_if_new(upload(&m, &component)).await.unwrap();
    assert!(!again.activated && !again.created, "{again:?}");
    assert!(
        matches!(a.actor("gone"), Err(RegistryError::UnknownActor(_))),
        "the removed actor stays removed"
    );
    a.shutdown().await;
}
