//! `/v1/actors/{name}/retries`: the events an actor holds because they
//! wait for a retry (or wait behind one of their lane), and running one of
//! them now.
//!
//! Held events live with their partition's owner; with a shared registry
//! any host answers for the whole cluster by asking the owners through
//! Kafka (wactor-registry's `owner_requests`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use wactor_store::HeldFilter;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{non_empty, PathParams, Query};
use crate::wire::{parse_key, HeldListingView, HeldView, RetriesQuery, RetryingNow};
use crate::ApiState;

/// How many held events a listing returns when the request gives no limit.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest listing.
pub const MAX_LIMIT: usize = 10_000;

/// The routes of this module.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/actors/{name}/retries", get(list))
        .route("/v1/actors/{name}/retries/{id}/retry-now", post(retry_now))
}

async fn list(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Query(query): Query<RetriesQuery>,
) -> ApiResult<Json<HeldListingView>> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let filter = HeldFilter {
        topic: non_empty(query.topic),
        partition: None,
        key: non_empty(query.key)
            .map(|key| parse_key(&key))
            .transpose()
            .map_err(ApiError::BadRequest)?,
        only_retrying: query.only_retrying.unwrap_or(false),
    };
    let listing = state.registry.held_listing(&name, &filter, limit).await?;
    Ok(Json(HeldListingView {
        items: listing
            .held
            .iter()
            .map(|h| HeldView {
                host: (!h.host.is_empty()).then(|| h.host.clone()),
                ..HeldView::from(&h.held)
            })
            .collect(),
        unanswered_hosts: listing.unanswered,
        truncated_hosts: listing.truncated,
    }))
}

async fn retry_now(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams((name, id)): PathParams<(String, String)>,
) -> ApiResult<(StatusCode, Json<RetryingNow>)> {
    state.registry.retry_now(&name, &id).await?;
    tracing::info!(actor = %name, id = %id, by = %caller.0, "retry-now through the API");
    Ok((StatusCode::ACCEPTED, Json(RetryingNow { id })))
}
