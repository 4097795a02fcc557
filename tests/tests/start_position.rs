//! Where a new actor starts (issue 12, part 5): the manifest's `start`
//! (`earliest`, `latest` or a time) applies to partitions its group never
//! committed; once it committed, a restart goes on from there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{eventually, manifest, produce, read_until, Host, Kafka};

const WAIT: Duration = Duration::from_secs(60);

fn records(from: usize, n: usize) -> Vec<(Option<String>, String)> {
    (from..from + n)
        .map(|i| (Some(format!("k{i}")), format!(r#"{{"seq":{i}}}"#)))
        .collect()
}

/// The seqs handled, once at least `n` came and nothing more for a second.
async fn handled(brokers: &str, out: &str, n: usize) -> Vec<u64> {
    read_until(brokers, out, WAIT, move |r| r.len() >= n).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = read_until(brokers, out, Duration::from_secs(1), |_| false).await;
    let mut seqs: Vec<u64> = out
        .iter()
        .filter_map(|r| r.json()["seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latest_skips_the_backlog_and_a_restart_goes_on_from_the_committed_offset() {
    support::init_test_log();
    let kafka = Kafka::start();
    kafka.topic("late.in", 2);
    kafka.topic("late.in.out", 2);
    produce(&kafka.brokers, "late.in", &records(0, 20)).await;
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let spec = manifest("late", "late.in", "start = \"latest\"");
    let (consumer, slot) = host.run("fixture-scripted", &spec).await;
    assert!(
        eventually(WAIT, || consumer
            .status()
            .partitions()
            .iter()
            .filter(|(t, _, _)| t == "late.in")
            .count()
            == 2)
        .await
    );
    produce(&kafka.brokers, "late.in", &records(100, 5)).await;
    assert_eq!(
        handled(&kafka.brokers, "late.in.out", 5).await,
        [100, 101, 102, 103, 104],
        "only what came after the start"
    );
    let skipped = host
        .metrics
        .start_skipped_total
        .with_label_values(&["late"])
        .get();
    assert_eq!(skipped, 20);
    consumer.stop().await;

    // The group committed: nothing is skipped any more.
    produce(&kafka.brokers, "late.in", &records(200, 3)).await;
    let consumer = host.consume(slot).await;
    assert_eq!(
        handled(&kafka.brokers, "late.in.out", 8).await,
        [100, 101, 102, 103, 104, 200, 201, 202]
    );
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_start_time_begins_at_the_first_record_at_or_after_it() {
    let kafka = Kafka::start();
    kafka.topic("timed.in", 1);
    kafka.topic("timed.in.out", 1);
    produce(&kafka.brokers, "timed.in", &records(0, 10)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    produce(&kafka.brokers, "timed.in", &records(10, 10)).await;
    let start = {
        let secs = i64::try_from(start_ms / 1000).unwrap();
        let millis = start_ms % 1000;
        // RFC 3339 from the epoch milliseconds, without a date library.
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%S"])
            .output()
            .unwrap();
        format!(
            "{}.{millis:03}Z",
            String::from_utf8_lossy(&out.stdout).trim()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let spec = manifest("timed", "timed.in", &format!("start = \"{start}\""));
    let (consumer, _slot) = host.run("fixture-scripted", &spec).await;
    assert_eq!(
        handled(&kafka.brokers, "timed.in.out", 10).await,
        (10..20).collect::<Vec<u64>>(),
        "the records produced after {start}"
    );
    consumer.stop().await;
}

/// A user's `auto.offset.reset = "latest"` (in `[kafka.consumer]` or
/// `[kafka.client]`) is the policy of the actor's own topics only: a
/// delayed emit written to the group's `<group>.delayed` before the group
/// ever committed is still delivered, while the source topic's backlog is
/// passed over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_users_latest_reset_never_skips_the_groups_internal_topics() {
    support::init_test_log();
    for table in ["consumer", "client"] {
        let kafka = Kafka::start();
        let name = format!("lat{table}");
        let source = format!("{name}.in");
        let out = format!("{source}.out");
        kafka.topic(&source, 2);
        kafka.topic(&out, 2);
        produce(&kafka.brokers, &source, &records(0, 10)).await;
        let mut settings = kafka.settings();
        let properties = if table == "client" {
            &mut settings.client
        } else {
            &mut settings.consumer
        };
        properties.insert("auto.offset.reset".into(), "latest".into());
        // Written before the actor's group exists: due at once.
        let now_ms = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let delayed = wactor_kafka::delayed::delayed_record(
            &format!("wactor.{name}"),
            &out,
            Some(b"k900".to_vec()),
            Some(br#"{"seq":900}"#.to_vec()),
            &[],
            now_ms,
        );
        support::produce_raw(&settings, &[delayed]).await;

        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path(), settings);
        let (consumer, _slot) = host
            .run("fixture-scripted", &manifest(&name, &source, ""))
            .await;
        assert!(
            eventually(WAIT, || consumer
                .status()
                .partitions()
                .iter()
                .filter(|(t, _, _)| *t == source)
                .count()
                == 2)
            .await
        );
        produce(&kafka.brokers, &source, &records(100, 3)).await;
        assert_eq!(
            handled(&kafka.brokers, &out, 4).await,
            [100, 101, 102, 900],
            "kafka.{table}: the source's backlog passed over, the delayed emit delivered"
        );
        let skipped = host
            .metrics
            .start_skipped_total
            .with_label_values(&[&name])
            .get();
        assert_eq!(skipped, 10, "kafka.{table}");
        consumer.stop().await;
    }
}
