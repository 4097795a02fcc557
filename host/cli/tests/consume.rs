//! `wactor consume` against librdkafka's mock cluster (in this test
//! process): what a topic holds, in text and JSON, by partition, up to a
//! count, and followed as records arrive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use wactor_kafka::OutRecord;
use wactor_tests::kafka::{produce_raw, Kafka};

fn consume(brokers: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wactor"))
        .arg("consume")
        .args(args)
        .env("WACTOR_BROKERS", brokers)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn record(partition: i32, key: Option<&[u8]>, payload: Option<&[u8]>) -> OutRecord {
    OutRecord {
        topic: "out".into(),
        partition: Some(partition),
        key: key.map(<[u8]>::to_vec),
        payload: payload.map(<[u8]>::to_vec),
        headers: vec![
            ("trace-id".into(), Some(b"abc".to_vec())),
            ("gone".into(), None),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_prints_what_a_topic_holds_and_follows_new_records() {
    let kafka = Kafka::start();
    kafka.topic("out", 2);
    let settings = kafka.settings();
    produce_raw(
        &settings,
        &[
            record(0, Some(b"order-7"), Some(br#"{"order_id":"order-7"}"#)),
            record(1, Some(b"order-8"), None),
            record(1, None, Some(b"\x00\xffbin")),
        ],
    )
    .await;
    let brokers = kafka.brokers.clone();

    // Text, every partition, then exit: brokers from WACTOR_BROKERS.
    let text = ok(&consume(&brokers, &["out"]));
    assert_eq!(text.matches("--- out [").count(), 3, "{text}");
    assert!(text.contains("--- out [0] offset 0, "), "{text}");
    assert!(
        text.contains(
            "key: order-7\nheader trace-id: abc\nheader gone: (null)\n{\"order_id\":\"order-7\"}\n"
        ),
        "{text}"
    );
    assert!(text.contains("key: order-8\n"), "{text}");
    assert!(text.contains("(null value: a tombstone)"), "{text}");
    assert!(text.contains("key: (null)\n"), "{text}");
    assert!(text.contains("(bytes) \\x00\\xffbin"), "{text}");

    // JSON: one event file per line, exactly as produced.
    let records = json_lines(&ok(&consume(
        &brokers,
        &["out", "--json", "--partition", "1"],
    )));
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["partition"], 1);
    assert_eq!(records[0]["key"], "order-8");
    assert_eq!(records[0]["payload"], Value::Null);
    assert_eq!(
        records[0]["headers"][0],
        serde_json::json!(["trace-id", "abc"])
    );
    assert_eq!(records[0]["headers"][1], serde_json::json!(["gone", null]));
    assert_eq!(records[1]["offset"], 1);
    assert_eq!(records[1]["payload_base64"], "AP9iaW4=");
    assert!(records[1].get("key").is_none());
    let event = wactor_runtime::event_file::parse(&records[1].to_string()).unwrap();
    assert_eq!(event.payload.as_deref(), Some(&b"\x00\xffbin"[..]));

    // --max, and an explicit --brokers.
    let one = json_lines(&ok(&consume(
        "127.0.0.1:1",
        &["out", "--json", "--max", "1", "--brokers", &brokers],
    )));
    assert_eq!(one.len(), 1);

    // Unknown topic or partition: exit 1, saying which.
    let missing = consume(&brokers, &["out", "--partition", "5"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("out has no partition 5 (it has 2)"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // --follow starts at the end: only what is produced after it starts.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wactor"))
        .args([
            "consume",
            "out",
            "--follow",
            "--json",
            "--brokers",
            &brokers,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // Produce until the follower shows the new record (it may not have
    // assigned its partitions yet when the first one is written).
    let mut seen = None;
    for n in 0..50 {
        produce_raw(
            &settings,
            &[record(
                0,
                Some(format!("new-{n}").as_bytes()),
                Some(b"fresh"),
            )],
        )
        .await;
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(300)) {
            seen = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line: Value =
        serde_json::from_str(&seen.expect("the follower printed a new record")).unwrap();
    assert!(line["key"].as_str().unwrap().starts_with("new-"), "{line}");
    assert_eq!(line["payload_text"], "fresh");
}
