//! The open endpoints a load balancer and a metrics scraper use, and the
//! answer for unknown routes.
//!
//! - `GET /health`: 200 with `{"status": "ok", ...}` while the host serves.
//! - `GET /metrics`: Prometheus text exposition of the host's metrics.
//!
//! Neither needs a token: they say nothing an operator would keep secret
//! (health says whether the API wants a token, so that the dashboard can
//! ask for one up front).

use axum::extract::{OriginalUri, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ApiState;

/// The answer of `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `ok` (a host that cannot serve does not answer).
    pub status: String,
    /// The host's version.
    pub version: String,
    /// Whether `/v1` needs a bearer token.
    pub auth_required: bool,
}

/// The routes of this module.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

async fn health(State(state): State<ApiState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        auth_required: !state.auth.tokens.is_empty(),
    })
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The answer for a route that does not exist.
pub async fn no_route(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NoRoute(uri.path().to_string())
}
