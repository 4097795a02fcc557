//! The host configuration file, `host.toml`, read by `wactor serve`.
//!
//! ```toml
//! data_dir = "/var/lib/wactor"        # sled store and compiled artifacts
//! actors_dir = "/etc/wactor/actors"   # manifests deployed at start (optional)
//!
//! [kafka]
//! brokers = "kafka-1:9092,kafka-2:9092"
//! commit_interval = "1s"
//! [kafka.client]                      # librdkafka properties, passed through
//! "security.protocol" = "SASL_SSL"
//! "sasl.mechanism" = "SCRAM-SHA-512"
//!
//! [api]
//! listen = "0.0.0.0:7700"
//! [[api.tokens]]
//! name = "ci"
//! token_env = "WACTOR_CI_TOKEN"       # or: token = "..." (not recommended)
//!
//! [runtime]
//! pool_instances = 1000
//!
//! [telemetry]                         # traces over OTLP/HTTP (optional)
//! otlp_endpoint = "http://otel-collector:4318"
//! ```
//!
//! docs/operations.md is the reference; every field has a default but
//! `kafka.brokers`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use wactor_kafka::KafkaSettings;
use wactor_manifest::ByteSize;

/// The host configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Where the store and the artifact cache live; default `./.wactor/data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// A directory of actor manifests (each naming its component)
    /// deployed when the host starts: `DIR/actor.toml` if it exists, else
    /// `DIR/*/actor.toml` and `DIR/*.actor.toml`
    /// (`wactor_manifest::discover`). Unchanged ones are not deployed
    /// again.
    #[serde(default)]
    pub actors_dir: Option<PathBuf>,
    /// Kafka.
    pub kafka: KafkaSettings,
    /// The admin API.
    #[serde(default)]
    pub api: ApiConfig,
    /// The Wasm runtime.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Traces (OpenTelemetry over OTLP); off unless an endpoint is set
    /// here or in `OTEL_EXPORTER_OTLP_ENDPOINT`. Read in `main`, before
    /// the host starts, to set up tracing.
    #[serde(default)]
    pub telemetry: wactor_telemetry::TelemetryConfig,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(".wactor/data")
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address; default `127.0.0.1:7700`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Bearer tokens. At least one is required to listen beyond loopback.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Largest request body (uploads included); default `"64MiB"`.
    #[serde(default = "default_max_request")]
    pub max_request: ByteSize,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7700))
}

fn default_max_request() -> ByteSize {
    ByteSize(64 * 1024 * 1024)
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: default_listen(),
            tokens: Vec::new(),
            max_request: default_max_request(),
        }
    }
}

/// One API token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (recorded as the uploader of versions, in logs).
    pub name: String,
    /// The token itself.
    #[serde(default)]
    pub token: Option<String>,
    /// An environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
}

/// `[runtime]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Instance slots of the pooling allocator (all actors); default 1000.
    #[serde(default = "default_pool_instances")]
    pub pool_instances: u32,
    /// Largest memory any actor may be given; default `"256MiB"`.
    #[serde(default = "default_max_memory")]
    pub max_memory: ByteSize,
    /// Largest component accepted; default `"64MiB"`.
    #[serde(default = "default_max_component")]
    pub max_component: ByteSize,
    /// Directory of compiled components (the artifact cache); default
    /// `<data_dir>/artifacts`. It must be the host's own: owned by its user
    /// and not writable by group or others, or the host refuses to start.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

fn default_pool_instances() -> u32 {
    1000
}

fn default_max_memory() -> ByteSize {
    ByteSize(256 * 1024 * 1024)
}

fn default_max_component() -> ByteSize {
    ByteSize(64 * 1024 * 1024)
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            pool_instances: default_pool_instances(),
            max_memory: default_max_memory(),
            max_component: default_max_component(),
            cache_dir: None,
        }
    }
}

