//! The admin API client: one `reqwest` client with the base URL and the
//! token, JSON in and out, and the multipart upload of `deploy` with a
//! progress line.
//!
//! Every answer comes back as the API's JSON ([`serde_json::Value`]) so
//! that `--json` can print exactly what the host said; verbs read the
//! typed shapes of [`wactor_api::wire`] from it for their tables. Error
//! answers become [`Failure::Api`] with the API's code and message; a host
//! that cannot be reached becomes [`Failure::Unreachable`].

use std::io::IsTerminal;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use wactor_api::wire::ErrorBody;

use super::output::format_size;
use super::{Conn, Failure, Result};

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a plain read or change may take (uploads and re-drives, which
/// may be rate-limited, have no limit).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Upload chunk size (and progress granularity).
const CHUNK: usize = 64 * 1024;

/// A client of one host's admin API.
pub struct Client {
    http: reqwest::Client,
    /// `http://host:port`, without a trailing slash.
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for `conn`'s host.
    pub fn new(conn: &Conn) -> Result<Self> {
        let base = normalize_base(&conn.api)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("wactor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Other(format!("cannot create the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            token: conn.token.clone().filter(|t| !t.is_empty()),
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::GET, path).timeout(REQUEST_TIMEOUT))
            .await
    }

    /// `GET path?query`.
    pub async fn get_with(&self, path: &str, query: &impl Serialize) -> Result<Value> {
        self.send(
            self.request(Method::GET, path)
                .query(query)
                .timeout(REQUEST_TIMEOUT),
        )
        .await
    }

    /// `POST path` with a JSON body (`None`: no body).
    pub async fn post(&self, path: &str, body: Option<&impl Serialize>) -> Result<Value> {
        let mut builder = self.request(Method::POST, path).timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        self.send(builder).await
    }

    /// `POST path` with a JSON body and no time limit (re-drives, which
    /// may be rate-limited).
    pub async fn post_long(&self, path: &str, body: &impl Serialize) -> Result<Value> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::DELETE, path).timeout(REQUEST_TIMEOUT))
            .await
    }

    /// Uploads a version: `POST /v1/actors/{actor}/versions` with the
    /// manifest, the component and the notes as multipart parts. Shows
    /// progress on stderr when it is a terminal.
    pub async fn upload(
        &self,
        actor: &str,
        manifest: String,
        component: Vec<u8>,
        notes: Option<String>,
        activate: bool,
    ) -> Result<(StatusCode, Value)> {
        let total = component.len() as u64;
        let progress = std::io::stderr().is_terminal();
        let mut sent = 0u64;
        let chunks: Vec<Vec<u8>> = component.chunks(CHUNK).map(<[u8]>::to_vec).collect();
        let label = actor.to_string();
        let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
            sent += chunk.len() as u64;
            if progress {
                let percent = (sent * 100).checked_div(total).unwrap_or(100);
                eprint!(
                    "\r  uploading {label}: {} / {} ({percent}%)",
                    format_size(sent),
                    format_size(total)
                );
                if sent == total {
                    eprint!("; validating and compiling...");
                }
            }
            Ok::<_, std::io::Error>(chunk)
        }));
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), total)
            .file_name("component.wasm")
            .mime_str("application/wasm")
            .map_err(|e| Failure::Other(format!("cannot build the upload: {e}")))?;
        let mut form = Form::new()
            .part(
                "manifest",
                Part::text(manifest)
                    .mime_str("application/toml")
                    .map_err(|e| Failure::Other(format!("cannot build the upload: {e}")))?,
            )
            .part("component", part);
        if let Some(notes) = notes {
            form = form.text("notes", notes);
        }
        let path = format!("/v1/actors/{}/versions", segment(actor));
        let builder = self
            .request(Method::POST, &path)
            .query(&[("activate", activate)])
            .multipart(form);
        let result = self.send_with_status(builder).await;
        if progress {
            eprintln!();
        }
        result
    }

    async fn send(&self, builder: RequestBuilder) -> Result<Value> {
        self.send_with_status(builder).await.map(|(_, value)| value)
    }

    async fn send_with_status(&self, builder: RequestBuilder) -> Result<(StatusCode, Value)> {
        let response = builder.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        if status.is_success() {
            let value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).map_err(|e| {
                    Failure::Other(format!(
                        "the host at {} answered with something other than JSON: {e}",
                        self.base
                    ))
                })?
            };
            return Ok((status, value));
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => (body.code, body.error),
            Err(_) => (
                "http".to_string(),
                format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes)
                        .trim()
                        .chars()
                        .take(300)
                        .collect::<String>()
                ),
            ),
        };
        let message = if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
            format!("{message} (pass --token or set WACTOR_TOKEN)")
        } else {
            message
        };
        Err(Failure::Api {
            status: status.as_u16(),
            code,
            message,
        })
    }

    fn transport(&self, err: reqwest::Error) -> Failure {
        let what = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        // The innermost cause says the most (connection refused, ...).
        let mut cause: &dyn std::error::Error = &err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        Failure::Unreachable(format!(
            "the wactor API at {}: {what}: {cause} (is the host running? set --api or WACTOR_API)",
            self.base
        ))
    }
}

