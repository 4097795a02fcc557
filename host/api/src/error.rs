//! [`ApiError`]: every way a request fails, and the status and JSON body
//! each one answers with.
//!
//! 4xx bodies say what was wrong (`{"error": ..., "code": ...}`, plus
//! `field` for a manifest field at fault); 5xx bodies say only
//! `"internal error"`, and the cause goes to the log. The status of each
//! [`RegistryError`] variant is decided here and nowhere else:
//!
//! | error | status | code |
//! |---|---|---|
//! | bad manifest | 400 | `bad_manifest` |
//! | bad component (not Wasm, not a component, wrong world, missing export) | 400 | `bad_component` |
//! | component or request too large | 413 | `too_large` |
//! | bad request (filter, rate, body, query) | 400 | `bad_request` |
//! | unknown actor / version / dead letter or held event | 404 | `unknown_actor` / `unknown_version` / `not_found` |
//! | manifest name differs from the URL's | 409 | `name_mismatch` |
//! | nothing to roll back to | 409 | `nothing_to_roll_back` |
//! | the store refused a conflicting write | 409 | `conflict` |
//! | missing or invalid token | 401 | `unauthorized` |
//! | without tokens: a non-loopback `Host`, or a cross-origin change | 403 | `forbidden` |
//! | anything else (store, Kafka, runtime engine, cache) | 500 | `internal` |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use wactor_manifest::ManifestError;
use wactor_registry::RegistryError;
use wactor_runtime::RuntimeError;
use wactor_store::StoreError;

use crate::wire::ErrorBody;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A control-plane operation failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The request itself is malformed: a body, query or path that does not
    /// parse, or a selection that does not make sense.
    #[error("{0}")]
    BadRequest(String),
    /// No valid bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A request a host without tokens does not take: addressed to a
    /// non-loopback name, or a change from another web origin.
    #[error("{0}")]
    Forbidden(String),
    /// The request body is larger than the host accepts.
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The host's `api.max_request`.
        limit: usize,
    },
    /// No such route.
    #[error("no such endpoint: {0}")]
    NoRoute(String),
}

/// Result alias of the handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The status, the code, and the manifest field at fault (if any).
    fn classify(&self) -> (StatusCode, &'static str, Option<String>) {
        match self {
            ApiError::Registry(err) => classify_registry(err),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", None),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", None),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", None),
            ApiError::NoRoute(_) => (StatusCode::NOT_FOUND, "not_found", None),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.classify().0
    }
}

