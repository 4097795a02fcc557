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
    /// Only the floor of a Kafka event's call: warm `fixture-noop` and
    /// `fixture-noop-batch` on events shaped like `kafka throughput`'s
    /// records, one per call and `--batch` per `handle-batch` call.
    #[arg(long)]
    pub floor: bool,
    /// Events per `handle-batch` call of `--floor` (the Kafka worker's
    /// batches are at most `max_in_flight`, 64 in `kafka throughput`).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
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
    if args.floor {
        return floor(&args).await;
    }
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

/// An event shaped like the records of `kafka throughput`: a topic with
/// the run's suffix, a key of 1000, a ~100-byte JSON value, no headers.
fn kafka_shaped(offset: i64) -> Event {
    Event {
        topic: "bench.actor-1733616000123".into(),
        partition: (offset % 4) as i32,
        offset,
        timestamp_ms: Some(1_700_000_000_000),
        key: Some(format!("key-{}", offset % 1000).into_bytes()),
        payload: Some(format!("{{\"filler\":\"{}\"}}", "x".repeat(80)).into_bytes()),
        headers: Vec::new(),
        attempt: 1,
    }
}

/// `--floor`: what the runtime alone costs per Kafka event with a warm
/// no-op actor, one event per `handle` call and `args.batch` per
/// `handle-batch` call (the call's time divided by its events). This is
/// the least a host that makes one wasm call per event (or per batch)
/// can add to a bare consumer's cost per event (docs/benchmarks.md,
/// "The floor under issue 15's targets on the mock").
async fn floor(args: &RuntimeArgs) -> anyhow::Result<serde_json::Value> {
    let runtime = Runtime::new(RuntimeSettings::default()).context("cannot start the runtime")?;
    let state: Arc<EmptyState> = Arc::new(EmptyState);
    let events: Vec<Event> = (0..args.batch.max(2) as i64).map(kafka_shaped).collect();
    println!(
        "\nthe runtime's floor per Kafka-shaped event, warm, µs ({} events each)",
        args.iterations
    );
    println!("{:<52} {:>8} {:>8} {:>8}", "case", "min", "median", "p99");
    let single = load(&runtime, "fixture-noop", InstanceMode::Warm)?;
    let mut samples = Vec::with_capacity(args.iterations);
    for i in 0..args.warmup + args.iterations {
        let event = &events[i % events.len()];
        let started = Instant::now();
        let inv = single.invoke(event, state.clone()).await;
        let took = started.elapsed();
        if !inv.result.is_done() {
            bail!("fixture-noop did not return done: {:?}", inv.result);
        }
        if i >= args.warmup {
            samples.push(took);
        }
    }
    let single_summary = Summary::of(&mut samples);
    println!(
        "{:<52} {:>8.2} {:>8.2} {:>8.2}",
        "fixture-noop: handle, one event per call",
        single_summary.min_us,
        single_summary.median_us,
        single_summary.p99_us
    );
    let batched = load(&runtime, "fixture-noop-batch", InstanceMode::Warm)?;
    let refs: Vec<&Event> = events.iter().collect();
    let calls = (args.iterations / refs.len()).max(1);
    let warmup_calls = (args.warmup / refs.len()).max(1);
    let mut samples = Vec::with_capacity(calls);
    for i in 0..warmup_calls + calls {
        let traces = refs.iter().map(|_| None).collect();
        let started = Instant::now();
        let batch = batched.invoke_batch(&refs, state.clone(), traces).await;
        let took = started.elapsed();
        if batch.batched_events as usize != refs.len()
            || batch.invocations.iter().any(|inv| !inv.result.is_done())
        {
            bail!("fixture-noop-batch did not take the batch or did not return done");
        }
        if i >= warmup_calls {
            samples.push(took / refs.len() as u32);
        }
    }
    let batch_summary = Summary::of(&mut samples);
    let case = format!("fixture-noop-batch: handle-batch, {} per call", refs.len());
    println!(
        "{case:<52} {:>8.2} {:>8.2} {:>8.2}",
        batch_summary.min_us, batch_summary.median_us, batch_summary.p99_us
    );
    Ok(serde_json::json!({
        "floor": { "single": single_summary, "batch": batch_summary, "batch_size": refs.len() },
    }))
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
