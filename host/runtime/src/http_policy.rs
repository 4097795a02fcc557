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
//! - `*`: any host (for trusted actors only).

use std::sync::Arc;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

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

    /// True when a request to `host` (and `port`, if the URL names one) is
    /// allowed.
    pub fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.patterns.iter().any(|pattern| {
            let pattern = pattern.trim();
            if pattern == "*" {
                return true;
            }
            let (pattern_host, pattern_port) = split_port(pattern);
            if let Some(want) = pattern_port {
                if port != Some(want) {
                    return false;
                }
            }
            if let Some(suffix) = pattern_host.strip_prefix("*.") {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix)
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

impl WasiHttpHooks for HostAllowList {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let uri = request.uri();
        let allowed = uri
            .host()
            .is_some_and(|host| self.allows(host, uri.port_u16()));
        if !allowed {
            tracing::debug!(uri = %uri, "outbound HTTP request denied by allow-list");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> HostAllowList {
        HostAllowList::new(patterns.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn empty_list_allows_nothing() {
        assert!(!list(&[]).allows("example.com", None));
    }

    #[test]
    fn plain_host_allows_any_port_of_that_host_only() {
        let l = list(&["wallet.internal"]);
        assert!(l.allows("wallet.internal", Some(8080)));
        assert!(l.allows("WALLET.internal", None));
        assert!(!l.allows("evil.internal", None));
        assert!(!l.allows("wallet.internal.evil.com", None));
    }

    #[test]
    fn host_with_port_allows_that_port_only() {
        let l = list(&["127.0.0.1:9000"]);
        assert!(l.allows("127.0.0.1", Some(9000)));
        assert!(!l.allows("127.0.0.1", Some(9001)));
        assert!(!l.allows("127.0.0.1", None));
    }

    #[test]
    fn wildcard_allows_subdomains_but_not_the_apex_or_lookalikes() {
        let l = list(&["*.example.com"]);
        assert!(l.allows("api.example.com", None));
        assert!(l.allows("a.b.example.com", None));
        assert!(!l.allows("example.com", None));
        assert!(!l.allows("badexample.com", None));
    }

    #[test]
    fn star_allows_everything() {
        assert!(list(&["*"]).allows("anything.at.all", Some(1)));
    }

    #[test]
    fn ipv6_hosts_are_matched_without_brackets() {
        let l = list(&["[::1]:8080"]);
        assert!(l.allows("[::1]", Some(8080)));
        assert!(!l.allows("[::1]", Some(80)));
    }
}
