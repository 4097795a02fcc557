//! # wactor
//!
//! The `wactor` binary: the host (`serve`, `dev`) and the command-line tool
//! (`invoke`, `produce`, and the admin verbs). This crate parses
//! arguments, sets up tracing, wires the library crates together and owns
//! shutdown; it holds no business logic of its own.
//!
//! # Layout
//!
//! - `config`: `host.toml`.
//! - `host`: building, running and stopping a host; deploying a manifest
//!   directory.
//! - `dev`: `wactor dev` (with `fake_wallet` and `fake_gateway`, the
//!   stand-in wallet service and payment gateway).
//! - `broker`: `wactor broker`, only a mock Kafka broker in its own process.
//! - `produce`: `wactor produce`.
//! - `consume`: `wactor consume`.
//! - `invoke`: `wactor invoke`.
//! - `closed_stdout`: a closed stdout ends the process quietly.
//! - `admin`: the admin verbs (`deploy`, `actors`, `dlq`, ...), clients of
//!   a host's admin API.

mod actor_dir;
mod admin;
mod broker;
mod build_actor;
mod closed_stdout;
mod config;
mod consume;
mod dev;
mod fake_gateway;
mod fake_wallet;
mod host;
mod invoke;
mod new;
mod produce;
mod sdk_files;
mod test_actor;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
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
    /// Run everything locally: an in-process Kafka broker, the example
    /// actors, the admin API.
    Dev(dev::DevArgs),
    /// Run the host against a Kafka cluster.
    Serve(ServeArgs),
    /// Run only a Kafka-protocol broker (in memory) for local clusters of
    /// hosts and fault tests.
    Broker(broker::BrokerArgs),
    /// Send events to a Kafka topic.
    Produce(produce::ProduceArgs),
    /// Print the records of a Kafka topic (an actor's output).
    Consume(consume::ConsumeArgs),
    /// Run an actor component on one event and print its outcome, emits,
    /// state changes and logs.
    Invoke(invoke::InvokeArgs),
    /// Create a new actor (Rust, Python or JavaScript): source, manifest,
    /// sample event, README and a unit test.
    New(new::NewArgs),
    /// Build the actor in a directory into its component.
    Build(build_actor::BuildArgs),
    /// Run an actor's unit tests.
    Test(test_actor::TestArgs),
    #[command(flatten)]
    Admin(admin::AdminCommand),
}

/// Arguments of `wactor serve`.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  wactor serve --config /etc/wactor/host.toml

The host runs until SIGTERM or Ctrl-C, then drains: running calls finish
(within kafka.drain_timeout), offsets are committed, the group is left.
See docs/operations.md for every setting.")]
struct ServeArgs {
    /// The host configuration file.
    #[arg(long, short = 'c', env = "WACTOR_CONFIG")]
    config: PathBuf,
}

/// The default log filter of each command.
fn default_filter(command: &Command) -> &'static str {
    match command {
        // What a developer watches: the host's start, each call (one line,
        // `wactor::events`) and the actors' own logs. The Kafka and
        // registry crates' INFO lines (partitions assigned and restored)
        // are `wactor serve`'s; the mock broker has no DescribeConfigs, so
        // the changelog and registry topic checks cannot tell anything.
        Command::Dev(_) => concat!(
            "warn,wactor=info,wactor_kafka=warn,wactor_registry=warn,",
            "wactor_kafka::changelog=error,wactor_kafka::registry_log=error,",
            // The `handle` span (actor, version, topic, partition, offset,
            // key, attempt) that each call line is printed in.
            "wactor_kafka::call=info,",
            "wactor::actor=debug,wactor::events=debug,wactor::dev=info"
        ),
        Command::Serve(_) => "info",
        // librdkafka retries an absent broker many times a second, each
        // logged; these commands report the failure once themselves.
        Command::Produce(_) | Command::Consume(_) => "warn,rdkafka::client=off,librdkafka=off",
        _ => "warn",
    }
}

/// The trace exporter of `serve` (`[telemetry]` of its config and the
/// `OTEL_*` variables) and `dev` (the variables only); other commands
/// export no traces. A `serve` config that cannot be read is reported by
/// `serve` itself, later.
fn init_telemetry(command: &Command) -> Result<Option<wactor_telemetry::Telemetry>> {
    let file = match command {
        Command::Serve(args) => config::HostConfig::load(&args.config)
            .map(|c| c.telemetry)
            .unwrap_or_default(),
        Command::Dev(_) => Default::default(),
        _ => return Ok(None),
    };
    let Some(settings) =
        wactor_telemetry::TraceSettings::resolve(&file, |name| std::env::var(name).ok())?
    else {
        return Ok(None);
    };
    Ok(Some(wactor_telemetry::init(&settings)?))
}

