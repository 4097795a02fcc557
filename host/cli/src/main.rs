//! # wactor
//!
//! The `wactor` binary: the host (`serve`, `dev`) and the command-line tool
//! (`invoke`, and the admin verbs as they arrive). This crate parses
//! arguments, sets up tracing, wires the library crates together and owns
//! shutdown; it holds no business logic of its own.
//!
//! # Layout
//!
//! - `event_file`: the JSON form of an event for `invoke`.
//! - `invoke`: `wactor invoke`.
//! - `bridge`: runtime ↔ store glue (state reads, applying state writes).

mod bridge;
mod event_file;
mod invoke;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// wactor: WebAssembly actors on Kafka.
#[derive(Debug, Parser)]
#[command(name = "wactor", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an actor component on one event and print its outcome, emits,
    /// state changes and logs.
    Invoke(invoke::InvokeArgs),
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env("WACTOR_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Invoke(args) => invoke::run(args).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
