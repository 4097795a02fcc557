//! The outbound HTTP allow-list.
//!
//! Actors reach the network only through `wasi:http/outgoing-handler`, and
//! only to the hosts their manifest lists in `allowed_hosts`. A request to
//! any other host fails inside the guest with `HTTP-request-denied` before a
//! connection is attempted. Patterns:
//!
//! - `api.example.com`: that host, any port;
//! - `api.example.com:8443` or `127.0.0.1:9000`: that host and port only;
//! - `*.example.com`: any subdomain of example.com (not example.com itself);
//!   `*.example.com:443` the same, on that port only;
//! - `*`: any host (for trusted actors only).
//!
//! A URL without a port is matched with the port it connects to: 443 for
//! `https`, 80 otherwise (the only other scheme wasi:http sends is `http`).
//! So `127.0.0.1:80` allows `http://127.0.0.1/`, `api.example.com:443`
//! allows `https://api.example.com/`, and neither allows the other scheme's
//! default port. Host names are compared without regard to ASCII case.
//!
//! The hooks also bound what an outgoing request body may buffer in the
//! host: writes of at most [`MAX_HTTP_BODY_CHUNK`] bytes, one in flight.
//!
//! And they trace: a call may carry an [`OutboundTrace`] (the caller
//! decides, this crate knows no OpenTelemetry). With
//! [`OutboundTrace::Propagate`] each allowed request gets those
//! `traceparent`/`tracestate` values, replacing any the guest set; with
//! [`OutboundTrace::Spans`] the tracer starts a span per allowed request,
//! the request carries that span's context (again replacing the guest's),
//! and the span ends when the response head arrives or the request fails
//! (or, as failed, when the call ends without waiting for it). A guest's
//! `tracestate` goes with its `traceparent`.

use std::sync::Arc;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::host::MAX_HTTP_BODY_CHUNK;

/// The port a request to a URL with `scheme` and no explicit port
/// connects to (what wasmtime-wasi-http's `default_send_request` does).
pub fn default_port(scheme: Option<&str>) -> u16 {
    match scheme {
        Some(scheme) if scheme.eq_ignore_ascii_case("https") => 443,
        _ => 80,
    }
}

/// How one call's outbound HTTP requests are traced.
#[derive(Clone)]
pub enum OutboundTrace {
    /// Put these header values on every request (pass a trace through
    /// without spans of our own).
    Propagate {
        /// `traceparent`.
        traceparent: http::HeaderValue,
        /// `tracestate`, if any.
        tracestate: Option<http::HeaderValue>,
    },
    /// Ask this tracer for a span per request.
    Spans(Arc<dyn HttpTracer>),
}

impl std::fmt::Debug for OutboundTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutboundTrace::Propagate { traceparent, .. } => {
                f.debug_tuple("Propagate").field(traceparent).finish()
            }
            OutboundTrace::Spans(_) => f.write_str("Spans"),
        }
    }
}

/// Starts and ends the spans of outbound HTTP requests.
pub trait HttpTracer: Send + Sync {
    /// The span of an allowed request about to be sent, and the
    /// `traceparent` and `tracestate` values the request carries. Called
    /// synchronously, before the request's future is spawned.
    fn start(
        &self,
        method: &http::Method,
        uri: &http::Uri,
    ) -> (
        tracing::Span,
        Option<http::HeaderValue>,
        Option<http::HeaderValue>,
    );

    /// Ends `span`: with the response's status, or the error that ended
    /// the request.
    fn finish(&self, span: &tracing::Span, result: Result<u16, &dyn std::fmt::Display>);
}

/// The wasi:http hooks of an instance: the allow-list, and the current
/// call's trace (set for a call, cleared after it).
#[derive(Clone, Debug, Default)]
pub(crate) struct OutboundHooks {
    pub(crate) allow_list: HostAllowList,
    pub(crate) trace: Option<OutboundTrace>,
}

/// Decides which hosts an actor may call.
#[derive(Clone, Debug, Default)]
pub struct HostAllowList {
    patterns: Arc<[String]>,
}

impl HostAllowList {
    /// An allow-list from manifest patterns.
    pub fn new(patterns: Arc<[String]>) -> Self {
        HostAllowList { patterns }
    }

    /// True when a request to `host` on `port` is allowed. `port` is the
    /// port the request connects to: the URL's, or its scheme's default
    /// ([`default_port`]).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.patterns.iter().any(|pattern| {
            let pattern = pattern.trim();
            if pattern == "*" {
                return true;
            }
            let (pattern_host, pattern_port) = split_port(pattern);
            if pattern_port.is_some_and(|want| want != port) {
                return false;
            }
            if let Some(suffix) = pattern_host.strip_prefix("*.") {
                host.len() > suffix.len() + 1
                    && host.as_bytes()[host.len() - suffix.len()..]
                        .eq_ignore_ascii_case(suffix.as_bytes())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            } else {
                pattern_host.eq_ignore_ascii_case(host)
            }
        })
    }
}

