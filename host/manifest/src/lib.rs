//! # wactor-manifest
//!
//! The actor manifest, `actor.toml`: what an actor is called, which topics
//! it reads, how its events are ordered and retried, what it may use. This
//! crate owns the file's format (every field, its default and its rules),
//! its validation with errors that name the field, and its conversion into
//! the settings the runtime ([`ActorSettings`]) and the delivery logic
//! ([`RetryPolicy`], [`OrderingMode`]) take.
//!
//! It does not read components, talk to Kafka or touch the store.
//!
//! ```toml
//! name = "payment-reversal"
//! component = "target/wasm32-wasip2/release/payment_reversal.wasm"
//! topics = ["bookings"]
//! # group = "wactor.payment-reversal"     (the default)
//! start = "earliest"                     # or "latest", or an RFC 3339 time (new groups)
//! ordering = "key"                        # key | partition | none
//! max_in_flight = 64                      # parallel calls per partition
//! allowed_hosts = ["wallet.internal:8080"]
//!
//! [limits]
//! memory = "64MiB"
//! call_timeout = "10s"
//! max_emits = 1000                        # records emitted per call
//! max_emit_bytes = "16MiB"
//! max_state_writes = 1000                 # state keys set or deleted per call
//! max_state_bytes = "16MiB"
//!
//! [retry]
//! max_attempts = 8
//! initial_backoff = "1s"
//! max_backoff = "5m"
//!
//! [dead_letter]
//! topic = "bookings.payment-reversal.dlq" # optional mirror to Kafka; must end in .dlq
//! max_age = "30d"                         # retention; "none" keeps forever
//! max_count = 100000                      # per actor; the oldest go first
//! on_dead = "continue"                    # or "block": the key waits behind its dead letter
//!
//! [[schedules]]                           # docs/schedules.md
//! name = "nightly"
//! cron = "30 1 * * *"
//! timezone = "Asia/Riyadh"
//!
//! [config]
//! wallet_url = "http://wallet.internal:8080"
//! ```
//!
//! docs/manifest.md is the reference for users; keep it in step with the
//! field comments here.

#![warn(missing_docs)]

mod byte_size;
mod config_values;
pub mod discover;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wactor_delivery::schedule::{Schedule, ScheduleSpec};
use wactor_delivery::{duration_str, OrderingMode, RetryPolicy};
use wactor_runtime::{ActorSettings, InstanceMode, Limits};

pub use byte_size::ByteSize;

/// Longest actor name: names end up in topic names, consumer groups and
/// URLs, so they are kept short and plain.
pub const MAX_NAME_LEN: usize = 63;

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the manifest {path}: {source}")]
    Io {
        /// The manifest's path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown field or a value of the wrong type. The
    /// message carries toml's line and column.
    #[error("the manifest is not valid: {0}")]
    Syntax(String),
    /// A field has a value that breaks its rules.
    #[error("manifest field `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the field (`retry.max_attempts`).
        field: String,
        /// What is wrong and what would be right.
        reason: String,
    },
    /// A manifest file was refused: `error` says why, `path` which file.
    #[error("{path}: {error}")]
    File {
        /// The manifest's path.
        path: String,
        /// Why it was refused.
        error: Box<ManifestError>,
    },
}

impl ManifestError {
    /// `error`, said of the file `path` (an error that names a file
    /// already is returned as it is).
    pub fn in_file(path: &Path, error: ManifestError) -> Self {
        match error {
            ManifestError::Io { .. } | ManifestError::File { .. } => error,
            error => ManifestError::File {
                path: path.display().to_string(),
                error: Box::new(error),
            },
        }
    }

