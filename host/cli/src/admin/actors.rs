//! `wactor actors`, `versions`, `activate`, `rollback`, `pause`, `resume`
//! and `remove`: the lifecycle of actors already on a host.

use clap::Args;
use serde_json::Value;
use wactor_api::wire::{
    ActivateBody, ActivationView, ActorDetail, ActorView, Items, RollbackBody, VersionView,
};

use wactor_registry::cluster::HostStatus;

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

HANDLED is the events the actor handled to done (re-drives and replays
included), summed over the live hosts of the cluster when the registry is
shared (from their heartbeats), else on this host only; each host counts
from its own start. LAG is the records behind the end of the actor's
partitions (on every live host of the cluster when the registry is shared,
else on this host); DEAD its
dead letters; RETRYING the events held for a retry (or behind one) in this
host's store (`wactor retries list` asks every host). In a cluster, HOSTS
shows which live host owns which partitions, from their heartbeats
(`wactor cluster` shows the lag per partition).")]
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
    // The cluster view, when this host has one (a shared registry): who
    // owns which partitions, and the lag there.
    let hosts: Vec<HostStatus> = match client.get("/v1/cluster").await {
        Ok(value) => parse::<Items<HostStatus>>(&value)
            .map(|h| h.items)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let clustered = !hosts.is_empty();
    let mut columns = vec![
        "NAME", "VERSION", "STATE", "HANDLED", "LAG", "DEAD", "EVICTED", "RETRYING", "TOPICS",
    ];
    if clustered {
        columns.push("HOSTS");
    }
    let mut table = Table::new(&columns);
    let mut failed = Vec::new();
    for actor in actors.items {
        let owners = owners_of(&hosts, &actor.name, &actor.topics);
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
        let lag = if clustered { owners.lag } else { actor.lag };
        let mut row = vec![
            actor.name,
            actor
                .active_version
                .map_or_else(|| "-".into(), |v| format!("v{v}")),
            actor.state,
            actor.handled.to_string(),
            if lag < 0 { "?".into() } else { lag.to_string() },
            actor.dead_letters.to_string(),
            actor.dead_letters_evicted.to_string(),
            actor.held.to_string(),
            actor.topics.join(","),
        ];
        if clustered {
            row.push(clip(&owners.text, 400));
        }
        table.row(row);
    }
    table.print();
    for line in failed {
        eprintln!("warning: {line}");
    }
    Ok(EXIT_OK)
}

/// Who owns an actor's partitions across the cluster.
struct Owners {
    /// `host[topic:p,p] host[...]`, live hosts only; `-` when none.
    text: String,
    /// Summed lag of those partitions; -1 when one is unknown.
    lag: i64,
}

/// The owners of `actor`'s partitions of `topics` (its source topics; not
/// its re-drive topic) among the live hosts of `hosts`.
fn owners_of(hosts: &[HostStatus], actor: &str, topics: &[String]) -> Owners {
    let mut parts = Vec::new();
    let mut lag = 0i64;
    for host in hosts.iter().filter(|h| h.alive) {
        for beat in host.beat.actors.iter().filter(|a| a.actor == actor) {
            let mut by_topic: std::collections::BTreeMap<&str, Vec<String>> =
                std::collections::BTreeMap::new();
            for p in beat.partitions.iter().filter(|p| topics.contains(&p.topic)) {
                by_topic
                    .entry(p.topic.as_str())
                    .or_default()
                    .push(p.partition.to_string());
                lag = if p.lag < 0 || lag < 0 {
                    -1
                } else {
                    lag.saturating_add(p.lag)
                };
            }
            if by_topic.is_empty() {
                continue;
            }
            let owned: Vec<String> = by_topic
                .into_iter()
                .map(|(topic, ps)| format!("{topic}:{}", ps.join(",")))
                .collect();
            parts.push(format!("{}[{}]", host.beat.name, owned.join(" ")));
        }
    }
    Owners {
        text: if parts.is_empty() {
            "-".into()
        } else {
            parts.join(" ")
        },
        lag,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use wactor_registry::cluster::{ActorBeat, HostBeat, PartitionBeat};

    fn host(name: &str, alive: bool, actor: &str, parts: &[(&str, i32, i64)]) -> HostStatus {
        HostStatus {
            beat: HostBeat {
                id: name.into(),
                name: name.into(),
                api: format!("{name}:7700"),
                version: "0".into(),
                started_at_ms: 0,
                heartbeat_at_ms: 0,
                actors: vec![ActorBeat {
                    actor: actor.into(),
                    running_version: Some(1),
                    state: "running".into(),
                    handled: 0,
                    partitions: parts
                        .iter()
                        .map(|(topic, partition, lag)| PartitionBeat {
                            topic: (*topic).into(),
                            partition: *partition,
                            lag: *lag,
                        })
                        .collect(),
                }],
            },
            alive,
            this_host: false,
        }
    }

    #[test]
    fn owners_list_live_hosts_partitions_and_sum_their_lag() {
        let hosts = [
            host("a", true, "x", &[("t", 0, 3), ("t", 2, 4), ("u", 1, 0)]),
            host("b", true, "x", &[("t", 1, 5)]),
            host("c", false, "x", &[("t", 9, 100)]),
            host("d", true, "y", &[("t", 3, 7)]),
        ];
        let topics = ["t".to_string(), "u".to_string()];
        let owners = owners_of(&hosts, "x", &topics);
        assert_eq!(owners.text, "a[t:0,2 u:1] b[t:1]");
        assert_eq!(owners.lag, 12);
        let unknown = owners_of(
            &[host("a", true, "x", &[("t", 0, -1), ("t", 1, 5)])],
            "x",
            &topics,
        );
        assert_eq!(unknown.lag, -1);
        let none = owners_of(&hosts, "z", &topics);
        let only_t = owners_of(&hosts, "x", &topics[..1]);
        assert_eq!(only_t.text, "a[t:0,2] b[t:1]");
        assert_eq!((none.text.as_str(), none.lag), ("-", 0));
    }
}
