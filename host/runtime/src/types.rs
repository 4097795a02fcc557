//! The runtime's own data types: what goes into a call (an [`Event`], an
//! actor's [`ActorSettings`]) and what comes out of it (an [`Invocation`]).
//!
//! These are plain Rust types on purpose: the bindgen-generated wasmtime types
//! stay inside this crate, so the Kafka, delivery and CLI layers never depend
//! on wasmtime.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One Kafka record as handed to an actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Topic the record was read from.
    pub topic: String,
    /// Partition within the topic.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Record timestamp in milliseconds since the Unix epoch, if known.
    pub timestamp_ms: Option<i64>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub payload: Vec<u8>,
    /// Record headers in producer order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Delivery attempt, 1-based.
    pub attempt: u32,
}

/// What an actor said about an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Handled; effects are applied.
    Done,
    /// Try again later.
    Retry {
        /// Why the attempt failed.
        reason: String,
        /// The delay the actor asked for, if any.
        #[serde(with = "opt_millis", default)]
        delay: Option<Duration>,
    },
    /// Never going to work; dead-letter it.
    Dead {
        /// Why.
        reason: String,
    },
}

/// Why a call ended without an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrapKind {
    /// The guest panicked or executed `unreachable`.
    Panic,
    /// The call ran past its deadline (CPU loop or a blocked host call).
    Deadline,
    /// The instance tried to grow its memory past the limit.
    MemoryLimit,
    /// Any other trap (stack overflow, out-of-bounds access, a host error).
    Other,
    /// The call could not start: every instance slot of the host's pooling
    /// allocator stayed in use until the call's deadline (the host is
    /// overloaded, or `runtime.pool_instances` is too small).
    PoolExhausted,
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrapKind::Panic => "panic",
            TrapKind::Deadline => "deadline exceeded",
            TrapKind::MemoryLimit => "memory limit exceeded",
            TrapKind::Other => "trap",
            TrapKind::PoolExhausted => "no instance slot free",
        })
    }
}

/// A call that trapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trap {
    /// The class of failure.
    pub kind: TrapKind,
    /// Human-readable detail: the panic message the guest wrote to stderr,
    /// or wasmtime's trap description.
    pub message: String,
}

impl std::fmt::Display for Trap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CallResult {
    /// The actor returned an outcome.
    Returned(Outcome),
    /// The actor trapped; it counts as a failed attempt.
    Trapped(Trap),
}

impl CallResult {
    /// True when the call returned `done`, i.e. its effects must be applied.
    pub fn is_done(&self) -> bool {
        matches!(self, CallResult::Returned(Outcome::Done))
    }
}

/// A record an actor emitted during a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmittedRecord {
    /// Destination topic.
    pub topic: String,
    /// Key: the actor's, or `None` to mean "the source event's key".
    pub key: Option<Vec<u8>>,
    /// Value.
    pub payload: Vec<u8>,
    /// Headers the actor set (the Kafka layer adds the source headers).
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A pending change to an actor's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", content = "value", rename_all = "snake_case")]
pub enum StateWrite {
    /// Set the key to this value.
    Set(Vec<u8>),
    /// Remove the key.
    Delete,
}

/// The effects of one call, kept aside until the outcome is known.
///
/// [`ActorInstanceSet::invoke`](crate::LoadedActor::invoke) returns them
/// only for a call that returned `done`; for every other result they are
/// empty, which is how effects are all-or-nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    /// Records to produce, in emit order.
    pub emits: Vec<EmittedRecord>,
    /// State changes, last write per key wins.
    pub state_writes: BTreeMap<String, StateWrite>,
}

impl Effects {
    /// True when the call had no effects.
    pub fn is_empty(&self) -> bool {
        self.emits.is_empty() && self.state_writes.is_empty()
    }
}

/// Severity of an actor log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal information.
    Info,
    /// Something unexpected.
    Warn,
    /// A failure.
    Error,
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        })
    }
}

/// One line an actor logged (through the logging import, or on stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// The text, truncated to the runtime's per-line limit.
    pub message: String,
}

