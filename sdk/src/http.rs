//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! This module owns every use of `wasi:http`, `wasi:io` and `wasi:clocks`
//! in the SDK: building the request, streaming its body, waiting for the
//! response under one deadline and reading its body to the end.
//!
//! ```no_run
//! use std::time::Duration;
//! use wactor_sdk::http::{self, Request};
//! # fn demo() -> Result<(), http::Error> {
//! let response = Request::post("http://wallet.internal:8080/reservations/R-1/reverse")
//!     .header("Idempotency-Key", "B-1001")
//!     .json(&serde_json::json!({ "amount": 25000 }))
//!     .timeout(Duration::from_secs(5))
//!     .send()?;
//! if response.is_success() {
//!     let body: serde_json::Value = response.json().map_err(|e| http::Error::Transport(e.to_string()))?;
//!     # let _ = body;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The host lets an actor reach only the hosts on its allow-list (the
//! manifest's `allowed_hosts`); other requests fail with
//! [`Error::Denied`] or [`Error::Transport`]. HTTP calls are not
//! transactional: a retried event makes them again, so send an idempotency
//! key.
//!
//! A response with any status is `Ok`: 4xx and 5xx are for the actor to
//! judge. `Err` means no response arrived.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bindings::wasi::clocks::monotonic_clock;
use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method as WitMethod,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::bindings::wasi::io::poll::{self, Pollable};
use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};

/// The timeout of a request that does not set one with
/// [`Request::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many bytes to ask for per read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    fn to_wit(&self) -> WitMethod {
        match self {
            Method::Get => WitMethod::Get,
            Method::Head => WitMethod::Head,
            Method::Post => WitMethod::Post,
            Method::Put => WitMethod::Put,
            Method::Patch => WitMethod::Patch,
            Method::Delete => WitMethod::Delete,
            Method::Options => WitMethod::Options,
        }
    }
}

/// An outgoing request, built step by step and sent with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    timeout: Duration,
    /// An error found while building (a body that would not encode),
    /// reported by `send` so that the builder chain stays infallible.
    error: Option<Error>,
}

