//! `wactor consume`: print the records of a topic (an actor's output, a
//! dead-letter mirror) from any Kafka broker, through the host's own
//! client, so that no other tool is needed to see what an actor emitted.
//!
//! It assigns itself the topic's partitions (no consumer group: nothing is
//! committed and no group of anyone's is joined). Without `--follow` it
//! reads what the topic holds when it starts (up to each partition's end
//! offset read then) and exits; with `--follow` it prints records as they
//! come until Ctrl-C. Each record is printed for people (key, headers,
//! payload; bytes that are not clean text in an escaped form) or, with
//! `--json`, as one JSON object per line in the event file format of
//! `wactor invoke --event`.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use wactor_kafka::KafkaSettings;

use crate::closed_stdout;

/// How long metadata and end offsets may take before the brokers count
/// as unreachable.
const BROKER_WAIT: Duration = Duration::from_secs(10);

/// Arguments of `wactor consume`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor consume orders.echo                     # what the topic holds now, then exit
  wactor consume orders.echo --follow            # new records until Ctrl-C
  wactor consume orders.echo -f --from-beginning # everything, then keep following
  wactor consume orders.echo --partition 3 --max 10 --json | jq .payload_text
  wactor consume orders --max 1 --json > event.json && wactor invoke my_actor.wasm --event event.json

Without --follow it reads each partition up to the end offset it had when
the command started, then exits 0. With --json each record is one line, in
the event file format of `wactor invoke --event`. Nothing is committed: no
consumer group is joined.")]
pub struct ConsumeArgs {
    /// The topic to read.
    pub topic: String,
    /// Bootstrap brokers.
    #[arg(long, env = "WACTOR_BROKERS")]
    pub brokers: String,
    /// Start at the oldest record the broker keeps. This is what happens
    /// without --follow anyway; with --follow, the default is to start at
    /// the end (only new records).
    #[arg(long)]
    pub from_beginning: bool,
    /// Keep reading new records until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// One JSON object per record and line (an event file for `wactor
    /// invoke --event`).
    #[arg(long)]
    pub json: bool,
    /// Read only this partition.
    #[arg(long, short = 'p', value_name = "N")]
    pub partition: Option<i32>,
    /// Stop after printing this many records.
    #[arg(long, short = 'n', value_name = "N")]
    pub max: Option<u64>,
    /// A librdkafka property for the client, `key=value`; repeatable.
    #[arg(long = "client", short = 'X', value_parser = parse_property)]
    pub client: Vec<(String, String)>,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// Runs `wactor consume`.
pub async fn run(args: ConsumeArgs) -> Result<u8> {
    tokio::task::spawn_blocking(move || consume(&args))
        .await
        .context("the reader thread failed")?
}

/// One record as read.
struct Record<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<&'a [u8]>,
    headers: Vec<(&'a str, Option<&'a [u8]>)>,
    payload: Option<&'a [u8]>,
}

