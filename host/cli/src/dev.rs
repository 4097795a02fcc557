//! `wactor dev`: everything on one machine with no setup. An in-process
//! Kafka-protocol broker (librdkafka's mock cluster), the example actors
//! built and deployed, stand-in services for the examples (a wallet for
//! payment-reversal, a payment gateway for daily-settlement),
//! the admin API on localhost, and one sample event per actor so
//! there is something to see at once.
//!
//! The broker keeps its data in memory, so each run starts from empty
//! topics; the dev data directory is wiped at start to match (the compiled
//! artifact cache is kept, so a second start does not recompile).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use wactor_kafka::{DevCluster, KafkaSettings, OutRecord, Producer};
use wactor_manifest::ActorManifest;

use crate::config::{ApiConfig, HostConfig, RuntimeConfig};
use crate::host::{self, Host};

/// `--actors` by default: the repository's examples.
const DEFAULT_ACTORS: &str = "examples";

/// `fetch.wait.max.ms` of `wactor dev`'s consumers.
const DEV_FETCH_WAIT_MS: &str = "20";

/// The file that marks a directory as `wactor dev`'s data directory.
const DATA_DIR_MARKER: &str = ".wactor-dev-data";

/// Empties `wactor dev`'s data directory: every run starts from nothing.
/// Only a directory that `wactor dev` made (it holds [`DATA_DIR_MARKER`])
/// or an empty one is cleared; anything else (`--data-dir .` in a project,
/// a symbolic link to elsewhere) is refused, with nothing removed.
fn clear_data_dir(dir: &Path) -> Result<()> {
    // A relative data directory (the default, `.wactor/dev`) stays inside
    // the directory it was named from: no symbolic link on the way.
    if dir.is_relative() {
        let mut walked = PathBuf::new();
        for part in dir.components() {
            walked.push(part);
            if std::fs::symlink_metadata(&walked).is_ok_and(|m| m.file_type().is_symlink()) {
                bail!(
                    "--data-dir {}: {} is a symbolic link; wactor dev clears its data \
                     directory, so it must be a real directory",
                    dir.display(),
                    walked.display()
                );
            }
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        if !meta.is_dir() {
            bail!(
                "--data-dir {} is not a directory (a symbolic link or a file): \
                 choose a new or empty directory",
                dir.display()
            );
        }
        let entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot read {}", dir.display()))?;
        // Earlier versions wrote no marker: a directory holding only what
        // they wrote (`store`, `artifacts`) is theirs.
        let ours = dir.join(DATA_DIR_MARKER).is_file()
            || entries.iter().all(|e| {
                let name = e.file_name();
                name == "store" || name == "artifacts" || name == DATA_DIR_MARKER
            });
        if !ours {
            bail!(
                "--data-dir {} holds files that wactor dev did not write: it clears its data \
                 directory at every start, so choose a new or empty directory",
                dir.display()
            );
        }
        for entry in entries {
            let path = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot read {}", path.display()))?;
            let removed = if kind.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.with_context(|| format!("cannot clear {}", path.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let marker = dir.join(DATA_DIR_MARKER);
    std::fs::write(&marker, "wactor dev clears this directory at every start\n")
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(())
}

/// Arguments of `wactor dev`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor dev                          # the examples/ actors, API on 127.0.0.1:7700
  wactor dev --actors .               # the actor of this directory (./actor.toml)
  wactor dev --actors ./my-actors     # my-actors/*/actor.toml and my-actors/*.actor.toml

Then, in another terminal:
  wactor produce --brokers <the printed address> --topic orders --key k1 '{\"order_id\":\"k1\"}'
  wactor actors")]
pub struct DevArgs {
    /// Where the actor manifests are: DIR/actor.toml if it exists, else
    /// DIR/*/actor.toml and DIR/*.actor.toml (never Cargo.toml or other
    /// tools' files; docs/manifest.md).
    #[arg(long, default_value = DEFAULT_ACTORS)]
    pub actors: PathBuf,
    /// Admin API address.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub api: SocketAddr,
    /// Data directory (wiped at start; artifacts are cached beside it).
    #[arg(long, default_value = ".wactor/dev")]
    pub data_dir: PathBuf,
    /// Partitions of each topic the actors read. The dev broker keeps the
    /// newest 5 MB (at most 100,000 records) of each partition: more
    /// partitions keep a larger unread burst.
    #[arg(long, default_value_t = 16)]
    pub partitions: i32,
    /// Do not build missing example components with cargo.
    #[arg(long)]
    pub no_build: bool,
    /// Do not send the sample events (`event.json` next to each manifest).
    #[arg(long)]
    pub no_samples: bool,
    /// Port of the stand-in wallet service (payment-reversal example);
    /// 0 disables it.
    #[arg(long, default_value_t = 7781)]
    pub wallet_port: u16,
    /// Port of the stand-in payment gateway (daily-settlement example);
    /// 0 disables it.
    #[arg(long, default_value_t = 7782)]
    pub gateway_port: u16,
    /// The stand-in gateway answers the first N requests of each date with
    /// 503, to watch retries.
    #[arg(long, default_value_t = 0)]
    pub gateway_fail_first: u32,
}

/// Runs `wactor dev` until Ctrl-C.
pub async fn run(args: DevArgs, handle_spans: wactor_kafka::HandleSpans) -> Result<u8> {
    let manifests = if args.actors.is_dir() {
        host::manifests_in(&args.actors)?
    } else {
        bail!(
            "no actors directory at {} (run from the wactor checkout, or pass --actors DIR)",
            args.actors.display()
        );
    };
    if manifests.is_empty() {
        bail!(
            "no actor manifests in {}: --actors DIR reads {}",
            args.actors.display(),
            wactor_manifest::discover::RULE
        );
    }
    let mut parsed = Vec::new();
    for path in &manifests {
        let manifest = ActorManifest::load(path)?;
        if !args.no_build {
            if let Err(err) = ensure_built(path, &manifest) {
                // The Python and JavaScript examples need their tool
                // chains; without them `wactor dev` still runs the rest.
                if args.actors == Path::new(DEFAULT_ACTORS) && !manifest.language.is_rust() {
                    println!(
                        "skipping {} ({}): {err:#}",
                        manifest.name, manifest.language
                    );
                    continue;
                }
                return Err(err);
            }
        }
        parsed.push((path.clone(), manifest));
    }

    let cluster = DevCluster::start(1).context("cannot start the in-process Kafka broker")?;
    let brokers = cluster.bootstrap_servers();
    // Several actors may read one topic (echo in three languages): create
    // each once.
    let topics: std::collections::BTreeSet<&String> =
        parsed.iter().flat_map(|(_, m)| &m.topics).collect();
    for topic in topics {
        cluster.create_topic(topic, args.partitions)?;
    }

    let wallet = if args.wallet_port == 0 {
        None
    } else {
        match crate::fake_wallet::start(args.wallet_port).await {
            Ok(wallet) => Some(wallet),
            Err(err) => {
                tracing::warn!(error = %err, "the stand-in wallet did not start; payment-reversal events will retry");
                None
            }
        }
    };

    let gateway = if args.gateway_port == 0 {
        None
    } else {
        match crate::fake_gateway::start(args.gateway_port, args.gateway_fail_first).await {
            Ok(gateway) => Some(gateway),
            Err(err) => {
                tracing::warn!(error = %err, "the stand-in gateway did not start; daily-settlement events will retry");
                None
            }
        }
    };

    clear_data_dir(&args.data_dir)?;
    let mut kafka = KafkaSettings::new(&brokers);
    kafka.handle_spans = handle_spans;
    kafka.commit_interval = Duration::from_millis(500);
    kafka.drain_timeout = Duration::from_secs(5);
    kafka.changelog_partitions = args.partitions;
    // The mock broker has no admin API; it creates topics on first use.
    kafka.manage_topics = false;
    // One host: its registry stays in its own store. The mock broker keeps
    // only the newest 5 MB of a partition, less than one Python or
    // JavaScript component (13 to 19 MB) in the registry log's chunks.
    kafka.shared_registry = false;
    // The mock broker has no DescribeConfigs: each topic check would wait
    // for its timeout (2 s, twice per actor) before saying nothing.
    kafka.describe_configs = false;
    // The mock broker answers a fetch only when fetch.wait.max.ms runs out
    // (librdkafka's default 500 ms): each event would wait up to half a
    // second to reach its actor.
    kafka
        .consumer
        .insert("fetch.wait.max.ms".into(), DEV_FETCH_WAIT_MS.into());
    let config = HostConfig {
        data_dir: args.data_dir.clone(),
        actors_dir: None,
        kafka: kafka.clone(),
        api: ApiConfig {
            listen: args.api,
            ..ApiConfig::default()
        },
        runtime: RuntimeConfig {
            // The user's own cache, shared with `wactor invoke`, never one
            // inside the project: an artifact is native code, and whoever
            // wrote the project could have written one.
            cache_dir: crate::invoke::default_cache_dir(),
            ..RuntimeConfig::default()
        },
        // Traces follow OTEL_EXPORTER_OTLP_ENDPOINT only (set up in main).
        telemetry: Default::default(),
    };
    config.validate()?;
    // Charts that move within seconds: dev is interactive.
    let host = Host::start_with_series_step(&config, wactor_api::series::DEV_STEP).await?;
    let mut lines = Vec::new();
    for (path, manifest) in &parsed {
        match host::deploy_file(&host.registry, path, false).await {
            Ok(_) => lines.push(format!(
                "    {:<18} reads {}",
                manifest.name,
                manifest.topics.join(", ")
            )),
            Err(err) => lines.push(format!("    {:<18} NOT DEPLOYED: {err:#}", manifest.name)),
        }
    }

    println!();
    println!("wactor dev is running. Ctrl-C stops it.");
    println!();
    println!("  Kafka broker (in-process): {brokers}");
    println!(
        "    keeps the newest {} MB or {} records of each of a topic's {} partitions; older \
         unread records are dropped, and wactor logs and counts any it had to skip",
        wactor_kafka::dev_cluster::PARTITION_KEEPS_BYTES / 1_000_000,
        wactor_kafka::dev_cluster::PARTITION_KEEPS_RECORDS,
        args.partitions
    );
    println!(
        "  admin API:                 http://{}  (metrics at /metrics)",
        host.api_addr
    );
    if let Some(wallet) = &wallet {
        println!("  stand-in wallet service:   http://{}", wallet.addr);
    }
    if let Some(gateway) = &gateway {
        println!("  stand-in payment gateway:  http://{}", gateway.addr);
    }
    println!("  actors:");
    for line in &lines {
        println!("{line}");
    }
    println!();
    if let Some((first_path, first)) = parsed.first() {
        let topic = first.topics.first().cloned().unwrap_or_default();
        let (key, payload) = sample_for_banner(first_path);
        println!("From another terminal (every wactor command reads these):");
        println!("  export WACTOR_BROKERS={brokers}");
        println!("  export WACTOR_API=http://{}", host.api_addr);
        println!("  wactor produce --topic {topic} --key {key} '{payload}'");
        println!("  wactor consume {topic} --from-beginning");
        println!("  wactor actors");
        println!("  wactor dlq list");
        println!("(from a wactor checkout without `cargo install --path host/cli`: `cargo run -q -p wactor -- ...`)");
        println!();
    }

    if !args.no_samples {
        send_samples(&kafka, &parsed).await;
    }

    host::shutdown_signal().await;
    println!("stopping...");
    host.stop().await?;
    drop(wallet);
    drop(gateway);
    drop(cluster);
    Ok(0)
}

/// Builds the component of a manifest with `wactor build`'s tool chain
/// (Rust, Python or JavaScript, from its `language`) when the component
/// file is missing or older than a file of the actor's directory (so that
/// `wactor dev --actors .` after an edit runs the edit).
fn ensure_built(manifest_path: &Path, manifest: &ActorManifest) -> Result<()> {
    let dir = manifest_path.parent().unwrap_or(Path::new("."));
    let Some(component) = manifest.component_path(dir) else {
        bail!("{} does not name a `component`", manifest_path.display());
    };
    let built_at = std::fs::metadata(&component)
        .and_then(|m| m.modified())
        .ok();
    let why = match built_at {
        None => "not built yet",
        Some(built_at) if crate::build_actor::sources_newer_than(dir, built_at) => {
            "its sources changed since it was built"
        }
        Some(_) => return Ok(()),
    };
    println!(
        "building {} ({}): {why}...",
        manifest.name, manifest.language
    );
    let actor = crate::actor_dir::ActorDir::open(manifest_path)?;
    crate::build_actor::build(&actor, None)
        .with_context(|| format!("cannot build {}", manifest.name))?;
    Ok(())
}

/// The key and payload of the actor's sample event (`event.json`) as shell
/// words for the banner's `wactor produce` line, when they are short
/// single-quote-safe text; else a generic example.
fn sample_for_banner(manifest_path: &Path) -> (String, String) {
    let fallback = ("k1".to_string(), r#"{"hello":"world"}"#.to_string());
    let Ok(text) = std::fs::read_to_string(manifest_path.with_file_name("event.json")) else {
        return fallback;
    };
    let Ok(event) = wactor_runtime::event_file::parse(&text) else {
        return fallback;
    };
    let word = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .filter(|t| !t.is_empty() && t.len() <= 200)
            .filter(|t| !t.contains(['\'', '\n', '\r']))
            .map(str::to_string)
    };
    let key = event.key.as_deref().and_then(word);
    let payload = event.payload.as_deref().and_then(word);
    match (key, payload) {
        (Some(key), Some(payload)) if !key.contains(char::is_whitespace) => (key, payload),
        _ => fallback,
    }
}

/// Sends each actor's sample event (`event.json` beside its manifest), so
/// the first run shows events being handled.
async fn send_samples(kafka: &KafkaSettings, parsed: &[(PathBuf, ActorManifest)]) {
    let Ok(producer) = Producer::new(kafka) else {
        return;
    };
    // Actors that share a topic and a sample (echo in three languages) send
    // it once: each of them sees it.
    let mut sent: std::collections::BTreeSet<(String, String)> = Default::default();
    for (path, manifest) in parsed {
        let sample = path.with_file_name("event.json");
        let Ok(text) = std::fs::read_to_string(&sample) else {
            continue;
        };
        let event = match wactor_runtime::event_file::parse(&text) {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(file = %sample.display(), error = %err, "sample event not sent");
                continue;
            }
        };
        let Some(topic) = manifest.topics.first() else {
            continue;
        };
        if !sent.insert((topic.clone(), text.trim().to_string())) {
            println!(
                "the sample event of {} is already on {topic}",
                manifest.name
            );
            continue;
        }
        let record = OutRecord {
            topic: topic.clone(),
            partition: None,
            key: event.key.clone(),
            payload: event.payload.clone(),
            headers: event.headers.clone(),
        };
        match producer.send(&record).await {
            Ok(_) => println!("sent the sample event of {} to {topic}", manifest.name),
            Err(err) => tracing::warn!(error = %err, "sample event not sent"),
        }
    }
}
