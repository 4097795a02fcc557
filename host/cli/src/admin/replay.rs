//! `wactor replay ACTOR --from TIME ...`: feed a past range of an actor's
//! records through it again, following its progress; `wactor replays
//! list|show|cancel`: the replays a host runs.

use std::time::Duration;

use clap::{Args, Subcommand};
use wactor_api::replays::ReplayBody;
use wactor_api::wire::Items;
use wactor_kafka::replay::ReplayState;
use wactor_registry::replays::ReplayView;

use super::client::{parse, segment, Client};
use super::output::{maybe_time, print_json, time, Table};
use super::{Conn, Result, EXIT_ERROR, EXIT_OK};

/// How often a followed replay is asked for its progress.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// Arguments of `wactor replay`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor replay payment-reversal --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z
  wactor replay payment-reversal --from 2026-12-01 --topic bookings.cancelled --partition 3 --dry-run
  wactor replay payment-reversal --from 2026-12-01 --version 7 --rate 200 --detach

Times are RFC 3339, a date (its midnight UTC) or ms since the epoch; the
range is [--from, --to) by record timestamp (--to defaults to now: records
produced later are live events). Each record of the range is copied to the
actor's <group>.replay topic and handled there as the original (same topic,
partition, offset, key, value and headers, plus wactor-replay: <id>), in
key order, beside the live events; its emits carry wactor-replay too.
Without --detach the command follows the replay until every record fed is
handled; Ctrl-C leaves it running (wactor replays cancel ID stops it).")]
pub struct ReplayArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// The actor.
    actor: String,
    /// The range's start (included).
    #[arg(long)]
    from: String,
    /// The range's end (excluded); default: now.
    #[arg(long)]
    to: Option<String>,
    /// Only this one of the actor's topics.
    #[arg(long)]
    topic: Option<String>,
    /// Only this partition (with --topic when the actor reads several).
    #[arg(long)]
    partition: Option<i32>,
    /// Run the records on this version instead of the active one.
    #[arg(long)]
    version: Option<u64>,
    /// This many records per second on average from the start (the n-th
    /// no earlier than n / rate seconds in; after a stall the feed catches
    /// up in a burst).
    #[arg(long)]
    rate: Option<u32>,
    /// Only say what the range holds.
    #[arg(long)]
    dry_run: bool,
    /// Start it and return, without following it.
    #[arg(long)]
    detach: bool,
}

/// Arguments of `wactor replays`.
#[derive(Debug, Args)]
pub struct ReplaysArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    command: ReplaysCommand,
}

#[derive(Debug, Subcommand)]
enum ReplaysCommand {
    /// The replays of an actor that the host asked runs or ran.
    #[command(after_help = "Example:\n  wactor replays list payment-reversal")]
    List {
        /// The actor.
        actor: String,
    },
    /// One replay's progress.
    #[command(after_help = "Example:\n  wactor replays show replay-18c2f...-1a2b3c4d")]
    Show {
        /// The replay's id.
        id: String,
    },
    /// Stop feeding a replay (what was fed is still handled).
    #[command(after_help = "Example:\n  wactor replays cancel replay-18c2f...-1a2b3c4d")]
    Cancel {
        /// The replay's id.
        id: String,
    },
}

