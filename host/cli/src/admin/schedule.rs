//! `wactor schedule list|backfill`: an actor's schedules with their next
//! and last firing, and firing every occurrence of a past range now (the
//! Haraj case: "re-run 2024-07-10").

use clap::{Args, Subcommand};
use wactor_api::schedules::BackfillBody;
use wactor_api::wire::Items;
use wactor_registry::schedules::{BackfillReport, ScheduleView};

use super::client::{parse, segment, Client};
use super::output::{clip, maybe_time, print_json, Table};
use super::{Conn, Result, EXIT_OK};

/// Arguments of `wactor schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(Debug, Subcommand)]
enum ScheduleCommand {
    /// List an actor's schedules with their next and last firing.
    List(ListArgs),
    /// Fire every occurrence of a schedule in a past range, now.
    Backfill(BackfillArgs),
}

/// Arguments of `wactor schedule list`.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  wactor schedule list daily-settlement

LAST FIRED is read from the actor's <group>.schedule topic.")]
struct ListArgs {
    /// The actor.
    actor: String,
}

/// Arguments of `wactor schedule backfill`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor schedule backfill daily-settlement --schedule nightly --from 2024-07-10 --to 2024-07-10
  wactor schedule backfill daily-settlement --schedule nightly --from 2024-06-01 --to 2024-06-30 --dry-run

Dates are days in the schedule's time zone (--to includes its whole day);
RFC 3339 times (2024-07-10T00:00:00Z) work too. Each occurrence is a
record of <group>.schedule with the header wactor-backfill: true; the actor
sees it as on time (same payload, same wactor-firing-id), so an actor that
records by firing id or date does not record a day twice. At most 10000
occurrences per backfill.")]
struct BackfillArgs {
    /// The actor.
    actor: String,
    /// The schedule's name.
    #[arg(long)]
    schedule: String,
    /// The range's start.
    #[arg(long)]
    from: String,
    /// The range's end, included.
    #[arg(long)]
    to: String,
    /// Only say what would fire.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `wactor schedule ...`.
pub async fn run(args: ScheduleArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    match args.command {
        ScheduleCommand::List(list) => {
            let value = client
                .get(&format!("/v1/actors/{}/schedules", segment(&list.actor)))
                .await?;
            if args.conn.json {
                print_json(&value);
                return Ok(EXIT_OK);
            }
            let schedules: Items<ScheduleView> = parse(&value)?;
            if schedules.items.is_empty() {
                println!("{} has no schedules", list.actor);
                return Ok(EXIT_OK);
            }
            let mut table = Table::new(&[
                "NAME",
                "CRON",
                "TIME ZONE",
                "CATCH UP",
                "NEXT",
                "LAST FIRED",
            ]);
            for s in schedules.items {
                let last = match (&s.last_error, s.last_fired_at_ms) {
                    (Some(err), _) => format!("unknown: {}", clip(err, 40)),
                    (None, at) => maybe_time(at),
                };
                table.row(vec![
                    s.spec.name,
                    s.spec.cron,
                    s.spec.timezone,
                    format!("{:?}", s.spec.catch_up).to_lowercase(),
                    maybe_time(s.next_at_ms),
                    last,
                ]);
            }
            table.print();
            Ok(EXIT_OK)
        }
        ScheduleCommand::Backfill(backfill) => {
            let body = BackfillBody {
                from: backfill.from,
                to: backfill.to,
                dry_run: backfill.dry_run,
            };
            let value = client
                .post(
                    &format!(
                        "/v1/actors/{}/schedules/{}/backfill",
                        segment(&backfill.actor),
                        segment(&backfill.schedule)
                    ),
                    Some(&body),
                )
                .await?;
            if args.conn.json {
                print_json(&value);
                return Ok(EXIT_OK);
            }
            let report: BackfillReport = parse(&value)?;
            if report.dry_run {
                println!(
                    "would fire {} occurrence(s) of {} (dry run: nothing written):",
                    report.matched, report.schedule
                );
            } else {
                println!(
                    "fired {} of {} occurrence(s) of {}:",
                    report.fired, report.matched, report.schedule
                );
            }
            for time in &report.scheduled_times {
                println!("  {time}");
            }
            if report.matched > report.scheduled_times.len() {
                println!(
                    "  ... and {} more",
                    report.matched - report.scheduled_times.len()
                );
            }
            Ok(EXIT_OK)
        }
    }
}