fn classify_registry(err: &RegistryError) -> (StatusCode, &'static str, Option<String>) {
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    const MISSING: StatusCode = StatusCode::NOT_FOUND;
    const CONFLICT: StatusCode = StatusCode::CONFLICT;
    const INTERNAL: (StatusCode, &str, Option<String>) =
        (StatusCode::INTERNAL_SERVER_ERROR, "internal", None);
    match err {
        RegistryError::Manifest(ManifestError::Invalid { field, .. }) => {
            (BAD, "bad_manifest", Some(field.clone()))
        }
        RegistryError::Manifest(_) => (BAD, "bad_manifest", None),
        RegistryError::Component(runtime) => match runtime {
            RuntimeError::NotWasm(_)
            | RuntimeError::NotAComponent
            | RuntimeError::Invalid(_)
            | RuntimeError::WrongWorld(_)
            | RuntimeError::MissingExport(_) => (BAD, "bad_component", None),
            RuntimeError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", None),
            RuntimeError::Engine(_) | RuntimeError::Cache { .. } => INTERNAL,
        },
        RegistryError::UnknownActor(_) => (MISSING, "unknown_actor", None),
        RegistryError::UnknownVersion { .. } => (MISSING, "unknown_version", None),
        RegistryError::NotFound { .. } => (MISSING, "not_found", None),
        RegistryError::NameMismatch { .. } => (CONFLICT, "name_mismatch", None),
        RegistryError::NothingToRollBack(_) => (CONFLICT, "nothing_to_roll_back", None),
        RegistryError::BadRequest(_) => (BAD, "bad_request", None),
        RegistryError::Stale(_) => (CONFLICT, "stale", None),
        RegistryError::NoAnswer(_) => (StatusCode::GATEWAY_TIMEOUT, "no_answer", None),
        RegistryError::Store(store) => match store {
            StoreError::NotFound { .. } => (MISSING, "not_found", None),
            StoreError::Invalid { .. } | StoreError::InvalidActorName(_) => {
                (BAD, "bad_request", None)
            }
            StoreError::Conflict { .. } => (CONFLICT, "conflict", None),
            _ => INTERNAL,
        },
        RegistryError::Kafka(_) | RegistryError::Internal(_) => INTERNAL,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = self.classify();
        // A 5xx hides its detail (it may name internals), except a 504:
        // which hosts did not answer is what the operator needs.
        let error = if status.is_server_error() && status != StatusCode::GATEWAY_TIMEOUT {
            tracing::error!(error = %self, "request failed");
            "internal error".to_string()
        } else {
            self.to_string()
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error,
                code: code.to_string(),
                field,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn status_of(err: RegistryError) -> (StatusCode, &'static str) {
        let (status, code, _) = ApiError::from(err).classify();
        (status, code)
    }

    #[test]
    fn each_registry_error_has_its_status() {
        use StatusCode as S;
        let cases = [
            (
                RegistryError::Manifest(ManifestError::Syntax("x".into())),
                S::BAD_REQUEST,
                "bad_manifest",
            ),
            (
                RegistryError::Component(RuntimeError::NotWasm("x".into())),
                S::BAD_REQUEST,
                "bad_component",
            ),
            (
                RegistryError::Component(RuntimeError::NotAComponent),
                S::BAD_REQUEST,
                "bad_component",
            ),
            (
                RegistryError::Component(RuntimeError::WrongWorld("x".into())),
                S::BAD_REQUEST,
                "bad_component",
            ),
            (
                RegistryError::Component(RuntimeError::MissingExport("x".into())),
                S::BAD_REQUEST,
                "bad_component",
            ),
            (
                RegistryError::Component(RuntimeError::TooLarge { size: 2, limit: 1 }),
                S::PAYLOAD_TOO_LARGE,
                "too_large",
            ),
            (
                RegistryError::Component(RuntimeError::Engine("x".into())),
                S::INTERNAL_SERVER_ERROR,
                "internal",
            ),
            (
                RegistryError::UnknownActor("a".into()),
                S::NOT_FOUND,
                "unknown_actor",
            ),
            (
                RegistryError::UnknownVersion {
                    actor: "a".into(),
                    version: 9,
                },
                S::NOT_FOUND,
                "unknown_version",
            ),
            (
                RegistryError::NotFound {
                    what: "dead letter",
                    id: "x".into(),
                },
                S::NOT_FOUND,
                "not_found",
            ),
            (
                RegistryError::NameMismatch {
                    requested: "a".into(),
                    manifest: "b".into(),
                },
                S::CONFLICT,
                "name_mismatch",
            ),
            (
                RegistryError::NothingToRollBack("a".into()),
                S::CONFLICT,
                "nothing_to_roll_back",
            ),
            (
                RegistryError::BadRequest("x".into()),
                S::BAD_REQUEST,
                "bad_request",
            ),
            (
                RegistryError::NoAnswer("x".into()),
                S::GATEWAY_TIMEOUT,
                "no_answer",
            ),
            (
                RegistryError::Store(StoreError::Invalid {
                    what: "cursor".into(),
                }),
                S::BAD_REQUEST,
                "bad_request",
            ),
            (
                RegistryError::Store(StoreError::Conflict { what: "x".into() }),
                S::CONFLICT,
                "conflict",
            ),
            (
                RegistryError::Store(StoreError::Corrupt { what: "x".into() }),
                S::INTERNAL_SERVER_ERROR,
                "internal",
            ),
            (
                RegistryError::Internal("x".into()),
                S::INTERNAL_SERVER_ERROR,
                "internal",
            ),
        ];
        for (err, status, code) in cases {
            let shown = err.to_string();
            assert_eq!(status_of(err), (status, code), "{shown}");
        }
    }

    #[test]
    fn manifest_errors_name_their_field() {
        let err = ApiError::from(RegistryError::Manifest(ManifestError::Invalid {
            field: "retry.max_attempts".into(),
            reason: "must be at least 1".into(),
        }));
        assert_eq!(err.classify().2.as_deref(), Some("retry.max_attempts"));
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_cause() {
        let response =
            ApiError::from(RegistryError::Internal("secret path /var/x".into())).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.error, "internal error");
        assert_eq!(body.code, "internal");
    }
}
