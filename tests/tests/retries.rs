//! Retries, held lanes and dead letters on a real Kafka-protocol broker,
//! with a hand-moved clock: the delays of the policy, dead letters with
//! their full context, a poisoned key waiting while other keys go on, a
//! held partition in `partition` mode, retries that survive a move to
//! another host, and re-drive after a fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{eventually, manifest, produce, read_at_least, read_until, Host, Kafka};
use wactor_kafka::{Clock, ManualClock};
use wactor_store::{AttemptOutcome, HeldFilter};

const WAIT: Duration = Duration::from_secs(60);
const T0: i64 = 1_700_000_000_000;

const RETRY_1S_DOUBLING: &str = "[retry]\nmax_attempts = 5\ninitial_backoff = \"1s\"\nmax_backoff = \"1m\"\nmultiplier = 2.0\njitter = \"none\"";

fn manual_host(kafka: &Kafka, dir: &std::path::Path) -> (Host, ManualClock) {
    let clock = ManualClock::new(T0);
    let host = Host::with_clock(
        dir,
        kafka.settings(),
        Arc::new(clock.clone()) as Arc<dyn Clock>,
    );
    (host, clock)
}

fn held_attempts(host: &Host, actor: &str) -> Vec<(usize, Option<i64>)> {
    host.store
        .held(actor)
        .unwrap()
        .list(&HeldFilter::default(), 100)
        .unwrap()
        .iter()
        .map(|h| (h.attempts.len(), h.next_attempt_at_ms))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_that_fails_twice_is_done_on_attempt_three_after_the_policy_delays() {
    let kafka = Kafka::start();
    kafka.topic("flaky", 1);
    kafka.topic("flaky.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let (host, clock) = manual_host(&kafka, dir.path());
    let (consumer, _slot) = host
        .run(
            "fixture-scripted",
            &manifest("flaky", "flaky", RETRY_1S_DOUBLING),
        )
        .await;
    produce(
        &kafka.brokers,
        "flaky",
        &[(
            Some("k".into()),
            "{\"seq\": 1, \"fail_until_attempt\": 2}".into(),
        )],
    )
    .await;

    // Attempt 1 fails at T0: the retry is due 1 s later.
    assert!(
        eventually(WAIT, || held_attempts(&host, "flaky")
            == [(1, Some(T0 + 1_000))])
        .await
    );
    clock.advance(Duration::from_millis(999));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        held_attempts(&host, "flaky"),
        [(1, Some(T0 + 1_000))],
        "not due yet"
    );

    // Attempt 2 fails at T0+1s: the next is due 2 s later.
    clock.advance(Duration::from_millis(1));
    assert!(
        eventually(WAIT, || held_attempts(&host, "flaky")
            == [(2, Some(T0 + 3_000))])
        .await
    );

    // Attempt 3 at T0+3s succeeds.
    clock.advance(Duration::from_secs(2));
    let out = read_at_least(&kafka.brokers, "flaky.out", 1, WAIT).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].json()["attempt"], 3);
    assert!(eventually(WAIT, || held_attempts(&host, "flaky").is_empty()).await);
    consumer.stop().await;
    assert!(host.store.dead_letters().is_empty());
    let fired = host
        .metrics
        .retries_fired_total
        .with_label_values(&["flaky"])
        .get();
    assert_eq!(fired, 2, "two retries ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_event_is_dead_lettered_after_its_last_attempt_with_full_context() {
    let kafka = Kafka::start();
    kafka.topic("poison", 1);
    let dir = tempfile::tempdir().unwrap();
    let (host, clock) = manual_host(&kafka, dir.path());
    let spec = manifest(
        "poisoned",
        "poison",
        "[retry]\nmax_attempts = 3\ninitial_backoff = \"1s\"\njitter = \"none\"",
    );
    let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
    produce(
        &kafka.brokers,
        "poison",
        &[(Some("bad".into()), "{\"fail_until_attempt\": 99}".into())],
    )
    .await;
    assert!(eventually(WAIT, || held_attempts(&host, "poisoned").len() == 1).await);
    clock.advance(Duration::from_secs(1));
    assert!(
        eventually(WAIT, || held_attempts(&host, "poisoned")
            == [(2, Some(T0 + 3_000))])
        .await
    );
    clock.advance(Duration::from_secs(2));
    let dead_letters = host.store.dead_letters();
    assert!(eventually(WAIT, || dead_letters.len() == 1).await);
    assert!(
        held_attempts(&host, "poisoned").is_empty(),
        "the held record moved"
    );
    consumer.stop().await;

    let page = dead_letters.list(&Default::default(), 10, None).unwrap();
    let dead = &page.items[0];
    assert_eq!(dead.actor, "poisoned");
    assert_eq!(dead.version, 1);
    assert_eq!(dead.group, "wactor.poisoned");
    assert_eq!(dead.kind, "attempts_exhausted");
    assert_eq!(dead.event.topic, "poison");
    assert_eq!(dead.event.partition, 0);
    assert_eq!(dead.event.offset, 0);
    assert_eq!(dead.event.key.as_deref(), Some(&b"bad"[..]));
    assert_eq!(
        dead.event.payload.as_deref(),
        Some(&b"{\"fail_until_attempt\": 99}"[..])
    );
    assert_eq!(
        dead.event.headers,
        vec![wactor_store::StoredHeader::new(
            "test",
            Some(b"yes".to_vec())
        )]
    );
    assert_eq!(dead.first_attempt_at_ms, T0);
    assert_eq!(dead.dead_at_ms, T0 + 3_000);
    let attempts: Vec<(u32, i64, AttemptOutcome)> = dead
        .attempts
        .iter()
        .map(|a| (a.attempt, a.started_at_ms, a.outcome))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, T0, AttemptOutcome::Retry),
            (2, T0 + 1_000, AttemptOutcome::Retry),
            (3, T0 + 3_000, AttemptOutcome::Retry)
        ]
    );
    assert!(dead
        .attempts
        .iter()
        .all(|a| a.error.contains("scripted retry")));
    assert!(
        dead.reason.contains("retry attempts exhausted"),
        "{}",
        dead.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poisoned_key_waits_while_other_keys_go_on_and_then_runs_in_order() {
    let kafka = Kafka::start();
    kafka.topic("keys", 1);
    kafka.topic("keys.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let (host, clock) = manual_host(&kafka, dir.path());
    let spec = manifest(
        "keyed",
        "keys",
        "[retry]\nmax_attempts = 2\ninitial_backoff = \"1s\"\njitter = \"none\"",
    );
    let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
    produce(
        &kafka.brokers,
        "keys",
        &[
            (
                Some("a".into()),
                "{\"seq\": 1, \"fail_until_attempt\": 99}".into(),
            ),
            (Some("a".into()), "{\"seq\": 2}".into()),
            (Some("b".into()), "{\"seq\": 1}".into()),
            (Some("a".into()), "{\"seq\": 3}".into()),
            (Some("b".into()), "{\"seq\": 2}".into()),
        ],
    )
    .await;

    // b goes on while a waits for its retry.
    let out = read_at_least(&kafka.brokers, "keys.out", 2, WAIT).await;
    let seen: Vec<(String, i64)> = out
        .iter()
        .map(|r| {
            (
                r.json()["key"].as_str().unwrap().to_string(),
                r.json()["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("b".into(), 1), ("b".into(), 2)]);
    assert!(eventually(WAIT, || held_attempts(&host, "keyed").len() == 3).await);
    let held = held_attempts(&host, "keyed");
    assert_eq!(
        held,
        [(1, Some(T0 + 1_000)), (0, None), (0, None)],
        "a1 retries, a2 and a3 wait behind it"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = read_until(
        &kafka.brokers,
        "keys.out",
        Duration::from_millis(500),
        |_| false,
    )
    .await;
    assert_eq!(still.len(), 2, "a2 and a3 do not overtake a1");

    // a1 dies on its last attempt; a2 and a3 then run, in order.
    clock.advance(Duration::from_secs(1));
    let out = read_at_least(&kafka.brokers, "keys.out", 4, WAIT).await;
    let a: Vec<i64> = out
        .iter()
        .filter(|r| r.json()["key"] == "a")
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(a, [2, 3]);
    assert!(eventually(WAIT, || held_attempts(&host, "keyed").is_empty()).await);
    consumer.stop().await;
    assert_eq!(host.store.dead_letters().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_partition_mode_a_retrying_event_holds_the_whole_partition() {
    let kafka = Kafka::start();
    kafka.topic("strict", 1);
    kafka.topic("strict.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let (host, clock) = manual_host(&kafka, dir.path());
    let spec = manifest(
        "strict",
        "strict",
        &format!("ordering = \"partition\"\n{RETRY_1S_DOUBLING}"),
    );
    let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
    produce(
        &kafka.brokers,
        "strict",
        &[
            (
                Some("x".into()),
                "{\"seq\": 1, \"fail_until_attempt\": 1}".into(),
            ),
            (Some("y".into()), "{\"seq\": 2}".into()),
            (Some("z".into()), "{\"seq\": 3}".into()),
        ],
    )
    .await;
    assert!(eventually(WAIT, || !held_attempts(&host, "strict").is_empty()).await);
    let early = read_until(
        &kafka.brokers,
        "strict.out",
        Duration::from_millis(800),
        |_| false,
    )
    .await;
    assert!(early.is_empty(), "other keys wait too in partition mode");
    clock.advance(Duration::from_secs(1));
    let out = read_at_least(&kafka.brokers, "strict.out", 3, WAIT).await;
    let seqs: Vec<i64> = out
        .iter()
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3], "strict offset order");
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_moves_with_its_partition_to_another_host() {
    let kafka = Kafka::start();
    kafka.topic("moving", 1);
    kafka.topic("moving.out", 1);
    let spec = manifest("mover", "moving", RETRY_1S_DOUBLING);
    let clock = ManualClock::new(T0);
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    {
        let host_a = Host::with_clock(dir_a.path(), kafka.settings(), Arc::new(clock.clone()));
        let (consumer, _slot) = host_a.run("fixture-scripted", &spec).await;
        produce(
            &kafka.brokers,
            "moving",
            &[
                (
                    Some("m".into()),
                    "{\"seq\": 1, \"fail_until_attempt\": 1}".into(),
                ),
                (Some("m".into()), "{\"seq\": 2}".into()),
            ],
        )
        .await;
        assert!(eventually(WAIT, || held_attempts(&host_a, "mover").len() == 2).await);
        consumer.stop().await;
    }
    // Host B has an empty store: it learns the retry from the changelog.
    let host_b = Host::with_clock(dir_b.path(), kafka.settings(), Arc::new(clock.clone()));
    let (consumer, _slot) = host_b.run("fixture-scripted", &spec).await;
    assert!(
        eventually(WAIT, || held_attempts(&host_b, "mover")
            == [(1, Some(T0 + 1_000)), (0, None)])
        .await,
        "restored: {:?}",
        held_attempts(&host_b, "mover")
    );
    let early = read_until(
        &kafka.brokers,
        "moving.out",
        Duration::from_millis(500),
        |_| false,
    )
    .await;
    assert!(
        early.is_empty(),
        "neither event runs before the retry is due"
    );
    clock.advance(Duration::from_secs(1));
    let out = read_at_least(&kafka.brokers, "moving.out", 2, WAIT).await;
    let got: Vec<(i64, i64)> = out
        .iter()
        .map(|r| {
            (
                r.json()["seq"].as_i64().unwrap(),
                r.json()["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(1, 2), (2, 1)],
        "attempt count and order survive the move"
    );
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_letter_redriven_after_a_fix_is_done_and_a_dry_run_changes_nothing() {
    use wactor_registry::{RedriveRequest, Upload};
    let kafka = Kafka::start();
    kafka.topic("fixme", 1);
    kafka.topic("fixme.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = host.registry();
    let spec = manifest("fixme", "fixme", "[retry]\nmax_attempts = 1");
    let trap = wactor_tests::guest_bytes("fixture-trap");
    let fixed = wactor_tests::guest_bytes("fixture-scripted");
    let upload = |component| Upload {
        manifest_toml: &spec,
        component,
        uploaded_by: "test",
        notes: "",
        activate: true,
    };
    registry.deploy(upload(&trap)).await.unwrap();
    produce(
        &kafka.brokers,
        "fixme",
        &[(Some("f".into()), "{\"seq\": 7}".into())],
    )
    .await;
    let dead_letters = host.store.dead_letters();
    assert!(
        eventually(WAIT, || dead_letters.len() == 1).await,
        "the trap dead-letters the event"
    );

    registry.refresh_gauges().unwrap();
    let dead_gauge = || {
        host.metrics
            .dead_letter_set_size
            .with_label_values(&["fixme"])
            .get()
    };
    assert_eq!(dead_gauge(), 1, "the dead-letter gauge counts it");

    let v2 = registry.deploy(upload(&fixed)).await.unwrap();
    assert_eq!(v2.version.version, 2);

    let dry = registry
        .redrive(RedriveRequest {
            dry_run: true,
            by: "test".into(),
            ..RedriveRequest::default()
        })
        .await
        .unwrap();
    assert_eq!((dry.matched, dry.redriven), (1, 0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dead_letters.len(), 1, "a dry run changes nothing");
    let none = read_until(
        &kafka.brokers,
        "fixme.out",
        Duration::from_millis(500),
        |_| false,
    )
    .await;
    assert!(none.is_empty());

    let report = registry
        .redrive(RedriveRequest {
            by: "test".into(),
            ..RedriveRequest::default()
        })
        .await
        .unwrap();
    assert_eq!((report.matched, report.redriven), (1, 1));
    let out = read_at_least(&kafka.brokers, "fixme.out", 1, WAIT).await;
    let json = out[0].json();
    assert_eq!(json["seq"], 7);
    assert_eq!(
        json["attempt"], 2,
        "the re-drive counts on from the history"
    );
    assert_eq!(json["partition"], 0, "the actor sees the original event");
    assert_eq!(json["offset"], 0);
    assert_eq!(out[0].headers["wactor-actor"], "fixme@2");
    assert!(dead_letters.is_empty());
    registry.refresh_gauges().unwrap();
    assert_eq!(dead_gauge(), 0);
    registry.shutdown().await;
}
