//! Log lines, routed by the host into its tracing with the actor, version
//! and event attached.
//!
//! This module owns the `wactor:actor/logging` import. Use the macros, which
//! format like [`format!`]:
//!
//! ```no_run
//! let key = "user-7";
//! wactor_sdk::debug!("looking up {key}");
//! wactor_sdk::warn!("stale event for {key}: version {} < {}", 3, 4);
//! ```
//!
//! Per-event facts (topic, partition, offset, attempt) are already on the
//! host's span; log what only the actor knows.

use crate::bindings::wactor::actor::logging as wit;

/// How serious a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation worth recording.
    Info,
    /// Something unexpected that the actor handled.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one log line at `level`.
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => wit::Level::Trace,
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    wit::log(level, message);
}

/// Logs at [`Level::Trace`]; arguments as for [`format!`].
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::logging::log($crate::logging::Level::Trace, &::std::format!($($arg)+))
    };
}

/// Logs at [`Level::Debug`]; arguments as for [`format!`].
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::logging::log($crate::logging::Level::Debug, &::std::format!($($arg)+))
    };
}

/// Logs at [`Level::Info`]; arguments as for [`format!`].
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::logging::log($crate::logging::Level::Info, &::std::format!($($arg)+))
    };
}

/// Logs at [`Level::Warn`]; arguments as for [`format!`].
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::logging::log($crate::logging::Level::Warn, &::std::format!($($arg)+))
    };
}

/// Logs at [`Level::Error`]; arguments as for [`format!`].
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::logging::log($crate::logging::Level::Error, &::std::format!($($arg)+))
    };
}
