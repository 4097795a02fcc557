//! # wactor-api
//!
//! The admin API: JSON over HTTP with bearer tokens, served by the host,
//! plus the web dashboard that uses it. Handlers translate requests into
//! [`wactor_registry::Registry`] calls and results into JSON; they hold no
//! business logic. docs/api.md is the reference for users, and
//! docs/openapi.yaml its machine-readable form.
//!
//! # Layout
//!
//! - [`auth`]: the bearer-token middleware and [`auth::Caller`], who made a
//!   request (recorded as `by` / `uploaded_by` of changes).
//! - [`error`]: [`ApiError`], the one place where errors get their status.
//! - [`extract`]: JSON, query and path extractors that fail in the API's
//!   JSON shape, and the body-size limit.
//! - [`wire`]: the JSON shapes, shared with the CLI.
//! - [`time`]: RFC 3339 / milliseconds parsing and formatting.
//! - [`actors`]: actors, versions (upload), history, activate, rollback,
//!   pause, resume, remove.
//! - [`dead_letters`]: list, show, re-drive, discard.
//! - [`logs`]: an actor's own log lines from the host's ring.
//! - [`series`]: per-actor time series of the last hour (events/s by
//!   outcome, p50/p99 call time, lag) sampled from the host's metrics, for
//!   the dashboard's charts.
//! - [`cluster`]: the hosts of the cluster and the partitions they own.
//! - [`retries`]: held events of an actor, retry-now.
//! - [`schedules`]: an actor's schedules, backfill.
//! - [`replays`]: replays of a past range: start (or plan), list, show,
//!   cancel.
//! - [`system`]: `/health`, `/metrics`, unknown routes.
//! - [`dashboard`]: `GET /` and `/ui/*`.
//!
//! What it does not do: decide where to listen or whether listening
//! without tokens is allowed (the host's config does), validate manifests
//! or components (the registry and runtime do), or speak TLS (put a TLS
//! proxy in front when the API leaves the machine).

pub mod actors;
pub mod auth;
pub mod cluster;
pub mod dashboard;
pub mod dead_letters;
pub mod error;
pub mod extract;
pub mod logs;
pub mod replays;
pub mod retries;
pub mod schedules;
pub mod series;
pub mod system;
pub mod time;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::Router;
use tower_http::trace::TraceLayer;
use wactor_metrics::Metrics;
use wactor_registry::Registry;

pub use error::{ApiError, ApiResult};

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
    /// The per-actor time series (filled by [`series::run_sampler`]).
    pub series: Arc<series::Series>,
}

/// The API's routes: `/health`, `/metrics` and the dashboard open, every
/// `/v1` route behind the token check and the body limit.
pub fn router(state: ApiState) -> Router {
    let tokens = auth::Tokens::new(&state.auth.tokens);
    let limit = extract::BodyLimit(state.max_request_bytes);
    // `route_layer`s run last-added first: the token check, then the limit.
    let v1 = Router::new()
        .merge(actors::routes())
        .merge(cluster::routes())
        .merge(dead_letters::routes())
        .merge(logs::routes())
        .merge(replays::routes())
        .merge(retries::routes())
        .merge(schedules::routes())
        .merge(series::routes())
        .route_layer(from_fn_with_state(limit, extract::limit_body))
        .route_layer(from_fn_with_state(tokens, auth::require_token));
    Router::new()
        .merge(system::routes())
        .merge(dashboard::routes())
        .merge(v1)
        .fallback(system::no_route)
        .layer(DefaultBodyLimit::max(state.max_request_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
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