/// The full result of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// Outcome or trap.
    pub result: CallResult,
    /// Effects to apply; empty unless the result is `done`.
    pub effects: Effects,
    /// What the actor logged during the call.
    pub logs: Vec<LogLine>,
    /// Wall time of the call, instantiation included.
    #[serde(with = "millis")]
    pub duration: Duration,
    /// Whether the call ran on a freshly created instance.
    pub fresh_instance: bool,
}

/// How instances are reused between events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceMode {
    /// Keep warm instances and reuse each for up to `max_uses` events; an
    /// instance that traps or hits a limit is dropped. Globals and linear
    /// memory survive between events, as in a Lambda warm environment.
    #[default]
    Warm,
    /// A fresh instance for every event: nothing survives between events.
    Fresh,
}

/// Resource limits for one actor's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Maximum linear memory per instance, in bytes.
    pub memory_bytes: u64,
    /// Deadline of one call (instantiation excluded).
    #[serde(with = "millis")]
    pub call_timeout: Duration,
    /// Maximum records one call may emit; `emit.send` refuses more.
    pub max_emits: usize,
    /// Maximum total topic+key+payload+header bytes one call may emit;
    /// `emit.send` refuses a record that would go past it.
    pub max_emit_bytes: usize,
    /// Maximum distinct state keys one call may set or delete. A write to
    /// a key the call already wrote replaces that write and is not counted
    /// again. A write beyond it is refused (see [`Limits::max_state_bytes`]).
    pub max_state_writes: usize,
    /// Maximum bytes (keys plus values) of one call's pending state writes;
    /// a write that replaces an earlier one of the same key gives back the
    /// earlier one's bytes. A write beyond it is refused: it is not kept,
    /// and a call that then returns `done` is reported as a `retry` whose
    /// reason names the limit, so that no partial set of writes is applied.
    pub max_state_bytes: usize,
    /// Maximum log lines kept per call, stdout/stderr lines included (later
    /// lines are counted, not kept).
    pub max_log_lines: usize,
    /// Maximum bytes of log text kept per call (each line is also cut at
    /// 4 KiB); later lines are counted, not kept.
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 * 1024 * 1024,
            call_timeout: Duration::from_secs(10),
            max_emits: 1000,
            max_emit_bytes: 16 * 1024 * 1024,
            max_state_writes: 1000,
            max_state_bytes: 16 * 1024 * 1024,
            max_log_lines: 1000,
            max_log_bytes: 1024 * 1024,
        }
    }
}

/// Everything about an actor version the runtime needs to run it.
#[derive(Debug, Clone)]
pub struct ActorSettings {
    /// Actor name (for logs and the state namespace).
    pub name: String,
    /// Version number, or 0 for an unregistered component (`wactor invoke`).
    pub version: u64,
    /// Configuration values the actor reads through the config import.
    pub config: Arc<BTreeMap<String, String>>,
    /// Hosts outbound HTTP may reach: `host`, `host:port`, `*.domain` or `*`.
    pub allowed_hosts: Arc<[String]>,
    /// Limits applied to every call.
    pub limits: Limits,
    /// Instance reuse strategy.
    pub instance_mode: InstanceMode,
    /// Maximum events one warm instance serves before it is replaced.
    pub max_uses_per_instance: u32,
    /// Maximum idle warm instances kept.
    pub max_idle_instances: usize,
}

impl ActorSettings {
    /// Settings with the defaults for everything but the name.
    pub fn new(name: impl Into<String>) -> Self {
        ActorSettings {
            name: name.into(),
            version: 0,
            config: Arc::new(BTreeMap::new()),
            allowed_hosts: Arc::from(Vec::new()),
            limits: Limits::default(),
            instance_mode: InstanceMode::default(),
            max_uses_per_instance: 10_000,
            max_idle_instances: 16,
        }
    }
}

/// Read access to an actor's committed state.
///
/// The store layer implements it (the runtime never opens sled); reads see
/// the state as of the last `done` call, and the runtime overlays the current
/// call's pending writes.
pub trait StateReader: Send + Sync {
    /// Reads one key. An error becomes a trap of the call: the host cannot
    /// tell the actor "no value" when it does not know.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
}

/// A [`StateReader`] with nothing in it (tests, dry runs).
#[derive(Debug, Default, Clone, Copy)]
pub struct EmptyState;

impl StateReader for EmptyState {
    fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    }
}

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
