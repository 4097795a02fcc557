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

/// The API address of a `wactor serve` host, from its log.
fn api_of(dir: &std::path::Path) -> String {
    let started = std::time::Instant::now();
    loop {
        let log = std::fs::read_to_string(dir.join("host.log")).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("host started")) {
            let at = line.find("api=").expect("api= in the start line") + 4;
            let addr: String = line[at..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            return format!("http://{addr}");
        }
        assert!(started.elapsed() < WAIT, "the host did not start:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cli(api: &str, args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(wactor_tests::wactor_bin())
        .args(args)
        .arg("--api")
        .arg(api)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run wactor");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// Haraj's "re-run a month": `wactor schedule backfill` of 30 days fires
/// 30 events, each with its own date, through a running host; a dry run
/// writes nothing, and `wactor schedule list` shows the schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backfill_of_thirty_days_fires_thirty_events() {
    let kafka = kafka();
    let dir = tempfile::tempdir().unwrap();
    support::write_actor(
        dir.path(),
        "ticker",
        "fixture-scripted",
        &format!(
            "name = \"ticker\"\ntopics = [\"{IN}\"]\n\
             [[schedules]]\nname = \"nightly\"\ncron = \"0 0 * * *\"\ntimezone = \"Asia/Riyadh\"\n\
             payload = '{{\"seq\": {{{{scheduled_unix_ms}}}}, \"date\": \"{{{{scheduled_date - 1d}}}}\"}}'\n\
             [config]\nout_topic = \"{OUT}\"\n"
        ),
    );
    let host = support::ServeProcess::start(dir.path(), &kafka.brokers);
    let api = api_of(dir.path());
    let started = std::time::Instant::now();
    let listed = loop {
        let (code, out) = cli(&api, &["schedule", "list", "ticker"]);
        if code == Some(0) && out.contains("nightly") {
            break out;
        }
        assert!(started.elapsed() < WAIT, "no schedule listed: {out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        listed.contains("Asia/Riyadh") && listed.contains("0 0 * * *"),
        "{listed}"
    );

    let args = [
        "schedule",
        "backfill",
        "ticker",
        "--schedule",
        "nightly",
        "--from",
        "2024-06-10",
        "--to",
        "2024-07-09",
    ];
    let (code, out) = cli(&api, &[&args[..], &["--dry-run", "--json"]].concat());
    assert_eq!(code, Some(0), "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (report["matched"].as_u64(), report["fired"].as_u64()),
        (Some(30), Some(0))
    );
    assert_eq!(report["scheduled_times"][0], "2024-06-10T00:00:00+03:00");

    let (code, out) = cli(&api, &args);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("fired 30 of 30"), "{out}");
    let out = read_until(&kafka.brokers, OUT, WAIT, |r| r.len() >= 30).await;
    // Midnight in Riyadh (UTC+3) from 2024-06-10 to 2024-07-09.
    let first = 1_717_966_800_000i64;
    let seqs: Vec<i64> = out
        .iter()
        .filter_map(|r| r.json()["seq"].as_i64())
        .collect();
    let want: Vec<i64> = (0..30).map(|d| first + d * 86_400_000).collect();
    assert_eq!(seqs, want, "the 30 days, in order, once each");

    // Bad requests change nothing.
    let (code, out) = cli(
        &api,
        &[
            "schedule",
            "backfill",
            "ticker",
            "--schedule",
            "nope",
            "--from",
            "2024-06-10",
            "--to",
            "2024-06-11",
        ],
    );
    assert_eq!(code, Some(3), "{out}");
    let (code, out) = cli(
        &api,
        &[
            "schedule",
            "backfill",
            "ticker",
            "--schedule",
            "nightly",
            "--from",
            "2024-07-10",
            "--to",
            "2024-06-11",
        ],
    );
    assert_eq!(code, Some(4), "{out}");
    assert!(host.terminate(), "stops cleanly");
}

/// Delayed emits (issue 12, part 3): an output emitted with a 10-minute
/// delay is not delivered before, survives the host stopping and starting
/// again (it waits in `<group>.delayed` and the retry changelog), and
/// arrives once the clock passes its time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delayed_emit_survives_a_restart_and_arrives_on_time() {
    let kafka = Kafka::start();
    kafka.topic("later.in", 2);
    kafka.topic("later.out", 2);
    kafka.topic("wactor.later.delayed", 2);
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::with_clock(dir.path(), kafka.settings(), Arc::new(clock.clone()));
    let spec = manifest("later", "later.in", "[config]\nout_topic = \"later.out\"\n");
    let (consumer, slot) = host.run("fixture-scripted", &spec).await;
    support::produce(
        &kafka.brokers,
        "later.in",
        &[
            (Some("a".into()), r#"{"seq":1,"delay_ms":600000}"#.into()),
            (Some("b".into()), r#"{"seq":2}"#.into()),
        ],
    )
    .await;
    // The undelayed one arrives; the delayed one waits.
    let out = read_until(&kafka.brokers, "later.out", WAIT, |r| !r.is_empty()).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].json()["seq"], 2);
    assert!(
        eventually(WAIT, || host
            .metrics
            .delayed_total
            .with_label_values(&["later", "scheduled"])
            .get()
            == 1)
        .await
    );
    clock.advance(9 * MIN);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        read_until(&kafka.brokers, "later.out", Duration::from_secs(1), |_| {
            false
        })
        .await
        .len(),
        1,
        "not before its time"
    );

    // The host stops and starts again; the clock passes the time.
    consumer.stop().await;
    let consumer = host.consume(slot).await;
    clock.advance(2 * MIN);
    let out = read_until(&kafka.brokers, "later.out", WAIT, |r| r.len() >= 2).await;
    let delivered = &out[1];
    assert_eq!(delivered.json()["seq"], 1);
    assert_eq!(delivered.key.as_deref(), Some("a"));
    assert!(
        !delivered.headers.contains_key("wactor-delayed-topic")
            && !delivered.headers.contains_key("wactor-delay-ms"),
        "{:?}",
        delivered.headers
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        read_until(&kafka.brokers, "later.out", Duration::from_secs(1), |_| {
            false
        })
        .await
        .len(),
        2,
        "delivered once"
    );
    consumer.stop().await;
}
