//! `wactor broker`: only a Kafka-protocol broker (librdkafka's mock
//! cluster) in a process of its own, so that several `wactor serve` hosts
//! can run against it on one machine and be killed while it lives (the
//! fault tests do exactly that; Tansu 0.6 cannot, see docs/operations.md).
//!
//! It prints the bootstrap address (and writes it to `--address-file`),
//! creates the topics asked for, and runs until SIGTERM, Ctrl-C or the end
//! of standard input when `--control` is given. With `--control` it reads
//! fault-injection commands from standard input, one per line:
//!
//! - `down N` / `up N`: take broker N (1-based) down or bring it back;
//! - `rtt N MS`: add MS milliseconds of round-trip time to broker N;
//! - `topic NAME PARTITIONS`: create a topic.
//!
//! Each command is answered with `ok` or `error: ...` on standard output.
//! Memory only: nothing survives the process. Retention is the mock's
//! (see `wactor_kafka::dev_cluster`).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use wactor_kafka::DevCluster;

/// Arguments of `wactor broker`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor broker --topic orders:8 --topic payments:4
  wactor broker --brokers 3 --address-file /tmp/wactor-broker.addr
  # then, for each host:   wactor serve --config host-a.toml   (brokers = the printed address)

Fault injection (for tests), with --control, one command per line on stdin:
  down 1 | up 1 | rtt 1 500 | topic NAME PARTITIONS")]
pub struct BrokerArgs {
    /// Brokers in the cluster.
    #[arg(long, default_value_t = 1)]
    pub brokers: i32,
    /// A topic to create, as NAME:PARTITIONS (repeatable). Other topics are
    /// created on first use with the mock's default partition count.
    #[arg(long = "topic", value_name = "NAME:PARTITIONS")]
    pub topics: Vec<String>,
    /// Also write the bootstrap address to this file (atomically).
    #[arg(long)]
    pub address_file: Option<PathBuf>,
    /// Read fault-injection commands from standard input; stop when it
    /// closes.
    #[arg(long)]
    pub control: bool,
}

/// One fault-injection command.
#[derive(Debug, PartialEq, Eq)]
enum ControlCommand {
    Down(i32),
    Up(i32),
    Rtt(i32, u64),
    Topic(String, i32),
}

fn parse_command(line: &str) -> Result<ControlCommand> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize, what: &str| -> Result<i64> {
        words
            .get(i)
            .with_context(|| format!("missing {what}"))?
            .parse::<i64>()
            .with_context(|| format!("{what} must be a number"))
    };
    let broker = |i: usize| -> Result<i32> {
        i32::try_from(number(i, "broker id")?).context("broker id out of range")
    };
    Ok(match words.first().copied() {
        Some("down") => ControlCommand::Down(broker(1)?),
        Some("up") => ControlCommand::Up(broker(1)?),
        Some("rtt") => ControlCommand::Rtt(
            broker(1)?,
            u64::try_from(number(2, "milliseconds")?).context("milliseconds must be >= 0")?,
        ),
        Some("topic") => {
            let name = words.get(1).context("missing topic name")?.to_string();
            let partitions =
                i32::try_from(number(2, "partitions")?).context("partitions out of range")?;
            ControlCommand::Topic(name, partitions)
        }
        Some(other) => bail!("unknown command {other:?} (down, up, rtt, topic)"),
        None => bail!("empty command"),
    })
}

fn parse_topic(spec: &str) -> Result<(String, i32)> {
    let (name, partitions) = spec
        .rsplit_once(':')
        .with_context(|| format!("--topic {spec:?}: expected NAME:PARTITIONS"))?;
    let partitions: i32 = partitions
        .parse()
        .with_context(|| format!("--topic {spec:?}: partitions must be a number"))?;
    if name.is_empty() || partitions < 1 {
        bail!("--topic {spec:?}: a name and at least 1 partition");
    }
    Ok((name.to_string(), partitions))
}

