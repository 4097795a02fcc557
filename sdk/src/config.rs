//! The actor's configuration values, from the `[config]` table of its
//! manifest.
//!
//! This module owns the `wactor:actor/config` import. Values are strings;
//! parse them yourself (`config::get_or("limit", "10").parse::<u32>()`).
//!
//! ```no_run
//! use wactor_sdk::{config, Handled, Outcome};
//! fn handle() -> Handled {
//!     let url = config::require("wallet_url")?; // missing => Dead
//!     let topic = config::get_or("out_topic", "results");
//!     # let _ = (url, topic);
//!     Ok(Outcome::Done)
//! }
//! ```

use std::fmt;

use crate::bindings::wactor::actor::config as wit;

/// The value of `key`, or `None` when it is not configured.
pub fn get(key: &str) -> Option<String> {
    wit::get(key)
}

/// The value of `key`, or `default` when it is not configured.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_string())
}

/// The value of `key`, or a [`MissingConfig`] error (which `?` turns into
/// [`Outcome::Dead`](crate::Outcome::Dead) with the reason
/// `config <key> is not set`).
pub fn require(key: &str) -> Result<String, MissingConfig> {
    get(key).ok_or_else(|| MissingConfig::new(key))
}

/// Every configured key and value.
pub fn all() -> Vec<(String, String)> {
    wit::get_all()
}

/// A required config value is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingConfig {
    key: String,
}

impl MissingConfig {
    /// The error for the missing `key`.
    pub fn new(key: impl Into<String>) -> Self {
        MissingConfig { key: key.into() }
    }

    /// The key that is not set.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for MissingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {} is not set", self.key)
    }
}

impl std::error::Error for MissingConfig {}
