//! `wactor dlq list|show|redrive|discard`: the dead-letter set.
//!
//! Filters are the API's (actor, topic, key, error text, time range); times
//! are RFC 3339, milliseconds, or an age such as `30m`, `6h`, `2d`
//! (converted here to "now minus that"). A re-drive or discard needs an
//! id, a filter, or `--all`, never nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Args, Subcommand};
use serde_json::Value;
use wactor_api::wire::{
    BatchReport, DeadLetterPageView, DeadLetterQuery, DeadLetterView, DiscardBody, FilterBody,
    RedriveBody, TimeArg,
};

use super::client::{parse, segment, Client};
use super::output::{bytes_arg, clip, payload, plural, print_json, time, Table};
use super::{Conn, Failure, Result, EXIT_ERROR, EXIT_OK};

/// Arguments of `wactor dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// List dead letters, newest first.
    List(ListArgs),
    /// Show one dead letter: the event, why it died, every attempt.
    Show(ShowArgs),
    /// Send dead letters back to their actor (one, a filter, or all).
    Redrive(RedriveArgs),
    /// Delete dead letters for good (one, a filter, or all).
    Discard(DiscardArgs),
}

/// Which dead letters.
#[derive(Debug, Clone, Default, Args)]
struct FilterArgs {
    /// Only this actor's.
    #[arg(long)]
    actor: Option<String>,
    /// Only events from this topic.
    #[arg(long)]
    topic: Option<String>,
    /// Only events with this key (text, or base64:...).
    #[arg(long)]
    key: Option<String>,
    /// Only those whose reason or an attempt's error contains this text
    /// (ignoring case).
    #[arg(long, value_name = "TEXT")]
    error: Option<String>,
    /// Dead-lettered at or after: RFC 3339, ms since the epoch, or an age
    /// (30m, 6h, 2d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Dead-lettered before: RFC 3339, ms since the epoch, or an age.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

impl FilterArgs {
    fn resolved(&self) -> Result<FilterArgs> {
        Ok(FilterArgs {
            since: self.since.as_deref().map(resolve_time).transpose()?,
            until: self.until.as_deref().map(resolve_time).transpose()?,
            ..self.clone()
        })
    }

    fn to_body(&self) -> Result<Option<FilterBody>> {
        let resolved = self.resolved()?;
        let body = FilterBody {
            actor: resolved.actor,
            topic: resolved.topic,
            key: resolved.key,
            error: resolved.error,
            since: resolved.since.map(TimeArg::Text),
            until: resolved.until.map(TimeArg::Text),
        };
        Ok((body != FilterBody::default()).then_some(body))
    }
}

/// Arguments of `wactor dlq list`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor dlq list
  wactor dlq list --actor payment-reversal --since 6h
  wactor dlq list --topic bookings --key booking-42 --error timeout
  wactor dlq list --all --json > dead-letters.json

Times: RFC 3339 (2026-05-01T12:00:00Z), milliseconds, or an age (30m, 6h, 2d).
Keys: the text, or base64:<bytes> for binary keys.")]
struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Page size (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Continue after this cursor (the `next` of the previous page).
    #[arg(long, value_name = "CURSOR", conflicts_with = "all")]
    after: Option<String>,
    /// Every page, not only the first.
    #[arg(long)]
    all: bool,
}

/// Arguments of `wactor dlq show`.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  wactor dlq show payment-reversal:bookings:3:1017")]
struct ShowArgs {
    /// The dead letter's id (`<actor>:<topic>:<partition>:<offset>`).
    id: String,
}

/// Arguments of `wactor dlq redrive`.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("selection").required(true).multiple(true)
        .args(["id", "all", "actor", "topic", "key", "error", "since", "until"])),
    after_help = "\
Examples:
  wactor dlq redrive payment-reversal:bookings:3:1017
  wactor dlq redrive --actor payment-reversal --error timeout --dry-run
  wactor dlq redrive --actor payment-reversal --since 2h --version 8 --rate 50
  wactor dlq redrive --all --dry-run

A re-driven event goes back through its actor's retry path with its history:
its attempts count on, and it comes back here if it dies again. A letter that
blocks its key (BLOCKING, on_dead = \"block\") is re-driven in its lane
instead: its event runs first, before the key's waiting events, with a new
retry budget (a new death starts a new history); refused while no host runs
its partition (the actor paused, the partition moving).
Exit codes: 1 when some re-drives failed, 3 unknown id or version.")]
struct RedriveArgs {
    /// One dead letter.
    #[arg(conflicts_with_all = ["all", "actor", "topic", "key", "error", "since", "until"])]
    id: Option<String>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Every dead letter.
    #[arg(long, conflicts_with_all = ["actor", "topic", "key", "error", "since", "until"])]
    all: bool,
    /// Run them on this version of the actor; default: the active one.
    #[arg(long, value_name = "N")]
    version: Option<u64>,
    /// Only say what would be re-driven.
    #[arg(long)]
    dry_run: bool,
    /// At most this many re-drives per second.
    #[arg(long, value_name = "PER_SECOND")]
    rate: Option<u32>,
}

/// Arguments of `wactor dlq discard`.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("selection").required(true).multiple(true)
        .args(["id", "all", "actor", "topic", "key", "error", "since", "until"])),
    after_help = "\
Examples:
  wactor dlq discard payment-reversal:bookings:3:1017
  wactor dlq discard --actor search-indexer --until 30d --dry-run
  wactor dlq discard --all