/// Splits `host:port` (IPv6 in brackets) into its parts.
fn split_port(pattern: &str) -> (&str, Option<u16>) {
    if let Some(rest) = pattern.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port);
        }
    }
    match pattern.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (pattern, None),
        },
        _ => (pattern, None),
    }
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

/// Puts the trace context `traceparent` (and `tracestate`) on a request's
/// `headers`, replacing the guest's: every `traceparent` and every
/// `tracestate` it set go (a guest's `tracestate` belongs to the guest's
/// trace, not to this one). Without a `traceparent` nothing changes.
fn set_trace_headers(
    headers: &mut http::HeaderMap,
    traceparent: Option<http::HeaderValue>,
    tracestate: Option<http::HeaderValue>,
) {
    let Some(traceparent) = traceparent else {
        return;
    };
    headers.insert(http::HeaderName::from_static("traceparent"), traceparent);
    headers.remove("tracestate");
    if let Some(state) = tracestate {
        headers.insert(http::HeaderName::from_static("tracestate"), state);
    }
}

/// The span of a request in flight. Dropped unfinished (the call ended,
/// trapped or timed out before the response head came, and the request
/// with it), it is finished as failed: an abandoned request is not a
/// success in the trace.
struct OpenSpan {
    tracer: Arc<dyn HttpTracer>,
    span: tracing::Span,
    finished: bool,
}

impl OpenSpan {
    fn finish(&mut self, result: Result<u16, &dyn std::fmt::Display>) {
        if !self.finished {
            self.finished = true;
            self.tracer.finish(&self.span, result);
        }
    }
}

