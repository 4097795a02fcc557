//! Hostile records, big records and hostile actors, on a real
//! Kafka-protocol broker (librdkafka's mock cluster) with real components:
//! a null value (a tombstone) and null header values stay null from the
//! broker to the actor, into a dead letter, its Kafka mirror and a
//! re-drive, and out again when an actor emits one; a 300 KB event that
//! retries does not hold back the partition's commits; a held record over
//! the message size limit is dead-lettered at once; an actor's 16 MiB
//! reason is cut; dead-letter retention evicts by count and age, and counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{
    committed_offsets, eventually, manifest, produce_raw, read_at_least, read_until, Host, Kafka,
    Record,
};
use wactor_kafka::{Clock, ManualClock, OutRecord};
use wactor_registry::{RedriveRequest, Upload};
use wactor_store::{DeadLetterFilter, HeldFilter, StoredHeader};

const WAIT: Duration = Duration::from_secs(60);
const T0: i64 = 1_700_000_000_000;

fn manual_host(kafka: &Kafka, dir: &std::path::Path) -> (Host, ManualClock) {
    manual_host_with(dir, kafka.settings())
}

fn manual_host_with(
    dir: &std::path::Path,
    settings: wactor_kafka::KafkaSettings,
) -> (Host, ManualClock) {
    let clock = ManualClock::new(T0);
    let host = Host::with_clock(dir, settings, Arc::new(clock.clone()) as Arc<dyn Clock>);
    (host, clock)
}

fn record(
    topic: &str,
    key: &str,
    payload: Option<&[u8]>,
    headers: &[(&str, Option<&str>)],
) -> OutRecord {
    OutRecord {
        topic: topic.into(),
        partition: None,
        key: Some(key.as_bytes().to_vec()),
        payload: payload.map(<[u8]>::to_vec),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(|v| v.as_bytes().to_vec())))
            .collect(),
    }
}

/// The headers every null/empty test record carries: a null value and an
/// empty one.
const NULL_AND_EMPTY: &[(&str, Option<&str>)] = &[("gone", None), ("empty", Some(""))];

fn by_key<'a>(records: &'a [Record], key: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.key.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no record with key {key}: {records:?}"))
}