Discarded dead letters are gone for good; try --dry-run first.")]
struct DiscardArgs {
    /// One dead letter.
    #[arg(conflicts_with_all = ["all", "actor", "topic", "key", "error", "since", "until"])]
    id: Option<String>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Every dead letter.
    #[arg(long, conflicts_with_all = ["actor", "topic", "key", "error", "since", "until"])]
    all: bool,
    /// Only say what would be discarded.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `wactor dlq ...`.
pub async fn run(args: DlqArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    match args.command {
        DlqCommand::List(list_args) => list(&client, &args.conn, list_args).await,
        DlqCommand::Show(show_args) => show(&client, &args.conn, show_args).await,
        DlqCommand::Redrive(redrive_args) => redrive(&client, &args.conn, redrive_args).await,
        DlqCommand::Discard(discard_args) => discard(&client, &args.conn, discard_args).await,
    }
}

async fn list(client: &Client, conn: &Conn, args: ListArgs) -> Result<u8> {
    if !(1..=1000).contains(&args.limit) {
        return Err(Failure::Usage("--limit must be between 1 and 1000".into()));
    }
    let filter = args.filter.resolved()?;
    let mut query = DeadLetterQuery {
        actor: filter.actor,
        topic: filter.topic,
        key: filter.key,
        error: filter.error,
        since: filter.since,
        until: filter.until,
        limit: Some(if args.all { 1000 } else { args.limit }),
        after: args.after,
        total: Some(true),
    };
    let mut value = client.get_with("/v1/dead-letters", &query).await?;
    let mut page: DeadLetterPageView = parse(&value)?;
    if args.all {
        query.total = None;
        while let Some(next) = page.next.take() {
            query.after = Some(next);
            let more: DeadLetterPageView =
                parse(&client.get_with("/v1/dead-letters", &query).await?)?;
            page.items.extend(more.items);
            page.next = more.next;
        }
        value = serde_json::to_value(&page)
            .map_err(|e| Failure::Other(format!("cannot encode the listing: {e}")))?;
    }
    if conn.json {
        print_json(&value);
        return Ok(EXIT_OK);
    }
    if page.items.is_empty() {
        println!("no dead letters");
        return Ok(EXIT_OK);
    }
    let mut table = Table::new(&["ID", "DIED", "ATTEMPTS", "KEY", "REASON"]);
    for dead in &page.items {
        table.row(vec![
            dead.id.clone(),
            time(dead.dead_at_ms),
            dead.attempts.len().to_string(),
            clip(&bytes_arg(dead.event.key.as_ref()), 24),
            clip(&dead.reason, 70),
        ]);
    }
    table.print();
    let shown = page.items.len();
    match (page.total, &page.next) {
        (Some(total), Some(next)) => {
            println!("{shown} of {total} shown; next page: --after {next} (or --all)")
        }
        (Some(total), None) if total > shown => println!("{shown} of {total} shown"),
        _ => {}
    }
    Ok(EXIT_OK)
}

async fn show(client: &Client, conn: &Conn, args: ShowArgs) -> Result<u8> {
    let value = client
        .get(&format!("/v1/dead-letters/{}", segment(&args.id)))
        .await?;
    if conn.json {
        print_json(&value);
        return Ok(EXIT_OK);
    }
    let dead: DeadLetterView = parse(&value)?;
    print!("{}", describe(&dead));
    Ok(EXIT_OK)
}

/// A dead letter for people.
fn describe(dead: &DeadLetterView) -> String {
    let event = &dead.event;
    let mut fields = Table::new(&["", ""]);
    let mut field = |name: &str, value: String| fields.row(vec![name.to_string(), value]);
    field("id", dead.id.clone());
    field(
        "actor",
        format!("{} v{} (group {})", dead.actor, dead.version, dead.group),
    );
    field(
        "event",
        format!(
            "{} partition {} offset {}{}",
            event.topic,
            event.partition,
            event.offset,
            event
                .timestamp_ms
                .map(|ms| format!(", written {}", time(ms)))
                .unwrap_or_default()
        ),
    );
    field("key", bytes_arg(event.key.as_ref()));
    field("died", format!("{} ({})", time(dead.dead_at_ms), dead.kind));
    field("reason", dead.reason.clone());
    field(
        "attempts",
        format!(
            "{} since {}; re-driven {} before",
            dead.attempts.len(),
            time(dead.first_attempt_at_ms),
            plural(dead.redrives as usize, "time")
        ),
    );
    for header in &event.headers {
        let value = match &header.value {
            Some(value) => value.to_arg(),
            None => "(null)".to_string(),
        };
        field("header", format!("{}: {value}", header.name));
    }
    let mut out = fields
        .render()
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    out.push_str("\nattempts:\n");
    let mut attempts = Table::new(&["#", "STARTED", "MS", "VERSION", "OUTCOME", "ERROR"]);
    for attempt in &dead.attempts {
        attempts.row(vec![
            attempt.attempt.to_string(),
            time(attempt.started_at_ms),
            format!("{:.1}", attempt.duration_ms),
            format!("v{}", attempt.version),
            serde_json::to_value(attempt.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            clip(&attempt.error, 100),
        ]);
    }
    for line in attempts.render().lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str("\npayload:\n");
    let shown = match &event.payload {
        Some(view) => payload(view),
        None => "(tombstone: null value)".to_string(),
    };
    for line in shown.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

async fn redrive(client: &Client, conn: &Conn, args: RedriveArgs) -> Result<u8> {
    let body = RedriveBody {
        id: args.id,
        filter: args.filter.to_body()?,
        all: args.all,
        version: args.version,
        dry_run: args.dry_run,
        rate: args.rate,
    };
    let target = match args.version {
        Some(version) => format!("to v{version}"),
        None => "to the active version".to_string(),
    };
    let value = client.post_long("/v1/dead-letters/redrive", &body).await?;
    print_report(conn, &value, "re-drive", "re-driven", &target)
}

async fn discard(client: &Client, conn: &Conn, args: DiscardArgs) -> Result<u8> {
    let body = DiscardBody {
        id: args.id,
        filter: args.filter.to_body()?,
        all: args.all,
        dry_run: args.dry_run,
    };
    let value = client.post_long("/v1/dead-letters/discard", &body).await?;
    print_report(conn, &value, "discard", "discarded", "for good")
}

/// Prints a batch report; exit 1 when some of the batch failed.
fn print_report(conn: &Conn, value: &Value, verb: &str, done: &str, how: &str) -> Result<u8> {
    let report: BatchReport = parse(value)?;
    let code = if report.failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    };
    if conn.json {
        print_json(value);
        return Ok(code);
    }
    if report.matched == 0 {
        println!("no dead letter matches");
        return Ok(EXIT_OK);
    }
    if report.dry_run {
        println!(
            "would {verb} {} {how} (dry run: nothing changed):",
            plural(report.matched, "dead letter")
        );
        for id in report.ids.iter().take(20) {
            println!("  {id}");
        }
        if report.matched > 20 {
            println!("  ... and {} more", report.matched - 20);
        }
        return Ok(EXIT_OK);
    }
    let count = report.redriven.or(report.discarded).unwrap_or(0);
    println!(
        "{done} {count} of {} {how}",
        plural(report.matched, "dead letter")
    );
    for failure in &report.failed {
        eprintln!("  failed: {}: {}", failure.id, failure.error);
    }
    Ok(code)
}

/// An age (`30m`, `6h`, `2d`, `1w`, `45s`) as "now minus that" in ms;
/// anything else unchanged, for the host to read.
fn resolve_time(text: &str) -> Result<String> {
    let text = text.trim();
    let Some(unit) = text.chars().last().filter(|c| "smhdw".contains(*c)) else {
        return Ok(text.to_string());
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(text.to_string());
    }
    let amount: i64 = digits
        .parse()
        .map_err(|_| Failure::Usage(format!("time {text:?} is too large")))?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => 7 * 86_400,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let ago = amount
        .checked_mul(seconds * 1000)
        .ok_or_else(|| Failure::Usage(format!("time {text:?} is too large")))?;
    Ok((now - ago).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_become_times_and_other_forms_pass_through() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let two_hours_ago: i64 = resolve_time("2h")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        assert!((now - 7_200_000 - two_hours_ago).abs() < 5_000);
        assert_eq!(
            resolve_time("2026-05-01T00:00:00Z").ok().as_deref(),
            Some("2026-05-01T00:00:00Z")
        );
        assert_eq!(
            resolve_time("1714564800000").ok().as_deref(),
            Some("1714564800000")
        );
        assert!(resolve_time("99999999999999999w").is_err());
    }

    #[test]
    fn an_empty_filter_is_no_filter() {
        assert_eq!(FilterArgs::default().to_body().ok(), Some(None));
        let by_actor = FilterArgs {
            actor: Some("billing".into()),
            ..FilterArgs::default()
        };
        assert!(matches!(
            by_actor.to_body(),
            Ok(Some(FilterBody { actor: Some(_), .. }))
        ));
    }
}
