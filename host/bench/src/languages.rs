//! The languages suite: what the echo actor costs the host when it is
//! written in Rust (`examples/echo`), Python (`examples/echo-py`,
//! componentize-py) and JavaScript (`examples/echo-js`, componentize-js),
//! on the `wactor_runtime` API (no Kafka):
//!
//! - component size;
//! - load time without the artifact cache (Cranelift compile, link and
//!   pre-instantiate), with a cold cache (the same plus writing the
//!   artifact) and from a warm on-disk cache;
//! - the first event after a cached load (instantiation of the first
//!   instance plus the call);
//! - per-event cost with a warm instance and with a fresh instance per
//!   event (`LoadedActor::invoke` wall time, as in the runtime suite);
//! - resident memory of a loaded version and of one idle warm instance,
//!   measured in a child process (see [`memory_probe`]).
//!
//! Each language runs with its manifest defaults: 64 MiB and 16 idle
//! instances for Rust, 128 MiB and 8 for Python and JavaScript.
//!
//! The Python and JavaScript components are built by
//! `wactor_tests::language_guest`, i.e. `target/<profile>/wactor build`:
//! build `wactor` in the same profile first (`cargo build --release -p
//! wactor`) and have componentize-py, componentize-js and esbuild installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use wactor_runtime::{
    ActorSettings, CacheOutcome, CallResult, EmptyState, Event, InstanceMode, LoadedActor, Runtime,
    RuntimeSettings,
};

use crate::stats::Summary;

/// Options of `wactor-bench languages`.
#[derive(Debug, Args)]
pub struct LanguagesArgs {
    /// Measured events per instance mode and language.
    #[arg(long, default_value_t = 2_000)]
    pub iterations: usize,
    /// Unmeasured events before each per-event measurement.
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// Loads per load-time measurement (compile without cache, cache hit);
    /// the first-event time is taken after each cache-hit load.
    #[arg(long, default_value_t = 3)]
    pub loads: usize,
    /// Warm instances held idle for the memory measurement; 0 skips it.
    #[arg(long, default_value_t = 8)]
    pub idle_instances: usize,
    /// Only these languages (`rust`, `python`, `js`), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub language: Vec<String>,
    /// Events each idle instance of the memory measurement handles before
    /// its second reading (a warm instance's heap may grow with use).
    #[arg(long, default_value_t = 1_000)]
    pub idle_events: usize,
    /// Internal: run the memory probe on this component and print its
    /// result (the suite starts itself as a child process with it).
    #[arg(long, hide = true)]
    pub probe: Option<PathBuf>,
    /// Internal: the probe's artifact cache directory (already warm).
    #[arg(long, hide = true)]
    pub probe_cache: Option<PathBuf>,
    /// Internal: the probe's memory limit in MiB.
    #[arg(long, hide = true, default_value_t = 64)]
    pub probe_memory_mib: u64,
}

/// One language's echo actor and its manifest defaults.
struct Language {
    name: &'static str,
    example: &'static str,
    memory_mib: u64,
    max_idle: usize,
}

const LANGUAGES: [Language; 3] = [
    Language {
        name: "rust",
        example: "echo",
        memory_mib: 64,
        max_idle: 16,
    },
    Language {
        name: "python",
        example: "echo-py",
        memory_mib: 128,
        max_idle: 8,
    },
    Language {
        name: "js",
        example: "echo-js",
        memory_mib: 128,
        max_idle: 8,
    },
];

/// Prefix of the probe's result line on its stdout.
const PROBE_LINE: &str = "languages-probe: ";

