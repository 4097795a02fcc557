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
    /// Record value: `None` for a null value (a tombstone), `Some` of an
    /// empty vector for an empty value.
    pub payload: Option<Vec<u8>>,
    /// Record headers in producer order: (name, value), the value `None`
    /// when it is null.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Delivery attempt, 1-based.
    pub attempt: u32,
}

impl Event {
    /// The value's bytes; empty for a tombstone (see
    /// [`is_tombstone`](Self::is_tombstone) to tell the two apart).
    pub fn payload_bytes(&self) -> &[u8] {
        self.payload.as_deref().unwrap_or_default()
    }

    /// True when the record's value is null (a tombstone).
    pub fn is_tombstone(&self) -> bool {
        self.payload.is_none()
    }
}

/// Most bytes of a retry or dead reason (and of any attempt error) the host
/// keeps: 4 KiB. An actor controls these strings, and they are copied into
/// every held event, changelog record and dead letter.
pub const MAX_REASON_BYTES: usize = 4 * 1024;

/// Cuts `reason` to at most [`MAX_REASON_BYTES`] bytes plus a marker: the
/// text is cut at a character boundary and `… [cut: N bytes]` is appended,
/// N being how many bytes were removed. Shorter text is returned as is.
pub fn cut_reason(mut reason: String) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut cut = MAX_REASON_BYTES;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let removed = reason.len() - cut;
    reason.truncate(cut);
    reason.push_str(&format!("… [cut: {removed} bytes]"));
    reason
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
    /// Value: `None` produces a tombstone (a null value).
    pub payload: Option<Vec<u8>>,
    /// Headers the actor set (the Kafka layer adds the source headers);
    /// a `None` value is a null header value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl EmittedRecord {
    /// The value's bytes; empty for a tombstone.
    pub fn payload_bytes(&self) -> &[u8] {
        self.payload.as_deref().unwrap_or_default()
    }

    /// True when the actor asked for a tombstone (a null value).
    pub fn is_tombstone(&self) -> bool {
        self.payload.is_none()
    }
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
    /// and `state.set`/`delete` returns an error naming the limit to the
    /// actor, which decides what to do (the SDK's `?` makes it a retry).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sixteen_mebibyte_reason_is_cut_to_four_kibibytes_with_a_marker() {
        let reason = "x".repeat(16 * 1024 * 1024);
        let cut = cut_reason(reason);
        let removed = 16 * 1024 * 1024 - MAX_REASON_BYTES;
        assert!(cut.starts_with(&"x".repeat(MAX_REASON_BYTES)));
        assert!(
            cut.ends_with(&format!("… [cut: {removed} bytes]")),
            "{}",
            &cut[MAX_REASON_BYTES..]
        );
        assert!(cut.len() < MAX_REASON_BYTES + 40);
    }

    #[test]
    fn a_reason_is_cut_at_a_character_boundary_and_short_ones_are_kept() {
        assert_eq!(cut_reason("wallet down".into()), "wallet down");
        let exact = "y".repeat(MAX_REASON_BYTES);
        assert_eq!(cut_reason(exact.clone()), exact);
        // 'é' is two bytes: 4097 bytes of them cannot be cut at 4096 exactly.
        let accents = format!("a{}", "é".repeat(MAX_REASON_BYTES));
        let cut = cut_reason(accents);
        let kept = cut.split('…').next().unwrap_or_default();
        assert_eq!(kept.len(), MAX_REASON_BYTES - 1);
        assert!(cut.ends_with(" bytes]"));
    }

    #[test]
    fn a_tombstone_has_no_payload_and_an_empty_value_is_not_one() {
        let mut event = Event {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: None,
            payload: None,
            headers: Vec::new(),
            attempt: 1,
        };
        assert!(event.is_tombstone());
        assert_eq!(event.payload_bytes(), b"");
        event.payload = Some(Vec::new());
        assert!(!event.is_tombstone());
    }
}
