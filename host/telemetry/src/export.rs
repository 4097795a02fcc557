//! The trace exporter: an OpenTelemetry tracer provider that sends spans
//! over OTLP/HTTP (protobuf) to a collector, and the `tracing` layer that
//! feeds it.
//!
//! Spans are queued in the SDK's batch processor (its own thread, a queue
//! of 2048 spans, a batch every 5 s or 512 spans; the `OTEL_BSP_*`
//! variables change these) and posted by a blocking HTTP client on that
//! thread, never on the host's async workers. When the collector is slow
//! or down the queue fills and further spans are dropped; events are never
//! delayed or failed by tracing. A failed export is logged once (warn,
//! target `wactor_telemetry`) until one succeeds again.
//!
//! Only wactor's per-event spans are exported ([`EXPORTED_SPANS`], targets
//! `wactor*`), with wactor's INFO and higher events inside them (an
//! actor's log lines among them) as span events; the HTTP and Kafka client
//! libraries' spans and events are not.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::TraceSettings;
use crate::{Error, Result};

/// The spans exported (by their `tracing` names): a call, an emitted
/// record, an outbound request. Long-lived spans (a partition worker's)
/// are not: they would be parents that never end.
const EXPORTED_SPANS: &[&str] = &["handle", "send", "http_request"];

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Failed exports of this process's exporter (there is at most one).
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Exports that failed so far in this process (0 while traces are off):
/// the source of `wactor_trace_export_failures_total`.
pub fn export_failures() -> u64 {
    FAILURES.load(Ordering::Relaxed)
}

/// True once [`init`] has set up an exporter in this process: the hot
/// path's test for whether span names, attributes and extra spans are
/// worth making. One relaxed atomic load.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The running exporter. Flush it with [`shutdown`](Self::shutdown) at
/// exit, or the last spans (up to one batch delay) are lost.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("export_failures", &self.export_failures())
            .finish()
    }
}

/// Sets up the exporter for `settings`. Call it outside any async runtime
/// (it builds a blocking HTTP client), then add [`Telemetry::layer`] to the
/// subscriber.
pub fn init(settings: &TraceSettings) -> Result<Telemetry> {
    let inner = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_endpoint.clone())
        .build()
        .map_err(|e| Error::Exporter(e.to_string()))?;
    let exporter = Watched {
        inner,
        failures: &FAILURES,
        failing: AtomicBool::new(false),
        endpoint: without_user_info(&settings.traces_endpoint),
        raw_endpoint: settings.traces_endpoint.clone(),
    };
    // `settings.service_name` is `OTEL_SERVICE_NAME` already when that is
    // set (trimmed: the resource's own detector would take "  " as a name).
    let resource = Resource::builder().with_service_name(settings.service_name.clone());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler(settings))
        .with_resource(resource.build())
        .build();
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Telemetry { provider })
}

/// `url` for log lines: without the user info (`user:password@`) an
/// endpoint may carry.
fn without_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The sampler of `settings`: the ratio for new traces, and for spans
/// with a parent too unless the parent decides.
fn sampler(settings: &TraceSettings) -> Sampler {
    let ratio = Sampler::TraceIdRatioBased(settings.sample_ratio);
    if settings.parent_based {
        Sampler::ParentBased(Box::new(ratio))
    } else {
        ratio
    }
}

impl Telemetry {
    /// The `tracing` layer that turns wactor's spans into OpenTelemetry
    /// spans (and the events in them into span events). It has its own
    /// filter: the log filter (`WACTOR_LOG`) does not decide what is
    /// traced.
    pub fn layer<S>(&self) -> Box<dyn Layer<S> + Send + Sync + 'static>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let tracer = self.provider.tracer("wactor");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
                metadata.target().starts_with("wactor")
                    && if metadata.is_span() {
                        EXPORTED_SPANS.contains(&metadata.name())
                    } else {
                        *metadata.level() <= tracing::Level::INFO
                    }
            }))
            .boxed()
    }

    /// Exports that failed so far.
    pub fn export_failures(&self) -> u64 {
        export_failures()
    }

    /// Exports what is queued and stops the exporter, waiting at most
    /// `timeout` (blocking: call it from a blocking context).
    pub fn shutdown(self, timeout: Duration) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(err) = self.provider.shutdown_with_timeout(timeout) {
            tracing::warn!(error = %err, "traces not fully exported at shutdown");
        }
    }
}

/// The OTLP exporter, counting failures and logging the first of each
/// run of them.
struct Watched<E> {
    inner: E,
    failures: &'static AtomicU64,
    failing: AtomicBool,
    /// The endpoint as logged: without its user info.
    endpoint: String,
    /// The endpoint as given (the exporter's errors may quote it).
    raw_endpoint: String,
}

impl<E> fmt::Debug for Watched<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl<E: SpanExporter> SpanExporter for Watched<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let count = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(endpoint = %self.endpoint, "trace export works again");
                }
            }
            Err(err) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        spans = count,
                        error = %err.to_string().replace(&self.raw_endpoint, &self.endpoint),
                        "cannot export traces; spans are dropped until the collector answers"
                    );
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_endpoints_carry_no_user_info() {
        assert_eq!(
            without_user_info("http://user:s3cret@collector:4318/v1/traces"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            without_user_info("http://collector:4318/v1/traces?a=b@c"),
            "http://collector:4318/v1/traces?a=b@c"
        );
        assert_eq!(without_user_info("http://c:1"), "http://c:1");
    }
}
