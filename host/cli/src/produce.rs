//! `wactor produce`: send test events to any Kafka broker (the one `wactor
//! dev` prints, or a real cluster) through the host's own client.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use wactor_kafka::{KafkaSettings, OutRecord, Producer};

/// Arguments of `wactor produce`.
#[derive(Debug, Args)]
#[command(after_help = after_help())]
pub struct ProduceArgs {
    /// Bootstrap brokers.
    #[arg(long, env = "WACTOR_BROKERS")]
    pub brokers: String,
    /// Destination topic.
    #[arg(long, short = 't')]
    pub topic: String,
    /// Record key.
    #[arg(long, short = 'k')]
    pub key: Option<String>,
    /// Explicit partition (default: by key).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// A header, `name=value`; repeatable.
    #[arg(long = "header", short = 'H', value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Send this many events.
    #[arg(long, short = 'n', default_value_t = 1)]
    pub count: u64,
    /// The value.
    pub value: Option<String>,
    /// Send tombstones: records whose value is null (not empty), which
    /// delete their key from a compacted topic.
    #[arg(long, conflicts_with_all = ["value", "file", "lines"])]
    pub tombstone: bool,
    /// Read the value from a file.
    #[arg(long, short = 'f', conflicts_with_all = ["value", "lines"])]
    pub file: Option<PathBuf>,
    /// Read events from standard input, one per line.
    #[arg(long, conflicts_with_all = ["value", "file", "count"])]
    pub lines: bool,
    /// A librdkafka property for the client, `key=value`; repeatable.
    #[arg(long = "client", short = 'X', value_parser = parse_header)]
    pub client: Vec<(String, String)>,
}

/// `{n}` as it should read in the help. clap turns `{n}` anywhere in help
/// text into a line break and offers no escape, so the braces are kept
/// apart by an empty ANSI reset: a terminal shows nothing for it, and clap
/// strips it when the help goes to a pipe or a file.
const LITERAL_N: &str = "{\x1b[0mn}";

/// The examples after `wactor produce --help`.
fn after_help() -> String {
    let n = LITERAL_N;
    format!(
        "\
Examples:
  wactor produce --brokers 127.0.0.1:39092 --topic orders --key order-1 '{{\"order_id\":\"order-1\"}}'
  wactor produce --brokers B --topic posts --file examples/search-indexer/post.json --key P-1
  wactor produce --brokers B --topic orders --count 1000 --key 'k{n}' '{{\"seq\":{n}}}'
  printf 'a\\tone\\nb\\ttwo\\n' | wactor produce --brokers B --topic t --lines
  wactor produce --brokers B --topic users.compacted --key user-7 --tombstone

`{n}` in the key and value is replaced by the event's number (0-based) with --count.
With --lines, each line of standard input is one event: `key<TAB>value`, or just `value`."
    )
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected name=value, got {s:?}")),
    }
}

/// Runs `wactor produce`.
pub async fn run(args: ProduceArgs) -> Result<u8> {
    let mut settings = KafkaSettings::new(&args.brokers);
    settings.client.extend(args.client.iter().cloned());
    // librdkafka's default is 5 minutes of retrying a broker that is not
    // there; a command waits [`DELIVERY_TIMEOUT_MS`] unless told otherwise.
    if !settings.client.contains_key("message.timeout.ms") {
        settings
            .producer
            .insert("message.timeout.ms".into(), DELIVERY_TIMEOUT_MS.into());
    }
    settings.validate()?;
    let producer = Producer::new(&settings)?;
    let headers: Vec<(String, Option<Vec<u8>>)> = args
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone().into_bytes())))
        .collect();
    let mut records = Vec::new();
    if args.lines {
        for line in std::io::stdin().lock().lines() {
            let line = line.context("cannot read standard input")?;
            if line.is_empty() {
                continue;
            }
            let (key, value) = match line.split_once('\t') {
                Some((key, value)) => (Some(key.to_string()), value.to_string()),
                None => (args.key.clone(), line),
            };
            records.push((key, Some(value.into_bytes())));
        }
    } else if args.tombstone {
        for n in 0..args.count {
            let fill = |text: &str| text.replace("{n}", &n.to_string());
            records.push((args.key.as_deref().map(fill), None));
        }
    } else {
        let value: Vec<u8> = match (&args.value, &args.file) {
            (Some(value), None) => value.clone().into_bytes(),
            (None, Some(file)) => {
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?
            }
            (None, None) => bail!("give a value, --file, --lines or --tombstone"),
            (Some(_), Some(_)) => bail!("give either a value or --file"),
        };
        for n in 0..args.count {
            let fill = |text: &str| text.replace("{n}", &n.to_string());
            let value = match std::str::from_utf8(&value) {
                Ok(text) if args.count > 1 => fill(text).into_bytes(),
                _ => value.clone(),
            };
            records.push((args.key.as_deref().map(fill), Some(value)));
        }
    }
    let started = Instant::now();
    let deliveries: Vec<_> = records
        .into_iter()
        .map(|(key, value)| {
            producer.enqueue(&OutRecord {
                topic: args.topic.clone(),
                partition: args.partition,
                key: key.map(String::into_bytes),
                payload: value,
                headers: headers.clone(),
            })
        })
        .collect();
    let total = deliveries.len();
    let mut failed = 0;
    let mut last = None;
    for delivery in deliveries {
        match delivery.await {
            Ok(delivered) => last = Some(delivered),
            Err(err) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("error: {err}");
                }
            }
        }
    }
    let took = started.elapsed();
    match (total, last) {
        (1, Some(d)) if failed == 0 => println!(
            "produced to {} partition {} offset {}",
            args.topic, d.partition, d.offset
        ),
        _ => println!(
            "produced {} of {total} record(s) to {} in {:.1} ms",
            total - failed,
            args.topic,
            took.as_secs_f64() * 1000.0
        ),
    }
    if failed > 0 {
        eprintln!(
            "hint: is a broker listening at {}? (`wactor dev` prints its broker's address at \
             every start; `export WACTOR_BROKERS=...` again after a restart)",
            args.brokers
        );
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// How long `wactor produce` waits for each record's acknowledgement
/// (`message.timeout.ms`, unless `-X message.timeout.ms=...` is given):
/// 30 s.
const DELIVERY_TIMEOUT_MS: &str = "30000";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_shows_the_n_placeholder_literally() {
        let mut cmd = ProduceArgs::augment_args(clap::Command::new("produce"));
        // Display strips terminal styling, as clap does for a pipe.
        let help = cmd.render_help().to_string();
        assert!(
            help.contains("--count 1000 --key 'k{n}' '{\"seq\":{n}}'"),
            "{help}"
        );
        assert!(help.contains("`{n}` in the key and value"), "{help}");
    }
}
