//! The dead-letter set shared through `<group>.dead-letters` (issue 11,
//! part 2): two hosts of one cluster in this test process (each its own
//! store), on librdkafka's mock cluster. One partition, so one host makes
//! every dead letter; the other lists, shows, re-drives and discards them.
//!
//! - A letter made on the owner is listed and shown on the other host.
//! - Re-driven from the other host: the event runs again on the owner,
//!   dies again, and both hosts end with the letter of its second death
//!   (one re-drive counted), never with none or with the first.
//! - Discarded from the owner: gone on both hosts.
//! - A host that joins later (empty disk) lists the set as it is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{eventually, manifest, produce, Host, Kafka};
use wactor_kafka::registry_log::DEFAULT_REGISTRY_TOPIC;
use wactor_registry::{RedriveRequest, Registry, Upload};
use wactor_store::{DeadLetter, DeadLetterFilter};

const WAIT: Duration = Duration::from_secs(60);

async fn join(host: &Host) -> Arc<Registry> {
    host.join_cluster(DEFAULT_REGISTRY_TOPIC).await
}

async fn deploy(registry: &Registry, manifest: &str, component: &[u8]) {
    registry
        .deploy(Upload {
            manifest_toml: manifest,
            component,
            uploaded_by: "test",
            notes: "",
            activate: true,
        })
        .await
        .unwrap();
}

fn letters(registry: &Registry) -> Vec<DeadLetter> {
    registry
        .dead_letters(&DeadLetterFilter::default(), 100, None)
        .map(|page| page.items)
        .unwrap_or_default()
}

/// Which of `hosts` owns the actor's only partition.
async fn owner(hosts: &[&Arc<Registry>]) -> usize {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        for (i, host) in hosts.iter().enumerate() {
            let actors = host.actors().await.unwrap();
            if actors
                .iter()
                .any(|a| a.partitions.iter().any(|p| p.topic == "doomed"))
            {
                return i;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no host owns doomed[0]"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_host_lists_shows_redrives_and_discards_every_dead_letter_of_the_group() {
    let kafka = Kafka::start();
    kafka.topic("doomed", 1);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let hosts: Vec<Host> = dirs
        .iter()
        .map(|d| Host::new(d.path(), kafka.settings()))
        .collect();
    let a = join(&hosts[0]).await;
    let b = join(&hosts[1]).await;
    let component = wactor_tests::guest_bytes("fixture-scripted");
    let spec = manifest("doomed", "doomed", "max_in_flight = 4");
    deploy(&a, &spec, &component).await;
    assert!(b.wait_active("doomed", 1, WAIT).await);
    let both = [&a, &b];
    let made_on = owner(&both).await;
    let (maker, other) = (both[made_on], both[1 - made_on]);

    produce(
        &kafka.brokers,
        "doomed",
        &[
            (Some("k1".into()), r#"{"seq":1,"dead":true}"#.into()),
            (Some("k2".into()), r#"{"seq":2,"dead":true}"#.into()),
        ],
    )
    .await;
    assert!(
        eventually(WAIT, || letters(maker).len() == 2
            && letters(other).len() == 2)
        .await,
        "both hosts list both letters: {} / {}",
        letters(maker).len(),
        letters(other).len()
    );
    let first = letters(maker)
        .into_iter()
        .find(|d| d.event.offset == 0)
        .unwrap();
    assert_eq!(other.dead_letter(&first.id).unwrap(), first, "shown alike");

    // Re-drive from the host that did not make it: it dies again on the
    // owner and comes back, once re-driven, on both hosts.
    let report = other
        .redrive(RedriveRequest {
            id: Some(first.id.clone()),
            by: "test".into(),
            ..RedriveRequest::default()
        })
        .await
        .unwrap();
    assert_eq!((report.redriven, report.failed.len()), (1, 0), "{report:?}");
    let redriven_on = |r: &Registry| r.dead_letter(&first.id).is_ok_and(|d| d.redrives == 1);
    assert!(
        eventually(WAIT, || redriven_on(maker) && redriven_on(other)).await,
        "the second death is listed on both: {:?} / {:?}",
        maker.dead_letter(&first.id).map(|d| d.redrives),
        other.dead_letter(&first.id).map(|d| d.redrives)
    );

    // Discard the other letter from its maker: gone on both.
    let second = letters(maker)
        .into_iter()
        .find(|d| d.event.offset == 1)
        .unwrap();
    let report = maker
        .discard(Some(&second.id), &DeadLetterFilter::default(), false)
        .await
        .unwrap();
    assert_eq!(report.redriven, 1, "{report:?}");
    assert!(
        eventually(WAIT, || other.dead_letter(&second.id).is_err()).await,
        "the discard reached the other host"
    );

    // A host joining now lists exactly the one letter left, at its second
    // death.
    let c = join(&hosts[2]).await;
    assert!(
        eventually(WAIT, || {
            let listed = letters(&c);
            listed.len() == 1 && listed[0].id == first.id && listed[0].redrives == 1
        })
        .await,
        "the new host lists the set as it is: {:?}",
        letters(&c)
            .iter()
            .map(|d| (&d.id, d.redrives))
            .collect::<Vec<_>>()
    );
    for host in [a, b, c] {
        host.shutdown().await;
    }
}

/// The same dead letter re-driven from two hosts at once (two operators,
/// or a client retrying through a load balancer) runs once: the owner of
/// the re-drive partition skips a second re-drive of the same death.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_letter_redriven_from_two_hosts_at_once_runs_once() {
    let kafka = Kafka::start();
    kafka.topic("doomed", 1);
    kafka.topic("doomed.out", 1);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let hosts: Vec<Host> = dirs
        .iter()
        .map(|d| Host::new(d.path(), kafka.settings()))
        .collect();
    let a = join(&hosts[0]).await;
    let b = join(&hosts[1]).await;
    let component = wactor_tests::guest_bytes("fixture-scripted");
    // One attempt, then dead; a re-drive's attempt 2 succeeds and emits.
    let spec = manifest(
        "doomed",
        "doomed",
        "max_in_flight = 4\n[retry]\nmax_attempts = 1\njitter = \"none\"",
    );
    deploy(&a, &spec, &component).await;
    assert!(b.wait_active("doomed", 1, WAIT).await);
    produce(
        &kafka.brokers,
        "doomed",
        &[(
            Some("k".into()),
            r#"{"seq":7,"fail_until_attempt":1}"#.into(),
        )],
    )
    .await;
    assert!(
        eventually(WAIT, || letters(&a).len() == 1 && letters(&b).len() == 1).await,
        "both hosts list the letter"
    );
    let id = letters(&a)[0].id.clone();
    let request = || RedriveRequest {
        id: Some(id.clone()),
        by: "test".into(),
        ..RedriveRequest::default()
    };
    let (from_a, from_b) = tokio::join!(a.redrive(request()), b.redrive(request()));
    let sent = from_a.unwrap().redriven + from_b.unwrap().redriven;
    assert!(sent >= 1, "at least one re-drive was sent");
    let out = support::read_until(&kafka.brokers, "doomed.out", WAIT, |r| !r.is_empty()).await;
    // Give a second run every chance to show up.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let out_later =
        support::read_until(&kafka.brokers, "doomed.out", Duration::from_secs(5), |_| {
            false
        })
        .await;
    assert_eq!(
        (out.len(), out_later.len()),
        (1, 1),
        "the event ran once though {sent} re-drives were sent"
    );
    assert!(
        eventually(WAIT, || letters(&a).is_empty() && letters(&b).is_empty()).await,
        "the letter is gone everywhere"
    );
    for host in [a, b] {
        host.shutdown().await;
    }
}