/// Runs `wactor broker` until a signal (or the end of the control input).
pub async fn run(args: BrokerArgs) -> Result<u8> {
    if args.brokers < 1 {
        bail!("--brokers must be at least 1");
    }
    let topics = args
        .topics
        .iter()
        .map(|t| parse_topic(t))
        .collect::<Result<Vec<_>>>()?;
    // The mock cluster is not `Send`: it lives on a thread of its own,
    // which also serves the control commands.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<String>>();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
    let control = args.control;
    let brokers = args.brokers;
    let thread = std::thread::Builder::new()
        .name("wactor-broker".into())
        .spawn(move || {
            let cluster = match DevCluster::start(brokers) {
                Ok(cluster) => cluster,
                Err(err) => {
                    let _ = ready_tx.send(Err(anyhow::anyhow!("cannot start the broker: {err}")));
                    return;
                }
            };
            for (name, partitions) in &topics {
                if let Err(err) = cluster.create_topic(name, *partitions) {
                    let _ = ready_tx.send(Err(anyhow::anyhow!("{err}")));
                    return;
                }
            }
            let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
            if control {
                serve_control(&cluster);
                let _ = ended_tx.send(());
            } else {
                let _ = stop_rx.recv();
            }
            drop(cluster);
        })
        .context("cannot start the broker thread")?;
    let address = ready_rx.await.context("the broker thread ended")??;
    println!("{address}");
    std::io::stdout().flush().ok();
    if let Some(path) = &args.address_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{address}\n"))
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!("wactor broker: listening on {address} ({brokers} broker(s)); Ctrl-C stops it");
    tokio::select! {
        () = crate::host::shutdown_signal() => {}
        _ = ended_rx, if control => {}
    }
    let _ = stop_tx.send(());
    // Give the thread a moment to close its sockets.
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(0)
}

/// Reads control commands from stdin until it closes.
fn serve_control(cluster: &DevCluster) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let result = parse_command(&line).and_then(|command| {
            let mock = cluster.mock();
            match command {
                ControlCommand::Down(id) => mock.broker_down(id)?,
                ControlCommand::Up(id) => mock.broker_up(id)?,
                ControlCommand::Rtt(id, ms) => {
                    mock.broker_round_trip_time(id, Duration::from_millis(ms))?
                }
                ControlCommand::Topic(name, partitions) => {
                    cluster.create_topic(&name, partitions)?
                }
            }
            Ok(())
        });
        let mut out = std::io::stdout().lock();
        let _ = match result {
            Ok(()) => writeln!(out, "ok"),
            Err(err) => writeln!(out, "error: {err:#}"),
        };
        let _ = out.flush();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn control_commands_parse() {
        assert_eq!(parse_command("down 1").ok(), Some(ControlCommand::Down(1)));
        assert_eq!(parse_command(" up 2 ").ok(), Some(ControlCommand::Up(2)));
        assert_eq!(
            parse_command("rtt 1 500").ok(),
            Some(ControlCommand::Rtt(1, 500))
        );
        assert_eq!(
            parse_command("topic orders 8").ok(),
            Some(ControlCommand::Topic("orders".into(), 8))
        );
    }

    #[test]
    fn bad_control_commands_say_what_is_wrong() {
        let err = |line: &str| format!("{:#}", parse_command(line).unwrap_err());
        assert!(err("reboot").contains("unknown command"));
        assert!(err("down").contains("missing broker id"));
        assert!(err("down x").contains("broker id must be a number"));
        assert!(err("rtt 1 -5").contains("milliseconds"));
    }

    #[test]
    fn topics_are_name_colon_partitions() {
        assert_eq!(parse_topic("orders:8").ok(), Some(("orders".into(), 8)));
        assert_eq!(parse_topic("a.b:c:2").ok(), Some(("a.b:c".into(), 2)));
        assert!(parse_topic("orders").is_err());
        assert!(parse_topic("orders:0").is_err());
        assert!(parse_topic(":3").is_err());
    }
}