    /// The error without the file it came from.
    pub fn without_file(&self) -> &ManifestError {
        match self {
            ManifestError::File { error, .. } => error.without_file(),
            other => other,
        }
    }

    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ManifestError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = ManifestError> = std::result::Result<T, E>;

/// An actor's manifest, as written in `actor.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorManifest {
    /// The actor's name: lower-case letters, digits, `-`, `_` and `.`,
    /// starting with a letter or digit, at most [`MAX_NAME_LEN`] long.
    pub name: String,
    /// The language the actor is written in (`rust`, the default, `python`
    /// or `js`): which tool chain `wactor build` runs, and the defaults of
    /// `limits.memory` and `instances.max_idle` when the manifest leaves
    /// them out ([`Language::default_memory`], [`Language::default_max_idle`]).
    #[serde(default, skip_serializing_if = "Language::is_rust")]
    pub language: Language,
    /// `batch = true`: `wactor build` builds a Python or JavaScript actor
    /// against the WIT world `actor-batch`, whose `handle-batch` export the
    /// SDK then provides, so the host may hand it many events per call
    /// (docs/actors.md, "Batches"). A Rust actor opts in in its code
    /// (`export_actor!(X, batch)`) and this field changes nothing for it.
    /// The host batches any warm component that exports `handle-batch`,
    /// whatever this says. Default `false` (not written out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
    /// `lean = true` (Rust only): `wactor build` builds the crate for
    /// `wasm32-unknown-unknown` and makes the module a component itself,
    /// so the actor imports none of the WASI interfaces Rust's std
    /// brings in, only the contract's interfaces it calls; a fresh
    /// instance is then about a fifth cheaper (docs/actors.md, "Lean Rust
    /// builds"). std's clocks, `std::env::vars` and stdio do not work in
    /// such an actor. Changes nothing for the host,
    /// which runs any component of the contract. Default `false` (not
    /// written out); refused for Python and JavaScript, whose
    /// componentizers need WASI.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lean: bool,
    /// The component file, relative to the manifest's directory. Needed by
    /// `wactor deploy actor.toml` and by `serve`'s manifest directory; not
    /// by an upload that sends the component itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<PathBuf>,
    /// Topics to read (at least one).
    pub topics: Vec<String>,
    /// Consumer group; default `wactor.<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Where a new actor starts reading its topics: `"earliest"`,
    /// `"latest"`, or an RFC 3339 time (the first record at or after it).
    /// Applies to partitions its group has never committed; absent, the
    /// host's `auto.offset.reset` (earliest by default) decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartPosition>,
    /// Ordering of events within a partition; default `key`.
    #[serde(default)]
    pub ordering: OrderingMode,
    /// Calls that may run at once per partition (different keys in `key`
    /// mode, any events in `none` mode); default 64.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Hosts the actor may call over HTTP: `host`, `host:port`, `*.domain`
    /// or `*`. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Resource limits of each call.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// How instances are reused between events.
    #[serde(default)]
    pub instances: InstancesSpec,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// What happens to events that end dead.
    #[serde(default)]
    pub dead_letter: DeadLetterSpec,
    /// `[[schedules]]`: events fired on a cron schedule through the
    /// group's `<group>.schedule` topic (wactor-delivery's `schedule`
    /// module has the fields and the templates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleSpec>,
    /// Values the actor reads with the config import: strings, or
    /// integers, floats and booleans passed as their TOML text
    /// (`config_values` has the rule; arrays, tables and dates are
    /// refused).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "config_values::deserialize"
    )]
    pub config: BTreeMap<String, String>,
}

/// Most `[[schedules]]` one actor may have: 100.
pub const MAX_SCHEDULES: usize = 100;

/// Default of [`ActorManifest::max_in_flight`].
pub fn default_max_in_flight() -> usize {
    64
}

/// `[limits]`: what one call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Linear memory of an instance; default `"64MiB"`.
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    /// Wall time of one call; default `"10s"`.
    #[serde(default = "default_call_timeout", with = "duration_str")]
    pub call_timeout: Duration,
    /// Records one call may emit; default 1000.
    #[serde(default = "default_max_emits")]
    pub max_emits: usize,
    /// Bytes (topics, keys, values, headers) one call may emit; default
    /// `"16MiB"`.
    #[serde(default = "default_max_emit_bytes")]
    pub max_emit_bytes: ByteSize,
    /// Distinct state keys one call may set or delete; default 1000.
    #[serde(default = "default_max_state_writes")]
    pub max_state_writes: usize,
    /// Bytes (keys and values) of one call's state writes; default
    /// `"16MiB"`.
    #[serde(default = "default_max_state_bytes")]
    pub max_state_bytes: ByteSize,
}

/// Largest `limits.max_emits` and `limits.max_state_writes`.
pub const MAX_WRITES_PER_CALL: usize = 100_000;

/// Largest `limits.max_emit_bytes` and `limits.max_state_bytes`: 256 MiB.
pub const MAX_BYTES_PER_CALL: u64 = 256 * 1024 * 1024;

/// Default memory limit: 64 MiB.
pub fn default_memory() -> ByteSize {
    ByteSize(64 * 1024 * 1024)
}

/// Default call deadline: 10 s.
pub fn default_call_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Default emits per call: 1000.
pub fn default_max_emits() -> usize {
    1000
}

/// Default emitted bytes per call: 16 MiB.
pub fn default_max_emit_bytes() -> ByteSize {
    ByteSize(16 * 1024 * 1024)
}

/// Default state keys written per call: 1000.
pub fn default_max_state_writes() -> usize {
    1000
}

/// Default state bytes written per call: 16 MiB.
pub fn default_max_state_bytes() -> ByteSize {
    ByteSize(16 * 1024 * 1024)
}

impl Default for LimitsSpec {
    fn default() -> Self {
        LimitsSpec {
            memory: default_memory(),
            call_timeout: default_call_timeout(),
            max_emits: default_max_emits(),
            max_emit_bytes: default_max_emit_bytes(),
            max_state_writes: default_max_state_writes(),
            max_state_bytes: default_max_state_bytes(),
        }
    }
}

/// `[instances]`: how instances are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstancesSpec {
    /// `warm` (default: reuse an instance for up to `max_uses` events, drop
    /// it after any trap) or `fresh` (a new instance per event).
    #[serde(default)]
    pub mode: InstanceMode,
    /// Events one warm instance serves before it is replaced; default 10000.
    #[serde(default = "default_max_uses")]
    pub max_uses: u32,
    /// Idle warm instances kept per version; default 16.
    #[serde(default = "default_max_idle")]
    pub max_idle: usize,
}

/// Default events per warm instance: 10000.
pub fn default_max_uses() -> u32 {
    10_000
}

/// Default idle warm instances: 16.
pub fn default_max_idle() -> usize {
    16
}

impl Default for InstancesSpec {
    fn default() -> Self {
        InstancesSpec {
            mode: InstanceMode::default(),
            max_uses: default_max_uses(),
            max_idle: default_max_idle(),
        }
    }
}