/// Runs the suite, prints a table and returns the results as JSON.
pub async fn run(args: LanguagesArgs) -> anyhow::Result<serde_json::Value> {
    if let Some(component) = &args.probe {
        let result = memory_probe(component, &args).await?;
        println!("{PROBE_LINE}{}", serde_json::to_string(&result)?);
        return Ok(serde_json::to_value(result)?);
    }
    for only in &args.language {
        if !LANGUAGES.iter().any(|l| l.name == only) {
            bail!("unknown language {only:?}: expected rust, python or js");
        }
    }
    point_at_wactor_binary();

    let mut results = Vec::new();
    for language in LANGUAGES
        .iter()
        .filter(|l| args.language.is_empty() || args.language.iter().any(|o| o == l.name))
    {
        println!("\n{}: {}", language.name, language.example);
        let result = measure(language, &args)
            .await
            .with_context(|| format!("{} ({})", language.name, language.example))?;
        results.push(result);
    }
    print_table(&results, &args);
    Ok(serde_json::json!({
        "iterations": args.iterations,
        "warmup": args.warmup,
        "loads": args.loads,
        "idle_instances": args.idle_instances,
        "languages": results,
    }))
}

/// `wactor_tests::wactor_bin` looks for `wactor` one directory above the
/// running executable, as for a test in `target/<profile>/deps/`; this
/// binary is in `target/<profile>/` itself, next to `wactor`.
fn point_at_wactor_binary() {
    if std::env::var_os("WACTOR_BIN").is_some() {
        return;
    }
    let beside = std::env::current_exe().ok().and_then(|exe| {
        let bin = exe
            .parent()?
            .join(format!("wactor{}", std::env::consts::EXE_SUFFIX));
        bin.exists().then_some(bin)
    });
    if let Some(bin) = beside {
        // Edition 2021: safe. No other thread reads the environment yet
        // (no runtime has been started, so no epoch thread either).
        std::env::set_var("WACTOR_BIN", bin);
    }
}

/// The component of `language`'s echo actor, built if needed.
fn component(language: &Language) -> anyhow::Result<PathBuf> {
    let example = language.example;
    let built = std::panic::catch_unwind(|| {
        if example == "echo" {
            wactor_tests::guest(example)
        } else {
            wactor_tests::language_guest(example)
        }
    });
    match built {
        Ok(path) => Ok(path),
        Err(_) => bail!("cannot build {example} (see the message above)"),
    }
}

/// Everything measured for one language.
#[derive(Debug, Serialize)]
struct LanguageResult {
    language: &'static str,
    example: &'static str,
    component: PathBuf,
    component_bytes: usize,
    /// Size of the compiled artifact in the cache.
    artifact_bytes: u64,
    memory_limit_mib: u64,
    max_idle_instances: usize,
    /// Load with no cache: compile, link, pre-instantiate.
    load_compile: Summary,
    /// One load into an empty cache directory: the same plus serialising
    /// and writing the artifact.
    load_compile_and_store: Summary,
    /// Load from the warm cache: read and deserialise the artifact, link,
    /// pre-instantiate.
    load_cache_hit: Summary,
    /// First invoke after each cache-hit load: instantiate + call.
    first_event: Summary,
    /// Per-event cost, warm instance.
    warm: Summary,
    /// Per-event cost, fresh instance per event.
    fresh: Summary,
    /// Resident memory (from the child process), if measured.
    memory: Option<ProbeResult>,
}