fn null_and_empty_headers() -> Vec<(String, Option<Vec<u8>>)> {
    vec![("gone".into(), None), ("empty".into(), Some(Vec::new()))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tombstone_and_an_empty_value_reach_the_actor_told_apart_and_so_do_null_headers() {
    let kafka = Kafka::start();
    kafka.topic("nulls", 1);
    kafka.topic("nulls.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run("fixture-nulls", &manifest("nulls", "nulls", ""))
        .await;
    produce_raw(
        &kafka.settings(),
        &[
            record("nulls", "tombstone", None, NULL_AND_EMPTY),
            record("nulls", "empty", Some(b""), NULL_AND_EMPTY),
        ],
    )
    .await;
    let out = read_at_least(&kafka.brokers, "nulls.out", 2, WAIT).await;
    consumer.stop().await;

    let tombstone = by_key(&out, "tombstone").json();
    let empty = by_key(&out, "empty").json();
    assert_eq!(tombstone["tombstone"], true, "{tombstone}");
    assert_eq!(empty["tombstone"], false, "{empty}");
    assert_eq!(empty["payload_len"], 0);
    let headers = serde_json::json!([["gone", null], ["empty", ""]]);
    assert_eq!(tombstone["headers"], headers);
    assert_eq!(empty["headers"], headers);
    // The actor copied the headers onto its emit: null stays null on the wire.
    for key in ["tombstone", "empty"] {
        let emitted = &by_key(&out, key).raw_headers;
        assert_eq!(emitted[..2], null_and_empty_headers()[..], "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_actor_emits_a_tombstone_and_a_consumer_reads_a_null_value() {
    let kafka = Kafka::start();
    kafka.topic("users", 1);
    kafka.topic("users.out", 1);
    kafka.topic("users.compacted", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let (consumer, _slot) = host
        .run("fixture-nulls", &manifest("deleter", "users", ""))
        .await;
    produce_raw(
        &kafka.settings(),
        &[record(
            "users",
            "user-7",
            Some(b"{\"deleted\": true}"),
            &[("emit-tombstone", Some("users.compacted"))],
        )],
    )
    .await;
    let compacted = read_at_least(&kafka.brokers, "users.compacted", 1, WAIT).await;
    consumer.stop().await;
    assert_eq!(compacted.len(), 1);
    assert_eq!(compacted[0].key.as_deref(), Some("user-7"));
    assert_eq!(
        compacted[0].value_bytes, None,
        "a null value, not an empty one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_lettered_tombstone_stays_null_in_the_set_the_mirror_and_a_redrive() {
    let kafka = Kafka::start();
    kafka.topic("gdpr", 1);
    kafka.topic("gdpr.out", 1);
    kafka.topic("gdpr.eraser.dlq", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let registry = host.registry();
    let spec = manifest(
        "eraser",
        "gdpr",
        "[retry]\nmax_attempts = 1\n[dead_letter]\ntopic = \"default\"",
    );
    let trap = wactor_tests::guest_bytes("fixture-trap");
    let fixed = wactor_tests::guest_bytes("fixture-nulls");
    let upload = |component| Upload {
        manifest_toml: &spec,
        component,
        uploaded_by: "test",
        notes: "",
        activate: true,
    };
    registry.deploy(upload(&trap)).await.unwrap();
    produce_raw(
        &kafka.settings(),
        &[
            record("gdpr", "tombstone", None, NULL_AND_EMPTY),
            record("gdpr", "empty", Some(b""), NULL_AND_EMPTY),
        ],
    )
    .await;
    let dead_letters = host.store.dead_letters();
    assert!(eventually(WAIT, || dead_letters.len() == 2).await);

    // The set keeps exactly what arrived.
    let stored = |key: &str| {
        dead_letters
            .list(&DeadLetterFilter::default(), 10, None)
            .unwrap()
            .items
            .into_iter()
            .find(|d| d.event.key.as_deref() == Some(key.as_bytes()))
            .unwrap()
    };
    let headers = vec![
        StoredHeader::new("gone", None),
        StoredHeader::new("empty", Some(Vec::new())),
    ];
    assert_eq!(stored("tombstone").event.payload, None);
    assert_eq!(stored("empty").event.payload, Some(Vec::new()));
    assert_eq!(stored("tombstone").event.headers, headers);
    assert_eq!(stored("empty").event.headers, headers);

    // So does the Kafka mirror.
    let mirror = read_at_least(&kafka.brokers, "gdpr.eraser.dlq", 2, WAIT).await;
    assert_eq!(by_key(&mirror, "tombstone").value_bytes, None);
    assert_eq!(by_key(&mirror, "empty").value_bytes, Some(Vec::new()));
    assert_eq!(
        by_key(&mirror, "tombstone").raw_headers[..2],
        null_and_empty_headers()[..]
    );

    // And a re-drive, to a version that reports what it sees.
    registry.deploy(upload(&fixed)).await.unwrap();
    let report = registry
        .redrive(RedriveRequest {
            by: "test".into(),
            ..RedriveRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (report.matched, report.redriven),
        (2, 2),
        "{:?}",
        report.failed
    );
    let out = read_at_least(&kafka.brokers, "gdpr.out", 2, WAIT).await;
    let tombstone = by_key(&out, "tombstone").json();
    let empty = by_key(&out, "empty").json();
    assert_eq!(tombstone["tombstone"], true, "{tombstone}");
    assert_eq!(empty["tombstone"], false, "{empty}");
    assert_eq!(empty["payload_len"], 0);
    assert_eq!(
        tombstone["headers"],
        serde_json::json!([["gone", null], ["empty", ""]])
    );
    assert_eq!(
        tombstone["attempt"], 2,
        "the re-drive counts on from the history"
    );
    registry.shutdown().await;
}

/// A JSON payload of about `size` bytes that the scripted fixture retries
/// for ever: `{"fail_until_attempt": 99, "pad": "xxx…"}`. 'x' is byte 120,
/// which JSON wrote as four characters ("120,").
fn big_retrying_payload(size: usize) -> Vec<u8> {
    format!(
        "{{\"fail_until_attempt\": 99, \"pad\": \"{}\"}}",
        "x".repeat(size)
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_300_kb_event_waiting_for_its_retry_lets_the_commit_pass_1000_small_events_behind_it() {
    let kafka = Kafka::start();
    kafka.topic("payments", 1);
    kafka.topic("payments.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let (host, _clock) = manual_host(&kafka, dir.path());
    // The wallet is down: the big event retries, an hour from now (the
    // clock does not move, so it waits for the whole test).
    let spec = manifest(
        "reversal",
        "payments",
        "[retry]\nmax_attempts = 5\ninitial_backoff = \"1h\"\nmax_backoff = \"1h\"\njitter = \"none\"",
    );
    let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
    let mut records = vec![OutRecord {
        topic: "payments".into(),
        partition: Some(0),
        key: Some(b"booking-big".to_vec()),
        payload: Some(big_retrying_payload(300 * 1024)),
        headers: Vec::new(),
    }];
    for n in 0..1000 {
        records.push(OutRecord {
            topic: "payments".into(),
            partition: Some(0),
            key: Some(format!("booking-{n}").into_bytes()),
            payload: Some(format!("{{\"seq\": {n}}}").into_bytes()),
            headers: Vec::new(),
        });
    }
    produce_raw(&kafka.settings(), &records).await;

    let brokers = kafka.brokers.clone();
    let mut committed = Vec::new();
    for _ in 0..300 {
        committed = committed_offsets(&brokers, "wactor.reversal", "payments", 1).await;
        if committed == [1001] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        committed,
        [1001],
        "the committed offset passes the held 300 KB event and the 1000 behind it"
    );
    let held = host
        .store
        .held("reversal")
        .unwrap()
        .list(&HeldFilter::default(), 10)
        .unwrap();
    assert_eq!(held.len(), 1, "the big event still waits for its retry");
    assert_eq!(held[0].attempts.len(), 1);
    assert!(host.store.dead_letters().is_empty());

    // Its changelog record is about its own size, in the binary format.
    let changelog = read_until(&kafka.brokers, "wactor.reversal.retries", WAIT, |r| {
        r.iter().any(|r| r.value_bytes.is_some())
    })
    .await;
    let value = changelog
        .iter()
        .find_map(|r| r.value_bytes.clone())
        .expect("a changelog record");
    assert_eq!(value[0], wactor_store::value::FORMAT_POSTCARD_V1);
    assert!(
        value.len() < 300 * 1024 + 4 * 1024,
        "the held record is {} bytes",
        value.len()
    );
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_whose_held_record_exceeds_the_message_limit_is_dead_lettered_at_once_and_its_lane_goes_on(
) {
    let kafka = Kafka::start();
    kafka.topic("wide", 1);
    kafka.topic("wide.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = kafka.settings();
    settings
        .producer
        .insert("message.max.bytes".into(), "200000".into());
    let (host, _clock) = manual_host_with(dir.path(), settings);
    let registry = host.registry();
    let spec = manifest(
        "wide",
        "wide",
        "[retry]\nmax_attempts = 5\ninitial_backoff = \"1h\"\nmax_backoff = \"1h\"",
    );
    registry
        .deploy(Upload {
            manifest_toml: &spec,
            component: &wactor_tests::guest_bytes("fixture-scripted"),
            uploaded_by: "test",
            notes: "",
            activate: true,
        })
        .await
        .unwrap();
    // The source topic takes 300 KB records (the test producer's limit is
    // librdkafka's default, 1 MB); the host may write at most 200 KB.
    let key = Some(b"same-key".to_vec());
    produce_raw(
        &kafka.settings(),
        &[
            OutRecord {
                topic: "wide".into(),
                partition: Some(0),
                key: key.clone(),
                payload: Some(big_retrying_payload(300 * 1024)),
                headers: Vec::new(),
            },
            OutRecord {
                topic: "wide".into(),
                partition: Some(0),
                key,
                payload: Some(b"{\"seq\": 2}".to_vec()),
                headers: Vec::new(),
            },
        ],
    )
    .await;
    let dead_letters = host.store.dead_letters();
    assert!(eventually(WAIT, || dead_letters.len() == 1).await);
    let dead = dead_letters
        .list(&DeadLetterFilter::default(), 1, None)
        .unwrap()
        .items
        .remove(0);
    assert_eq!(dead.kind, "too_large");
    assert!(
        dead.reason
            .starts_with("too large to hold for retry: its retry changelog record is ")
            && dead.reason.contains("over the limit of 200000 bytes"),
        "{}",
        dead.reason
    );
    assert!(
        dead.reason.contains("last error: scripted retry 1"),
        "{}",
        dead.reason
    );
    assert_eq!(dead.attempts.len(), 1, "the failed attempt is kept");

    // The key is not held: the next event of the same key runs at once.
    let out = read_at_least(&kafka.brokers, "wide.out", 1, WAIT).await;
    assert_eq!(out[0].json()["seq"], 2);
    assert!(host.store.held("wide").unwrap().is_empty());
    let mut committed = Vec::new();
    for _ in 0..100 {
        committed = committed_offsets(&kafka.brokers, "wactor.wide", "wide", 1).await;
        if committed == [2] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(committed, [2]);

    // Its re-drive would be too large as well: refused, clearly, and kept.
    let report = registry
        .redrive(RedriveRequest {
            by: "test".into(),
            ..RedriveRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(report.redriven, 0);
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0]
            .1
            .contains("too large to re-drive through Kafka"),
        "{:?}",
        report.failed
    );
    assert_eq!(dead_letters.len(), 1, "the dead letter is kept");
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_16_mib_retry_or_dead_reason_is_cut_to_4_kib_before_it_is_stored() {
    let kafka = Kafka::start();
    kafka.topic("chatty", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let spec = manifest(
        "chatty",
        "chatty",
        "[retry]\nmax_attempts = 1\n[limits]\nmemory = \"128MiB\"",
    );
    let (consumer, _slot) = host.run("fixture-nulls", &spec).await;
    let sixteen_mib = (16 * 1024 * 1024).to_string();
    produce_raw(
        &kafka.settings(),
        &[
            record(
                "chatty",
                "retry",
                Some(b"{}"),
                &[
                    ("fail-until-attempt", Some("9")),
                    ("reason-bytes", Some(&sixteen_mib)),
                ],
            ),
            record(
                "chatty",
                "dead",
                Some(b"{}"),
                &[("dead", Some("")), ("reason-bytes", Some(&sixteen_mib))],
            ),
        ],
    )
    .await;
    let dead_letters = host.store.dead_letters();
    assert!(eventually(WAIT, || dead_letters.len() == 2).await);
    consumer.stop().await;
    let marker = format!("… [cut: {} bytes]", 16 * 1024 * 1024 - 4096);
    for dead in dead_letters
        .list(&DeadLetterFilter::default(), 10, None)
        .unwrap()
        .items
    {
        let error = &dead.attempts[0].error;
        assert!(error.starts_with(&"r".repeat(4096)), "{}", &error[..40]);
        assert!(error.ends_with(&marker), "{}", &error[4096..]);
        assert!(
            dead.reason.len() < 4096 + 100,
            "reason of {} bytes",
            dead.reason.len()
        );
        let stored = wactor_store::value::encode("dead letter", &dead).unwrap();
        assert!(
            stored.len() < 16 * 1024,
            "a dead letter of {} bytes",
            stored.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letter_retention_evicts_by_count_then_by_age_and_counts_the_evictions() {
    let kafka = Kafka::start();
    kafka.topic("doomed", 1);
    let dir = tempfile::tempdir().unwrap();
    let (host, clock) = manual_host(&kafka, dir.path());
    let registry = host.registry();
    let spec = manifest(
        "doomed",
        "doomed",
        "[dead_letter]\nmax_count = 3\nmax_age = \"1h\"",
    );
    registry
        .deploy(Upload {
            manifest_toml: &spec,
            component: &wactor_tests::guest_bytes("fixture-scripted"),
            uploaded_by: "test",
            notes: "",
            activate: true,
        })
        .await
        .unwrap();
    let records: Vec<OutRecord> = (0..5)
        .map(|n| record("doomed", &format!("k{n}"), Some(b"{\"dead\": true}"), &[]))
        .collect();
    produce_raw(&kafka.settings(), &records[..2]).await;
    let dead_letters = host.store.dead_letters();
    assert!(eventually(WAIT, || dead_letters.len() == 2).await);
    // The last three die a minute later: they are the newest.
    clock.advance(Duration::from_secs(60));
    produce_raw(&kafka.settings(), &records[2..]).await;
    assert!(eventually(WAIT, || dead_letters.len() == 5).await);

    let evicted = |reason: &str| {
        host.metrics
            .dead_letters_evicted_total
            .with_label_values(&["doomed", reason])
            .get()
    };
    let swept = registry.sweep_dead_letters().unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!((swept[0].1.by_age, swept[0].1.by_count), (0, 2));
    assert_eq!(dead_letters.len(), 3);
    let keys: Vec<Vec<u8>> = dead_letters
        .list(&DeadLetterFilter::default(), 10, None)
        .unwrap()
        .items
        .into_iter()
        .filter_map(|d| d.event.key)
        .collect();
    assert!(
        !keys.contains(&b"k0".to_vec()) && !keys.contains(&b"k1".to_vec()),
        "the oldest went first"
    );
    assert_eq!((evicted("count"), evicted("age")), (2, 0));

    clock.advance(Duration::from_secs(2 * 3600));
    registry.sweep_dead_letters().unwrap();
    assert!(dead_letters.is_empty());
    assert_eq!((evicted("count"), evicted("age")), (2, 3));

    let actors = registry.actors().await.unwrap();
    assert_eq!(actors[0].dead_letters, 0);
    assert_eq!(
        actors[0].dead_letters_evicted, 5,
        "shown in `wactor actors`"
    );
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_event_written_as_json_by_an_earlier_version_is_restored_and_retried() {
    let kafka = Kafka::start();
    kafka.topic("legacy", 1);
    kafka.topic("legacy.out", 1);
    kafka.topic("wactor.legacy.retries", 4);
    // What 0.1 wrote to the changelog: a head that failed once, due at T0,
    // as JSON (bytes as arrays of numbers, header names as strings).
    let payload: Vec<u8> = b"{\"seq\": 41}".to_vec();
    let value = serde_json::json!({
        "event": {"topic": "legacy", "partition": 0, "offset": 0, "timestamp_ms": null,
                  "key": b"old".to_vec(), "payload": payload,
                  "headers": [["trace", b"abc".to_vec()]]},
        "lane": {"Key": b"old".to_vec()},
        "attempts": [{"attempt": 1, "started_at_ms": T0 - 1_000, "duration_ms": 1.0,
                      "version": 1, "outcome": "retry", "error": "wallet down"}],
        "first_attempt_at_ms": T0 - 1_000,
        "next_attempt_at_ms": T0,
        "version_override": null,
    });
    let id = wactor_store::HeldId {
        topic: "legacy".into(),
        partition: 0,
        lane: wactor_store::LaneKey::Key(b"old".to_vec()),
        offset: 0,
    };
    produce_raw(
        &kafka.settings(),
        &[
            OutRecord {
                topic: "wactor.legacy.retries".into(),
                partition: Some(wactor_kafka::changelog::changelog_partition("legacy", 0, 4)),
                key: Some(id.to_string().into_bytes()),
                payload: Some(serde_json::to_vec(&value).unwrap()),
                headers: Vec::new(),
            },
            // The event itself, already committed past by the old host.
            record("legacy", "old", Some(b"{\"seq\": 41}"), &[]),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (host, _clock) = manual_host(&kafka, dir.path());
    // The group's offset is past the event, as the old host left it.
    let spec = manifest("legacy", "legacy", "");
    {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let mut config = kafka.settings().reader_config();
        config.set("group.id", "wactor.legacy");
        let consumer: BaseConsumer = config.create().unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset("legacy", 0, rdkafka::Offset::Offset(1))
            .unwrap();
        consumer
            .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
            .unwrap();
    }
    let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
    let out = read_at_least(&kafka.brokers, "legacy.out", 1, WAIT).await;
    consumer.stop().await;
    assert_eq!(out[0].json()["seq"], 41);
    assert_eq!(out[0].json()["attempt"], 2, "its history was restored");
    assert!(host.store.held("legacy").unwrap().is_empty());
}
