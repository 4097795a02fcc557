//! Schedules (issue 12, parts 1 and 2) on the mock cluster with a
//! hand-moved clock: each firing is a record of `<group>.schedule`, fired
//! by the owner of its partition 0, handled by the actor like any event.
//!
//! - Two hosts, a schedule every minute: exactly one firing per minute,
//!   also across the move of the firing duty from one host to the other.
//! - After ten minutes with no host, `catch_up = "all"` fires the ten
//!   missed occurrences in order; `"latest"` only the last of them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{eventually, manifest, read_until, Host, Kafka};
use wactor_kafka::{Clock, ManualClock};

const WAIT: Duration = Duration::from_secs(60);
/// A whole minute (2023-11-14T22:13:00Z).
const MINUTE0: i64 = 1_699_999_980_000;
/// The tests start half a minute after it.
const T0: i64 = MINUTE0 + 30_000;
const MIN: Duration = Duration::from_secs(60);

const IN: &str = "ticks.in";
const OUT: &str = "ticks.out";
const SCHEDULE_TOPIC: &str = "wactor.ticker.schedule";

fn ticker(catch_up: &str) -> String {
    manifest(
        "ticker",
        IN,
        &format!(
            "[[schedules]]\nname = \"minutely\"\ncron = \"* * * * *\"\n\
             payload = '{{\"seq\": {{{{scheduled_unix_ms}}}}}}'\ncatch_up = \"{catch_up}\"\n\
             [config]\nout_topic = \"{OUT}\"\n"
        ),
    )
}

fn kafka() -> Kafka {
    support::init_test_log();
    let kafka = Kafka::start();
    kafka.topic(IN, 1);
    kafka.topic(OUT, 1);
    kafka.topic(SCHEDULE_TOPIC, 1);
    kafka
}

fn owner(host: &Host) -> bool {
    host.metrics
        .schedule_owner
        .with_label_values(&["ticker"])
        .get()
        == 1
}

/// The scheduled times of the firings the actor handled, in output order.
async fn fired(brokers: &str, at_least: usize) -> Vec<i64> {
    let out = read_until(brokers, OUT, WAIT, move |r| r.len() >= at_least).await;
    out.iter()
        .filter_map(|r| r.json()["seq"].as_i64())
        .collect()
}

fn minutes(range: std::ops::RangeInclusive<i64>) -> Vec<i64> {
    range.map(|k| MINUTE0 + k * 60_000).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hosts_fire_a_minutely_schedule_once_a_minute_even_when_the_duty_moves() {
    let kafka = kafka();
    let clock = ManualClock::new(T0);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Host::with_clock(dir_a.path(), kafka.settings(), shared.clone());
    let b = Host::with_clock(dir_b.path(), kafka.settings(), shared);
    let spec = ticker("skip");
    let (consumer_a, _slot_a) = a.run("fixture-scripted", &spec).await;
    let (consumer_b, _slot_b) = b.run("fixture-scripted", &spec).await;
    // The group settles (both hosts own partitions): firings then come
    // from one host, and events are not redelivered by a rebalance.
    assert!(
        eventually(WAIT, || {
            !consumer_a.status().partitions().is_empty()
                && !consumer_b.status().partitions().is_empty()
                && (owner(&a) || owner(&b))
        })
        .await,
        "the group settles and a host fires"
    );
    assert!(!(owner(&a) && owner(&b)), "one host fires");

    for k in 1..=5 {
        clock.advance(MIN);
        assert_eq!(fired(&kafka.brokers, k as usize).await, minutes(1..=k));
    }
    // The host that fires stops: the other takes over from the topic.
    let (stopped, other) = if owner(&a) {
        consumer_a.stop().await;
        (&a, consumer_b)
    } else {
        consumer_b.stop().await;
        (&b, consumer_a)
    };
    let survivor = if std::ptr::eq(stopped, &a) { &b } else { &a };
    assert!(eventually(WAIT, || owner(survivor)).await, "the duty moved");
    assert!(!owner(stopped));
    for k in 6..=10 {
        clock.advance(MIN);
        assert_eq!(fired(&kafka.brokers, k as usize).await, minutes(1..=k));
    }
    // No late duplicate, and one firing record per minute in the topic.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fired(&kafka.brokers, 10).await, minutes(1..=10));
    let records = read_until(&kafka.brokers, SCHEDULE_TOPIC, WAIT, |r| r.len() >= 10).await;
    let ids: Vec<String> = records
        .iter()
        .map(|r| {
            r.headers
                .get("wactor-firing-id")
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let want: Vec<String> = minutes(1..=10)
        .iter()
        .map(|m| format!("minutely@{m}"))
        .collect();
    assert_eq!(ids, want);
    assert!(records
        .iter()
        .all(|r| r.headers.get("wactor-schedule").map(String::as_str) == Some("minutely")));
    other.stop().await;
}

/// Runs the ticker with `catch_up`, fires minute 1, stops for ten minutes
/// and starts again; returns the firings handled.
async fn down_for_ten_minutes(catch_up: &str, expected: usize) -> Vec<i64> {
    let kafka = kafka();
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::with_clock(dir.path(), kafka.settings(), Arc::new(clock.clone()));
    let spec = ticker(catch_up);
    let (consumer, slot) = host.run("fixture-scripted", &spec).await;
    assert!(eventually(WAIT, || owner(&host)).await, "the host fires");
    clock.advance(MIN);
    assert_eq!(fired(&kafka.brokers, 1).await, minutes(1..=1));
    consumer.stop().await;
    assert!(!owner(&host));

    clock.advance(10 * MIN);
    let consumer = host.consume(slot).await;
    let got = fired(&kafka.brokers, expected).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fired(&kafka.brokers, expected).await, got, "nothing more");
    consumer.stop().await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_ten_minutes_down_catch_up_all_fires_the_ten_missed_occurrences_in_order() {
    // Down from 1:30 to 11:30: minutes 2 to 11 were missed (11 is on time).
    assert_eq!(down_for_ten_minutes("all", 11).await, minutes(1..=11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_ten_minutes_down_catch_up_latest_fires_only_the_last_missed_one() {
    // Minute 11 is on time (30 s ago); of the missed 2..10 only 10 fires.
    let mut want = minutes(1..=1);
    want.extend(minutes(10..=11));
    assert_eq!(down_for_ten_minutes("latest", 3).await, want);
}