async fn measure(language: &Language, args: &LanguagesArgs) -> anyhow::Result<LanguageResult> {
    let path = component(language)?;
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    println!("  component: {} ({} bytes)", path.display(), bytes.len());
    let settings = |mode: InstanceMode| {
        let mut settings = ActorSettings::new(language.example);
        settings.limits.memory_bytes = language.memory_mib * 1024 * 1024;
        settings.max_idle_instances = language.max_idle;
        settings.instance_mode = mode;
        settings
    };

    // Compile without a cache.
    let uncached = Runtime::new(RuntimeSettings::default()).context("cannot start the runtime")?;
    let mut compile = Vec::new();
    for _ in 0..args.loads {
        let (took, _) = timed_load(
            &uncached,
            &bytes,
            settings(InstanceMode::Warm),
            CacheOutcome::Compiled,
        )?;
        compile.push(took);
    }
    drop(uncached);
    let load_compile = Summary::of(&mut compile);
    println!(
        "  load, compile (no cache): {:.1} ms median of {}",
        load_compile.median_us / 1e3,
        args.loads
    );

    // Compile once into an empty cache directory, then load from it.
    let dir = tempfile::tempdir().context("cannot create a cache directory")?;
    let cached = Runtime::new(RuntimeSettings {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeSettings::default()
    })
    .context("cannot start the runtime")?;
    let (store_took, _) = timed_load(
        &cached,
        &bytes,
        settings(InstanceMode::Warm),
        CacheOutcome::Compiled,
    )?;
    let load_compile_and_store = Summary::of(&mut [store_took]);
    let artifact_bytes = std::fs::read_dir(dir.path())
        .context("cannot list the cache directory")?
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|meta| meta.len())
        .sum::<u64>();
    println!(
        "  load, compile + write artifact: {:.1} ms",
        load_compile_and_store.median_us / 1e3
    );

    let state: Arc<EmptyState> = Arc::new(EmptyState);
    let mut hit = Vec::new();
    let mut first = Vec::new();
    for i in 0..args.loads {
        let (took, loaded) = timed_load(
            &cached,
            &bytes,
            settings(InstanceMode::Warm),
            CacheOutcome::Hit,
        )?;
        hit.push(took);
        let started = Instant::now();
        let inv = loaded.invoke(&event(i as i64), state.clone()).await;
        first.push(started.elapsed());
        check_done(&inv.result)?;
        if !inv.fresh_instance {
            bail!("the first event after a load did not run on a fresh instance");
        }
    }
    let load_cache_hit = Summary::of(&mut hit);
    let first_event = Summary::of(&mut first);
    println!(
        "  load, cache hit: {:.2} ms; first event: {:.2} ms (medians of {})",
        load_cache_hit.median_us / 1e3,
        first_event.median_us / 1e3,
        args.loads
    );

    let mut per_mode = Vec::new();
    for mode in [InstanceMode::Warm, InstanceMode::Fresh] {
        let (_, loaded) = timed_load(&cached, &bytes, settings(mode), CacheOutcome::Hit)?;
        let summary = per_event_cost(&loaded, args).await?;
        println!(
            "  {:<5} per event: median {:.1} µs, p99 {:.1} µs ({} events)",
            mode_name(mode),
            summary.median_us,
            summary.p99_us,
            summary.samples
        );
        per_mode.push(summary);
    }
    drop(cached);

    let memory = if args.idle_instances == 0 {
        None
    } else {
        let probe = run_probe(&path, dir.path(), language, args)?;
        println!(
            "  resident: loaded version {:.1} MiB, its memory image {:.1} MiB; one idle warm \
             instance: private {:.2} MiB + {:.2} MiB of mapped image pages (after {} events: \
             private {:.2} MiB)",
            mib(probe.loaded_version.total_kib),
            mib(probe.idle_instance.system_shmem_kib),
            mib(probe.idle_instance.anon_kib),
            mib(probe.idle_instance.shmem_kib),
            probe.events_per_instance,
            mib(probe.idle_instance_used.anon_kib),
        );
        Some(probe)
    };

    Ok(LanguageResult {
        language: language.name,
        example: language.example,
        component: path,
        component_bytes: bytes.len(),
        artifact_bytes,
        memory_limit_mib: language.memory_mib,
        max_idle_instances: language.max_idle,
        load_compile,
        load_compile_and_store,
        load_cache_hit,
        first_event,
        warm: per_mode[0],
        fresh: per_mode[1],
        memory,
    })
}

fn mode_name(mode: InstanceMode) -> &'static str {
    match mode {
        InstanceMode::Warm => "warm",
        InstanceMode::Fresh => "fresh",
    }
}

