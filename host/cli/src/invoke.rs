//! `wactor invoke`: run an actor on one event, locally, and show everything
//! it did. The actor developer's inner loop: no Kafka, no host.
//!
//! The actor is a component file, or an actor directory / `actor.toml`
//! (the default is the current directory): then the manifest gives the
//! component, the name, `[config]`, `allowed_hosts` and `[limits]`, and
//! `event.json` beside it is the default event. Command-line values add to
//! or override the manifest's. Compiled components are kept in the user's
//! artifact cache ([`default_cache_dir`]) so that only the first run of a
//! component compiles it (seconds for a Python or JavaScript component).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use wactor_runtime::{
    ActorSettings, CacheOutcome, CallResult, Event, InstanceMode, Invocation, Limits, Outcome,
    Runtime, RuntimeSettings, StateWrite,
};
use wactor_store::Store;

use crate::actor_dir::{self, ActorDir};
use wactor_kafka::call::apply_state_writes;
use wactor_kafka::state_changelog::ScopedStateReader;
use wactor_runtime::event_file::{bytes_for_humans, bytes_to_json};

/// Exit code of `invoke` when the actor asked for a retry.
pub const EXIT_RETRY: u8 = 10;
/// Exit code of `invoke` when the actor declared the event dead.
pub const EXIT_DEAD: u8 = 11;
/// Exit code of `invoke` when the call trapped.
pub const EXIT_TRAP: u8 = 12;

/// Arguments of `wactor invoke`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor invoke                      # the actor in this directory, on its event.json
  wactor invoke --payload '{\"amount_cents\": 990000}' --key user-7
  wactor invoke target/wasm32-wasip2/release/echo.wasm --event examples/echo/event.json
  wactor invoke payment_reversal.wasm --event event.json \\
      --config wallet_url=http://127.0.0.1:8080 --allow-host 127.0.0.1:8080 \\
      --state-dir ./.wactor-state

Exit status: 0 done, 10 retry, 11 dead, 12 trap, 1 the actor could not be loaded
or the event file is invalid, 2 the arguments are invalid.")]
pub struct InvokeArgs {
    /// The actor: a component (.wasm: a wasm32-wasip2 build, or a lean one), an actor
    /// directory or its actor.toml. Default: the current directory.
    pub component: Option<PathBuf>,
    /// The event, as JSON (see docs/actors.md for the format). Default:
    /// event.json beside the manifest.
    #[arg(long, short = 'e')]
    pub event: Option<PathBuf>,
    /// The event's payload, inline, sent as these bytes (UTF-8 text, e.g.
    /// JSON); replaces the event file's payload.
    #[arg(long, short = 'p')]
    pub payload: Option<String>,
    /// The event's key; replaces the event file's key.
    #[arg(long, short = 'k')]
    pub key: Option<String>,
    /// The event's topic; replaces the event file's topic (default without
    /// one: the manifest's first topic).
    #[arg(long)]
    pub topic: Option<String>,
    /// Keep the actor's state in this directory between invocations
    /// (default: a temporary store, empty each time). State is scoped by
    /// the event's topic and partition, as on a host: an event of another
    /// partition does not see it.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The actor's name (its state namespace); default: the manifest's
    /// name, else the component's file name.
    #[arg(long)]
    pub actor: Option<String>,
    /// A config value for the actor, `key=value` (over the manifest's);
    /// repeat as needed.
    #[arg(long = "config", short = 'c', value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
    /// A host the actor may call over HTTP (`host`, `host:port`,
    /// `*.domain`), besides the manifest's `allowed_hosts`; repeatable.
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// Call deadline in milliseconds (default: the manifest's
    /// `limits.call_timeout`, else 10000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: Option<u64>,
    /// Memory limit of the instance in MiB (default: the manifest's
    /// `limits.memory`, else 64).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub memory_mib: Option<u64>,
    /// Directory of compiled components (default: $WACTOR_CACHE_DIR, else
    /// $XDG_CACHE_HOME/wactor/artifacts, else ~/.cache/wactor/artifacts).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Compile the component without the artifact cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// The user's artifact cache: `$WACTOR_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/wactor/artifacts`, else `$HOME/.cache/wactor/artifacts`;
/// `None` when none of them is set. Artifacts are native code: the
/// directory must be the user's own (docs/actors.md).
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("WACTOR_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("wactor").join("artifacts"));
    }
    var("HOME").map(|home| {
        PathBuf::from(home)
            .join(".cache")
            .join("wactor")
            .join("artifacts")
    })
}