impl Request {
    /// A request with `method` to `url` (`http://` or `https://`).
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            error: None,
        }
    }

    /// A `GET` request to `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Request::new(Method::Get, url)
    }

    /// A `POST` request to `url`.
    pub fn post(url: impl Into<String>) -> Self {
        Request::new(Method::Post, url)
    }

    /// A `PUT` request to `url`.
    pub fn put(url: impl Into<String>) -> Self {
        Request::new(Method::Put, url)
    }

    /// A `DELETE` request to `url`.
    pub fn delete(url: impl Into<String>) -> Self {
        Request::new(Method::Delete, url)
    }

    /// Adds a header (names may repeat).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body. A `Content-Length` header is added when the request
    /// is sent.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` encoded as JSON and the `Content-Type` to
    /// `application/json` (unless a content type was set already).
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.body = body;
                if find_header(&self.headers, "content-type").is_none() {
                    self.headers
                        .push(("content-type".to_string(), b"application/json".to_vec()));
                }
            }
            Err(err) => {
                self.error = Some(Error::InvalidRequest(format!(
                    "body is not encodable as JSON: {err}"
                )));
            }
        }
        self
    }

    /// Sets the time the whole exchange may take: connecting, sending the
    /// body, waiting for the response and reading its body. Default:
    /// [`DEFAULT_TIMEOUT`]. Keep it below the actor's per-call time limit,
    /// or the call is cut off as a trap instead of getting an
    /// [`Error::Timeout`] it can handle.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request and reads the whole response.
    ///
    /// Blocks the actor until the response body has been read, the timeout
    /// passes or the exchange fails.
    pub fn send(self) -> Result<Response, Error> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let url = Url::parse(&self.url)?;
        let timer = Timer::start(self.timeout);

        let mut headers = self.headers;
        if !self.body.is_empty() && find_header(&headers, "content-length").is_none() {
            headers.push((
                "content-length".to_string(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        let fields = Fields::from_list(&headers)
            .map_err(|err| Error::InvalidRequest(format!("invalid header: {err:?}")))?;
        let request = OutgoingRequest::new(fields);
        request
            .set_method(&self.method.to_wit())
            .map_err(|()| Error::InvalidRequest("method refused".to_string()))?;
        request
            .set_scheme(Some(&url.scheme))
            .map_err(|()| Error::InvalidUrl(format!("{}: scheme refused", self.url)))?;
        request
            .set_authority(Some(&url.authority))
            .map_err(|()| Error::InvalidUrl(format!("{}: authority refused", self.url)))?;
        request
            .set_path_with_query(Some(&url.path_with_query))
            .map_err(|()| Error::InvalidUrl(format!("{}: path refused", self.url)))?;
        let body = request
            .body()
            .map_err(|()| Error::InvalidRequest("request body already taken".to_string()))?;

        let options = RequestOptions::new();
        let nanos = timer.nanos();
        // A host may not support some of these; the deadline below holds
        // regardless.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));

        let host = url.host_port();
        let named = |err: Error| err.naming_host(&host);
        let future = outgoing_handler::handle(request, Some(options))
            .map_err(Error::from_code)
            .map_err(named)?;

        // A failed body write is not an error by itself: a server may answer
        // without waiting for the end of the body (and the host may close
        // the body stream once the exchange is over), so a response wins.
        // Without a response, the request's own error (connection refused,
        // timeout...) says more than the broken body stream.
        let _body_written = write_body(body, &self.body, &timer);
        let response = wait_response(&future, &timer).map_err(named)?;
        let status = response.status();
        let headers = {
            let fields = response.headers();
            fields.entries()
        };
        let body = read_body(&response, &timer)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// A response, with its whole body read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers (name, value) as received; names are lower case.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }

    /// The first value of header `name` as text: `None` when absent or not
    /// UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The delay a `Retry-After` header asks for, when it is given in
    /// seconds (the HTTP-date form is not supported and yields `None`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.header_str("retry-after")
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }

    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Decodes the body as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Why no response arrived.
///
/// Every case converts into [`Outcome::Retry`](crate::Outcome::Retry) with
/// `?`; match on it when some cases deserve another outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The URL does not parse, or is not `http`/`https`.
    InvalidUrl(String),
    /// The request could not be built (an invalid header, a body that does
    /// not encode).
    InvalidRequest(String),
    /// The host refused to send the request (`HTTP-request-denied`): the
    /// destination (`host:port`, as the allow-list matches it) is not on the
    /// actor's allow-list.
    Denied(String),
    /// The exchange did not finish within the request's timeout, or the
    /// host reported a connect/read/response timeout.
    Timeout(String),
    /// Any other failure the host reported (connection refused, DNS, TLS,
    /// a broken stream): the `wasi:http` error code's debug text.
    Transport(String),
}

impl Error {
    /// Maps a `wasi:http` error code onto the cases an actor handles.
    fn from_code(code: ErrorCode) -> Self {
        let text = format!("{code:?}");
        match code {
            ErrorCode::HttpRequestDenied => Error::Denied(text),
            ErrorCode::DnsTimeout
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout => Error::Timeout(text),
            _ => Error::Transport(text),
        }
    }

    /// A denial names the destination it was for (`host:port`).
    fn naming_host(self, host: &str) -> Self {
        match self {
            Error::Denied(_) => Error::Denied(host.to_string()),
            other => other,
        }
    }

    fn from_stream(err: StreamError, what: &str) -> Self {
        match err {
            StreamError::Closed => Error::Transport(format!("stream closed while {what}")),
            StreamError::LastOperationFailed(io) => {
                match crate::bindings::wasi::http::types::http_error_code(&io) {
                    Some(code) => Error::from_code(code),
                    None => Error::Transport(format!("{what}: {}", io.to_debug_string())),
                }
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(detail) => write!(f, "invalid URL: {detail}"),
            Error::InvalidRequest(detail) => write!(f, "invalid HTTP request: {detail}"),
            Error::Denied(host) => write!(
                f,
                "HTTP request to {host} denied: the host is not in the actor's allowed_hosts \
                 (actor.toml) or --allow-host (wactor invoke)"
            ),
            Error::Timeout(detail) => write!(f, "HTTP request timed out: {detail}"),
            Error::Transport(detail) => write!(f, "HTTP request failed: {detail}"),
        }
    }
}

impl std::error::Error for Error {}

/// A case-insensitive header lookup.
fn find_header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_slice())
}

/// The one deadline of an exchange, as a pollable that every wait includes.
struct Timer {
    timeout: Duration,
    pollable: Pollable,
}

impl Timer {
    fn start(timeout: Duration) -> Self {
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let deadline = monotonic_clock::now().saturating_add(nanos);
        Timer {
            timeout,
            pollable: monotonic_clock::subscribe_instant(deadline),
        }
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.timeout.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Blocks until `ready` is ready, or fails once the deadline passes.
    fn wait(&self, ready: &Pollable, what: &str) -> Result<(), Error> {
        let fired = poll::poll(&[ready, &self.pollable]);
        if fired.contains(&0) {
            Ok(())
        } else {
            Err(Error::Timeout(format!(
                "no progress {what} within {:?}",
                self.timeout
            )))
        }
    }
}

/// Writes the whole request body, as much at a time as `check-write`
/// permits, flushes it and finishes the body.
fn write_body(body: OutgoingBody, bytes: &[u8], timer: &Timer) -> Result<(), Error> {
    {
        let stream: OutputStream = body
            .write()
            .map_err(|()| Error::InvalidRequest("request body stream already taken".to_string()))?;
        let ready = stream.subscribe();
        let mut rest = bytes;
        while !rest.is_empty() {
            let permitted = stream
                .check_write()
                .map_err(|err| Error::from_stream(err, "writing the request body"))?;
            if permitted == 0 {
                timer.wait(&ready, "writing the request body")?;
                continue;
            }
            let len = usize::try_from(permitted)
                .unwrap_or(usize::MAX)
                .min(rest.len());
            let (chunk, tail) = rest.split_at(len);
            stream
                .write(chunk)
                .map_err(|err| Error::from_stream(err, "writing the request body"))?;
            rest = tail;
        }
        stream
            .flush()
            .map_err(|err| Error::from_stream(err, "flushing the request body"))?;
        // The flush is done when the stream accepts writes again.
        loop {
            let permitted = stream
                .check_write()
                .map_err(|err| Error::from_stream(err, "flushing the request body"))?;
            if permitted > 0 {
                break;
            }
            timer.wait(&ready, "flushing the request body")?;
        }
        // `ready` and `stream` are children of `body`: dropped here, before
        // `finish` consumes it.
    }
    OutgoingBody::finish(body, None).map_err(Error::from_code)
}

/// Waits for the response head.
fn wait_response(
    future: &FutureIncomingResponse,
    timer: &Timer,
) -> Result<IncomingResponse, Error> {
    let ready = future.subscribe();
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(Error::from_code(code)),
            Some(Err(())) => {
                return Err(Error::Transport("response already taken".to_string()));
            }
            None => timer.wait(&ready, "waiting for the response")?,
        }
    }
}

