//! `wactor actors`, `versions`, `activate`, `rollback`, `pause`, `resume`
//! and `remove`: the lifecycle of actors already on a host.

use clap::Args;
use serde_json::Value;
use wactor_api::wire::{
    ActivateBody, ActivationView, ActorDetail, ActorView, Items, RollbackBody, VersionView,
};

use super::client::{parse, segment, Client};
use super::output::{clip, format_size, print_json, time, Table};
use super::{Conn, Result, EXIT_OK};

/// Arguments of `wactor actors`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor actors
  wactor actors --json | jq '.items[] | select(.state != \"running\") | .name'
  wactor actors --api http://10.0.0.5:7700 --token \"$WACTOR_TOKEN\"

LAG is the records behind the end of the actor's partitions on this host;
DEAD its dead letters; RETRYING the events held for a retry (or behind one).")]
pub struct ActorsArgs {
    #[command(flatten)]
    pub conn: Conn,
}

/// Arguments of `wactor versions`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor versions payment-reversal
  wactor versions payment-reversal --json | jq '.items[] | select(.active) | .version'

The active version is marked with *.")]
pub struct VersionsArgs {
    /// The actor.
    pub actor: String,
    #[command(flatten)]
    pub conn: Conn,
}

/// Arguments of `wactor activate`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor activate payment-reversal 7

The next event runs version 7; calls in flight finish on the old one.
Exit codes: 3 when the actor or the version does not exist.")]
pub struct ActivateArgs {
    /// The actor.
    pub actor: String,
    /// The version to activate.
    pub version: u64,
    #[command(flatten)]
    pub conn: Conn,
}

/// Arguments of `wactor rollback`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor rollback payment-reversal          # back to the version active before this one
  wactor rollback payment-reversal --to 3   # to version 3

The compiled artifact is cached, so a rollback takes effect at once.
Exit codes: 3 unknown actor or version, 4 nothing to roll back to.")]
pub struct RollbackArgs {
    /// The actor.
    pub actor: String,
    /// The version to go back to; default: the previously active one.
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,
    #[command(flatten)]
    pub conn: Conn,
}

/// Arguments of `pause`, `resume` and `remove`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor pause payment-reversal    # events wait in Kafka, retries hold
  wactor resume payment-reversal
  wactor remove payment-reversal   # stops it; versions, dead letters and group offsets stay")]
pub struct NameArgs {
    /// The actor.
    pub actor: String,
    #[command(flatten)]
    pub conn: Conn,
}

/// `wactor actors`.
pub async fn list(args: ActorsArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    let value = client.get("/v1/actors").await?;
    if args.conn.json {
        print_json(&value);
        return Ok(EXIT_OK);
    }
    let actors: Items<ActorView> = parse(&value)?;
    if actors.items.is_empty() {
        println!("no actors (deploy one with `wactor deploy actor.toml`)");
        return Ok(EXIT_OK);
    }
    let mut table = Table::new(&[
        "NAME", "VERSION", "STATE", "LAG", "DEAD", "EVICTED", "RETRYING", "TOPICS",
    ]);
    let mut failed = Vec::new();
    for actor in actors.items {
        for p in actor.partitions.iter().filter(|p| p.state == "failed") {
            failed.push(format!(
                "{} {}[{}]: partition worker failed ({}), restarts so far: {}",
                actor.name,
                p.topic,
                p.partition,
                p.error.as_deref().unwrap_or("no reason given"),
                p.restarts
            ));
        }
        table.row(vec![
            actor.name,
            actor
                .active_version
                .map_or_else(|| "-".into(), |v| format!("v{v}")),
            actor.state,
            if actor.lag < 0 {
                "?".into()
            } else {
                actor.lag.to_string()
            },
            actor.dead_letters.to_string(),
            actor.dead_letters_evicted.to_string(),
            actor.held.to_string(),
            actor.topics.join(","),
        ]);
    }
    table.print();
    for line in failed {
        eprintln!("warning: {line}");
    }
    Ok(EXIT_OK)
}