fn timed_load(
    runtime: &Runtime,
    bytes: &[u8],
    settings: ActorSettings,
    expect: CacheOutcome,
) -> anyhow::Result<(Duration, LoadedActor)> {
    let started = Instant::now();
    let loaded = runtime.load(bytes, settings).context("load failed")?;
    let took = started.elapsed();
    if loaded.load_report().cache != expect {
        bail!(
            "expected a cache {expect:?}, got {:?}",
            loaded.load_report().cache
        );
    }
    Ok((took, loaded))
}

/// The event every call gets: `examples/echo/event.json`'s.
fn event(offset: i64) -> Event {
    Event {
        topic: "orders".into(),
        partition: 0,
        offset,
        timestamp_ms: Some(1_700_000_000_000),
        key: Some(b"order-1001".to_vec()),
        payload: Some(br#"{"order_id":"order-1001","total_cents":1999}"#.to_vec()),
        headers: vec![("trace-id".into(), Some(b"4bf92f3577b34da6".to_vec()))],
        attempt: 1,
    }
}

fn check_done(result: &CallResult) -> anyhow::Result<()> {
    if !result.is_done() {
        bail!("the echo actor did not return done: {result:?}");
    }
    Ok(())
}

async fn per_event_cost(actor: &LoadedActor, args: &LanguagesArgs) -> anyhow::Result<Summary> {
    let state: Arc<EmptyState> = Arc::new(EmptyState);
    let mut event = event(0);
    for _ in 0..args.warmup {
        let inv = actor.invoke(&event, state.clone()).await;
        check_done(&inv.result)?;
    }
    let mut samples = Vec::with_capacity(args.iterations);
    for offset in 0..args.iterations {
        event.offset = offset as i64;
        let started = Instant::now();
        let inv = actor.invoke(&event, state.clone()).await;
        samples.push(started.elapsed());
        check_done(&inv.result)?;
    }
    Ok(Summary::of(&mut samples))
}

/// Resident memory from `/proc/self/status`, in KiB, and the system's
/// shared memory from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Rss {
    /// VmRSS: the sum of the next three.
    total_kib: f64,
    /// RssAnon: private pages (heap, stacks, written linear memory, code).
    anon_kib: f64,
    /// RssFile: mapped file pages.
    file_kib: f64,
    /// RssShmem: mapped shared-memory pages, e.g. a memory image's memfd
    /// pages an instance has read (not copied: shared with the image).
    shmem_kib: f64,
    /// System-wide Shmem: memfd pages whether mapped or not, e.g. the
    /// memory images a load writes (which VmRSS does not show until an
    /// instance maps them). Other processes' shared memory adds noise.
    system_shmem_kib: f64,
}

impl Rss {
    fn now() -> anyhow::Result<Self> {
        let status = std::fs::read_to_string("/proc/self/status")
            .context("cannot read /proc/self/status (the memory probe needs Linux)")?;
        let field = |name: &str| -> anyhow::Result<f64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("no {name} in /proc/self/status"))
        };
        let meminfo =
            std::fs::read_to_string("/proc/meminfo").context("cannot read /proc/meminfo")?;
        let system_shmem_kib = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("Shmem:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no Shmem in /proc/meminfo")?;
        Ok(Rss {
            system_shmem_kib,
            total_kib: field("VmRSS:")?,
            anon_kib: field("RssAnon:")?,
            file_kib: field("RssFile:")?,
            shmem_kib: field("RssShmem:")?,
        })
    }

    /// `(self - before) / n`.
    fn per(self, before: Rss, n: usize) -> Rss {
        let n = n.max(1) as f64;
        Rss {
            total_kib: (self.total_kib - before.total_kib) / n,
            anon_kib: (self.anon_kib - before.anon_kib) / n,
            file_kib: (self.file_kib - before.file_kib) / n,
            shmem_kib: (self.shmem_kib - before.shmem_kib) / n,
            system_shmem_kib: (self.system_shmem_kib - before.system_shmem_kib) / n,
        }
    }
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// What the memory probe reports (each field per version / instance).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProbeResult {
    /// Loaded versions (= idle instances) measured.
    versions: usize,
    /// Added by one cache-hit load, before any instance exists.
    loaded_version: Rss,
    /// Added by the first instance of a version, which handled one event
    /// and is held idle. Its `system_shmem_kib` is the version's memory
    /// image, which wasmtime builds (a memfd) at the version's first
    /// instantiation and every later instance maps copy-on-write; its
    /// `shmem_kib` the image pages this instance mapped (shared, not
    /// copied); its `anon_kib` the instance's private memory.
    idle_instance: Rss,
    /// Events each instance had handled at the second reading.
    events_per_instance: usize,
    /// The same instance after `events_per_instance` events, against the
    /// same baseline (after the loads).
    idle_instance_used: Rss,
}