fn consume(args: &ConsumeArgs) -> Result<u8> {
    let mut settings = KafkaSettings::new(&args.brokers);
    settings.client.extend(args.client.iter().cloned());
    settings.validate()?;
    let mut config = settings.reader_config();
    // End of partition events tell a reader without --follow that it has
    // read everything, control records (transaction markers) included.
    config.set("enable.partition.eof", "true");
    let consumer: BaseConsumer = config.create().context("cannot create the Kafka client")?;

    let metadata = consumer
        .fetch_metadata(Some(&args.topic), BROKER_WAIT)
        .with_context(|| {
            format!(
                "cannot read the metadata of {} from {}",
                args.topic, args.brokers
            )
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == args.topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("no topic {} on {}", args.topic, args.brokers);
    }
    let partitions = match args.partition {
        Some(p) if partitions.contains(&p) => vec![p],
        Some(p) => bail!(
            "{} has no partition {p} (it has {})",
            args.topic,
            partitions.len()
        ),
        None => partitions,
    };

    // The end of each partition now: where a reader without --follow stops.
    let mut ends = BTreeMap::new();
    let mut list = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&args.topic, p, BROKER_WAIT)
            .with_context(|| format!("cannot read the offsets of {}[{p}]", args.topic))?;
        let start = if args.follow && !args.from_beginning {
            Offset::Offset(high)
        } else {
            Offset::Offset(low)
        };
        if args.follow || high > low {
            ends.insert(p, high);
            list.add_partition_offset(&args.topic, p, start)
                .context("cannot assign the partitions")?;
        }
    }
    if ends.is_empty() || args.max == Some(0) {
        return Ok(0);
    }
    consumer
        .assign(&list)
        .context("cannot assign the partitions")?;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    while !ends.is_empty() {
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            // Nothing new: let a pipe see what was printed so far.
            closed_stdout::written(out.flush())?;
            continue;
        };
        let message = match result {
            Ok(message) => message,
            Err(KafkaError::PartitionEOF(p)) => {
                if !args.follow {
                    ends.remove(&p);
                }
                continue;
            }
            Err(err) => {
                tracing::warn!(error = %err, "reading {}", args.topic);
                continue;
            }
        };
        let partition = message.partition();
        let end = ends.get(&partition).copied().unwrap_or(i64::MAX);
        if !args.follow {
            if message.offset() + 1 >= end {
                ends.remove(&partition);
            }
            if message.offset() >= end {
                continue;
            }
        }
        let headers = message
            .headers()
            .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
            .unwrap_or_default();
        let record = Record {
            topic: message.topic(),
            partition,
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key(),
            headers,
            payload: message.payload(),
        };
        if args.json {
            closed_stdout::written(writeln!(out, "{}", record_json(&record)))?;
        } else {
            closed_stdout::written(write!(out, "{}", record_text(&record)))?;
        }
        printed += 1;
        if args.max.is_some_and(|max| printed >= max) {
            break;
        }
    }
    closed_stdout::written(out.flush())?;
    Ok(0)
}

/// A record for people: a `---` line with where it is and when, then its
/// key, headers and payload.
fn record_text(record: &Record<'_>) -> String {
    let when = record
        .timestamp_ms
        .map(|ms| format!(", {}", wactor_api::time::format_ms(ms)))
        .unwrap_or_default();
    let mut text = format!(
        "--- {} [{}] offset {}{when}\n",
        record.topic, record.partition, record.offset
    );
    text.push_str(&format!(
        "key: {}\n",
        record.key.map_or_else(|| "(null)".to_string(), human)
    ));
    for (name, value) in &record.headers {
        text.push_str(&format!(
            "header {}: {}\n",
            human(name.as_bytes()),
            value.map_or_else(|| "(null)".to_string(), human)
        ));
    }
    match record.payload {
        None => text.push_str("(null value: a tombstone)\n"),
        Some([]) => text.push_str("(empty value)\n"),
        Some(payload) => {
            text.push_str(&human(payload));
            text.push('\n');
        }
    }
    text
}

/// Bytes for people: UTF-8 text as it is (newlines and tabs kept), or,
/// when the bytes are not UTF-8 or hold other control characters (which a
/// terminal would act on), `(bytes) ` and the bytes with printable ASCII
/// as it is and every other byte as `\xNN` (a backslash as `\\`).
pub fn human(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return text.to_string();
        }
    }
    let mut text = String::from("(bytes) ");
    for &b in bytes {
        match b {
            b'\\' => text.push_str("\\\\"),
            0x20..=0x7e => text.push(char::from(b)),
            _ => text.push_str(&format!("\\x{b:02x}")),
        }
    }
    text
}

