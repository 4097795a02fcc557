//! # wactor-runtime
//!
//! The only place in wactor that touches wasmtime. It turns component bytes
//! into a [`LoadedActor`] and calls it once per event.
//!
//! # Layout
//!
//! - [`engine`]: the shared `Engine` (component model, async, pooling
//!   allocator with fallback, copy-on-write memory) and the epoch ticker that
//!   drives call deadlines.
//! - `bindings`: the single `bindgen!` of the `wactor:actor` world.
//! - `host`: store data and the host side of the logging, emit, state and
//!   config imports; effects are collected there, never applied.
//! - `http_policy`: the outbound HTTP allow-list.
//! - `output`: capture of guest stdout/stderr into log lines.
//! - [`topics`]: which topics an actor may emit to (the host's own topics
//!   and Kafka's are refused).
//! - `lowering`: borrowed views of `event` that wasmtime lowers into the
//!   guest from the host's own bytes, and the typed `handle` and
//!   `handle-batch` functions taking them.
//! - `cache`: compiled artifacts on disk, keyed by sha256 and engine hash.
//! - `actor`: validation, `InstancePre`, warm pools and fresh instances,
//!   the call itself and the classification of traps.
//! - [`types`]: the plain data types callers see (`Event`, `Invocation`...).
//! - [`event_file`]: the hand-written JSON form of one event (`wactor
//!   invoke`, the sample events of `wactor dev`).
//!
//! What it deliberately does not do: apply effects (the caller does, from
//! the outcome), open the store (state comes in through [`StateReader`]),
//! or know about Kafka.

mod actor;
mod bindings;
mod cache;
pub mod delay;
pub mod engine;
mod error;
pub mod event_file;
mod host;
mod http_policy;
mod lowering;
mod output;
pub mod topics;
pub mod types;

pub use actor::{
    BatchInvocation, LoadReport, LoadedActor, Runtime, RuntimeSettings, CONTRACT_VERSION,
};
pub use cache::{sha256_hex, CacheOutcome};
pub use engine::{AllocatorChoice, EngineSettings};
pub use error::{Result, RuntimeError};
pub use host::{
    MAX_HTTP_BODY_CHUNK, MAX_HTTP_FIELDS_BYTES, MAX_LOG_LINE_BYTES, MAX_RANDOM_BYTES,
    MAX_RESOURCES, MAX_STATE_KEY_BYTES,
};
pub use http_policy::{default_port, HostAllowList, HttpTracer, OutboundTrace};
pub use topics::check_emit_topic;
pub use types::{
    cut_reason, ActorSettings, CallResult, Effects, EmittedRecord, EmptyState, Event, InstanceMode,
    Invocation, Limits, LogLevel, LogLine, Outcome, StateReader, StateWrite, Trap, TrapKind,
    MAX_REASON_BYTES,
};
