//! `/v1/actors/{name}/schedules`: an actor's schedules with their next and
//! last firing, and `.../{schedule}/backfill`: fire every occurrence of a
//! past range now (wactor-registry's `schedules` module).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use wactor_registry::schedules::{BackfillReport, ScheduleView};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{JsonBody, PathParams};
use crate::wire::Items;
use crate::ApiState;

/// The body of a backfill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillBody {
    /// The range's start: RFC 3339, or a date in the schedule's time zone.
    pub from: String,
    /// Its end, included: RFC 3339, or a date (its whole day).
    pub to: String,
    /// Only say what would fire.
    #[serde(default)]
    pub dry_run: bool,
}

/// The routes of this module.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/actors/{name}/schedules", get(list))
        .route(
            "/v1/actors/{name}/schedules/{schedule}/backfill",
            post(backfill),
        )
}

async fn list(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<Items<ScheduleView>>> {
    Ok(Json(Items {
        items: state.registry.schedules(&name).await?,
    }))
}

async fn backfill(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams((name, schedule)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<BackfillBody>,
) -> ApiResult<Json<BackfillReport>> {
    let report = state
        .registry
        .backfill(&name, &schedule, &body.from, &body.to, body.dry_run)
        .await?;
    tracing::info!(
        actor = %name, schedule = %schedule, from = %body.from, to = %body.to,
        fired = report.fired, dry_run = body.dry_run, by = %caller.0,
        "backfill through the API"
    );
    Ok(Json(report))
}
