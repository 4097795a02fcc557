//! # wactor-bench
//!
//! wactor's benchmark harness: numbers for docs/benchmarks.md, not tests.
//! Run it in release mode on an otherwise idle machine:
//!
//! ```text
//! cargo run --release -p wactor-bench -- runtime [--iterations N] [--json out.json]
//! ```
//!
//! # Layout
//!
//! - `runtime`: per-event host cost of the Wasm runtime (warm and fresh
//!   instances) and the artifact cache's effect on load time.
//! - `stats`: samples → median / p99, machine description, JSON output.
//!
//! # Adding a benchmark suite
//!
//! Each suite is one subcommand and one module: add a variant to
//! [`Command`] (e.g. `Kafka(kafka::KafkaArgs)`), a module with an
//! `async fn run(args) -> anyhow::Result<serde_json::Value>` that prints its
//! own table, and a match arm in `main`. The `--json` flag and the machine
//! description are shared.

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
    // Extension point: `Kafka(kafka::KafkaArgs)` (end-to-end events/s
    // against a bare rdkafka consumer, key vs partition ordering, hot swap)
    // goes here, with its module beside `runtime`.
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    let machine = stats::Machine::detect();
    println!("machine: {}", machine.describe());
    let results = tokio.block_on(async {
        match cli.command {
            Command::Runtime(args) => runtime::run(args).await,
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
