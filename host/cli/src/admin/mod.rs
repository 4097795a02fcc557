//! The admin verbs of `wactor`: `deploy`, `actors`, `versions`,
//! `activate`, `rollback`, `pause`, `resume`, `remove`, `dlq ...`, `cluster`,
//! `retries ...`, `schedule ...`, `replay`, `replays ...` and `logs`. Each is a client of a host's admin API (docs/api.md);
//! none touches a store or Kafka itself, so they work the same against
//! `wactor dev` on this machine and a host across the network.
//!
//! # Layout
//!
//! - `client`: the HTTP client: base URL, token, JSON in and out, uploads
//!   with progress, and the mapping of answers to [`Failure`]s.
//! - `output`: tables, times, sizes and bytes for people; JSON for
//!   scripts.
//! - `deploy`, `actors`, `dlq`, `retries`, `cluster`, `schedule`, `replay`,
//!   `logs`:
//!   the verbs.
//!
//! # Exit codes
//!
//! Scripts can rely on them (docs/api.md lists them too): 0 success; 1 an
//! error, the host unreachable, or part of a batch failed; 2 a usage error
//! (bad flags); 3 not found (actor, version, dead letter); 4 refused
//! (invalid input: a bad manifest or component, a name mismatch, nothing to
//! roll back, too large); 5 unauthorized (missing or invalid token).
//!
//! The API is plain HTTP and this client speaks no TLS: use it on
//! loopback, or reach a remote host through an SSH tunnel (or a local
//! TLS-originating proxy when the host sits behind a TLS-terminating one).

mod actors;
mod client;
mod cluster;
mod deploy;
mod dlq;
mod logs;
mod output;
mod replay;
mod retries;
mod schedule;

use clap::{Args, Subcommand};

/// Success.
pub const EXIT_OK: u8 = 0;
/// An error: the host is unreachable, answered 5xx, or part of a batch
/// failed.
pub const EXIT_ERROR: u8 = 1;
/// Bad command-line usage (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// The actor, version, dead letter or held event does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;
/// The host refused the input (400, 409, 413).
pub const EXIT_REFUSED: u8 = 4;
/// No valid token (401, 403).
pub const EXIT_UNAUTHORIZED: u8 = 5;

/// Why an admin verb failed, and so its exit code.
#[derive(Debug)]
pub enum Failure {
    /// The flags do not make sense together.
    Usage(String),
    /// Input refused before it was sent (an unreadable manifest).
    Invalid(String),
    /// The host could not be reached, or did not answer.
    Unreachable(String),
    /// The host answered with an error.
    Api {
        /// HTTP status.
        status: u16,
        /// The API's error code (`unknown_actor`, ...).
        code: String,
        /// The API's message.
        message: String,
    },
    /// Anything else (reading a file, a partly failed batch).
    Other(String),
}

impl Failure {
    /// The exit code of this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Invalid(_) => EXIT_REFUSED,
            Failure::Unreachable(_) | Failure::Other(_) => EXIT_ERROR,
            Failure::Api { status, .. } => match status {
                404 => EXIT_NOT_FOUND,
                401 | 403 => EXIT_UNAUTHORIZED,
                400 | 409 | 413 | 422 => EXIT_REFUSED,
                _ => EXIT_ERROR,
            },
        }
    }

    /// The message for people.
    pub fn message(&self) -> String {
        match self {
            Failure::Usage(message)
            | Failure::Invalid(message)
            | Failure::Unreachable(message)
            | Failure::Other(message) => message.clone(),
            Failure::Api { message, .. } => message.clone(),
        }
    }
}

/// Result of a verb.
pub type Result<T, E = Failure> = std::result::Result<T, E>;

