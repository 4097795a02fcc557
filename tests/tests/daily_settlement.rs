//! The daily-settlement example (issue 12, part 6: the Haraj case) as it
//! ships (examples/daily-settlement/actor.toml, its gateway address
//! pointed at a stand-in): a day asked for by `wactor schedule backfill`
//! is fetched from the gateway, retried while the gateway answers 503,
//! and each transaction recorded once; the same day asked again by a
//! backfill or by a message with the date records nothing twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{produce, read_until, Kafka, ServeProcess};
use wactor_tests::{Reply, TestServer};

const WAIT: Duration = Duration::from_secs(90);

fn page(date: &str, ids: &[&str]) -> Reply {
    let transactions: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "amount": 5000, "currency": "SAR", "merchant": "m"}))
        .collect();
    Reply::status(200)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"date": date, "page": 1, "transactions": transactions}).to_string(),
        )
}

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

fn cli(api: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(wactor_tests::wactor_bin())
        .args(args)
        .arg("--api")
        .arg(api)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run wactor");
    assert!(
        output.status.success(),
        "wactor {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The transaction ids recorded, once `n` came and nothing more for 2 s.
async fn recorded(brokers: &str, n: usize) -> Vec<String> {
    read_until(brokers, "settlement.recorded", WAIT, move |r| r.len() >= n).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    read_until(
        brokers,
        "settlement.recorded",
        Duration::from_secs(1),
        |_| false,
    )
    .await
    .iter()
    .map(|r| {
        r.json()["transaction"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_day_is_recorded_once_however_often_it_is_run_and_retried_while_the_gateway_fails() {
    let kafka = Kafka::start();
    for topic in [
        "settlement.requests",
        "settlement.days",
        "settlement.recorded",
    ] {
        kafka.topic(topic, 2);
    }
    kafka.topic("wactor.daily-settlement.schedule", 1);
    let gateway = TestServer::start().unwrap();
    // The first ask of the day fails; then the day's three transactions,
    // as many times as the day is asked for.
    gateway.reply(Reply::status(503));
    let ids = ["2024-07-09-001", "2024-07-09-002", "2024-07-09-003"];
    for _ in 0..3 {
        gateway.reply(page("2024-07-09", &ids));
    }

    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/daily-settlement/actor.toml"),
    )
    .unwrap()
    .replace("127.0.0.1:7782", &gateway.host_port())
    .replace("initial_backoff = \"2s\"", "initial_backoff = \"200ms\"");
    let body: String = shipped
        .lines()
        .filter(|l| !l.starts_with("component"))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    support::write_actor(dir.path(), "daily-settlement", "daily-settlement", &body);
    let host = ServeProcess::start(dir.path(), &kafka.brokers);
    let api = api_of(dir.path());

    // "Re-run 2024-07-10": the occurrence of that night, for the 9th.
    let started = std::time::Instant::now();
    loop {
        let list = std::process::Command::new(wactor_tests::wactor_bin())
            .args(["schedule", "list", "daily-settlement", "--api", &api])
            .output()
            .unwrap();
        if list.status.success() && String::from_utf8_lossy(&list.stdout).contains("nightly") {
            break;
        }
        assert!(started.elapsed() < WAIT, "the actor is not deployed");
        std::thread::sleep(Duration::from_millis(200));
    }
    let rerun = [
        "schedule",
        "backfill",
        "daily-settlement",
        "--schedule",
        "nightly",
        "--from",
        "2024-07-10",
        "--to",
        "2024-07-10",
    ];
    let out = cli(&api, &rerun);
    assert!(out.contains("fired 1 of 1"), "{out}");
    let mut first = recorded(&kafka.brokers, 3).await;
    first.sort();
    assert_eq!(first, ids, "each transaction recorded once, after a 503");

    // The same day again, by a message with the date, then by a backfill.
    produce(
        &kafka.brokers,
        "settlement.requests",
        &[(Some("manual".into()), r#"{"date":"2024-07-09"}"#.into())],
    )
    .await;
    let out = cli(&api, &rerun);
    assert!(out.contains("fired 1 of 1"), "{out}");
    let started = std::time::Instant::now();
    while gateway.requests().len() < 4 {
        assert!(started.elapsed() < WAIT, "the day was not asked for again");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(recorded(&kafka.brokers, 3).await.len(), 3, "nothing twice");
    let asked: Vec<String> = gateway.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        asked
            .iter()
            .all(|p| p.starts_with("/transactions?date=2024-07-09&page=1")),
        "{asked:?}"
    );
    assert_eq!(asked.len(), 4, "one failed ask, then three: {asked:?}");
    assert!(host.terminate(), "stops cleanly");
}