impl Drop for OpenSpan {
    fn drop(&mut self) {
        self.finish(Err(&"abandoned: the call ended before the response"));
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let uri = request.uri();
        let port = uri
            .port_u16()
            .unwrap_or_else(|| default_port(uri.scheme_str()));
        let allowed = uri
            .host()
            .is_some_and(|host| self.allow_list.allows(host, port));
        if !allowed {
            tracing::debug!(uri = %uri, "outbound HTTP request denied by allow-list");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let span = match &self.trace {
            None => None,
            Some(OutboundTrace::Propagate {
                traceparent,
                tracestate,
            }) => {
                set_trace_headers(
                    request.headers_mut(),
                    Some(traceparent.clone()),
                    tracestate.clone(),
                );
                None
            }
            Some(OutboundTrace::Spans(tracer)) => {
                let (span, traceparent, tracestate) = tracer.start(request.method(), request.uri());
                set_trace_headers(request.headers_mut(), traceparent, tracestate);
                Some(OpenSpan {
                    tracer: tracer.clone(),
                    span,
                    finished: false,
                })
            }
        };
        Box::new(async move {
            use http_body_util::BodyExt;
            use tracing::Instrument as _;
            let mut span = span;
            let (response, io) = match &mut span {
                None => wasmtime_wasi_http::default_send_request(request, options).await?,
                Some(open) => {
                    let sent = wasmtime_wasi_http::default_send_request(request, options)
                        .instrument(open.span.clone())
                        .await;
                    match &sent {
                        Ok((response, _)) => open.finish(Ok(response.status().as_u16())),
                        Err(err) => open.finish(Err(err as &dyn std::fmt::Display)),
                    }
                    sent?
                }
            };
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        MAX_HTTP_BODY_CHUNK
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> HostAllowList {
        HostAllowList::new(patterns.iter().map(|p| p.to_string()).collect())
    }

    /// Whether `url` passes `l` the way `send_request` decides it.
    fn allows_url(l: &HostAllowList, url: &str) -> bool {
        let uri: http::Uri = url.parse().unwrap();
        let port = uri
            .port_u16()
            .unwrap_or_else(|| default_port(uri.scheme_str()));
        uri.host().is_some_and(|host| l.allows(host, port))
    }

    #[test]
    fn trace_headers_replace_every_one_the_guest_set() {
        let value = |s: &str| http::HeaderValue::from_str(s).unwrap();
        let guest = || {
            let mut headers = http::HeaderMap::new();
            headers.append("traceparent", value("00-guest-1"));
            headers.append("TraceParent", value("00-guest-2"));
            headers.append("tracestate", value("guest=1"));
            headers.append("x-other", value("kept"));
            headers
        };
        let all = |headers: &http::HeaderMap, name: &str| -> Vec<String> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect()
        };
        // Ours without a state: the guest's state goes too.
        let mut headers = guest();
        set_trace_headers(&mut headers, Some(value("00-ours")), None);
        assert_eq!(all(&headers, "traceparent"), ["00-ours"]);
        assert!(all(&headers, "tracestate").is_empty());
        assert_eq!(all(&headers, "x-other"), ["kept"]);
        // Ours with a state.
        let mut headers = guest();
        set_trace_headers(&mut headers, Some(value("00-ours")), Some(value("v=2")));
        assert_eq!(all(&headers, "traceparent"), ["00-ours"]);
        assert_eq!(all(&headers, "tracestate"), ["v=2"]);
        // No context of ours: the guest's stay.
        let mut headers = guest();
        set_trace_headers(&mut headers, None, Some(value("v=2")));
        assert_eq!(all(&headers, "traceparent"), ["00-guest-1", "00-guest-2"]);
        assert_eq!(all(&headers, "tracestate"), ["guest=1"]);
    }

    /// Records how each span was finished.
    #[derive(Default)]
    struct Finishes(std::sync::Mutex<Vec<String>>);

    impl HttpTracer for Finishes {
        fn start(
            &self,
            _: &http::Method,
            _: &http::Uri,
        ) -> (
            tracing::Span,
            Option<http::HeaderValue>,
            Option<http::HeaderValue>,
        ) {
            (tracing::Span::none(), None, None)
        }

        fn finish(&self, _: &tracing::Span, result: Result<u16, &dyn std::fmt::Display>) {
            let text = match result {
                Ok(status) => status.to_string(),
                Err(err) => format!("error: {err}"),
            };
            self.0.lock().unwrap().push(text);
        }
    }

    #[test]
    fn a_request_span_is_finished_once_and_as_failed_when_abandoned() {
        let tracer = Arc::new(Finishes::default());
        let open = |tracer: &Arc<Finishes>| OpenSpan {
            tracer: tracer.clone(),
            span: tracing::Span::none(),
            finished: false,
        };
        let mut done = open(&tracer);
        done.finish(Ok(200));
        drop(done);
        // The call went away with the request in flight.
        drop(open(&tracer));
        let finishes = tracer.0.lock().unwrap().clone();
        assert_eq!(finishes.len(), 2, "{finishes:?}");
        assert_eq!(finishes[0], "200");
        assert!(finishes[1].starts_with("error: abandoned"), "{finishes:?}");
    }

    #[test]
    fn empty_list_allows_nothing() {
        assert!(!list(&[]).allows("example.com", 80));
    }

    #[test]
    fn plain_host_allows_any_port_of_that_host_only() {
        let l = list(&["wallet.internal"]);
        assert!(l.allows("wallet.internal", 8080));
        assert!(l.allows("WALLET.internal", 80));
        assert!(!l.allows("evil.internal", 80));
        assert!(!l.allows("wallet.internal.evil.com", 80));
        assert!(allows_url(&l, "http://wallet.internal/"));
        assert!(allows_url(&l, "https://wallet.internal/"));
        assert!(allows_url(&l, "http://wallet.internal:9999/x"));
    }

    #[test]
    fn host_with_port_allows_that_port_only() {
        let l = list(&["127.0.0.1:9000"]);
        assert!(l.allows("127.0.0.1", 9000));
        assert!(!l.allows("127.0.0.1", 9001));
        assert!(!allows_url(&l, "http://127.0.0.1/"));
        assert!(allows_url(&l, "http://127.0.0.1:9000/"));
    }

    #[test]
    fn a_port_80_entry_allows_http_urls_without_a_port() {
        let l = list(&["127.0.0.1:80"]);
        assert!(allows_url(&l, "http://127.0.0.1/"));
        assert!(allows_url(&l, "http://127.0.0.1:80/path"));
        assert!(!allows_url(&l, "https://127.0.0.1/"));
        assert!(!allows_url(&l, "http://127.0.0.1:8080/"));
    }

    #[test]
    fn a_port_443_entry_allows_https_urls_without_a_port() {
        let l = list(&["api.example.com:443"]);
        assert!(allows_url(&l, "https://api.example.com/"));
        assert!(allows_url(&l, "https://API.example.com:443/v1"));
        assert!(!allows_url(&l, "http://api.example.com/"));
    }

    #[test]
    fn wildcard_allows_subdomains_but_not_the_apex_or_lookalikes() {
        let l = list(&["*.example.com"]);
        assert!(l.allows("api.example.com", 80));
        assert!(l.allows("a.b.example.com", 443));
        assert!(l.allows("API.Example.COM", 443));
        assert!(!l.allows("example.com", 80));
        assert!(!l.allows("badexample.com", 80));
    }

    #[test]
    fn a_wildcard_with_a_port_allows_that_port_only() {
        let l = list(&["*.example.com:443"]);
        assert!(allows_url(&l, "https://api.example.com/"));
        assert!(!allows_url(&l, "http://api.example.com/"));
    }

    #[test]
    fn star_allows_everything() {
        assert!(list(&["*"]).allows("anything.at.all", 1));
    }

    #[test]
    fn ipv6_hosts_are_matched_without_brackets() {
        let l = list(&["[::1]:8080"]);
        assert!(l.allows("[::1]", 8080));
        assert!(!l.allows("[::1]", 80));
        assert!(allows_url(&l, "http://[::1]:8080/"));
        assert!(allows_url(&list(&["[::1]:80"]), "http://[::1]/"));
    }
}