/// Where the host is and how to talk to it: every admin verb takes these.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// The host's admin API.
    #[arg(
        long,
        env = "WACTOR_API",
        default_value = "http://127.0.0.1:7700",
        global = true,
        value_name = "URL"
    )]
    pub api: String,
    /// Bearer token, when the host has tokens configured.
    #[arg(long, env = "WACTOR_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the API's JSON answer (for scripts) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The admin verbs, flattened into `wactor`'s commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Upload a new version of an actor (and activate it).
    Deploy(deploy::DeployArgs),
    /// List the actors with their version, state, lag and dead letters.
    Actors(actors::ActorsArgs),
    /// Show an actor's versions, the active one marked.
    Versions(actors::VersionsArgs),
    /// Make a version of an actor the active one.
    Activate(actors::ActivateArgs),
    /// Re-activate the previous (or a given) version of an actor.
    Rollback(actors::RollbackArgs),
    /// Pause an actor: its events wait in Kafka, its retries hold.
    Pause(actors::NameArgs),
    /// Resume a paused actor.
    Resume(actors::NameArgs),
    /// Stop and remove an actor (versions and group offsets are kept).
    Remove(actors::NameArgs),
    /// Dead letters: list, show, re-drive, discard.
    Dlq(dlq::DlqArgs),
    /// The hosts of the cluster and the partitions each owns, with lag.
    Cluster(cluster::ClusterArgs),
    /// Events waiting for a retry: list, retry now.
    Retries(retries::RetriesArgs),
    /// An actor's schedules: list (next and last firing), backfill a past range.
    Schedule(schedule::ScheduleArgs),
    /// Feed a past range of an actor's records through it again.
    Replay(replay::ReplayArgs),
    /// Replays a host runs: list, show, cancel.
    Replays(replay::ReplaysArgs),
    /// An actor's own log lines, with their events and outcomes.
    Logs(logs::LogsArgs),
}

/// Runs an admin verb; returns its exit code. Failures are reported on
/// stderr (and, with `--json`, as JSON on stdout).
pub async fn run(command: AdminCommand) -> u8 {
    let (conn, outcome) = match command {
        AdminCommand::Deploy(args) => (args.conn.clone(), deploy::run(args).await),
        AdminCommand::Actors(args) => (args.conn.clone(), actors::list(args).await),
        AdminCommand::Versions(args) => (args.conn.clone(), actors::versions(args).await),
        AdminCommand::Activate(args) => (args.conn.clone(), actors::activate(args).await),
        AdminCommand::Rollback(args) => (args.conn.clone(), actors::rollback(args).await),
        AdminCommand::Pause(args) => (args.conn.clone(), actors::pause(args).await),
        AdminCommand::Resume(args) => (args.conn.clone(), actors::resume(args).await),
        AdminCommand::Remove(args) => (args.conn.clone(), actors::remove(args).await),
        AdminCommand::Dlq(args) => (args.conn.clone(), dlq::run(args).await),
        AdminCommand::Cluster(args) => (args.conn.clone(), cluster::run(args).await),
        AdminCommand::Retries(args) => (args.conn.clone(), retries::run(args).await),
        AdminCommand::Schedule(args) => (args.conn.clone(), schedule::run(args).await),
        AdminCommand::Replay(args) => (args.conn.clone(), replay::run(args).await),
        AdminCommand::Replays(args) => (args.conn.clone(), replay::run_replays(args).await),
        AdminCommand::Logs(args) => (args.conn.clone(), logs::run(args).await),
    };
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            report(&conn, &failure);
            failure.exit_code()
        }
    }
}

fn report(conn: &Conn, failure: &Failure) {
    eprintln!("error: {}", failure.message());
    if conn.json {
        let code = match failure {
            Failure::Api { code, .. } => code.clone(),
            Failure::Usage(_) => "usage".into(),
            Failure::Invalid(_) => "invalid".into(),
            Failure::Unreachable(_) => "unreachable".into(),
            Failure::Other(_) => "error".into(),
        };
        let status = match failure {
            Failure::Api { status, .. } => Some(*status),
            _ => None,
        };
        output::print_json(&serde_json::json!({
            "error": failure.message(),
            "code": code,
            "status": status,
            "exit_code": failure.exit_code(),
        }));
    }
}