/// `[dead_letter]`: what happens to events that end dead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterSpec {
    /// Also produce each dead letter to this Kafka topic, with its context
    /// in headers. `"default"` means `<topic>.<actor>.dlq`; absent means no
    /// mirror. A name must end in `.dlq`: that suffix is reserved for the
    /// host, so no actor can emit into a dead-letter mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Retention by age: dead letters of this actor older than this (since
    /// they died) are evicted by the host's periodic sweep; default
    /// `"30d"`, `"none"` keeps them until they are re-driven or discarded.
    #[serde(default = "default_dead_letter_max_age", with = "duration_str::option")]
    pub max_age: Option<Duration>,
    /// Retention by count: at most this many dead letters of this actor
    /// are kept, the oldest are evicted first; default 100000, at least 1.
    #[serde(default = "default_dead_letter_max_count")]
    pub max_count: u64,
    /// What the event's lane does once it is dead: `continue` (default:
    /// later events of its key, or its partition under `partition`
    /// ordering, run on) or `block` (they wait, held, behind the dead
    /// event until an operator re-drives or discards its dead letter).
    #[serde(default)]
    pub on_dead: OnDead,
}

/// `start`: where a new actor starts reading (partitions its group never
/// committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest record the broker keeps.
    Earliest,
    /// The records produced after the partition is first assigned.
    Latest,
    /// The first record whose timestamp is at or after this time (ms since
    /// the Unix epoch), then every record after it.
    At(i64),
}

impl std::fmt::Display for StartPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartPosition::Earliest => f.write_str("earliest"),
            StartPosition::Latest => f.write_str("latest"),
            StartPosition::At(ms) => match chrono::DateTime::from_timestamp_millis(*ms) {
                Some(at) => f.write_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                None => write!(f, "{ms}"),
            },
        }
    }
}

impl std::str::FromStr for StartPosition {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "earliest" => Ok(StartPosition::Earliest),
            "latest" => Ok(StartPosition::Latest),
            other => chrono::DateTime::parse_from_rfc3339(other)
                .map(|at| StartPosition::At(at.timestamp_millis()))
                .map_err(|_| {
                    format!(
                        "{other:?}: expected \"earliest\", \"latest\" or an RFC 3339 time \
                         (2024-07-10T00:00:00Z)"
                    )
                }),
        }
    }
}

impl Serialize for StartPosition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for StartPosition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `[dead_letter] on_dead`: whether a dead event blocks its lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDead {
    /// Later events of the lane run on (the default).
    #[default]
    Continue,
    /// Later events of the lane wait behind the dead event until its dead
    /// letter is re-driven (it runs first) or discarded. Under `none`
    /// ordering there is nothing behind an event, so nothing waits.
    Block,
}

/// Default [`DeadLetterSpec::max_age`]: 30 days.
pub fn default_dead_letter_max_age() -> Option<Duration> {
    Some(Duration::from_secs(30 * 24 * 60 * 60))
}

/// Default [`DeadLetterSpec::max_count`]: 100,000.
pub fn default_dead_letter_max_count() -> u64 {
    100_000
}

impl Default for DeadLetterSpec {
    fn default() -> Self {
        DeadLetterSpec {
            topic: None,
            max_age: default_dead_letter_max_age(),
            max_count: default_dead_letter_max_count(),
            on_dead: OnDead::Continue,
        }
    }
}

/// The language of an actor's source.
///
/// Python and JavaScript components carry their interpreter (componentize-py
/// embeds CPython, componentize-js SpiderMonkey): 13 to 19 MB of code, 8 to
/// 12 MiB of linear memory before the first event, 8 to 16 s to compile
/// once, and 0.5 to 2 ms for a fresh instance where a Rust actor takes
/// about 20 µs (docs/benchmarks.md, "Cost per language"). Their defaults
/// differ accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Rust with `wactor-sdk` (the default).
    #[default]
    Rust,
    /// Python with the `wactor` package, built by componentize-py.
    Python,
    /// JavaScript with `@wactor/sdk`, built by componentize-js.
    #[serde(alias = "javascript")]
    Js,
}

impl Language {
    /// Whether this is the default language (not written out).
    pub fn is_rust(&self) -> bool {
        matches!(self, Language::Rust)
    }