/// Reads a typed answer from the API's JSON.
pub fn parse<T: DeserializeOwned>(value: &Value) -> Result<T> {
    T::deserialize(value).map_err(|e| {
        Failure::Other(format!(
            "unexpected answer from the host (is it another wactor version?): {e}"
        ))
    })
}

/// The base URL without a trailing slash; `host:port` gets `http://`.
fn normalize_base(api: &str) -> Result<String> {
    let api = api.trim().trim_end_matches('/');
    if api.is_empty() {
        return Err(Failure::Usage("--api is empty".into()));
    }
    if api.starts_with("https://") {
        return Err(Failure::Usage(format!(
            "--api {api}: this client speaks plain HTTP only; reach a TLS endpoint through \
             an SSH tunnel or a local proxy (see docs/api.md)"
        )));
    }
    if api.starts_with("http://") {
        Ok(api.to_string())
    } else if api.contains("://") {
        Err(Failure::Usage(format!(
            "--api {api}: expected http://host:port"
        )))
    } else {
        Ok(format!("http://{api}"))
    }
}

/// Percent-encodes one path segment (actor names, dead-letter and held
/// ids).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b':' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalized() {
        assert_eq!(
            normalize_base("http://127.0.0.1:7700/").ok().as_deref(),
            Some("http://127.0.0.1:7700")
        );
        assert_eq!(
            normalize_base("localhost:7700").ok().as_deref(),
            Some("http://localhost:7700")
        );
        assert!(matches!(
            normalize_base("https://wactor.example"),
            Err(Failure::Usage(_))
        ));
        assert!(matches!(normalize_base("ftp://x"), Err(Failure::Usage(_))));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("billing:orders:0:17"), "billing:orders:0:17");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("orders:3:key.6b:5"), "orders:3:key.6b:5");
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        let api = |status| Failure::Api {
            status,
            code: String::new(),
            message: String::new(),
        };
        assert_eq!(api(404).exit_code(), super::super::EXIT_NOT_FOUND);
        assert_eq!(api(400).exit_code(), super::super::EXIT_REFUSED);
        assert_eq!(api(409).exit_code(), super::super::EXIT_REFUSED);
        assert_eq!(api(413).exit_code(), super::super::EXIT_REFUSED);
        assert_eq!(api(401).exit_code(), super::super::EXIT_UNAUTHORIZED);
        assert_eq!(api(500).exit_code(), super::super::EXIT_ERROR);
        assert_eq!(
            Failure::Unreachable(String::new()).exit_code(),
            super::super::EXIT_ERROR
        );
    }
}
