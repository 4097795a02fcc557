//! Reading requests: JSON bodies, queries and path parameters whose
//! failures answer in the API's JSON error shape (axum's own extractors
//! answer in plain text), and the request-body size limit.
//!
//! The size limit works in two places: [`limit_body`] refuses a request
//! whose `Content-Length` is over the limit before anything is read, and
//! axum's `DefaultBodyLimit` (set by the router to the same value) stops
//! bodies without a length as they stream in; both end as
//! [`ApiError::TooLarge`], 413.
//!
//! JSON bodies are read whatever their `Content-Type` says, so that
//! `curl -d '{...}'` works without a header.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The request-body limit in force, in bytes (put in the request's
/// extensions by [`limit_body`], for error messages).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Middleware: refuses a body announced larger than the limit.
pub async fn limit_body(
    State(limit): State<BodyLimit>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit.0 as u64) {
        return Err(ApiError::TooLarge { limit: limit.0 });
    }
    request.extensions_mut().insert(limit);
    Ok(next.run(request).await)
}

/// Turns a failure to read the body into an API error.
pub(crate) fn body_error(status: StatusCode, text: String, limit: Option<BodyLimit>) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge {
            limit: limit.map_or(0, |l| l.0),
        }
    } else {
        ApiError::BadRequest(text)
    }
}

/// Reads the whole body.
async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    let limit = request.extensions().get::<BodyLimit>().copied();
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| body_error(rejection.status(), rejection.body_text(), limit))
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::BadRequest(format!("the JSON body is not valid: {err}")))
}

/// A required JSON body.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "this endpoint needs a JSON body".into(),
            ));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// An optional JSON body: an empty body (or `null`) reads as
/// `T::default()`.
#[derive(Debug, Clone)]
pub struct JsonOrDefault<T>(pub T);

impl<S, T> FromRequest<S> for JsonOrDefault<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null" {
            return Ok(JsonOrDefault(T::default()));
        }
        parse_json(&bytes).map(JsonOrDefault)
    }
}

/// A query string.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// Path parameters.
#[derive(Debug, Clone)]
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| PathParams(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// A query or body text value, with empty strings taken as absent (forms
/// send empty fields).
pub(crate) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}