/// Starts this executable again as a memory probe: a fresh process, so that
/// no pool slot is already resident and the heap has no freed memory to
/// reuse from earlier measurements.
fn run_probe(
    component: &Path,
    cache: &Path,
    language: &Language,
    args: &LanguagesArgs,
) -> anyhow::Result<ProbeResult> {
    let exe = std::env::current_exe().context("cannot locate wactor-bench")?;
    let output = std::process::Command::new(exe)
        .arg("languages")
        .arg("--probe")
        .arg(component)
        .arg("--probe-cache")
        .arg(cache)
        .arg("--probe-memory-mib")
        .arg(language.memory_mib.to_string())
        .arg("--idle-instances")
        .arg(args.idle_instances.to_string())
        .arg("--idle-events")
        .arg(args.idle_events.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot start the memory probe")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "the memory probe failed:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(PROBE_LINE))
        .with_context(|| format!("the memory probe printed no result:\n{stdout}"))?;
    serde_json::from_str(line).context("cannot read the memory probe's result")
}

/// The child side of [`run_probe`]: `--idle-instances` versions of the
/// component are loaded from the (warm) cache, each in warm mode, then each
/// handles one event and keeps its instance idle. One version per instance
/// because one version's instances are only created concurrently, and the
/// calls here are sequential; an instance of a separate load of the same
/// bytes is the same instance (same image, same pool).
///
/// Deltas are divided by the count: after the loads (a loaded version: its
/// compiled code, read into memory, and pre-instantiation), after one event
/// each (the version's memory image, built by wasmtime at its first
/// instantiation, and the idle instance: the pool slot's written memory
/// pages, tables and stack, its store and WASI context on the heap) and
/// after `--idle-events` events each (what a used warm instance keeps).
async fn memory_probe(component: &Path, args: &LanguagesArgs) -> anyhow::Result<ProbeResult> {
    let bytes =
        std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    let runtime = Runtime::new(RuntimeSettings {
        cache_dir: args.probe_cache.clone(),
        ..RuntimeSettings::default()
    })
    .context("cannot start the runtime")?;
    let n = args.idle_instances.max(1);
    let settings = || {
        let mut settings = ActorSettings::new("memory-probe");
        settings.limits.memory_bytes = args.probe_memory_mib * 1024 * 1024;
        settings
    };
    // One load and call first, so that one-time costs (first use of the
    // engine, lazily built host structures) are not counted. Kept until the
    // end: dropped, its pool slot would stay partly resident for the next
    // instance to reuse.
    let (_, warmup) = timed_load(&runtime, &bytes, settings(), CacheOutcome::Hit)?;
    check_done(&warmup.invoke(&event(0), Arc::new(EmptyState)).await.result)?;
    let before_loads = Rss::now()?;
    let mut versions = Vec::with_capacity(n);
    for _ in 0..n {
        let (_, loaded) = timed_load(&runtime, &bytes, settings(), CacheOutcome::Hit)?;
        versions.push(loaded);
    }
    let after_loads = Rss::now()?;
    for (i, loaded) in versions.iter().enumerate() {
        let inv = loaded.invoke(&event(i as i64), Arc::new(EmptyState)).await;
        check_done(&inv.result)?;
        if loaded.idle_instances() != 1 {
            bail!(
                "expected one idle instance, got {}",
                loaded.idle_instances()
            );
        }
    }
    let after_events = Rss::now()?;
    for (i, loaded) in versions.iter().enumerate() {
        for offset in 1..args.idle_events.max(1) {
            let inv = loaded
                .invoke(&event(offset as i64), Arc::new(EmptyState))
                .await;
            check_done(&inv.result)?;
            if inv.fresh_instance {
                bail!("version {i}'s warm instance was replaced");
            }
        }
    }
    let after_use = Rss::now()?;
    let result = ProbeResult {
        versions: n,
        loaded_version: after_loads.per(before_loads, n),
        idle_instance: after_events.per(after_loads, n),
        events_per_instance: args.idle_events.max(1),
        idle_instance_used: after_use.per(after_loads, n),
    };
    drop(versions);
    drop(warmup);
    Ok(result)
}