/// Reads the response body until its stream closes.
fn read_body(response: &IncomingResponse, timer: &Timer) -> Result<Vec<u8>, Error> {
    let body: IncomingBody = response
        .consume()
        .map_err(|()| Error::Transport("response body already taken".to_string()))?;
    let mut bytes = Vec::new();
    {
        let stream: InputStream = body
            .stream()
            .map_err(|()| Error::Transport("response body stream already taken".to_string()))?;
        let ready = stream.subscribe();
        loop {
            match stream.read(READ_CHUNK) {
                Ok(chunk) if chunk.is_empty() => {
                    timer.wait(&ready, "reading the response body")?;
                }
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(err) => return Err(Error::from_stream(err, "reading the response body")),
            }
        }
        // `ready` and `stream` are children of `body`: dropped here.
    }
    let _trailers = IncomingBody::finish(body);
    Ok(bytes)
}

/// The parts of a URL that `wasi:http` wants separately.
#[derive(Debug)]
struct Url {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
}

impl Url {
    fn parse(url: &str) -> Result<Url, Error> {
        let invalid = |why: &str| Error::InvalidUrl(format!("{url}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("no scheme (expected http:// or https://)"))?;
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(invalid("unsupported scheme (expected http or https)"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        if authority.contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace"));
        }
        let path_with_query = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Url {
            scheme,
            authority: authority.to_string(),
            path_with_query,
        })
    }

    /// `host:port` as the host's allow-list matches it: the URL's port,
    /// else 80 for `http` and 443 for `https`.
    fn host_port(&self) -> String {
        let has_port = match self.authority.rfind(']') {
            // [v6] or [v6]:port
            Some(close) => self.authority[close..].contains(':'),
            None => self.authority.contains(':'),
        };
        if has_port {
            self.authority.clone()
        } else {
            let port = match self.scheme {
                Scheme::Https => 443,
                _ => 80,
            };
            format!("{}:{port}", self.authority)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> Option<(String, String, String)> {
        Url::parse(url).ok().map(|u| {
            let scheme = match u.scheme {
                Scheme::Http => "http".to_string(),
                Scheme::Https => "https".to_string(),
                Scheme::Other(other) => other,
            };
            (scheme, u.authority, u.path_with_query)
        })
    }

    fn owned(a: &str, b: &str, c: &str) -> Option<(String, String, String)> {
        Some((a.to_string(), b.to_string(), c.to_string()))
    }

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        assert_eq!(
            parts("http://127.0.0.1:8080/reservations/R-1/reverse?x=1#frag"),
            owned("http", "127.0.0.1:8080", "/reservations/R-1/reverse?x=1")
        );
        assert_eq!(
            parts("HTTPS://example.com"),
            owned("https", "example.com", "/")
        );
        assert_eq!(
            parts("http://example.com?q=1"),
            owned("http", "example.com", "/?q=1")
        );
    }

    #[test]
    fn bad_urls_are_invalid_url_errors() {
        for url in [
            "example.com/x",
            "ftp://example.com/",
            "http:///path",
            "http://u:p@h/",
            "http://a b/",
        ] {
            assert!(
                matches!(Url::parse(url), Err(Error::InvalidUrl(_))),
                "{url} should be invalid"
            );
        }
    }

    #[test]
    fn a_denial_names_the_destination_as_the_allow_list_sees_it() {
        let host = |url: &str| Url::parse(url).map(|u| u.host_port()).ok();
        assert_eq!(host("http://wallet:8080/x").as_deref(), Some("wallet:8080"));
        assert_eq!(
            host("https://example.com/").as_deref(),
            Some("example.com:443")
        );
        assert_eq!(
            host("http://example.com").as_deref(),
            Some("example.com:80")
        );
        assert_eq!(host("http://[::1]/").as_deref(), Some("[::1]:80"));
        assert_eq!(host("http://[::1]:81/").as_deref(), Some("[::1]:81"));
        let text = Error::Denied("wallet:8080".into()).to_string();
        assert!(
            text.starts_with("HTTP request to wallet:8080 denied"),
            "{text}"
        );
        assert!(text.contains("allowed_hosts"), "{text}");
    }

    #[test]
    fn denied_and_timeout_codes_are_told_apart() {
        assert!(matches!(
            Error::from_code(ErrorCode::HttpRequestDenied),
            Error::Denied(_)
        ));
        assert!(matches!(
            Error::from_code(ErrorCode::ConnectionTimeout),
            Error::Timeout(_)
        ));
        assert_eq!(
            Error::from_code(ErrorCode::ConnectionRefused),
            Error::Transport("ErrorCode::ConnectionRefused".to_string())
        );
    }

    #[test]
    fn response_helpers_read_headers_case_insensitively() {
        let response = Response {
            status: 503,
            headers: vec![("retry-after".to_string(), b" 7 ".to_vec())],
            body: br#"{"ok":false}"#.to_vec(),
        };
        assert!(!response.is_success());
        assert_eq!(response.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(response.header_str("Retry-After"), Some(" 7 "));
        assert!(matches!(response.json::<serde_json::Value>(), Ok(v) if v["ok"] == false));
    }
}
