//! `wactor invoke`: run an actor on one event, locally, and show everything
//! it did. The actor developer's inner loop: no Kafka, no host.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use wactor_runtime::{
    ActorSettings, CallResult, InstanceMode, Invocation, Limits, Outcome, Runtime, RuntimeSettings,
    StateWrite,
};
use wactor_store::Store;

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
  wactor invoke target/wasm32-wasip2/release/echo.wasm --event examples/echo/event.json
  wactor invoke payment_reversal.wasm --event event.json \\
      --config wallet_url=http://127.0.0.1:8080 --allow-host 127.0.0.1:8080 \\
      --state-dir ./.wactor-state

Exit status: 0 done, 10 retry, 11 dead, 12 trap, 1 the actor could not be loaded
or the event file is invalid.")]
pub struct InvokeArgs {
    /// The actor component (.wasm built for wasm32-wasip2).
    pub component: PathBuf,
    /// The event, as JSON (see docs/actors.md for the format).
    #[arg(long, short = 'e')]
    pub event: PathBuf,
    /// Keep the actor's state in this directory between invocations
    /// (default: a temporary store, empty each time). State is scoped by
    /// the event's topic and partition, as on a host: an event of another
    /// partition does not see it.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The actor's name (its state namespace); default: the file name.
    #[arg(long)]
    pub actor: Option<String>,
    /// A config value for the actor, `key=value`; repeat as needed.
    #[arg(long = "config", short = 'c', value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
    /// A host the actor may call over HTTP (`host`, `host:port`, `*.domain`); repeatable.
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// Call deadline in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Memory limit of the instance in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_mib: u64,
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

/// Runs `wactor invoke`; returns the process exit code.
pub async fn run(args: InvokeArgs) -> Result<u8> {
    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("cannot read the component {}", args.component.display()))?;
    let event_text = std::fs::read_to_string(&args.event)
        .with_context(|| format!("cannot read the event file {}", args.event.display()))?;
    let event = wactor_runtime::event_file::parse(&event_text)
        .with_context(|| format!("in {}", args.event.display()))?;

    let name = match &args.actor {
        Some(name) => name.clone(),
        None => args
            .component
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "actor".to_string()),
    };
    let store = match &args.state_dir {
        Some(dir) => Store::open(dir)?,
        None => Store::temporary()?,
    };
    let state = store.actor_state(&name)?;

    let mut settings = ActorSettings::new(&name);
    settings.config = Arc::new(args.config.iter().cloned().collect::<BTreeMap<_, _>>());
    settings.allowed_hosts = args.allow_hosts.clone().into();
    settings.instance_mode = InstanceMode::Fresh;
    settings.limits = Limits {
        memory_bytes: args.memory_mib * 1024 * 1024,
        call_timeout: Duration::from_millis(args.timeout_ms),
        ..Limits::default()
    };

    let runtime = Runtime::new(RuntimeSettings::default()).context("cannot start the runtime")?;
    let actor = runtime
        .load(&bytes, settings)
        .with_context(|| format!("cannot load {}", args.component.display()))?;
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
