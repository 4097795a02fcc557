//! `wactor retries list|now`: the events an actor holds on a host because
//! they wait for a retry (or wait behind one of their key), and running
//! one of them now instead of at its due time.

use clap::{Args, Subcommand};
use wactor_api::wire::{HeldView, Items, RetriesQuery};

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

Held events are per host: each host shows the partitions it owns.")]
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

The id is the ID column of `wactor retries list`.
Exit codes: 3 when this host holds no such event waiting for a retry.")]
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
            let held: Items<HeldView> = parse(&value)?;
            if held.items.is_empty() {
                println!("no events held for {}", list.actor);
                return Ok(EXIT_OK);
            }
            let mut table = Table::new(&["ID", "ATTEMPTS", "NEXT ATTEMPT", "KEY", "LAST ERROR"]);
            for event in held.items {
                table.row(vec![
                    event.id,
                    if event.retrying {
                        event.attempts.len().to_string()
                    } else {
                        "waiting".into()
                    },
                    maybe_time(event.next_attempt_at_ms),
                    clip(&bytes_arg(event.event.key.as_ref()), 24),
                    clip(event.attempts.last().map_or("", |a| a.error.as_str()), 70),
                ]);
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
