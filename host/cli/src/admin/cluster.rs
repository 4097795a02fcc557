//! `wactor cluster`: the hosts of the cluster, whether each is alive, and
//! which partitions of which actors each owns, with their lag (from the
//! hosts' heartbeats; `GET /v1/cluster`).

use clap::Args;
use wactor_api::wire::Items;
use wactor_registry::cluster::HostStatus;

use super::client::{parse, Client};
use super::output::{print_json, time, Table};
use super::{Conn, Result, EXIT_OK};

/// Arguments of `wactor cluster`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor cluster
  wactor cluster --json | jq '.items[] | select(.alive | not) | .name'

One row per host and actor: PARTITIONS lists topic[partition]:lag for the
partitions that host owns. A host is alive while its last heartbeat (every
5 s) is younger than 20 s; a host silent for an hour is no longer listed.")]
pub struct ClusterArgs {
    #[command(flatten)]
    pub conn: Conn,
}

/// Runs `wactor cluster`.
pub async fn run(args: ClusterArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    let value = client.get("/v1/cluster").await?;
    if args.conn.json {
        print_json(&value);
        return Ok(EXIT_OK);
    }
    let hosts: Items<HostStatus> = parse(&value)?;
    if hosts.items.is_empty() {
        println!("no cluster view (this host does not share its registry: kafka.shared_registry = false)");
        return Ok(EXIT_OK);
    }
    let mut table = Table::new(&[
        "HOST",
        "API",
        "ALIVE",
        "LAST HEARTBEAT",
        "ACTOR",
        "VERSION",
        "PARTITIONS",
    ]);
    for host in hosts.items {
        let name = if host.this_host {
            format!("{} (this host)", host.beat.name)
        } else {
            host.beat.name.clone()
        };
        let alive = if host.alive { "yes" } else { "no" }.to_string();
        let beat_at = time(host.beat.heartbeat_at_ms);
        if host.beat.actors.is_empty() {
            table.row(vec![
                name,
                host.beat.api.clone(),
                alive,
                beat_at,
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
            continue;
        }
        for actor in &host.beat.actors {
            let partitions: Vec<String> = actor
                .partitions
                .iter()
                .map(|p| format!("{}[{}]:{}", p.topic, p.partition, p.lag))
                .collect();
            table.row(vec![
                name.clone(),
                host.beat.api.clone(),
                alive.clone(),
                beat_at.clone(),
                actor.actor.clone(),
                actor
                    .running_version
                    .map_or_else(|| "-".into(), |v| format!("v{v}")),
                if partitions.is_empty() {
                    "-".into()
                } else {
                    partitions.join(" ")
                },
            ]);
        }
    }
    table.print();
    Ok(EXIT_OK)
}