    /// The name used in manifests and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
        }
    }

    /// Default `limits.memory`: 64 MiB for Rust; 128 MiB for Python and
    /// JavaScript, whose interpreters start at 10 to 13 MiB and grow their
    /// heaps with garbage collection (8 MiB does not even instantiate).
    pub fn default_memory(&self) -> ByteSize {
        match self {
            Language::Rust => default_memory(),
            Language::Python | Language::Js => ByteSize(128 * 1024 * 1024),
        }
    }

    /// Default `instances.max_idle`: 16 for Rust; 8 for Python and
    /// JavaScript. An idle warm instance keeps little of its own (1.7 to
    /// 3.2 MiB measured for echo, its image pages shared), but each may grow
    /// to its memory limit: 8 x 128 MiB bounds an idle version at the same
    /// 1 GiB as Rust's 16 x 64 MiB (docs/benchmarks.md, "Cost per language").
    pub fn default_max_idle(&self) -> usize {
        match self {
            Language::Rust => default_max_idle(),
            Language::Python | Language::Js => 8,
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ActorManifest {
    /// Parses and validates a manifest's text.
    ///
    /// `limits.memory` and `instances.max_idle`, when absent, take the
    /// defaults of the manifest's [`Language`].
    pub fn parse(text: &str) -> Result<Self> {
        let raw: toml::Table =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        let given = |table: &str, key: &str| {
            raw.get(table)
                .and_then(|t| t.as_table())
                .is_some_and(|t| t.contains_key(key))
        };
        let memory_given = given("limits", "memory");
        let max_idle_given = given("instances", "max_idle");
        let mut manifest: ActorManifest =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        if !memory_given {
            manifest.limits.memory = manifest.language.default_memory();
        }
        if !max_idle_given {
            manifest.instances.max_idle = manifest.language.default_max_idle();
        }
        manifest.validate()?;
        Ok(manifest)
    }

    /// Reads, parses and validates a manifest file; every error names
    /// the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| ManifestError::in_file(path, e))
    }

    /// The manifest as TOML text (what the registry keeps).
    pub fn to_toml(&self) -> String {
        // Serializing this plain struct cannot fail; fall back to a
        // comment rather than panic if toml ever changes its mind.
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot serialize: {e}\n"))
    }

    /// Checks every rule that serde cannot express.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if self.lean && self.language != Language::Rust {
            return Err(ManifestError::invalid(
                "lean",
                format!(
                    "a lean build is for Rust actors; a {} actor needs WASI (remove `lean`)",
                    self.language
                ),
            ));
        }
        if self.topics.is_empty() {
            return Err(ManifestError::invalid(
                "topics",
                "give at least one topic to read",
            ));
        }
        for topic in &self.topics {
            validate_topic("topics", topic)?;
        }
        let mut unique = self.topics.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != self.topics.len() {
            return Err(ManifestError::invalid("topics", "a topic is listed twice"));
        }
        if let Some(group) = &self.group {
            if group.trim().is_empty() || group.len() > 255 {
                return Err(ManifestError::invalid(
                    "group",
                    "must be 1 to 255 characters",
                ));
            }
        }
        if !(1..=10_000).contains(&self.max_in_flight) {
            return Err(ManifestError::invalid(
                "max_in_flight",
                format!("must be between 1 and 10000, not {}", self.max_in_flight),
            ));
        }
        for pattern in &self.allowed_hosts {
            validate_host_pattern(pattern)?;
        }
        let limits = &self.limits;
        if limits.memory.0 < 1024 * 1024 || limits.memory.0 > 4 * 1024 * 1024 * 1024 {
            return Err(ManifestError::invalid(
                "limits.memory",
                format!("must be between 1MiB and 4GiB, not {}", limits.memory),
            ));
        }
        if limits.call_timeout < Duration::from_millis(1)
            || limits.call_timeout > Duration::from_secs(15 * 60)
        {
            return Err(ManifestError::invalid(
                "limits.call_timeout",
                "must be between 1ms and 15m",
            ));
        }
        for (field, value) in [
            ("limits.max_emits", limits.max_emits),
            ("limits.max_state_writes", limits.max_state_writes),
        ] {
            if value > MAX_WRITES_PER_CALL {
                return Err(ManifestError::invalid(
                    field,
                    format!("must be at most {MAX_WRITES_PER_CALL}, not {value}"),
                ));
            }
        }
        for (field, value) in [
            ("limits.max_emit_bytes", limits.max_emit_bytes),
            ("limits.max_state_bytes", limits.max_state_bytes),
        ] {
            if value.0 > MAX_BYTES_PER_CALL {
                return Err(ManifestError::invalid(
                    field,
                    format!("must be at most 256MiB, not {value}"),
                ));
            }
        }
        if self.instances.max_uses == 0 {
            return Err(ManifestError::invalid(
                "instances.max_uses",
                "must be at least 1",
            ));
        }
        self.retry
            .validate()
            .map_err(|e| ManifestError::invalid("retry", e.to_string()))?;
        if let Some(topic) = &self.dead_letter.topic {
            if topic != "default" {
                validate_topic("dead_letter.topic", topic)?;
                if !topic.to_ascii_lowercase().ends_with(".dlq") {
                    return Err(ManifestError::invalid(
                        "dead_letter.topic",
                        format!(
                            "{topic:?} must end in \".dlq\" (or be \"default\"): that suffix is \
                             reserved for dead-letter mirrors, so that no actor can emit into one"
                        ),
                    ));
                }
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, spec) in self.schedules.iter().enumerate() {
            if !names.insert(spec.name.as_str()) {
                return Err(ManifestError::invalid(
                    format!("schedules[{i}].name"),
                    format!("{:?} is used by an earlier schedule", spec.name),
                ));
            }
            if spec.catch_up_window.is_zero() {
                return Err(ManifestError::invalid(
                    format!("schedules[{i}].catch_up_window"),
                    "must be more than 0s",
                ));
            }
            Schedule::parse(spec.clone())
                .map_err(|e| ManifestError::invalid(format!("schedules[{i}]"), e.to_string()))?;
        }
        if self.schedules.len() > MAX_SCHEDULES {
            return Err(ManifestError::invalid(
                "schedules",
                format!("at most {MAX_SCHEDULES} schedules per actor"),
            ));
        }
        if self.dead_letter.max_count == 0 {
            return Err(ManifestError::invalid(
                "dead_letter.max_count",
                "must be at least 1 (discard dead letters with `wactor dlq discard` instead)",
            ));
        }
        if self.dead_letter.max_age == Some(Duration::ZERO) {
            return Err(ManifestError::invalid(
                "dead_letter.max_age",
                "must be more than 0s, or \"none\"",
            ));
        }
        for key in self.config.keys() {
            if key.is_empty() || key.len() > 256 {
                return Err(ManifestError::invalid(
                    "config",
                    "keys must be 1 to 256 characters",
                ));
            }
        }
        Ok(())
    }

    /// The consumer group: the manifest's, or `wactor.<name>`.
    pub fn group(&self) -> String {
        self.group
            .clone()
            .unwrap_or_else(|| format!("wactor.{}", self.name))
    }

    /// The dead-letter mirror topic for events read from `source_topic`,
    /// if the manifest asks for one.
    pub fn dead_letter_topic(&self, source_topic: &str) -> Option<String> {
        match self.dead_letter.topic.as_deref() {
            None => None,
            Some("default") => Some(format!("{source_topic}.{}.dlq", self.name)),
            Some(topic) => Some(topic.to_string()),
        }
    }

    /// The component path resolved against the manifest's directory.
    pub fn component_path(&self, manifest_dir: &Path) -> Option<PathBuf> {
        self.component.as_ref().map(|p| manifest_dir.join(p))
    }

    /// The runtime settings of version `version` of this actor.
    pub fn actor_settings(&self, version: u64) -> ActorSettings {
        let mut settings = ActorSettings::new(&self.name);
        settings.version = version;
        settings.config = Arc::new(self.config.clone());
        settings.allowed_hosts = self.allowed_hosts.clone().into();
        settings.limits = Limits {
            memory_bytes: self.limits.memory.0,
            call_timeout: self.limits.call_timeout,
            max_emits: self.limits.max_emits,
            max_emit_bytes: usize::try_from(self.limits.max_emit_bytes.0).unwrap_or(usize::MAX),
            max_state_writes: self.limits.max_state_writes,
            max_state_bytes: usize::try_from(self.limits.max_state_bytes.0).unwrap_or(usize::MAX),
            ..Limits::default()
        };
        settings.instance_mode = self.instances.mode;
        settings.max_uses_per_instance = self.instances.max_uses;
        settings.max_idle_instances = self.instances.max_idle;
        settings
    }

    /// Whether switching from `self` to `next` needs the actor's consumer
    /// restarted (its subscription or grouping changed), as opposed to a
    /// version swap under a running consumer.
    pub fn needs_resubscribe(&self, next: &ActorManifest) -> bool {
        self.topics != next.topics
            || self.group() != next.group()
            || self.ordering != next.ordering
            || self.max_in_flight != next.max_in_flight
            || self.schedules.is_empty() != next.schedules.is_empty()
    }
}

