//! `wactor retries list|now`: the events an actor holds because they wait
//! for a retry (or wait behind one of their key), and running one of them
//! now instead of at its due time. With a shared registry the host asked
//! answers for every host of the cluster.

use clap::{Args, Subcommand};
use wactor_api::wire::{HeldListingView, RetriesQuery};

use super::client::{parse, segment, Client};
use super::output::{bytes_arg, clip, maybe_time, print_json, Table};
use super::{Conn, Failure, Result, EXIT_OK};

/// Arguments of `wactor retries`.
#[derive(Debug, Args)]
pub struct RetriesArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    command: RetriesCommand,
}

#[derive(Debug, Subcommand)]
enum RetriesCommand {
    /// List an actor's held events: those waiting for a retry, and those
    /// waiting behind them.
    List(ListArgs),
    /// Retry a held event now instead of at its due time.
    Now(NowArgs),
}

/// Arguments of `wactor retries list`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor retries list payment-reversal
  wactor retries list payment-reversal --only-retrying --key booking-42

Held events live with their partition's owner. With a shared registry
(kafka.shared_registry, the default) any host lists the whole cluster's,
asking the other live hosts through Kafka (up to 5 s); HOST names the host
holding each, and hosts that did not answer are named on stderr.")]
struct ListArgs {
    /// The actor.
    actor: String,
    /// Only events from this topic.
    #[arg(long)]
    topic: Option<String>,
    /// Only events with this key (text, or base64:...).
    #[arg(long)]
    key: Option<String>,
    /// At most this many (1 to 10000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Only events waiting for their own retry, not those behind them.
    #[arg(long)]
    only_retrying: bool,
}

/// Arguments of `wactor retries now`.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  wactor retries now payment-reversal bookings:3:key.626f6f6b696e672d3432:1017

The id is the ID column of `wactor retries list`. Any host of the cluster
runs it: the host asked, or through Kafka the one that holds it.
Exit codes: 3 when no host holds such an event waiting for a retry.")]
struct NowArgs {
    /// The actor.
    actor: String,
    /// The held event's id.
    id: String,
}

/// Runs `wactor retries ...`.
pub async fn run(args: RetriesArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    match args.command {
        RetriesCommand::List(list) => {
            if !(1..=10_000).contains(&list.limit) {
                return Err(Failure::Usage("--limit must be between 1 and 10000".into()));
            }
            let query = RetriesQuery {
                topic: list.topic,
                key: list.key,
                limit: Some(list.limit),
                only_retrying: list.only_retrying.then_some(true),
            };
            let value = client
                .get_with(
                    &format!("/v1/actors/{}/retries", segment(&list.actor)),
                    &query,
                )
                .await?;
            if args.conn.json {
                print_json(&value);
                return Ok(EXIT_OK);
            }
            let held: HeldListingView = parse(&value)?;
            for host in &held.unanswered_hosts {
                eprintln!(
                    "warning: host {host} did not answer: its partitions' events are missing"
                );
            }
            for host in &held.truncated_hosts {
                eprintln!("warning: host {host} holds more than one answer carries: narrow the filter or ask its API");
            }
            if held.items.is_empty() {
                println!("no events held for {}", list.actor);
                return Ok(EXIT_OK);
            }
            let with_hosts = held.items.iter().any(|e| e.host.is_some());
            let mut columns = vec!["ID", "ATTEMPTS", "NEXT ATTEMPT", "KEY", "LAST ERROR"];
            if with_hosts {
                columns.insert(1, "HOST");
            }
            let mut table = Table::new(&columns);
            for event in held.items {
                let mut row = vec![
                    event.id,
                    if event.blocked_by.is_some() {
                        format!("{} (dead)", event.attempts.len())
                    } else if event.retrying {
                        event.attempts.len().to_string()
                    } else {
                        "waiting".into()
                    },
                    match &event.blocked_by {
                        Some(letter) => format!("blocked by dead letter {letter}"),
                        None => maybe_time(event.next_attempt_at_ms),
                    },
                    clip(&bytes_arg(event.event.key.as_ref()), 24),
                    clip(event.attempts.last().map_or("", |a| a.error.as_str()), 70),
                ];
                if with_hosts {
                    row.insert(1, event.host.unwrap_or_default());
                }
                table.row(row);
            }
            table.print();
            Ok(EXIT_OK)
        }
        RetriesCommand::Now(now) => {
            let value = client
                .post(
                    &format!(
                        "/v1/actors/{}/retries/{}/retry-now",
                        segment(&now.actor),
                        segment(&now.id)
                    ),
                    None::<&()>,
                )
                .await?;
            if args.conn.json {
                print_json(&value);
            } else {
                println!("{}: {} is retried now", now.actor, now.id);
            }
            Ok(EXIT_OK)
        }
    }
}
