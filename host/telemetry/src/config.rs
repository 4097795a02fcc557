//! `[telemetry]` of `host.toml` and the standard OpenTelemetry environment
//! variables, resolved into the settings of the trace exporter.
//!
//! Precedence (environment over file, so that one `host.toml` serves
//! every environment):
//!
//! - endpoint: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL, used as
//!   it is), else `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL; `/v1/traces`
//!   is appended), else `[telemetry] otlp_endpoint` (a base URL, the
//!   same). None of them set: no exporter, traces are off.
//! - service name: `OTEL_SERVICE_NAME`, else `[telemetry] service_name`,
//!   else `wactor`.
//! - `OTEL_SDK_DISABLED=true` turns traces off whatever else is set, and
//!   so does `OTEL_TRACES_EXPORTER=none`; another exporter than `otlp`
//!   there is an error at start.
//! - sampler: `OTEL_TRACES_SAMPLER` (`parentbased_traceidratio`,
//!   `traceidratio`, `parentbased_always_on`, `always_on`,
//!   `parentbased_always_off`, `always_off`) with `OTEL_TRACES_SAMPLER_ARG`
//!   (the ratio of the `traceidratio` ones, default 1.0), else
//!   `[telemetry] sample_ratio` under the parent's decision. Another
//!   sampler (`jaeger_remote`, `xray`) or a ratio that is not a number
//!   from 0.0 to 1.0 is an error at start, not silently replaced.
//! - protocol: only `http/protobuf` (the OTLP default); another value of
//!   `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or `OTEL_EXPORTER_OTLP_PROTOCOL`
//!   is an error at start rather than silently ignored.
//!
//! This module reads no environment itself: [`TraceSettings::resolve`]
//! takes a lookup function, so that the rules are testable.

use serde::Deserialize;

use crate::{Error, Result};

/// `[telemetry]`: where traces go. Every field is optional.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP receiver (a collector), for example
    /// `http://otel-collector:4318`; spans are sent to
    /// `<otlp_endpoint>/v1/traces`. Plain `http://` only. The environment
    /// variables override it.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute; default `wactor`.
    #[serde(default)]
    pub service_name: Option<String>,
    /// Fraction of new traces recorded, 0.0 to 1.0; default 1.0. A span
    /// with a parent (a record that carried a `traceparent`) follows its
    /// parent's sampled flag instead (parent-based sampling).
    /// `OTEL_TRACES_SAMPLER` replaces it.
    #[serde(default)]
    pub sample_ratio: Option<f64>,
}

/// The resolved settings of the trace exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The full URL spans are posted to (`.../v1/traces`).
    pub traces_endpoint: String,
    /// `service.name`.
    pub service_name: String,
    /// Fraction of new traces recorded.
    pub sample_ratio: f64,
    /// A span with a parent follows its parent's sampled flag (else the
    /// ratio decides for it too).
    pub parent_based: bool,
}

const TRACES_PATH: &str = "/v1/traces";

impl TraceSettings {
    /// Resolves `config` and the environment (read through `env`) into the
    /// exporter's settings; `None` when traces are off.
    pub fn resolve(
        config: &TelemetryConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TraceSettings>> {
        let env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some(exporter) = env("OTEL_TRACES_EXPORTER") {
            match exporter.trim().to_ascii_lowercase().as_str() {
                "none" => return Ok(None),
                "otlp" => {}
                _ => {
                    return Err(Error::Invalid {
                        field: "OTEL_TRACES_EXPORTER",
                        message: format!(
                            "{exporter:?}: wactor exports traces over otlp only (or none)"
                        ),
                    })
                }
            }
        }
        let traces_endpoint = if let Some(url) = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            checked_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url.trim().to_string())?
        } else if let Some(base) = env("OTEL_EXPORTER_OTLP_ENDPOINT") {
            checked_url("OTEL_EXPORTER_OTLP_ENDPOINT", with_traces_path(&base))?
        } else if let Some(base) = config
            .otlp_endpoint
            .as_deref()
            .filter(|b| !b.trim().is_empty())
        {
            checked_url("telemetry.otlp_endpoint", with_traces_path(base))?
        } else {
            return Ok(None);
        };
        for var in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(protocol) = env(var) {
                if protocol.trim() != "http/protobuf" {
                    return Err(Error::Invalid {
                        field: "OTEL_EXPORTER_OTLP_PROTOCOL",
                        message: format!(
                            "{var}={protocol:?}: wactor exports OTLP over http/protobuf only"
                        ),
                    });
                }
            }
        }
        let service_name = env("OTEL_SERVICE_NAME")
            .or_else(|| config.service_name.clone())
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "wactor".to_string());
        let (sample_ratio, parent_based) = match env("OTEL_TRACES_SAMPLER") {
            Some(sampler) => sampler_of(sampler.trim(), env("OTEL_TRACES_SAMPLER_ARG"))?,
            None => {
                let ratio = config.sample_ratio.unwrap_or(1.0);
                (checked_ratio("telemetry.sample_ratio", ratio)?, true)
            }
        };
        Ok(Some(TraceSettings {
            traces_endpoint,
            service_name,
            sample_ratio,
            parent_based,
        }))
    }
}