/// A record as one line of JSON, in the event file format of `wactor
/// invoke --event` (docs/actors.md, "The event file"): `key` or
/// `key_base64`, `payload_text`, `payload_base64` or `"payload": null`,
/// headers as `[name, value]` pairs (a value that is not UTF-8 as
/// `{"base64": ...}`, which the event file does not take).
fn record_json(record: &Record<'_>) -> serde_json::Value {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut object = serde_json::Map::new();
    object.insert("topic".into(), record.topic.into());
    object.insert("partition".into(), record.partition.into());
    object.insert("offset".into(), record.offset.into());
    if let Some(ms) = record.timestamp_ms {
        object.insert("timestamp_ms".into(), ms.into());
    }
    match record.key.map(std::str::from_utf8) {
        None => {}
        Some(Ok(key)) => {
            object.insert("key".into(), key.into());
        }
        Some(Err(_)) => {
            object.insert(
                "key_base64".into(),
                b64(record.key.unwrap_or_default()).into(),
            );
        }
    }
    let headers: Vec<serde_json::Value> = record
        .headers
        .iter()
        .map(|(name, value)| {
            let value = match value.map(|v| (v, std::str::from_utf8(v))) {
                None => serde_json::Value::Null,
                Some((_, Ok(text))) => text.into(),
                Some((bytes, Err(_))) => serde_json::json!({ "base64": b64(bytes) }),
            };
            serde_json::json!([name, value])
        })
        .collect();
    if !headers.is_empty() {
        object.insert("headers".into(), headers.into());
    }
    match record.payload.map(|p| (p, std::str::from_utf8(p))) {
        None => {
            object.insert("payload".into(), serde_json::Value::Null);
        }
        Some((_, Ok(text))) => {
            object.insert("payload_text".into(), text.into());
        }
        Some((bytes, Err(_))) => {
            object.insert("payload_base64".into(), b64(bytes).into());
        }
    }
    serde_json::Value::Object(object)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record<'a>(key: Option<&'a [u8]>, payload: Option<&'a [u8]>) -> Record<'a> {
        Record {
            topic: "orders.echo",
            partition: 3,
            offset: 17,
            timestamp_ms: Some(1_714_564_800_250),
            key,
            headers: vec![("trace-id", Some(b"abc")), ("gone", None)],
            payload,
        }
    }

    #[test]
    fn text_shows_where_key_headers_and_payload() {
        let text = record_text(&record(Some(b"order-7"), Some(b"{\"a\":1}")));
        assert_eq!(
            text,
            "--- orders.echo [3] offset 17, 2024-05-01T12:00:00.250Z\n\
             key: order-7\n\
             header trace-id: abc\n\
             header gone: (null)\n\
             {\"a\":1}\n"
        );
        let tombstone = record_text(&record(None, None));
        assert!(tombstone.contains("key: (null)\n"), "{tombstone}");
        assert!(
            tombstone.ends_with("(null value: a tombstone)\n"),
            "{tombstone}"
        );
        assert!(record_text(&record(None, Some(b""))).ends_with("(empty value)\n"));
    }

    #[test]
    fn bytes_that_are_not_clean_text_are_escaped() {
        assert_eq!(human(b"line 1\nline\t2"), "line 1\nline\t2");
        assert_eq!(human("ünïcode".as_bytes()), "ünïcode");
        assert_eq!(human(b"\x00\x01ok\\\xff"), "(bytes) \\x00\\x01ok\\\\\\xff");
        // A terminal's escape sequence is not passed through.
        assert_eq!(human(b"\x1b[2J"), "(bytes) \\x1b[2J");
    }

    #[test]
    fn json_is_an_event_file_that_reads_back_to_the_same_record() {
        let line = record_json(&record(Some(b"order-7"), Some(b"{\"a\":1}"))).to_string();
        let event = wactor_runtime::event_file::parse(&line).unwrap();
        assert_eq!(event.topic, "orders.echo");
        assert_eq!(event.partition, 3);
        assert_eq!(event.offset, 17);
        assert_eq!(event.key.as_deref(), Some(&b"order-7"[..]));
        assert_eq!(event.payload.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(
            event.headers,
            vec![
                ("trace-id".to_string(), Some(b"abc".to_vec())),
                ("gone".to_string(), None)
            ]
        );
        let binary = record_json(&record(Some(b"\xff"), Some(b"\x00\xff"))).to_string();
        let event = wactor_runtime::event_file::parse(&binary).unwrap();
        assert_eq!(event.key.as_deref(), Some(&b"\xff"[..]));
        assert_eq!(event.payload.as_deref(), Some(&b"\x00\xff"[..]));
        let tombstone = record_json(&record(None, None)).to_string();
        let event = wactor_runtime::event_file::parse(&tombstone).unwrap();
        assert_eq!((event.key, event.payload), (None, None));
    }
}