/// `wactor versions ACTOR`.
pub async fn versions(args: VersionsArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    let value = client
        .get(&format!("/v1/actors/{}/versions", segment(&args.actor)))
        .await?;
    if args.conn.json {
        print_json(&value);
        return Ok(EXIT_OK);
    }
    let versions: Items<VersionView> = parse(&value)?;
    let mut table = Table::new(&["", "VERSION", "UPLOADED", "BY", "SIZE", "SHA256", "NOTES"]);
    for version in versions.items {
        let record = version.record;
        table.row(vec![
            if version.active { "*" } else { "" }.into(),
            format!("v{}", record.version),
            time(record.uploaded_at_ms),
            record.uploaded_by,
            format_size(record.size),
            record
                .sha256
                .get(..12)
                .unwrap_or(&record.sha256)
                .to_string(),
            clip(&record.notes, 60),
        ]);
    }
    table.print();
    Ok(EXIT_OK)
}

/// `wactor activate ACTOR N`.
pub async fn activate(args: ActivateArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    let value = client
        .post(
            &format!("/v1/actors/{}/activate", segment(&args.actor)),
            Some(&ActivateBody {
                version: args.version,
            }),
        )
        .await?;
    print_activation(&args.conn, &value, "active")
}

/// `wactor rollback ACTOR [--to N]`.
pub async fn rollback(args: RollbackArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    let value = client
        .post(
            &format!("/v1/actors/{}/rollback", segment(&args.actor)),
            Some(&RollbackBody { to: args.to }),
        )
        .await?;
    print_activation(&args.conn, &value, "rolled back")
}

fn print_activation(conn: &Conn, value: &Value, verb: &str) -> Result<u8> {
    if conn.json {
        print_json(value);
        return Ok(EXIT_OK);
    }
    let activation: ActivationView = parse(value)?;
    let was = activation
        .previous
        .map_or_else(|| "none before".into(), |v| format!("was v{v}"));
    let what = if verb == "active" {
        format!("v{} is active", activation.version)
    } else {
        format!("rolled back to v{}", activation.version)
    };
    println!("{}: {what} ({was})", activation.actor);
    Ok(EXIT_OK)
}

/// `wactor pause ACTOR`.
pub async fn pause(args: NameArgs) -> Result<u8> {
    let detail = lifecycle(&args, "pause").await?;
    if let Some(detail) = detail {
        println!(
            "{} paused: its events wait in Kafka and its retries hold until `wactor resume {}`",
            detail.actor.name, detail.actor.name
        );
    }
    Ok(EXIT_OK)
}

/// `wactor resume ACTOR`.
pub async fn resume(args: NameArgs) -> Result<u8> {
    let detail = lifecycle(&args, "resume").await?;
    if let Some(detail) = detail {
        let version = detail
            .actor
            .active_version
            .map_or_else(|| "no active version".into(), |v| format!("v{v}"));
        println!(
            "{} resumed ({version}, {})",
            detail.actor.name, detail.actor.state
        );
        if let Some(failure) = detail.failure {
            eprintln!("warning: its consumer is not running: {failure}");
        }
    }
    Ok(EXIT_OK)
}

/// POSTs `/v1/actors/{name}/{verb}`; the detail to print, or `None`
/// after printing JSON.
async fn lifecycle(args: &NameArgs, verb: &str) -> Result<Option<ActorDetail>> {
    let client = Client::new(&args.conn)?;
    let value = client
        .post(
            &format!("/v1/actors/{}/{verb}", segment(&args.actor)),
            None::<&()>,
        )
        .await?;
    if args.conn.json {
        print_json(&value);
        return Ok(None);
    }
    parse(&value).map(Some)
}

/// `wactor remove ACTOR`.
pub async fn remove(args: NameArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    let value = client
        .delete(&format!("/v1/actors/{}", segment(&args.actor)))
        .await?;
    if args.conn.json {
        print_json(&value);
    } else {
        println!(
            "removed {}; its versions, dead letters and consumer-group offsets are kept, \
             so a later deploy of the same name continues where it left off",
            args.actor
        );
    }
    Ok(EXIT_OK)
}