/// Checks an actor name.
pub fn validate_name(name: &str) -> Result<()> {
    let ok_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !ok_start || !ok_chars || name.len() > MAX_NAME_LEN {
        return Err(ManifestError::invalid(
            "name",
            format!(
                "{name:?} is not a valid actor name: use 1 to {MAX_NAME_LEN} lower-case letters, \
                 digits, '-', '_' or '.', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Checks a Kafka topic name (Kafka's own rules).
pub fn validate_topic(field: &str, topic: &str) -> Result<()> {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ManifestError::invalid(
            field,
            format!(
                "{topic:?} is not a valid Kafka topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-')"
            ),
        ))
    }
}

fn validate_host_pattern(pattern: &str) -> Result<()> {
    let bad = pattern.trim().is_empty()
        || pattern.contains("://")
        || pattern.contains('/')
        || pattern.chars().any(char::is_whitespace);
    if bad {
        return Err(ManifestError::invalid(
            "allowed_hosts",
            format!("{pattern:?} is not a host pattern: write `host`, `host:port`, `*.domain` or `*` (no scheme, no path)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        name = "echo"
        topics = ["orders"]
    "#;

    fn field_of(err: ManifestError) -> String {
        match err {
            ManifestError::Invalid { field, .. } => field,
            other => panic!("expected an invalid field, got {other}"),
        }
    }

    #[test]
    fn batch_is_off_unless_said_and_written_out_only_when_on() {
        let plain = ActorManifest::parse(MINIMAL).unwrap();
        assert!(!plain.batch);
        assert!(!plain.to_toml().contains("batch"));
        let batch = ActorManifest::parse(&format!("batch = true\n{MINIMAL}")).unwrap();
        assert!(batch.batch);
        assert_eq!(ActorManifest::parse(&batch.to_toml()).unwrap(), batch);
        let err = ActorManifest::parse(&format!("batch = \"yes\"\n{MINIMAL}")).unwrap_err();
        assert!(err.to_string().contains("batch"), "{err}");
    }

    #[test]
    fn lean_is_off_unless_said_written_out_only_when_on_and_only_for_rust() {
        let plain = ActorManifest::parse(MINIMAL).unwrap();
        assert!(!plain.lean);
        assert!(!plain.to_toml().contains("lean"));
        let lean = ActorManifest::parse(&format!("lean = true\n{MINIMAL}")).unwrap();
        assert!(lean.lean);
        assert_eq!(ActorManifest::parse(&lean.to_toml()).unwrap(), lean);
        for language in ["python", "js"] {
            let err = ActorManifest::parse(&format!(
                "lean = true\nlanguage = \"{language}\"\n{MINIMAL}"
            ))
            .unwrap_err();
            assert_eq!(field_of(err), "lean");
        }
    }

    #[test]
    fn the_language_picks_memory_and_idle_defaults_that_the_manifest_can_override() {
        let rust = ActorManifest::parse(MINIMAL).unwrap();
        assert_eq!(rust.language, Language::Rust);
        assert_eq!(rust.limits.memory, ByteSize(64 * 1024 * 1024));
        assert_eq!(rust.instances.max_idle, 16);
        assert!(
            !rust.to_toml().contains("language"),
            "rust is not written out"
        );

        let python = ActorManifest::parse(&format!("language = \"python\"\n{MINIMAL}")).unwrap();
        assert_eq!(python.language, Language::Python);
        assert_eq!(python.limits.memory, ByteSize(128 * 1024 * 1024));
        assert_eq!(python.instances.max_idle, 8);
        // What the registry keeps reads back the same.
        assert_eq!(ActorManifest::parse(&python.to_toml()).unwrap(), python);

        let js = ActorManifest::parse(&format!(
            "language = \"javascript\"\n{MINIMAL}\n[limits]\nmemory = \"32MiB\"\n[instances]\nmax_idle = 2\n"
        ))
        .unwrap();
        assert_eq!(js.language, Language::Js);
        assert_eq!(js.limits.memory, ByteSize(32 * 1024 * 1024));
        assert_eq!(js.instances.max_idle, 2);

        let err = ActorManifest::parse(&format!("language = \"ruby\"\n{MINIMAL}")).unwrap_err();
        assert!(err.to_string().contains("ruby"), "{err}");
    }

    #[test]
    fn a_minimal_manifest_gets_the_documented_defaults() {
        let m = ActorManifest::parse(MINIMAL).unwrap();
        assert_eq!(m.group(), "wactor.echo");
        assert_eq!(m.ordering, OrderingMode::Key);
        assert_eq!(m.max_in_flight, 64);
        assert_eq!(m.limits.memory, ByteSize(64 * 1024 * 1024));
        assert_eq!(m.limits.call_timeout, Duration::from_secs(10));
        assert_eq!(m.limits.max_state_writes, 1000);
        assert_eq!(m.limits.max_state_bytes, ByteSize(16 * 1024 * 1024));
        let limits = m.actor_settings(1).limits;
        assert_eq!(
            (limits.max_state_writes, limits.max_state_bytes),
            (1000, 16 * 1024 * 1024)
        );
        assert_eq!(m.instances.mode, InstanceMode::Warm);
        assert_eq!(m.retry, RetryPolicy::default());
        assert_eq!(m.dead_letter_topic("orders"), None);
        assert!(m.allowed_hosts.is_empty());
        assert_eq!(
            m.dead_letter.max_age,
            Some(Duration::from_secs(30 * 24 * 3600))
        );
        assert_eq!(m.dead_letter.max_count, 100_000);
        assert_eq!(m.dead_letter.on_dead, OnDead::Continue);
    }

    #[test]
    fn the_start_position_is_earliest_latest_or_a_time() {
        let start = |text: &str| {
            ActorManifest::parse(&format!("name = \"a\"\ntopics = [\"t\"]\n{text}"))
                .map(|m| m.start)
        };
        assert_eq!(start("").unwrap(), None);
        assert_eq!(
            start("start = \"earliest\"").unwrap(),
            Some(StartPosition::Earliest)
        );
        assert_eq!(
            start("start = \"latest\"").unwrap(),
            Some(StartPosition::Latest)
        );
        assert_eq!(
            start("start = \"2024-07-10T03:00:00+03:00\"").unwrap(),
            Some(StartPosition::At(1_720_569_600_000))
        );
        assert!(start("start = \"yesterday\"").is_err());
        assert_eq!(
            StartPosition::At(1_720_569_600_000).to_string(),
            "2024-07-10T00:00:00.000Z"
        );
    }

    #[test]
    fn schedules_are_read_and_checked() {
        let m = ActorManifest::parse(
            "name = \"a\"\ntopics = [\"t\"]\n\
             [[schedules]]\nname = \"nightly\"\ncron = \"30 1 * * *\"\ntimezone = \"Asia/Riyadh\"\n\
             payload = '{\"date\": \"{{scheduled_date - 1d}}\"}'\ncatch_up = \"all\"\ncatch_up_window = \"3d\"\n\
             [[schedules]]\nname = \"minutely\"\ncron = \"* * * * *\"\n",
        )
        .unwrap();
        assert_eq!(m.schedules.len(), 2);
        assert_eq!(m.schedules[0].timezone, "Asia/Riyadh");
        assert_eq!(
            m.schedules[0].catch_up,
            wactor_delivery::schedule::CatchUp::All
        );
        assert_eq!(m.schedules[1].timezone, "UTC");
        for (text, field) in [
            (
                "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\n[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"",
                "schedules[1].name",
            ),
            ("[[schedules]]\nname = \"x\"\ncron = \"nope\"", "schedules[0]"),
            (
                "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\ntimezone = \"Nowhere/City\"",
                "schedules[0]",
            ),
            (
                "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\ncatch_up_window = \"0s\"",
                "schedules[0].catch_up_window",
            ),
        ] {
            let err = ActorManifest::parse(&format!("name = \"a\"\ntopics = [\"t\"]\n{text}"))
                .unwrap_err();
            assert!(
                matches!(&err, ManifestError::Invalid { field: f, .. } if f == field),
                "{text}: {err}"
            );
        }
        assert!(ActorManifest::parse(
            "name = \"a\"\ntopics = [\"t\"]\n[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\nwhen = 1"
        )
        .is_err());
    }

    #[test]
    fn dead_letter_retention_is_read_and_checked() {
        let m = ActorManifest::parse(
            "name = \"a\"\ntopics = [\"t\"]\n[dead_letter]\nmax_age = \"7d\"\nmax_count = 10\non_dead = \"block\"",
        )
        .unwrap();
        assert_eq!(m.dead_letter.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(m.dead_letter.max_count, 10);
        assert_eq!(m.dead_letter.on_dead, OnDead::Block);
        assert!(ActorManifest::parse(
            "name = \"a\"\ntopics = [\"t\"]\n[dead_letter]\non_dead = \"stop\""
        )
        .is_err());
        let forever = ActorManifest::parse(
            "name = \"a\"\ntopics = [\"t\"]\n[dead_letter]\nmax_age = \"none\"",
        )
        .unwrap();
        assert_eq!(forever.dead_letter.max_age, None);
        for (text, field) in [
            ("max_count = 0", "dead_letter.max_count"),
            ("max_age = \"0s\"", "dead_letter.max_age"),
        ] {
            let err = ActorManifest::parse(&format!(
                "name = \"a\"\ntopics = [\"t\"]\n[dead_letter]\n{text}"
            ))
            .unwrap_err();
            assert_eq!(field_of(err), field);
        }
        // The manifest round-trips through the registry's TOML text.
        assert_eq!(ActorManifest::parse(&m.to_toml()).unwrap(), m);
    }

    #[test]
    fn a_full_manifest_reads_every_field() {
        let m = ActorManifest::parse(
            r#"
            name = "payment-reversal"
            component = "target/wasm32-wasip2/release/payment_reversal.wasm"
            topics = ["bookings", "bookings.retry"]
            group = "payments"
            ordering = "partition"
            max_in_flight = 8
            allowed_hosts = ["wallet.internal:8080", "*.example.com"]
            [limits]
            memory = "32MiB"
            call_timeout = "2s"
            max_emits = 10
            max_state_writes = 20
            max_state_bytes = "1MiB"
            [instances]
            mode = "fresh"
            [retry]
            max_attempts = 3
            initial_backoff = "100ms"
            [dead_letter]
            topic = "default"
            [config]
            wallet_url = "http://wallet.internal:8080"
            "#,
        )
        .unwrap();
        assert_eq!(m.group(), "payments");
        assert_eq!(m.ordering, OrderingMode::Partition);
        assert_eq!(
            m.dead_letter_topic("bookings").as_deref(),
            Some("bookings.payment-reversal.dlq")
        );
        let settings = m.actor_settings(3);
        assert_eq!(settings.version, 3);
        assert_eq!(settings.limits.memory_bytes, 32 * 1024 * 1024);
        assert_eq!(settings.limits.call_timeout, Duration::from_secs(2));
        assert_eq!(settings.limits.max_emits, 10);
        assert_eq!(settings.limits.max_state_writes, 20);
        assert_eq!(settings.limits.max_state_bytes, 1024 * 1024);
        assert_eq!(settings.instance_mode, InstanceMode::Fresh);
        assert_eq!(
            settings.config.get("wallet_url").map(String::as_str),
            Some("http://wallet.internal:8080")
        );
        assert_eq!(
            &*settings.allowed_hosts,
            ["wallet.internal:8080", "*.example.com"]
        );
        assert_eq!(
            m.component_path(Path::new("/srv/actors")),
            Some(PathBuf::from(
                "/srv/actors/target/wasm32-wasip2/release/payment_reversal.wasm"
            ))
        );
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_syntax_errors_with_a_location() {
        let err =
            ActorManifest::parse("name = \"a\"\ntopics = [\"t\"]\ntopic = \"x\"").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("topic"), "{text}");
        assert!(text.contains("line 3"), "{text}");
        let err = ActorManifest::parse("name = \"a\"\ntopics = \"t\"").unwrap_err();
        assert!(matches!(err, ManifestError::Syntax(_)), "{err}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            ("name = \"Bad Name\"\ntopics = [\"t\"]", "name"),
            ("name = \"\"\ntopics = [\"t\"]", "name"),
            ("name = \"a\"\ntopics = []", "topics"),
            ("name = \"a\"\ntopics = [\"t\", \"t\"]", "topics"),
            ("name = \"a\"\ntopics = [\"bad topic\"]", "topics"),
            (
                "name = \"a\"\ntopics = [\"t\"]\nmax_in_flight = 0",
                "max_in_flight",
            ),
            (
                "name = \"a\"\ntopics = [\"t\"]\nallowed_hosts = [\"http://x/\"]",
                "allowed_hosts",
            ),
            (
                "name = \"a\"\ntopics = [\"t\"]\n[limits]\nmemory = \"10KiB\"",
                "limits.memory",
            ),
            (
                "name = \"a\"\ntopics = [\"t\"]\n[limits]\ncall_timeout = \"1h\"",
                "limits.call_timeout",
            ),
            (
                "name = \"a\"\ntopics = [\"t\"]\n[retry]\nmax_attempts = 0",
                "retry",
            ),
            (
                "name = \"a\"\ntopics = [\"t\"]\n[dead_letter]\ntopic = \"a b\"",
                "dead_letter.topic",
            ),
            (
                "name = \"a\"\ntopics = [\"t\"]\n[dead_letter]\ntopic = \"dead-orders\"",
                "dead_letter.topic",
            ),
            (
                "name = \"a\"\ntopics = [\"t\"]\n[limits]\nmax_state_writes = 100001",
                "limits.max_state_writes",
            ),
            (
                "name = \"a\"\ntopics = [\"t\"]\n[limits]\nmax_state_bytes = \"1GiB\"",
                "limits.max_state_bytes",
            ),
            (
                "name = \"a\"\ntopics = [\"t\"]\n[limits]\nmax_emits = 200000",
                "limits.max_emits",
            ),
        ];
        for (text, field) in cases {
            let err = ActorManifest::parse(text).expect_err(text);
            assert_eq!(field_of(err), field, "{text}");
        }
    }

    #[test]
    fn a_dead_letter_mirror_named_by_the_user_must_end_in_dlq() {
        let m = ActorManifest::parse(
            "name = \"a\"\ntopics = [\"t\"]\n[dead_letter]\ntopic = \"orders-dead.dlq\"",
        )
        .unwrap();
        assert_eq!(m.dead_letter_topic("t").as_deref(), Some("orders-dead.dlq"));
        let err = ActorManifest::parse(
            "name = \"a\"\ntopics = [\"t\"]\n[dead_letter]\ntopic = \"orders-dead\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("must end in \".dlq\""), "{err}");
    }

    #[test]
    fn a_manifest_writes_and_reads_back_the_same() {
        let m = ActorManifest::parse(
            "name = \"a\"\ntopics = [\"t\"]\n[config]\nk = \"v\"\n[retry]\nmax_age = \"none\"",
        )
        .unwrap();
        let again = ActorManifest::parse(&m.to_toml()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn config_takes_numbers_and_booleans_as_their_text_and_refuses_the_rest_by_key() {
        let m = ActorManifest::parse(
            "name = \"a\"\ntopics = [\"t\"]\n[config]\nthreshold_cents = 200000\n\
             negative = -3\nhex = 0x10\nspaced = 1_000\nratio = 2.5\nwhole = 3.0\n\
             enabled = true\noff = false\nurl = \"http://x\"\n",
        )
        .unwrap();
        let config: Vec<(&str, &str)> = m
            .config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            config,
            [
                ("enabled", "true"),
                ("hex", "16"),
                ("negative", "-3"),
                ("off", "false"),
                ("ratio", "2.5"),
                ("spaced", "1000"),
                ("threshold_cents", "200000"),
                ("url", "http://x"),
                ("whole", "3.0"),
            ]
        );
        // The actor sees the same text.
        let settings = m.actor_settings(1);
        assert_eq!(
            settings.config.get("threshold_cents").map(String::as_str),
            Some("200000")
        );
        // What the registry keeps reads back the same.
        assert_eq!(ActorManifest::parse(&m.to_toml()).unwrap(), m);

        for (value, words) in [
            ("[1, 2]", "an array"),
            ("{ a = 1 }", "a table"),
            ("1979-05-27T07:32:00Z", "a date"),
            ("1979-05-27", "a date"),
        ] {
            let err = ActorManifest::parse(&format!(
                "name = \"a\"\ntopics = [\"t\"]\n[config]\nok = 1\nlimits = {value}\n"
            ))
            .unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("config key `limits`") && text.contains(words),
                "{value}: {text}"
            );
        }
        let err =
            ActorManifest::parse("name = \"a\"\ntopics = [\"t\"]\n[config.nested]\nk = \"v\"\n")
                .unwrap_err();
        assert!(err.to_string().contains("config key `nested`"), "{err}");
    }

    #[test]
    fn every_error_of_a_manifest_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (text, kind) in [
            (
                "name = \"a\"\ntopics = [\"t\"]\ntopic = \"x\"",
                "unknown field",
            ),
            ("name = \"a\"\ntopics = []", "manifest field `topics`"),
            ("[package]\nname = \"greeter\"\n", "`package`"),
        ] {
            let path = dir.path().join("actor.toml");
            std::fs::write(&path, text).unwrap();
            let err = ActorManifest::load(&path).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("{}: ", path.display())) && message.contains(kind),
                "{message}"
            );
        }
        let path = dir.path().join("actor.toml");
        std::fs::write(&path, "name = \"a\"\ntopics = []").unwrap();
        let err = ActorManifest::load(&path).unwrap_err();
        assert!(
            matches!(err.without_file(), ManifestError::Invalid { field, .. } if field == "topics")
        );
        let missing = ActorManifest::load(&dir.path().join("none.toml")).unwrap_err();
        assert!(missing.to_string().contains("none.toml"), "{missing}");
    }

    #[test]
    fn resubscribe_is_needed_only_for_subscription_changes() {
        let a = ActorManifest::parse(MINIMAL).unwrap();
        let mut b = a.clone();
        b.config.insert("k".into(), "v".into());
        b.retry.max_attempts = 9;
        assert!(!a.needs_resubscribe(&b));
        b.topics.push("more".into());
        assert!(a.needs_resubscribe(&b));
        let mut c = a.clone();
        c.ordering = OrderingMode::None;
        assert!(a.needs_resubscribe(&c));
    }
}
