//! # wactor-bench
//!
//! wactor's benchmark harness: numbers for docs/benchmarks.md, not tests.
//! Run it in release mode on an otherwise idle machine:
//!
//! ```text
//! cargo run --release -p wactor-bench -- runtime [--iterations N] [--json out.json]
//! cargo run --release -p wactor-bench -- kafka [throughput|overhead|ordering|swap|all]
//! cargo run --release -p wactor-bench -- latency [--rate 5000] [--seconds 10] [--brokers HOST:PORT]
//! cargo run --release -p wactor-bench -- neighbours [--events N] [--quick]
//! cargo run --release -p wactor-bench -- languages [--iterations N] [--loads N]
//! ```
//!
//! # Layout
//!
//! - `runtime`: per-event host cost of the Wasm runtime (warm and fresh
//!   instances) and the artifact cache's effect on load time.
//! - `kafka`: throughput against a bare rdkafka consumer, host overhead per
//!   event, key vs partition ordering, hot swap and rollback.
//! - `latency`: produce→done time per event at a fixed rate, p50/p99.
//! - `neighbours`: a well-behaved actor's throughput alone and beside
//!   hostile actors on the same host (issue 9).
//! - `languages`: the echo actor in Rust, Python and JavaScript: size,
//!   load with and without the artifact cache, first event, per-event cost,
//!   resident memory of an idle instance.
//! - `stats`: samples → median / p99, machine description, JSON output.
//!
//! # Adding a benchmark suite
//!
//! Each suite is one subcommand and one module: add a variant to
//! [`Command`] (e.g. `Kafka(kafka::KafkaArgs)`), a module with an
//! `async fn run(args) -> anyhow::Result<serde_json::Value>` that prints its
//! own table, and a match arm in `main`. The `--json` flag and the machine
//! description are shared.

mod kafka;
mod languages;
mod latency;
mod neighbours;
mod runtime;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// wactor benchmarks.
#[derive(Debug, Parser)]
#[command(name = "wactor-bench", about, long_about = None)]
struct Cli {
    /// Also write the results as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Per-event host cost (warm and fresh instances) and artifact cache.
    Runtime(runtime::RuntimeArgs),
    /// Throughput against a bare consumer, host overhead per event, key vs
    /// partition ordering, hot swap and rollback times, on an in-process
    /// Kafka-protocol broker.
    Kafka(kafka::KafkaArgs),
    /// Produce→done latency per event at a fixed rate (issue 15).
    Latency(latency::LatencyArgs),
    /// A well-behaved actor's throughput alone and beside hostile actors
    /// (loop, memory hog, recursion, traps, limit floods) on the same host.
    Neighbours(neighbours::NeighboursArgs),
    /// The echo actor in Rust, Python and JavaScript: component size, load
    /// with and without the artifact cache, first event, per-event cost
    /// (warm and fresh), resident memory of an idle warm instance.
    Languages(languages::LanguagesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        use tracing_subscriber::Layer as _;
        // `latency`'s span layer (inert until that suite arms it), spans
        // at INFO as `wactor serve` has them (its default filter). It
        // measures each call's `handle` span, so there calls
        // make it up front, whatever the log filter (set first: the first
        // setting wins).
        let measuring = matches!(cli.command, Command::Latency(_)).then(|| {
            kafka::set_handle_spans(wactor_kafka::HandleSpans::Always);
            latency::DoneLayer.with_filter(tracing_subscriber::filter::LevelFilter::INFO)
        });
        // The host's logs when asked for, with `wactor serve`'s layer and
        // its choice of when calls make their `handle` span
        // (`HandleSpans::for_log_filter`, traces off).
        let log = std::env::var("WACTOR_BENCH_LOG").ok().map(|filter| {
            let filter = tracing_subscriber::EnvFilter::new(filter);
            kafka::set_handle_spans(wactor_kafka::HandleSpans::for_log_filter(
                filter.max_level_hint(),
                false,
            ));
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr)
                .with_filter(filter)
        });
        // No subscriber at all otherwise: the other suites measure the
        // host without one.
        if log.is_some() || measuring.is_some() {
            tracing_subscriber::registry()
                .with(log)
                .with(measuring)
                .init();
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The runtime suite measures one call at a time on one thread; the
    // Kafka suite runs a host, which wants every core.
    let tokio = match cli.command {
        Command::Runtime(_) | Command::Languages(_) => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        Command::Kafka(_) | Command::Neighbours(_) | Command::Latency(_) => {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
        }
    }
    .context("cannot start tokio")?;
    let machine = stats::Machine::detect();
    println!("machine: {}", machine.describe());
    let results = tokio.block_on(async {
        match cli.command {
            Command::Runtime(args) => runtime::run(args).await,
            Command::Kafka(args) => kafka::run(args).await,
            Command::Latency(args) => latency::run(args).await,
            Command::Neighbours(args) => neighbours::run(args).await,
            Command::Languages(args) => languages::run(args).await,
        }
    })?;
    if let Some(path) = cli.json {
        let report = serde_json::json!({ "machine": machine, "results": results });
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