/// What `invoke` runs: the component, its settings and the event.
struct Plan {
    component: PathBuf,
    settings: ActorSettings,
    event: Event,
    event_source: String,
}

fn plan(args: &InvokeArgs) -> Result<Plan> {
    let target = args.component.clone().unwrap_or_else(|| PathBuf::from("."));
    let actor = if actor_dir::is_component_file(&target) {
        None
    } else {
        Some(ActorDir::open(&target)?)
    };
    let component = match &actor {
        Some(actor) => {
            let component = actor.existing_component()?;
            let built_at = std::fs::metadata(&component)
                .and_then(|m| m.modified())
                .ok();
            if built_at.is_some_and(|t| crate::build_actor::sources_newer_than(&actor.dir, t)) {
                eprintln!(
                    "warning: files in {} changed after {} was built: this runs the old \
                     build (`wactor build` first)",
                    actor.dir.display(),
                    component.display()
                );
            }
            component
        }
        None => target.clone(),
    };
    let name = match (&args.actor, &actor) {
        (Some(name), _) => name.clone(),
        (None, Some(actor)) => actor.manifest.name.clone(),
        (None, None) => component
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "actor".to_string()),
    };

    let mut settings = match &actor {
        Some(actor) => actor.manifest.actor_settings(1),
        None => {
            let mut settings = ActorSettings::new(&name);
            settings.limits = Limits {
                memory_bytes: 64 * 1024 * 1024,
                call_timeout: Duration::from_secs(10),
                ..Limits::default()
            };
            settings
        }
    };
    settings.name = name;
    let mut config: BTreeMap<String, String> = settings.config.as_ref().clone();
    config.extend(args.config.iter().cloned());
    settings.config = Arc::new(config);
    let mut hosts: Vec<String> = settings.allowed_hosts.to_vec();
    hosts.extend(args.allow_hosts.iter().cloned());
    settings.allowed_hosts = hosts.into();
    settings.instance_mode = InstanceMode::Fresh;
    if let Some(ms) = args.timeout_ms {
        settings.limits.call_timeout = Duration::from_millis(ms);
    }
    if let Some(mib) = args.memory_mib {
        settings.limits.memory_bytes = mib.saturating_mul(1024 * 1024);
    }

    let event_file = args
        .event
        .clone()
        .or_else(|| actor.as_ref().and_then(ActorDir::sample_event));
    let (mut event, mut event_source) = match &event_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the event file {}", path.display()))?;
            let event = wactor_runtime::event_file::parse(&text)
                .with_context(|| format!("in {}", path.display()))?;
            (event, path.display().to_string())
        }
        None if args.payload.is_some() => {
            let event =
                wactor_runtime::event_file::parse("{}").context("cannot make an empty event")?;
            (event, "--payload".to_string())
        }
        None => anyhow::bail!(
            "no event: give --event FILE or --payload TEXT{}",
            match &actor {
                Some(actor) => format!(
                    ", or write {}",
                    actor.dir.join(actor_dir::EVENT_FILE).display()
                ),
                None => String::new(),
            }
        ),
    };
    if event_file.is_none() {
        if let Some(first) = actor.as_ref().and_then(|a| a.manifest.topics.first()) {
            event.topic = first.clone();
        }
    }
    if let Some(topic) = &args.topic {
        event.topic = topic.clone();
    }
    if let Some(key) = &args.key {
        event.key = Some(key.clone().into_bytes());
    }
    if let Some(payload) = &args.payload {
        event.payload = Some(payload.clone().into_bytes());
        event_source.push_str(" with --payload");
    }
    Ok(Plan {
        component,
        settings,
        event,
        event_source,
    })
}

