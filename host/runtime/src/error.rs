//! Errors of loading components and setting up the runtime.
//!
//! Calling an actor never fails with one of these: a trap or a host-side
//! failure during a call becomes a [`Trap`](crate::Trap) in the
//! [`Invocation`](crate::Invocation), because per-event failures are
//! outcomes, not errors.

/// What can go wrong before an actor runs.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be configured.
    #[error("wasm engine: {0}")]
    Engine(String),

    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly file: {0}")]
    NotWasm(String),

    /// A core module where a component was expected.
    #[error(
        "this is a core WebAssembly module, not a component; build the actor with \
         `cargo build --target wasm32-wasip2` (or run `wasm-tools component new` on it)"
    )]
    NotAComponent,

    /// The component could not be compiled (malformed or unsupported).
    #[error("invalid component: {0}")]
    Invalid(String),

    /// The component imports something the host does not provide. A
    /// component built for an older contract (`wactor:actor@0.1.0`) gets a
    /// message that names its version and says to rebuild.
    #[error("the component does not fit the wactor:actor world: {0}")]
    WrongWorld(String),

    /// The component lacks the `handle` export or its type is wrong.
    #[error(
        "the component does not export `handle: func(event) -> outcome` of wactor:actor@0.2.0: {0}"
    )]
    MissingExport(String),

    /// The component is larger than allowed.
    #[error("the component is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Size of the upload.
        size: usize,
        /// Configured limit.
        limit: usize,
    },

    /// Reading or writing the artifact cache failed.
    #[error("artifact cache {path}: {source}")]
    Cache {
        /// File or directory involved.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
