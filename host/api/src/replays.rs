//! `/v1/actors/{name}/replays`: start a replay of a past range (or plan
//! one, dry) and list an actor's replays; `/v1/replays/{id}`: one replay's
//! progress; `/v1/replays/{id}/cancel`: stop feeding it
//! (wactor-registry's `replays` module, run by the host asked).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use wactor_registry::replays::{ReplayRequest, ReplayView};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, PathParams};
use crate::time::parse_time;
use crate::wire::Items;
use crate::ApiState;

/// The body of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// The range's start (included): RFC 3339, a date (its midnight UTC)
    /// or ms since the Unix epoch.
    pub from: String,
    /// Its end (excluded), the same forms; absent: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// One of the actor's topics; absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// One partition; absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// The version to run on; absent: the active one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Records per second at most; absent: as fast as the actor goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    /// Plan only: the offsets of the range and how many records it holds.
    #[serde(default)]
    pub dry_run: bool,
}

/// The routes of this module.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/actors/{name}/replays", get(list).post(start))
        .route("/v1/replays/{id}", get(show))
        .route("/v1/replays/{id}/cancel", post(cancel))
}

async fn start(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<ReplayBody>,
) -> ApiResult<(StatusCode, Json<ReplayView>)> {
    let bad = |what: &str, e: String| ApiError::BadRequest(format!("{what}: {e}"));
    let from_ms = parse_time(&body.from).map_err(|e| bad("from", e))?;
    let to_ms = body
        .to
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(|e| bad("to", e))?;
    let view = state
        .registry
        .start_replay(
            &name,
            ReplayRequest {
                from_ms,
                to_ms,
                topic: body.topic,
                partition: body.partition,
                version: body.version,
                rate: body.rate,
                dry_run: body.dry_run,
                by: caller.0.clone(),
            },
        )
        .await?;
    let status = if view.dry_run {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(view)))
}

async fn list(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<Items<ReplayView>>> {
    Ok(Json(Items {
        items: state.registry.replays(&name)?,
    }))
}

async fn show(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<ReplayView>> {
    Ok(Json(state.registry.replay(&id)?))
}

async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<ReplayView>> {
    let view = state.registry.cancel_replay(&id)?;
    tracing::info!(replay = %id, by = %caller.0, "replay cancelled through the API");
    Ok(Json(view))
}