/// Runs `wactor replay ...`.
pub async fn run(args: ReplayArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    let body = ReplayBody {
        from: args.from,
        to: args.to,
        topic: args.topic,
        partition: args.partition,
        version: args.version,
        rate: args.rate,
        dry_run: args.dry_run,
    };
    let value = client
        .post_long(
            &format!("/v1/actors/{}/replays", segment(&args.actor)),
            &body,
        )
        .await?;
    let view: ReplayView = parse(&value)?;
    if view.dry_run {
        if args.conn.json {
            print_json(&value);
        } else {
            print_plan(&view);
        }
        return Ok(EXIT_OK);
    }
    if args.detach {
        if args.conn.json {
            print_json(&value);
        } else {
            println!(
                "replay {} started: {} record(s) in range; follow it with `wactor replays show {}`",
                view.spec.id, view.records_in_range, view.spec.id
            );
        }
        return Ok(EXIT_OK);
    }
    if !args.conn.json {
        eprintln!(
            "replay {} started: {} record(s) in range",
            view.spec.id, view.records_in_range
        );
    }
    let path = format!("/v1/replays/{}", segment(&view.spec.id));
    let mut last = (u64::MAX, u64::MAX);
    let (value, view) = loop {
        let value = client.get(&path).await?;
        let view: ReplayView = parse(&value)?;
        let now = (view.progress.fed, view.progress.handled);
        if now != last && !args.conn.json {
            eprintln!(
                "  {:?}: fed {}, handled {}",
                view.progress.state, view.progress.fed, view.progress.handled
            );
            last = now;
        }
        if view.progress.state.is_final() {
            break (value, view);
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    };
    if args.conn.json {
        print_json(&value);
    } else {
        print_summary(&view);
    }
    Ok(if view.progress.state == ReplayState::Done {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

/// Runs `wactor replays ...`.
pub async fn run_replays(args: ReplaysArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    let value = match &args.command {
        ReplaysCommand::List { actor } => {
            client
                .get(&format!("/v1/actors/{}/replays", segment(actor)))
                .await?
        }
        ReplaysCommand::Show { id } => client.get(&format!("/v1/replays/{}", segment(id))).await?,
        ReplaysCommand::Cancel { id } => {
            client
                .post(&format!("/v1/replays/{}/cancel", segment(id)), None::<&()>)
                .await?
        }
    };
    if args.conn.json {
        print_json(&value);
        return Ok(EXIT_OK);
    }
    match args.command {
        ReplaysCommand::List { actor } => {
            let replays: Items<ReplayView> = parse(&value)?;
            if replays.items.is_empty() {
                println!("no replays of {actor} on this host");
                return Ok(EXIT_OK);
            }
            let mut table = Table::new(&[
                "ID", "STARTED", "FROM", "TO", "STATE", "IN RANGE", "FED", "HANDLED",
            ]);
            for r in replays.items {
                table.row(vec![
                    r.spec.id,
                    time(r.started_at_ms),
                    time(r.spec.from_ms),
                    maybe_time(r.spec.to_ms),
                    format!("{:?}", r.progress.state).to_lowercase(),
                    r.records_in_range.to_string(),
                    r.progress.fed.to_string(),
                    r.progress.handled.to_string(),
                ]);
            }
            table.print();
        }
        ReplaysCommand::Show { .. } => print_summary(&parse(&value)?),
        ReplaysCommand::Cancel { id } => {
            println!("replay {id} cancelled: nothing more is fed; what was fed is handled");
        }
    }
    Ok(EXIT_OK)
}

fn print_plan(view: &ReplayView) {
    println!(
        "{} record(s) in range (dry run: nothing fed):",
        view.records_in_range
    );
    print_ranges(view);
}

fn print_ranges(view: &ReplayView) {
    let mut table = Table::new(&["TOPIC", "PARTITION", "FROM OFFSET", "TO OFFSET", "FED"]);
    for p in &view.progress.partitions {
        table.row(vec![
            p.range.topic.clone(),
            p.range.partition.to_string(),
            p.range.start_offset.to_string(),
            p.range.end_offset.to_string(),
            p.fed.to_string(),
        ]);
    }
    table.print();
}

fn print_summary(view: &ReplayView) {
    let p = &view.progress;
    println!(
        "replay {} of {}: {}: {} fed, {} handled, {} passed over (outside the time range), {} too large",
        view.spec.id,
        view.spec.actor,
        format!("{:?}", p.state).to_lowercase(),
        p.fed,
        p.handled,
        p.passed_over,
        p.too_large
    );
    if let Some(err) = &p.error {
        println!("error: {err}");
    }
    print_ranges(view);
}
