//! The runtime suite: what the host adds per event around an actor that
//! does nothing, with a warm (reused) instance and with a fresh instance
//! per event, and how much the on-disk artifact cache saves at load time.
//!
//! Per-event cost is the wall time of `LoadedActor::invoke` as the Kafka
//! layer calls it: instance (take warm or create fresh), call with its
//! deadline, output capture, effects collection and bookkeeping. Kafka is
//! not involved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use wactor_runtime::{
    ActorSettings, CacheOutcome, EmptyState, EngineSettings, Event, InstanceMode, LoadedActor,
    Runtime, RuntimeSettings,
};

use crate::stats::Summary;

/// Options of `wactor-bench runtime`.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Measured events per instance mode and actor.
    #[arg(long, default_value_t = 20_000)]
    pub iterations: usize,
    /// Unmeasured events before each measurement.
    #[arg(long, default_value_t = 1_000)]
    pub warmup: usize,
    /// Loads per cache measurement (compile and hit); 0 skips it.
    #[arg(long, default_value_t = 20)]
    pub loads: usize,
    /// Only this instance mode (`warm` or `fresh`), e.g. to profile one.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<InstanceMode>,
    /// Only the cases of the default engine (not the untuned comparisons
    /// of the fresh path), e.g. to count one fresh instance's instructions.
    #[arg(long)]
    pub tuned_only: bool,
    /// Only this actor (`fixture-noop`, `echo`, or their lean builds
    /// `fixture-noop-lean` and `echo-lean`).
    #[arg(long)]
    pub actor: Option<String>,
}

fn parse_mode(s: &str) -> Result<InstanceMode, String> {
    match s {
        "warm" => Ok(InstanceMode::Warm),
        "fresh" => Ok(InstanceMode::Fresh),
        _ => Err(format!("expected warm or fresh, got {s:?}")),
    }
}

/// Runs the suite, prints a table and returns the results as JSON.
pub async fn run(args: RuntimeArgs) -> anyhow::Result<serde_json::Value> {
    let tuned = Runtime::new(RuntimeSettings::default()).context("cannot start the runtime")?;
    println!(
        "allocator: {}; memory reset: {}",
        if tuned.pooling() {
            "pooling"
        } else {
            "on-demand"
        },
        if tuned.pagemap_reset() {
            "in place (PAGEMAP_SCAN)"
        } else {
            "madvise"
        }
    );
    // The same engine without the fresh-path tuning, to show what each
    // step is worth in the same run.
    let untuned = |pagemap_reset: bool, recycle_host_state: bool| {
        Runtime::new(RuntimeSettings {
            engine: EngineSettings {
                pagemap_reset,
                recycle_host_state,
                ..EngineSettings::default()
            },
            ..RuntimeSettings::default()
        })
    };
    // Without both, the engine is configured as before the tuning:
    // pooling, copy-on-write images, 64 KiB reset in place, madvise beyond.
    let baseline = untuned(false, false).context("cannot start the baseline runtime")?;
    let pagemap_only = untuned(true, false).context("cannot start the pagemap-only runtime")?;

    const NOOP: (&str, &str) = ("fixture-noop", "");
    const ECHO: (&str, &str) = ("echo", r#"{"order_id":"order-1001","total_cents":1999}"#);
    // The same two crates built lean (wasm32-unknown-unknown; no WASI
    // imports; docs/actors.md, "Lean Rust builds").
    const NOOP_LEAN: (&str, &str) = ("fixture-noop-lean", NOOP.1);
    const ECHO_LEAN: (&str, &str) = ("echo-lean", ECHO.1);
    let cases: [(&str, &Runtime, (&str, &str), InstanceMode); 10] = [
        ("warm", &tuned, NOOP, InstanceMode::Warm),
        ("fresh", &tuned, NOOP, InstanceMode::Fresh),
        (
            "fresh, madvise reset, new host state",
            &baseline,
            NOOP,
            InstanceMode::Fresh,
        ),
        (
            "fresh, in-place reset, new host state",
            &pagemap_only,
            NOOP,
            InstanceMode::Fresh,
        ),
        ("warm", &tuned, ECHO, InstanceMode::Warm),
        ("fresh", &tuned, ECHO, InstanceMode::Fresh),
        ("warm", &tuned, NOOP_LEAN, InstanceMode::Warm),
        ("fresh", &tuned, NOOP_LEAN, InstanceMode::Fresh),
        ("warm", &tuned, ECHO_LEAN, InstanceMode::Warm),
        ("fresh", &tuned, ECHO_LEAN, InstanceMode::Fresh),
    ];

    let mut per_event = Vec::new();
    println!(
        "\nper-event host cost ({} events each, µs)",
        args.iterations
    );
    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>8}",
        "case", "min", "median", "p99", "mean"
    );
    for (variant, runtime, (actor, payload), mode) in cases {
        if args.actor.as_deref().is_some_and(|only| only != actor)
            || args.mode.is_some_and(|only| only != mode)
            || (args.tuned_only && !std::ptr::eq(runtime, &tuned))
        {
            continue;
        }
        let loaded = load(runtime, actor, mode)?;
        let summary = per_event_cost(&loaded, payload, &args).await?;
        let case = format!("{actor}: {variant}");
        println!(
            "{case:<52} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            summary.min_us, summary.median_us, summary.p99_us, summary.mean_us
        );
        per_event.push(serde_json::json!({
            "actor": actor, "mode": mode_name(mode), "variant": variant, "summary": summary,
        }));
    }

    let mut cache = Vec::new();
    let cache_actors: &[&str] = if args.loads == 0 {
        &[]
    } else {
        &["fixture-noop", "payment-reversal"]
    };
    if !cache_actors.is_empty() {
        println!(
            "\nartifact cache: load time ({} loads each, ms)",
            args.loads
        );
        println!(
            "{:<20} {:>12} {:>12} {:>10}",
            "actor", "compile", "cache hit", "speedup"
        );
    }
    for &actor in cache_actors {
        let (compile, hit) = cache_effect(actor, args.loads)?;
        let speedup = compile.median_us / hit.median_us.max(f64::EPSILON);
        println!(
            "{actor:<20} {:>12.3} {:>12.3} {:>9.0}x",
            compile.median_us / 1000.0,
            hit.median_us / 1000.0,
            speedup
        );
        cache.push(serde_json::json!({
            "actor": actor, "compile": compile, "hit": hit, "speedup": speedup,
        }));
    }

    Ok(serde_json::json!({
        "pooling": tuned.pooling(),
        "pagemap_reset": tuned.pagemap_reset(),
        "per_event": per_event,
        "artifact_cache": cache,
    }))
}

