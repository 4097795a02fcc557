//! Replay (issue 12, part 4): `wactor replay` through a running host feeds
//! exactly the records of a time range through the actor again, as the
//! originals (same partition and offset, marked `wactor-replay`), in key
//! order, while live events keep flowing; a dry run plans without feeding;
//! bad requests change nothing; a cancel stops feeding.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use support::{read_until, Kafka};

const WAIT: Duration = Duration::from_secs(60);
const IN: &str = "replay.orders";
const OUT: &str = "replay.out";
/// 2026-01-01T00:00:00Z: three days of ten orders each.
const DAY1: i64 = 1_767_225_600_000;
const DAY: i64 = 86_400_000;

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

/// Runs the CLI: exit code, stdout, stderr.
fn cli(api: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(wactor_tests::wactor_bin())
        .args(args)
        .arg("--api")
        .arg(api)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run wactor");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Produces `{"seq": n}` keyed `k<n mod 4>` at `timestamp_ms`.
async fn produce_at(producer: &FutureProducer, seq: i64, timestamp_ms: i64) {
    let payload = format!("{{\"seq\": {seq}}}");
    let key = format!("k{}", seq % 4);
    producer
        .send(
            FutureRecord::to(IN)
                .key(&key)
                .payload(&payload)
                .timestamp(timestamp_ms),
            Duration::from_secs(10),
        )
        .await
        .expect("produced");
}

fn seq(record: &support::Record) -> i64 {
    record.json()["seq"].as_i64().expect("seq")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_handles_exactly_its_range_in_key_order_while_live_events_flow() {
    support::init_test_log();
    let kafka = Kafka::start();
    kafka.topic(IN, 2);
    kafka.topic(OUT, 1);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .unwrap();
    for day in 0..3 {
        for i in 0..10 {
            produce_at(&producer, day * 10 + i, DAY1 + day * DAY + i * 1000).await;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    support::write_actor(
        dir.path(),
        "replayer",
        "fixture-scripted",
        &format!("name = \"replayer\"\ntopics = [\"{IN}\"]\n[config]\nout_topic = \"{OUT}\"\n"),
    );
    let _host = support::ServeProcess::start(dir.path(), &kafka.brokers);
    let api = api_of(dir.path());
    let first = read_until(&kafka.brokers, OUT, WAIT, |r| r.len() >= 30).await;
    // Where each order was first handled: (partition, offset) of the source.
    let original: BTreeMap<i64, (i64, i64)> = first
        .iter()
        .map(|r| {
            let v = r.json();
            (
                seq(r),
                (
                    v["partition"].as_i64().unwrap(),
                    v["offset"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(original.len(), 30);

    // Live orders keep coming while the replay runs.
    let live = {
        let producer = producer.clone();
        tokio::spawn(async move {
            for seq in 100..120 {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64;
                produce_at(&producer, seq, now).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let day2 = "2026-01-02T00:00:00Z";
    let day3 = "2026-01-03T00:00:00Z";
    let (code, out, err) = cli(
        &api,
        &[
            "replay",
            "replayer",
            "--from",
            day2,
            "--to",
            day3,
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let plan = json(&out);
    assert_eq!(plan["records_in_range"], 10, "{plan}");
    assert_eq!(plan["dry_run"], true);

    // Bad requests are refused and feed nothing.
    for (args, want) in [
        (vec!["--from", day2, "--version", "9"], 3),
        (vec!["--from", day2, "--topic", "nope"], 4),
        (vec!["--from", day3, "--to", day2], 4),
        (vec!["--from", "yesterday"], 4),
        (vec!["--from", day2, "--rate", "0"], 4),
        (vec!["--from", day2, "--topic", IN, "--partition", "7"], 4),
    ] {
        let (code, out, err) = cli(&api, &[&["replay", "replayer"][..], &args].concat());
        assert_eq!(code, Some(want), "{args:?}: {out}{err}");
    }

    let (code, out, err) = cli(
        &api,
        &["replay", "replayer", "--from", day2, "--to", day3, "--json"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let done = json(&out);
    assert_eq!(done["progress"]["state"], "done", "{done}");
    assert_eq!(done["progress"]["fed"], 10, "{done}");
    assert_eq!(done["progress"]["handled"], 10, "{done}");
    let id = done["id"].as_str().unwrap().to_string();
    live.await.unwrap();

    let out = read_until(&kafka.brokers, OUT, WAIT, |r| {
        let replayed = r
            .iter()
            .filter(|r| r.headers.contains_key("wactor-replay"))
            .count();
        let live = r
            .iter()
            .filter(|r| r.json()["seq"].as_i64() >= Some(100))
            .count();
        replayed >= 10 && live >= 20
    })
    .await;
    let replayed: Vec<&support::Record> = out
        .iter()
        .filter(|r| r.headers.contains_key("wactor-replay"))
        .collect();
    let mut seqs: Vec<i64> = replayed.iter().map(|r| seq(r)).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (10..20).collect::<Vec<_>>(),
        "exactly day 2, once each"
    );
    for r in &replayed {
        assert_eq!(r.headers["wactor-replay"], id);
        let v = r.json();
        assert_eq!(
            (
                v["partition"].as_i64().unwrap(),
                v["offset"].as_i64().unwrap()
            ),
            original[&seq(r)],
            "a replayed event is presented as the original"
        );
    }
    // Key order: each key's replayed orders come out in their order.
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for r in &replayed {
        let key = r.key.clone().unwrap();
        let s = seq(r);
        assert!(
            last.get(&key).is_none_or(|l| *l < s),
            "{key}: {s} after {last:?}"
        );
        last.insert(key, s);
    }
    let mut live: Vec<i64> = out.iter().map(seq).filter(|s| *s >= 100).collect();
    live.sort_unstable();
    live.dedup();
    assert_eq!(
        live,
        (100..120).collect::<Vec<_>>(),
        "live events all handled"
    );
    assert!(
        out.iter()
            .filter(|r| !r.headers.contains_key("wactor-replay"))
            .all(|r| seq(r) < 30 || seq(r) >= 100),
        "nothing else"
    );

    // A slow replay cancelled stops feeding; it is listed and shown.
    let (code, out, err) = cli(
        &api,
        &[
            "replay",
            "replayer",
            "--from",
            "2026-01-01",
            "--rate",
            "2",
            "--detach",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let slow = json(&out)["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, out, err) = cli(&api, &["replays", "cancel", &slow]);
    assert_eq!(code, Some(0), "{out}{err}");
    let shown = cancelled(&api, &slow, WAIT).await;
    let fed = shown["progress"]["fed"].as_u64().unwrap();
    assert!(fed < 10, "a cancel stops feeding: {shown}");
    // A cancel ends the replay at once: what was fed is handled later.
    assert!(
        shown["progress"]["handled"].as_u64().unwrap() <= fed,
        "{shown}"
    );
    let (code, out, err) = cli(&api, &["replays", "cancel", &slow]);
    assert_eq!(code, Some(4), "a second cancel is refused: {out}{err}");
    let (code, out, err) = cli(&api, &["replays", "list", "replayer"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&id) && out.contains(&slow) && out.contains("cancelled"),
        "{out}"
    );
    let (code, _, _) = cli(&api, &["replays", "show", "replay-nope"]);
    assert_eq!(code, Some(3));
}

/// Waits at most `within` until replay `id` shows as cancelled; its view.
async fn cancelled(api: &str, id: &str, within: Duration) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let (code, out, err) = cli(api, &["replays", "show", id, "--json"]);
        assert_eq!(code, Some(0), "{out}{err}");
        let shown = json(&out);
        if shown["progress"]["state"] == "cancelled" {
            return shown;
        }
        assert!(started.elapsed() < within, "not cancelled: {shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `wactor dlq list --actor ACTOR --json` shows `n` letters.
async fn letters(api: &str, actor: &str, n: usize) -> Vec<serde_json::Value> {
    let started = std::time::Instant::now();
    loop {
        let (code, out, err) = cli(api, &["dlq", "list", "--actor", actor, "--json"]);
        assert_eq!(code, Some(0), "{out}{err}");
        let items = json(&out)["items"].as_array().cloned().unwrap_or_default();
        if items.len() == n {
            return items;
        }
        assert!(started.elapsed() < WAIT, "{n} letters wanted: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A replayed event that dies leaves the dead letter of the original
/// event (its topic, partition and offset, marked `wactor-replay`), not of
/// the copy on `<group>.replay`; times before 1970 are refused; a replay
/// of a paused actor ends as soon as it is cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_event_dies_as_the_original_and_a_paused_actors_replay_can_be_cancelled() {
    const DEAD_IN: &str = "replay.dead.in";
    support::init_test_log();
    let kafka = Kafka::start();
    kafka.topic(DEAD_IN, 2);
    kafka.topic(OUT, 1);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(DEAD_IN)
                .key("k")
                .payload("{\"seq\": 1, \"dead\": true}")
                .timestamp(DAY1),
            Duration::from_secs(10),
        )
        .await
        .expect("produced");
    let dir = tempfile::tempdir().unwrap();
    support::write_actor(
        dir.path(),
        "dier",
        "fixture-scripted",
        &format!("name = \"dier\"\ntopics = [\"{DEAD_IN}\"]\n[config]\nout_topic = \"{OUT}\"\n"),
    );
    let _host = support::ServeProcess::start(dir.path(), &kafka.brokers);
    let api = api_of(dir.path());

    let first = letters(&api, "dier", 1).await;
    let original = &first[0]["event"];
    assert_eq!(original["topic"], DEAD_IN, "{original}");
    let id = first[0]["id"].as_str().unwrap().to_string();
    let (code, out, err) = cli(&api, &["dlq", "discard", &id]);
    assert_eq!(code, Some(0), "{out}{err}");
    letters(&api, "dier", 0).await;

    for from in ["--from=-1", "--from=0000-01-01"] {
        let (code, out, err) = cli(&api, &["replay", "dier", from, "--dry-run"]);
        assert_eq!(code, Some(4), "{from}: {out}{err}");
    }

    let (code, out, err) = cli(&api, &["replay", "dier", "--from", "2026-01-01"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let again = letters(&api, "dier", 1).await;
    let event = &again[0]["event"];
    assert_eq!(again[0]["id"], id.as_str(), "{}", again[0]);
    assert_eq!(event["topic"], original["topic"], "{event}");
    assert_eq!(event["partition"], original["partition"], "{event}");
    assert_eq!(event["offset"], original["offset"], "{event}");
    let names: Vec<&str> = event["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert!(names.contains(&"wactor-replay"), "{event}");

    // A live record cannot pass for a replay: forged headers are dropped,
    // so what the actor emits for it is not marked either.
    producer
        .send(
            FutureRecord::to(DEAD_IN)
                .key("k")
                .payload("{\"seq\": 2}")
                .headers(
                    rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                        key: "wactor-replay",
                        value: Some("forged"),
                    }),
                ),
            Duration::from_secs(10),
        )
        .await
        .expect("produced");
    let out = read_until(&kafka.brokers, OUT, WAIT, |r| r.iter().any(|r| seq(r) == 2)).await;
    let emitted = out.iter().find(|r| seq(r) == 2).unwrap();
    assert!(
        !emitted.headers.contains_key("wactor-replay"),
        "{:?}",
        emitted.headers
    );

    // Paused: nothing is handled, yet a cancel ends the replay at once.
    let (code, out, err) = cli(&api, &["pause", "dier"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = cli(
        &api,
        &[
            "replay",
            "dier",
            "--from",
            "2026-01-01",
            "--detach",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let paused = json(&out)["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, out, err) = cli(&api, &["replays", "cancel", &paused]);
    assert_eq!(code, Some(0), "{out}{err}");
    // Within 10 s: the wait for commits no longer holds a cancel.
    let shown = cancelled(&api, &paused, Duration::from_secs(10)).await;
    assert_eq!(shown["progress"]["handled"], 0, "{shown}");
}

/// The feeder keeps several batches of 256 in flight (it reads and
/// produces the next while earlier ones are acknowledged): over many
/// batches every record is fed once, in its source partition's order, and
/// counted when acknowledged; the replay ends done with every partition
/// read to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_of_many_batches_feeds_each_record_once_in_order() {
    use wactor_kafka::replay::{feed, plan, replay_topic, ReplayRun, ReplaySpec, ReplayState};
    let (n, partitions) = (3_000usize, 2);
    let kafka = Kafka::start();
    kafka.topic("replay.many", partitions);
    let from_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 1_000;
    let records: Vec<_> = (0..n)
        .map(|i| (Some(format!("k{}", i % 7)), format!("{{\"seq\": {i}}}")))
        .collect();
    support::produce(&kafka.brokers, "replay.many", &records).await;
    let dir = tempfile::tempdir().unwrap();
    let host = support::Host::new(dir.path(), kafka.settings());
    let spec = support::manifest("many", "replay.many", "");
    let (consumer, _slot) = host.run("fixture-noop", &spec).await;
    let settings = kafka.settings();
    let ranges = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || {
            plan(&settings, &["replay.many".to_string()], None, from_ms, None)
        })
        .await
        .unwrap()
        .unwrap()
    };
    let group = "wactor.many".to_string();
    let run = std::sync::Arc::new(ReplayRun::new(
        ReplaySpec {
            id: "many".into(),
            actor: "many".into(),
            group: group.clone(),
            from_ms,
            to_ms: None,
            version: None,
            rate: None,
            ranges,
        },
        from_ms,
        "test".into(),
    ));
    tokio::time::timeout(
        WAIT,
        feed(
            run.clone(),
            settings.clone(),
            wactor_kafka::Producer::new(&settings).unwrap(),
            settings.changelog_partitions,
        ),
    )
    .await
    .expect("the replay ends");
    let progress = run.progress();
    assert_eq!(progress.state, ReplayState::Done, "{progress:?}");
    assert_eq!(progress.fed, n as u64, "{progress:?}");
    for part in &progress.partitions {
        assert_eq!(part.next_offset, part.range.end_offset, "{progress:?}");
        assert_eq!(part.fed, part.range.len(), "{progress:?}");
    }
    // Each source partition's records once, in their order.
    let copied = read_until(&kafka.brokers, &replay_topic(&group), WAIT, move |r| {
        r.len() >= n
    })
    .await;
    assert_eq!(copied.len(), n);
    let mut by_source: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for record in &copied {
        let of = &record.headers[wactor_kafka::replay::REPLAY_OF_HEADER];
        let (source, offset) = of.rsplit_once('/').unwrap();
        by_source
            .entry(source.to_string())
            .or_default()
            .push(offset.parse().unwrap());
    }
    for (source, offsets) in &by_source {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, &expected, "{source}");
    }
    consumer.stop().await;
}