/// The ratio and parent-basedness of `OTEL_TRACES_SAMPLER` = `sampler`
/// with `OTEL_TRACES_SAMPLER_ARG` = `arg`.
fn sampler_of(sampler: &str, arg: Option<String>) -> Result<(f64, bool)> {
    let ratio = || -> Result<f64> {
        match arg.as_deref().map(str::trim) {
            None => Ok(1.0),
            Some(text) => {
                let ratio = text.parse::<f64>().map_err(|_| Error::Invalid {
                    field: "OTEL_TRACES_SAMPLER_ARG",
                    message: format!("{text:?} is not a number between 0.0 and 1.0"),
                })?;
                checked_ratio("OTEL_TRACES_SAMPLER_ARG", ratio)
            }
        }
    };
    match sampler.to_ascii_lowercase().as_str() {
        "always_on" => Ok((1.0, false)),
        "always_off" => Ok((0.0, false)),
        "traceidratio" => Ok((ratio()?, false)),
        "parentbased_always_on" => Ok((1.0, true)),
        "parentbased_always_off" => Ok((0.0, true)),
        "parentbased_traceidratio" => Ok((ratio()?, true)),
        _ => Err(Error::Invalid {
            field: "OTEL_TRACES_SAMPLER",
            message: format!(
                "{sampler:?}: wactor knows always_on, always_off, traceidratio and their \
                 parentbased_ forms"
            ),
        }),
    }
}

/// `ratio` when it is a number from 0.0 to 1.0 (not NaN).
fn checked_ratio(field: &'static str, ratio: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err(Error::Invalid {
            field,
            message: format!("{ratio} is not between 0.0 and 1.0"),
        })
    }
}

fn with_traces_path(base: &str) -> String {
    format!("{}{TRACES_PATH}", base.trim().trim_end_matches('/'))
}