fn mode_name(mode: InstanceMode) -> &'static str {
    match mode {
        InstanceMode::Warm => "warm",
        InstanceMode::Fresh => "fresh",
    }
}

fn load(runtime: &Runtime, actor: &str, mode: InstanceMode) -> anyhow::Result<LoadedActor> {
    let mut settings = ActorSettings::new(actor);
    settings.instance_mode = mode;
    settings.max_uses_per_instance = u32::MAX;
    runtime
        .load(&wactor_tests::guest_bytes(actor), settings)
        .with_context(|| format!("cannot load {actor}"))
}

async fn per_event_cost(
    actor: &LoadedActor,
    payload: &str,
    args: &RuntimeArgs,
) -> anyhow::Result<Summary> {
    let state: Arc<EmptyState> = Arc::new(EmptyState);
    let mut event = Event {
        topic: "bench".into(),
        partition: 0,
        offset: 0,
        timestamp_ms: Some(1_700_000_000_000),
        key: Some(b"key-1".to_vec()),
        payload: Some(payload.as_bytes().to_vec()),
        headers: Vec::new(),
        attempt: 1,
    };
    for _ in 0..args.warmup {
        let inv = actor.invoke(&event, state.clone()).await;
        if !inv.result.is_done() {
            bail!("the benchmark actor did not return done: {:?}", inv.result);
        }
    }
    let mut samples = Vec::with_capacity(args.iterations);
    for offset in 0..args.iterations {
        event.offset = offset as i64;
        let started = Instant::now();
        let inv = actor.invoke(&event, state.clone()).await;
        samples.push(started.elapsed());
        std::hint::black_box(inv);
    }
    Ok(Summary::of(&mut samples))
}

/// Load time of `actor` when it must be compiled and when its artifact is
/// in the cache (in a fresh runtime each time, as after a restart).
fn cache_effect(actor: &str, loads: usize) -> anyhow::Result<(Summary, Summary)> {
    let bytes = wactor_tests::guest_bytes(actor);
    let dir = tempfile::tempdir().context("cannot create a cache directory")?;
    let runtime = Runtime::new(RuntimeSettings {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeSettings::default()
    })?;
    let mut compile = Vec::with_capacity(loads);
    let mut hit = Vec::with_capacity(loads);
    for _ in 0..loads {
        clear(dir.path())?;
        compile.push(timed_load(&runtime, &bytes, CacheOutcome::Compiled)?);
        hit.push(timed_load(&runtime, &bytes, CacheOutcome::Hit)?);
    }
    Ok((Summary::of(&mut compile), Summary::of(&mut hit)))
}

fn timed_load(runtime: &Runtime, bytes: &[u8], expect: CacheOutcome) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let loaded = runtime.load(bytes, ActorSettings::new("cache-bench"))?;
    let took = started.elapsed();
    if loaded.load_report().cache != expect {
        bail!(
            "expected a cache {expect:?}, got {:?}",
            loaded.load_report().cache
        );
    }
    Ok(took)
}

fn clear(dir: &std::path::Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        std::fs::remove_file(entry?.path())?;
    }
    Ok(())
}
