//! `GET /v1/cluster`: the hosts of the cluster, from their heartbeats
//! (wactor-registry's `cluster` module): each host's name, API address,
//! whether it is alive, and the partitions of each actor it owns, with
//! their lag.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use wactor_registry::cluster::HostStatus;

use crate::error::ApiResult;
use crate::wire::Items;
use crate::ApiState;

/// The routes of this module.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/cluster", get(cluster))
}

async fn cluster(State(state): State<ApiState>) -> ApiResult<Json<Items<HostStatus>>> {
    Ok(Json(Items {
        items: state.registry.cluster().await?,
    }))
}