fn checked_url(field: &'static str, url: String) -> Result<String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(Error::Invalid {
            field,
            message: format!(
                "{url:?}: this build exports over plain http:// only (send to a local collector)"
            ),
        });
    }
    if !lower.starts_with("http://") || url.len() <= "http://".len() {
        return Err(Error::Invalid {
            field,
            message: format!("{url:?} is not an http:// URL"),
        });
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(config: &TelemetryConfig, env: &[(&str, &str)]) -> Result<Option<TraceSettings>> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TraceSettings::resolve(config, |name| env.get(name).cloned())
    }

    fn file(endpoint: &str) -> TelemetryConfig {
        TelemetryConfig {
            otlp_endpoint: Some(endpoint.into()),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_set_means_traces_are_off() {
        assert_eq!(resolve(&TelemetryConfig::default(), &[]).unwrap(), None);
    }

    #[test]
    fn the_file_endpoint_gets_the_traces_path_and_defaults() {
        let settings = resolve(&file("http://collector:4318/"), &[])
            .unwrap()
            .unwrap();
        assert_eq!(settings.traces_endpoint, "http://collector:4318/v1/traces");
        assert_eq!(settings.service_name, "wactor");
        assert_eq!(settings.sample_ratio, 1.0);
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let config = TelemetryConfig {
            otlp_endpoint: Some("http://file:4318".into()),
            service_name: Some("from-file".into()),
            sample_ratio: Some(0.5),
        };
        let s = resolve(
            &config,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
                ("OTEL_SERVICE_NAME", "from-env"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.traces_endpoint, "http://env:4318/v1/traces");
        assert_eq!(s.service_name, "from-env");
        assert_eq!(s.sample_ratio, 0.5);
        let s = resolve(
            &config,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.traces_endpoint, "http://t:1/custom");
        assert_eq!(s.service_name, "from-file");
    }

    #[test]
    fn sdk_disabled_turns_traces_off() {
        let off = resolve(&file("http://c:4318"), &[("OTEL_SDK_DISABLED", "TRUE")]).unwrap();
        assert_eq!(off, None);
    }

    #[test]
    fn otel_traces_exporter_none_turns_traces_off_and_others_are_refused() {
        let with =
            |value: &str| resolve(&file("http://c:4318"), &[("OTEL_TRACES_EXPORTER", value)]);
        assert_eq!(with("none").unwrap(), None);
        assert!(with("otlp").unwrap().is_some());
        assert!(with("zipkin").is_err());
        assert!(with("console").is_err());
    }

    #[test]
    fn bad_values_are_errors_at_start() {
        assert!(resolve(&file("https://c:4318"), &[]).is_err());
        assert!(resolve(&file("c:4318"), &[]).is_err());
        assert!(resolve(
            &file("http://c:4318"),
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]
        )
        .is_err());
        assert!(resolve(
            &file("http://c:4318"),
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]
        )
        .unwrap()
        .is_some());
        let config = TelemetryConfig {
            sample_ratio: Some(1.5),
            ..file("http://c:4318")
        };
        assert!(resolve(&config, &[]).is_err());
        for ratio in [f64::NAN, -1.0, 2.0, f64::INFINITY] {
            let config = TelemetryConfig {
                sample_ratio: Some(ratio),
                ..file("http://c:4318")
            };
            assert!(resolve(&config, &[]).is_err(), "{ratio}");
        }
    }

    #[test]
    fn otel_traces_sampler_is_honoured_or_refused() {
        let config = TelemetryConfig {
            sample_ratio: Some(0.5),
            ..file("http://c:4318")
        };
        let sampler = |env: &[(&str, &str)]| {
            resolve(&config, env)
                .map(|s| s.map(|s| (s.sample_ratio, s.parent_based)))
                .map_err(|e| e.to_string())
        };
        // Unset: the file's ratio under the parent's decision.
        assert_eq!(sampler(&[]), Ok(Some((0.5, true))));
        let with = |name: &str, arg: Option<&str>| {
            let mut env = vec![("OTEL_TRACES_SAMPLER", name)];
            if let Some(arg) = arg {
                env.push(("OTEL_TRACES_SAMPLER_ARG", arg));
            }
            sampler(&env)
        };
        assert_eq!(with("always_on", None), Ok(Some((1.0, false))));
        assert_eq!(with("always_off", None), Ok(Some((0.0, false))));
        assert_eq!(with("parentbased_always_off", None), Ok(Some((0.0, true))));
        assert_eq!(with("parentbased_always_on", None), Ok(Some((1.0, true))));
        assert_eq!(with("traceidratio", Some("0.25")), Ok(Some((0.25, false))));
        assert_eq!(
            with("parentbased_traceidratio", Some(" 0.1 ")),
            Ok(Some((0.1, true)))
        );
        assert_eq!(
            with("parentbased_traceidratio", None),
            Ok(Some((1.0, true)))
        );
        for (name, arg) in [
            ("jaeger_remote", None),
            ("xray", None),
            ("garbage", None),
            ("traceidratio", Some("NaN")),
            ("traceidratio", Some("2")),
            ("traceidratio", Some("-1")),
            ("traceidratio", Some("half")),
        ] {
            let err = with(name, arg).unwrap_err();
            assert!(err.contains("OTEL_TRACES_SAMPLER"), "{err}");
        }
    }
}
