//! # wactor-telemetry
//!
//! wactor's OpenTelemetry side: traces exported over OTLP, and the W3C
//! trace-context headers (`traceparent`, `tracestate`) that carry a trace
//! through Kafka records and outbound HTTP requests.
//!
//! # Layout
//!
//! - `config`: `[telemetry]` of `host.toml` and the standard `OTEL_*`
//!   environment variables, resolved into one [`TraceSettings`].
//! - `export`: the tracer provider (OTLP/HTTP protobuf exporter, batch
//!   processor, parent-based ratio sampler), the `tracing` layer that turns
//!   wactor's spans into OpenTelemetry spans, and the bounded flush at
//!   shutdown ([`Telemetry`]).
//! - `context`: parsing an incoming record's trace-context headers
//!   (hostile input: anything malformed, oversized or duplicated is
//!   ignored), making a span their child, and writing a span's context as
//!   a `traceparent` value.
//!
//! What this crate deliberately does not do: decide which spans exist or
//! what they are called (the Kafka crate creates the `process` and `send`
//! spans, the runtime crate the outbound HTTP ones), or touch Kafka,
//! wasmtime or the network other than the exporter's.
//!
//! [`enabled`] says whether spans are exported at all; callers use it to
//! skip work (span names, attributes, extra spans) that only the exporter
//! would read, so a host without telemetry pays nothing per event.

mod config;
mod context;
mod export;

pub use config::{TelemetryConfig, TraceSettings};
pub use context::{
    incoming, set_attribute, set_parent, traceparent_of, IncomingContext, TraceParent, TRACEPARENT,
    TRACESTATE,
};
pub use export::{enabled, export_failures, init, Telemetry};

/// What can go wrong setting telemetry up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting has a value that cannot work.
    #[error("telemetry setting {field}: {message}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP trace exporter: {0}")]
    Exporter(String),
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;
