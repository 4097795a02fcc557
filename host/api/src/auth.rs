//! Bearer tokens: the middleware in front of every `/v1` route, and
//! [`Caller`], the name of whoever made the request.
//!
//! With tokens configured, a request needs `Authorization: Bearer <token>`
//! naming one of them, or it is refused with 401; the token's name becomes
//! the caller, recorded as `uploaded_by` of versions and `by` of
//! activations and re-drives. With no tokens (the host allows that only on
//! loopback) requests are let through as caller `local`, with two guards
//! against web pages the operator visits: the `Host` must be a loopback
//! name (a DNS-rebinding page names its own domain), and a changing
//! request that comes from a browser must come from the API's own origin
//! (a cross-site form or `fetch` carries another `Origin`). Programs
//! (`wactor`, curl) send no `Origin` and pass.
//!
//! Tokens are kept as sha256 digests and compared in constant time over
//! the digests, against every configured token, so neither the time of a
//! refusal nor its length says anything about a token.
//!
//! What it does not do: decide who may listen where (the host's config
//! validation refuses a non-loopback address without tokens), or
//! authorize per actor (a token can do everything).

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The caller name when no tokens are configured.
pub const LOCAL_CALLER: &str = "local";

/// The configured tokens, as digests.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// `(name, sha256(token))`; empty means no authentication.
    entries: Arc<Vec<(String, [u8; 32])>>,
}

impl Tokens {
    /// The digests of `(name, token)` pairs.
    pub fn new(tokens: &[(String, String)]) -> Self {
        Tokens {
            entries: Arc::new(
                tokens
                    .iter()
                    .map(|(name, token)| (name.clone(), digest(token)))
                    .collect(),
            ),
        }
    }

    /// True when requests need a token.
    pub fn required(&self) -> bool {
        !self.entries.is_empty()
    }

    /// The name of the token `presented`, if it is one of them.
    pub fn name_of(&self, presented: &str) -> Option<&str> {
        let presented = digest(presented);
        let mut found = None;
        // No early exit: every entry is compared.
        for (name, expected) in self.entries.iter() {
            if bool::from(expected.ct_eq(&presented)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Who made a request: a token's name, or [`LOCAL_CALLER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Only the middleware puts a caller there; a route without it is
        // refused rather than served anonymously.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized("this endpoint needs a bearer token"))
    }
}

/// The middleware: lets the request through with its [`Caller`], or
/// answers 401.
pub async fn require_token(
    State(tokens): State<Tokens>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = if tokens.required() {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer)
            .ok_or(ApiError::Unauthorized(
                "missing bearer token: send `Authorization: Bearer <token>`",
            ))?;
        tokens
            .name_of(presented)
            .ok_or(ApiError::Unauthorized("invalid token"))?
            .to_string()
    } else {
        check_local(request.method(), request.headers())?;
        LOCAL_CALLER.to_string()
    };
    request.extensions_mut().insert(Caller(caller));
    Ok(next.run(request).await)
}

/// The guards of a host without tokens: a loopback `Host`, and no
/// cross-origin changes.
fn check_local(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or(""));
    if let Some(host) = host {
        if !is_loopback_authority(host) {
            return Err(ApiError::Forbidden(format!(
                "this host has no API tokens, so it answers only requests addressed to a \
                 loopback name, not {host:?}; configure [[api.tokens]] to use another name"
            )));
        }
    }
    let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if let (true, Some(origin)) = (changes, headers.get(header::ORIGIN)) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if authority.is_none() || authority != host {
            return Err(ApiError::Forbidden(format!(
                "cross-origin request from {origin:?} refused"
            )));
        }
    }
    Ok(())
}

/// True for `localhost`, `*.localhost`, `127.x.y.z` and `[::1]`, with or
/// without a port.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, _)) => return ip.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()),
            None => return false,
        },
        None => authority.split(':').next().unwrap_or(""),
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is
/// case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_by_value_and_name_their_holder() {
        let tokens = Tokens::new(&[
            ("ci".to_string(), "s3cret".to_string()),
            ("ops".to_string(), "other".to_string()),
        ]);
        assert!(tokens.required());
        assert_eq!(tokens.name_of("s3cret"), Some("ci"));
        assert_eq!(tokens.name_of("other"), Some("ops"));
        assert_eq!(tokens.name_of("s3cre"), None);
        assert_eq!(tokens.name_of(""), None);
        assert!(!Tokens::new(&[]).required());
    }

    #[test]
    fn loopback_authorities_are_recognized() {
        for ok in [
            "127.0.0.1:7700",
            "localhost",
            "LOCALHOST:80",
            "app.localhost:1",
            "[::1]:7700",
            "127.8.9.10",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for bad in [
            "evil.example:7700",
            "10.0.0.5:7700",
            "[::2]:1",
            "localhost.evil.example",
            "",
            "[::1",
        ] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }

    #[test]
    fn without_tokens_cross_origin_changes_are_refused() {
        let headers = |pairs: &[(header::HeaderName, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(
                    name.clone(),
                    value
                        .parse()
                        .unwrap_or(header::HeaderValue::from_static("")),
                );
            }
            map
        };
        let local = headers(&[(header::HOST, "127.0.0.1:7700")]);
        assert!(check_local(&Method::POST, &local).is_ok());
        let same_origin = headers(&[
            (header::HOST, "127.0.0.1:7700"),
            (header::ORIGIN, "http://127.0.0.1:7700"),
        ]);
        assert!(check_local(&Method::POST, &same_origin).is_ok());
        let cross = headers(&[
            (header::HOST, "127.0.0.1:7700"),
            (header::ORIGIN, "https://evil.example"),
        ]);
        assert!(matches!(
            check_local(&Method::POST, &cross),
            Err(ApiError::Forbidden(_))
        ));
        assert!(check_local(&Method::GET, &cross).is_ok());
        let null_origin = headers(&[(header::HOST, "localhost:7700"), (header::ORIGIN, "null")]);
        assert!(check_local(&Method::DELETE, &null_origin).is_err());
        let rebound = headers(&[(header::HOST, "evil.example:7700")]);
        assert!(matches!(
            check_local(&Method::GET, &rebound),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn bearer_values_are_parsed_strictly() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