/// How long the exit waits for the last spans to reach the collector.
const TRACE_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long the exit waits, once the command has returned (for `serve`
/// and `dev`: once the host has stopped, its store and producer flushed),
/// for blocking tasks still running: reads a stopped partition worker gave
/// up on, such as a held-event restore that waits up to two minutes for
/// brokers that are gone (redone by the next start), or the last removals
/// of a re-drive still running (a letter not removed is re-driven again by
/// a later request: at least once). tokio's runtime drop waits for every
/// blocking task, without bound.
const RUNTIME_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the subscriber: the log layer (`WACTOR_LOG`, else `default`)
/// and the trace exporter's layer when traces are on. Returns when the
/// host's calls are to make their `handle` span, which follows from the
/// log filter's most verbose level and whether traces are on
/// ([`wactor_kafka::HandleSpans::for_log_filter`]).
fn init_tracing(
    default: &str,
    telemetry: Option<&wactor_telemetry::Telemetry>,
) -> wactor_kafka::HandleSpans {
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;

    let filter = EnvFilter::try_from_env("WACTOR_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let handle_spans =
        wactor_kafka::HandleSpans::for_log_filter(filter.max_level_hint(), telemetry.is_some());
    let json = std::env::var("WACTOR_LOG_FORMAT").is_ok_and(|f| f == "json");
    // librdkafka's complaints about brokers going away while the host shuts
    // down are not shown (`host::quieted_while_stopping`).
    let quiet = tracing_subscriber::filter::filter_fn(|m| !host::quieted_while_stopping(m));
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // The log filter is the log layer's own: the trace layer (when on) has
    // its own and sees the spans whatever `WACTOR_LOG` hides. One combined
    // filter (`and`), not two nested `with_filter`s: with nested per-layer
    // filters, tracing-subscriber 0.3 disabled every event once a
    // directive such as `librdkafka=warn` turned a callsite off (the host
    // logged nothing; tests/tests/cluster_registry.rs and
    // host/cli/tests/shutdown.rs wait for its lines).
    let log_layer: Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync> =
        if json {
            layer.json().with_filter(filter.and(quiet)).boxed()
        } else {
            layer.with_filter(filter.and(quiet)).boxed()
        };
    let registry = tracing_subscriber::registry().with(log_layer);
    match telemetry {
        Some(telemetry) => registry.with(telemetry.layer()).init(),
        None => registry.init(),
    }
    handle_spans
}

async fn serve(args: ServeArgs, handle_spans: wactor_kafka::HandleSpans) -> Result<u8> {
    let mut config = config::HostConfig::load(&args.config)?;
    config.kafka.handle_spans = handle_spans;
    // Listened for before the start: SIGTERM while actors start ends the
    // host cleanly once they have, not with the signal's default action.
    let signal = host::ShutdownSignal::install();
    let host = host::Host::start(&config).await?;
    println!("wactor is serving; admin API on http://{}", host.api_addr);
    signal.recv().await;
    tracing::info!("shutting down");
    host.stop().await?;
    Ok(0)
}

fn main() -> ExitCode {
    // First, so that every print of every verb is covered: a closed stdout
    // ends the process quietly (see `closed_stdout` for why not SIGPIPE's
    // default action).
    closed_stdout::install();
    let cli = Cli::parse();
    // Before the async runtime: the exporter builds a blocking HTTP client.
    let telemetry = match init_telemetry(&cli.command) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let handle_spans = init_tracing(default_filter(&cli.command), telemetry.as_ref());
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
            Command::Dev(args) => dev::run(args, handle_spans).await,
            Command::Serve(args) => serve(args, handle_spans).await,
            Command::Broker(args) => broker::run(args).await,
            Command::Produce(args) => produce::run(args).await,
            Command::Consume(args) => consume::run(args).await,
            Command::Invoke(args) => invoke::run(args).await,
            Command::New(args) => new::run(args),
            Command::Build(args) => build_actor::run(args),
            Command::Test(args) => test_actor::run(args),
            Command::Admin(command) => Ok(admin::run(command).await),
        }
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    // The batch of spans not yet sent (up to 5 s of them) goes out now,
    // within a bound: a collector that is down does not hold up the exit.
    if let Some(telemetry) = telemetry {
        telemetry.shutdown(TRACE_FLUSH_TIMEOUT);
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