impl HostConfig {
    /// Reads and checks a config file. Relative paths in it are taken
    /// from the file's directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the host config {}", path.display()))?;
        let mut config: HostConfig = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid host config", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        if config.data_dir.is_relative() {
            config.data_dir = base.join(&config.data_dir);
        }
        if let Some(dir) = &config.actors_dir {
            if dir.is_relative() {
                config.actors_dir = Some(base.join(dir));
            }
        }
        if let Some(dir) = &config.runtime.cache_dir {
            if dir.is_relative() {
                config.runtime.cache_dir = Some(base.join(dir));
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Cross-field rules.
    pub fn validate(&self) -> Result<()> {
        self.kafka.validate()?;
        for token in &self.api.tokens {
            match (&token.token, &token.token_env) {
                (Some(_), Some(_)) | (None, None) => bail!(
                    "api token {:?}: give exactly one of `token` and `token_env`",
                    token.name
                ),
                _ => {}
            }
        }
        if !self.api.listen.ip().is_loopback() && self.api.tokens.is_empty() {
            bail!(
                "the admin API would listen on {} without a token: add an [[api.tokens]] entry, \
                 or listen on 127.0.0.1",
                self.api.listen
            );
        }
        if self.runtime.pool_instances == 0 {
            bail!("runtime.pool_instances must be at least 1");
        }
        Ok(())
    }

    /// The tokens with their values resolved: `(name, token)`.
    pub fn resolved_tokens(&self) -> Result<Vec<(String, String)>> {
        let mut tokens = Vec::new();
        for entry in &self.api.tokens {
            let value = match (&entry.token, &entry.token_env) {
                (Some(token), _) => token.clone(),
                (None, Some(var)) => std::env::var(var).with_context(|| {
                    format!(
                        "api token {:?}: the environment variable {var} is not set",
                        entry.name
                    )
                })?,
                (None, None) => bail!("api token {:?} has no value", entry.name),
            };
            if value.len() < 16 {
                bail!(
                    "api token {:?} is shorter than 16 characters; use a long random value",
                    entry.name
                );
            }
            tokens.push((entry.name.clone(), value));
        }
        Ok(tokens)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostConfig> {
        let config: HostConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn a_minimal_config_has_loopback_api_and_defaults() {
        let config = parse("[kafka]\nbrokers = \"localhost:9092\"").unwrap();
        assert_eq!(config.api.listen, default_listen());
        assert_eq!(config.data_dir, PathBuf::from(".wactor/data"));
        assert_eq!(config.runtime.pool_instances, 1000);
    }

    #[test]
    fn listening_beyond_loopback_without_a_token_is_refused() {
        let err = parse("[kafka]\nbrokers = \"k:9092\"\n[api]\nlisten = \"0.0.0.0:7700\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("without a token"), "{err}");
        parse(
            "[kafka]\nbrokers = \"k:9092\"\n[api]\nlisten = \"0.0.0.0:7700\"\n[[api.tokens]]\nname = \"ops\"\ntoken_env = \"X\"",
        )
        .unwrap();
    }

    #[test]
    fn the_telemetry_section_is_optional_and_checked() {
        let config = parse("[kafka]\nbrokers = \"k\"").unwrap();
        assert_eq!(config.telemetry, Default::default());
        let config = parse(
            "[kafka]\nbrokers = \"k\"\n[telemetry]\notlp_endpoint = \"http://c:4318\"\nservice_name = \"w\"\nsample_ratio = 0.25",
        )
        .unwrap();
        assert_eq!(
            config.telemetry.otlp_endpoint.as_deref(),
            Some("http://c:4318")
        );
        assert_eq!(config.telemetry.sample_ratio, Some(0.25));
        assert!(parse("[kafka]\nbrokers = \"k\"\n[telemetry]\nendpoint = \"x\"").is_err());
    }

    #[test]
    fn unknown_fields_and_short_tokens_are_refused() {
        assert!(parse("[kafka]\nbrokers = \"k\"\nbrokerz = 1").is_err());
        let config =
            parse("[kafka]\nbrokers = \"k\"\n[[api.tokens]]\nname = \"a\"\ntoken = \"short\"")
                .unwrap();
        assert!(config.resolved_tokens().is_err());
    }
}