/// Runs `wactor invoke`; returns the process exit code.
pub async fn run(args: InvokeArgs) -> Result<u8> {
    let Plan {
        component,
        settings,
        event,
        event_source,
    } = plan(&args)?;
    tracing::debug!(event = %event_source, "invoking");
    let bytes = std::fs::read(&component)
        .with_context(|| format!("cannot read the component {}", component.display()))?;
    let name = settings.name.clone();
    let store = match &args.state_dir {
        Some(dir) => Store::open(dir)?,
        None => Store::temporary()?,
    };
    let state = store.actor_state(&name)?;

    let cache_dir = if args.no_cache {
        None
    } else {
        args.cache_dir.clone().or_else(default_cache_dir)
    };
    let runtime_settings = RuntimeSettings {
        cache_dir,
        ..RuntimeSettings::default()
    };
    let (runtime, cached) = match Runtime::new(runtime_settings.clone()) {
        Ok(runtime) => (runtime, runtime_settings.cache_dir.is_some()),
        // An unusable cache directory must not stop the inner loop.
        Err(err) if runtime_settings.cache_dir.is_some() => {
            eprintln!("warning: {err:#}; compiling without the artifact cache");
            let runtime =
                Runtime::new(RuntimeSettings::default()).context("cannot start the runtime")?;
            (runtime, false)
        }
        Err(err) => return Err(err).context("cannot start the runtime"),
    };
    let started = std::time::Instant::now();
    let actor = runtime
        .load(&bytes, settings)
        .with_context(|| format!("cannot load {}", component.display()))?;
    if actor.load_report().cache == CacheOutcome::Compiled && !args.json {
        eprintln!(
            "compiled {} in {:.1} s{}",
            component.display(),
            started.elapsed().as_secs_f64(),
            if cached {
                " (cached: the next run loads it at once)"
            } else {
                ""
            }
        );
    }
    let invocation = actor
        .invoke(
            &event,
            ScopedStateReader::shared(state.clone(), &event.topic, event.partition),
        )
        .await;
    apply_state_writes(&state, &event.topic, event.partition, &invocation.effects)
        .context("cannot save the actor's state")?;
    store.flush()?;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&invocation))?);
    } else {
        print_human(&invocation);
    }
    Ok(match &invocation.result {
        CallResult::Returned(Outcome::Done) => 0,
        CallResult::Returned(Outcome::Retry { .. }) => EXIT_RETRY,
        CallResult::Returned(Outcome::Dead { .. }) => EXIT_DEAD,
        CallResult::Trapped(_) => EXIT_TRAP,
    })
}

fn print_human(inv: &Invocation) {
    let took = format!("{:.2} ms", inv.duration.as_secs_f64() * 1000.0);
    match &inv.result {
        CallResult::Returned(Outcome::Done) => println!("outcome: done ({took})"),
        CallResult::Returned(Outcome::Retry { reason, delay }) => match delay {
            Some(d) => println!(
                "outcome: retry after {} ms: {reason} ({took})",
                d.as_millis()
            ),
            None => println!("outcome: retry: {reason} ({took})"),
        },
        CallResult::Returned(Outcome::Dead { reason }) => {
            println!("outcome: dead: {reason} ({took})")
        }
        CallResult::Trapped(trap) => {
            println!("outcome: trap ({}): {} ({took})", trap.kind, trap.message)
        }
    }
    if !inv.effects.emits.is_empty() {
        println!("emitted {} record(s):", inv.effects.emits.len());
        for record in &inv.effects.emits {
            let key = match &record.key {
                Some(k) => bytes_for_humans(k),
                None => "(source key)".into(),
            };
            let value = match &record.payload {
                Some(payload) => bytes_for_humans(payload),
                None => "(tombstone: null value)".into(),
            };
            println!("  -> {} key={} {}", record.topic, key, value);
        }
    }
    if !inv.effects.state_writes.is_empty() {
        println!("state changes:");
        for (key, write) in &inv.effects.state_writes {
            match write {
                StateWrite::Set(value) => println!("  set {key} = {}", bytes_for_humans(value)),
                StateWrite::Delete => println!("  delete {key}"),
            }
        }
    }
    if !inv.result.is_done()
        && matches!(inv.result, CallResult::Returned(_) | CallResult::Trapped(_))
    {
        println!("(effects of a call that is not `done` are dropped)");
    }
    if !inv.logs.is_empty() {
        println!("logs:");
        for line in &inv.logs {
            println!("  {:<5} {}", line.level, line.message);
        }
    }
}

fn to_json(inv: &Invocation) -> serde_json::Value {
    let emits: Vec<_> = inv
        .effects
        .emits
        .iter()
        .map(|r| {
            serde_json::json!({
                "topic": r.topic,
                "key": r.key.as_deref().map(bytes_to_json),
                "payload": r.payload.as_deref().map(bytes_to_json),
                "headers": r.headers.iter().map(|(k, v)| serde_json::json!([k, v.as_deref().map(bytes_to_json)])).collect::<Vec<_>>(),
            })
        })
        .collect();
    let state: serde_json::Map<String, serde_json::Value> = inv
        .effects
        .state_writes
        .iter()
        .map(|(k, w)| {
            let value = match w {
                StateWrite::Set(v) => bytes_to_json(v),
                StateWrite::Delete => serde_json::Value::Null,
            };
            (k.clone(), value)
        })
        .collect();
    serde_json::json!({
        "result": inv.result,
        "emits": emits,
        "state_writes": state,
        "logs": inv.logs,
        "duration_ms": inv.duration.as_secs_f64() * 1000.0,
    })
}
