//! # wactor-api
//!
//! The admin API: JSON over HTTP with bearer tokens, served by the host.
//! Handlers translate requests into [`wactor_registry::Registry`] calls and
//! results into JSON; they hold no business logic.
//!
//! (Skeleton: health and metrics. The full API arrives with the lifecycle
//! work.)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use wactor_metrics::Metrics;
use wactor_registry::Registry;

/// Who may call the API.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// `(name, token)` pairs; empty means no authentication (loopback only).
    pub tokens: Vec<(String, String)>,
}

/// What handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The control plane.
    pub registry: Arc<Registry>,
    /// Metrics to expose.
    pub metrics: Arc<Metrics>,
    /// Tokens.
    pub auth: Auth,
    /// Largest request body.
    pub max_request_bytes: usize,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<ApiState>) -> String {
    state.metrics.render()
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The address a listener is bound to, for logs.
pub fn local_addr(listener: &tokio::net::TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
