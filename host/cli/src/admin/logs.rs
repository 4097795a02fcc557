//! `wactor logs ACTOR [--follow] [--since 10m] [--level warn] [--json]`:
//! the actor's own log lines from the host's ring (`GET
//! /v1/actors/{name}/logs`), each with its event's coordinates, the
//! version and the call's outcome. `--follow` polls every 300 ms with
//! `after` = the last sequence seen.

use std::time::Duration;

use clap::Args;
use wactor_api::logs::{LogLineView, LogsQuery, LogsView};

use super::client::{parse, segment, Client};
use super::output::{printable, time};
use super::{Conn, Failure, Result, EXIT_OK};

/// How often `--follow` asks.
const POLL: Duration = Duration::from_millis(300);

/// Arguments of `wactor logs`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor logs payment-reversal
  wactor logs payment-reversal --since 10m --level warn
  wactor logs payment-reversal --follow --json

Each line: time (the call's start), level, version, topic/partition@offset,
key, attempt, the call's outcome, and the actor's text. The host keeps the
last 1000 lines per actor, in memory, for the calls it ran (not the whole
cluster's); older lines are dropped. With --json, one object per line.")]
pub struct LogsArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// The actor.
    actor: String,
    /// Keep printing new lines as they come.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only lines since then: a duration back from now (10m, 1h) or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Only lines at this level or above: trace, debug, info, warn, error.
    #[arg(long)]
    level: Option<String>,
    /// At most this many lines at first (1 to 1000).
    #[arg(long, default_value_t = 200)]
    limit: usize,
}

/// Runs `wactor logs`.
pub async fn run(args: LogsArgs) -> Result<u8> {
    if !(1..=1000).contains(&args.limit) {
        return Err(Failure::Usage("--limit must be between 1 and 1000".into()));
    }
    let client = Client::new(&args.conn)?;
    let path = format!("/v1/actors/{}/logs", segment(&args.actor));
    let mut query = LogsQuery {
        since: args.since.clone(),
        level: args.level.clone(),
        after: None,
        limit: Some(args.limit),
    };
    let page: LogsView = parse(&client.get_with(&path, &query).await?)?;
    print_lines(&page.lines, args.conn.json);
    if !args.follow {
        return Ok(EXIT_OK);
    }
    let mut after = page.last_sequence;
    query.limit = Some(1000);
    loop {
        tokio::time::sleep(POLL).await;
        query.after = Some(after);
        let page: LogsView = parse(&client.get_with(&path, &query).await?)?;
        if page.last_sequence < after {
            // The host restarted: its sequence began again.
            eprintln!("(the host's log lines started over)");
            after = 0;
            continue;
        }
        print_lines(&page.lines, args.conn.json);
        after = match page.lines.last() {
            Some(last) if page.lines.len() >= 1000 => last.sequence,
            _ => page.last_sequence,
        };
    }
}

fn print_lines(lines: &[LogLineView], json: bool) {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in lines {
        let text = if json {
            serde_json::to_string(line).unwrap_or_default()
        } else {
            format_line(line)
        };
        if writeln!(out, "{text}").is_err() {
            return;
        }
    }
    let _ = out.flush();
}

/// One line for people: the actor's text with control characters shown
/// as `?` (it is untrusted).
fn format_line(line: &LogLineView) -> String {
    let level = serde_json::to_value(line.level)
        .ok()
        .and_then(|v| v.as_str().map(str::to_uppercase))
        .unwrap_or_default();
    format!(
        "{} {:<5} v{} {}/{}@{} key={} attempt={} {} {}",
        time(line.time_ms),
        level,
        line.version,
        printable(&line.topic),
        line.partition,
        line.offset,
        printable(&line.key),
        line.attempt,
        line.outcome,
        printable(&line.message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use wactor_runtime::LogLevel;

    #[test]
    fn a_line_shows_its_coordinates_and_escapes_text() {
        let line = LogLineView {
            sequence: 1,
            time_ms: 0,
            level: LogLevel::Warn,
            version: 3,
            topic: "orders".into(),
            partition: 2,
            offset: 41,
            key: "k1".into(),
            attempt: 1,
            outcome: "retry".into(),
            message: "bad\x1b[31m".into(),
        };
        assert_eq!(
            format_line(&line),
            "1970-01-01 00:00:00Z WARN  v3 orders/2@41 key=k1 attempt=1 retry bad?[31m"
        );
    }
}