fn print_table(results: &[LanguageResult], args: &LanguagesArgs) {
    println!(
        "\necho actor per language ({} loads, {} events per mode after {} warmup)",
        args.loads, args.iterations, args.warmup
    );
    print!("{:<48}", "");
    for r in results {
        print!(" {:>12}", r.language);
    }
    println!();
    let row = |label: &str, value: &dyn Fn(&LanguageResult) -> String| {
        print!("{label:<48}");
        for r in results {
            print!(" {:>12}", value(r));
        }
        println!();
    };
    row("component size (MB)", &|r| {
        format!("{:.2}", r.component_bytes as f64 / 1e6)
    });
    row("compiled artifact size (MB)", &|r| {
        format!("{:.2}", r.artifact_bytes as f64 / 1e6)
    });
    row("memory limit (MiB) / max idle", &|r| {
        format!("{} / {}", r.memory_limit_mib, r.max_idle_instances)
    });
    row("load, compile, no cache (ms, median)", &|r| {
        format!("{:.0}", r.load_compile.median_us / 1e3)
    });
    row("load, compile + write artifact (ms)", &|r| {
        format!("{:.0}", r.load_compile_and_store.median_us / 1e3)
    });
    row("load, cache hit (ms, median)", &|r| {
        format!("{:.2}", r.load_cache_hit.median_us / 1e3)
    });
    row("first event after cached load (ms, median)", &|r| {
        format!("{:.2}", r.first_event.median_us / 1e3)
    });
    row("warm instance, per event median (µs)", &|r| {
        format!("{:.1}", r.warm.median_us)
    });
    row("warm instance, per event p99 (µs)", &|r| {
        format!("{:.1}", r.warm.p99_us)
    });
    row("fresh instance, per event median (µs)", &|r| {
        format!("{:.1}", r.fresh.median_us)
    });
    row("fresh instance, per event p99 (µs)", &|r| {
        format!("{:.1}", r.fresh.p99_us)
    });
    let memory = |r: &LanguageResult, f: &dyn Fn(&ProbeResult) -> f64| {
        r.memory
            .as_ref()
            .map_or_else(|| "-".to_string(), |m| format!("{:.2}", mib(f(m))))
    };
    row("loaded version: RSS before any instance (MiB)", &|r| {
        memory(r, &|m| m.loaded_version.total_kib)
    });
    row("loaded version: memory image, memfd (MiB)", &|r| {
        memory(r, &|m| m.idle_instance.system_shmem_kib)
    });
    row("idle warm instance, 1 event: private (MiB)", &|r| {
        memory(r, &|m| m.idle_instance.anon_kib)
    });
    row("  + image pages it maps, shared (MiB)", &|r| {
        memory(r, &|m| m.idle_instance.shmem_kib)
    });
    let used = results
        .iter()
        .find_map(|r| r.memory.as_ref().map(|m| m.events_per_instance))
        .unwrap_or(args.idle_events);
    row(
        &format!("idle warm instance, {used} events: private (MiB)"),
        &|r| memory(r, &|m| m.idle_instance_used.anon_kib),
    );
}
