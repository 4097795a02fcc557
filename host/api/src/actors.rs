//! `/v1/actors`: list and show actors, upload versions (multipart), list
//! versions and the activation history, activate, roll back, pause,
//! resume and remove.
//!
//! Each handler reads its request, makes one [`Registry`] call and shapes
//! the answer ([`crate::wire`]); validation of manifests and components,
//! storing and swapping are the registry's. The one check made here is
//! the one only the API can make: that an upload's manifest names the
//! actor of its URL.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use wactor_manifest::ActorManifest;
use wactor_registry::{Registry, RegistryError, Upload};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{body_error, BodyLimit, JsonBody, JsonOrDefault, PathParams, Query};
use crate::wire::{
    ActivateBody, ActivationView, ActorDetail, ActorView, DeployedView, Items, Removed,
    RollbackBody, UploadQuery, VersionView,
};
use crate::ApiState;

/// The routes of this module.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/actors", get(list))
        .route("/v1/actors/{name}", get(show).delete(remove))
        .route("/v1/actors/{name}/versions", get(versions).post(upload))
        .route("/v1/actors/{name}/history", get(history))
        .route("/v1/actors/{name}/activate", post(activate))
        .route("/v1/actors/{name}/rollback", post(rollback))
        .route("/v1/actors/{name}/pause", post(pause))
        .route("/v1/actors/{name}/resume", post(resume))
}

async fn list(State(state): State<ApiState>) -> ApiResult<Json<Items<ActorView>>> {
    let actors = state.registry.actors().await?;
    let cluster = state.registry.handled_in_cluster().await;
    Ok(Json(Items {
        items: actors
            .into_iter()
            .map(|summary| with_cluster_handled(ActorView::from(summary), cluster.as_ref()))
            .collect(),
    }))
}

/// `view` with its `handled` summed over the cluster, when there is one.
fn with_cluster_handled(
    mut view: ActorView,
    cluster: Option<&std::collections::BTreeMap<String, u64>>,
) -> ActorView {
    if let Some(total) = cluster.and_then(|c| c.get(&view.name)) {
        view.handled = *total;
    }
    view
}

async fn show(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<ActorDetail>> {
    Ok(Json(detail(&state.registry, &name).await?))
}

/// Everything about one actor.
pub(crate) async fn detail(registry: &Registry, name: &str) -> ApiResult<ActorDetail> {
    let record = registry.actor(name)?;
    let summary = registry
        .actors()
        .await?
        .into_iter()
        .find(|actor| actor.name == name)
        // Removed between the two reads.
        .ok_or_else(|| RegistryError::UnknownActor(name.into()))?;
    let cluster = registry.handled_in_cluster().await;
    Ok(ActorDetail {
        actor: with_cluster_handled(ActorView::from(summary), cluster.as_ref()),
        paused: record.paused,
        created_at_ms: record.created_at_ms,
        manifest: record.manifest_toml,
        failure: registry.failure(name),
    })
}

async fn remove(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<Removed>> {
    state.registry.remove(&name).await?;
    tracing::info!(actor = %name, by = %caller.0, "actor removed through the API");
    Ok(Json(Removed { removed: name }))
}

async fn versions(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<Items<VersionView>>> {
    let versions = state.registry.versions(&name)?;
    Ok(Json(Items {
        items: versions.into_iter().map(VersionView::from).collect(),
    }))
}

async fn history(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<Items<ActivationView>>> {
    Ok(Json(Items {
        items: state.registry.history(&name)?,
    }))
}

async fn activate(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<ActivateBody>,
) -> ApiResult<Json<ActivationView>> {
    let activation = state
        .registry
        .activate(&name, body.version, &caller.0, "activate")
        .await?;
    Ok(Json(activation))
}

async fn rollback(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    JsonOrDefault(body): JsonOrDefault<RollbackBody>,
) -> ApiResult<Json<ActivationView>> {
    let activation = state.registry.rollback(&name, body.to, &caller.0).await?;
    Ok(Json(activation))
}

async fn pause(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<ActorDetail>> {
    state.registry.pause(&name).await?;
    tracing::info!(actor = %name, by = %caller.0, "actor paused through the API");
    Ok(Json(detail(&state.registry, &name).await?))
}

async fn resume(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<ActorDetail>> {
    state.registry.resume(&name).await?;
    tracing::info!(actor = %name, by = %caller.0, "actor resumed through the API");
    Ok(Json(detail(&state.registry, &name).await?))
}

/// The parts of an upload.
#[derive(Default)]
struct UploadParts {
    manifest: Option<String>,
    component: Option<axum::body::Bytes>,
    notes: Option<String>,
}

async fn upload(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Query(query): Query<UploadQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<DeployedView>)> {
    let multipart = multipart.map_err(|rejection| {
        ApiError::BadRequest(format!(
            "{}: send multipart/form-data with the parts `manifest` and `component`",
            rejection.body_text()
        ))
    })?;
    let parts = read_upload(multipart, BodyLimit(state.max_request_bytes)).await?;
    let manifest_toml = parts
        .manifest
        .ok_or_else(|| ApiError::BadRequest("the upload has no `manifest` part".into()))?;
    let component = parts
        .component
        .ok_or_else(|| ApiError::BadRequest("the upload has no `component` part".into()))?;
    let manifest = ActorManifest::parse(&manifest_toml).map_err(RegistryError::from)?;
    if manifest.name != name {
        return Err(RegistryError::NameMismatch {
            requested: name,
            manifest: manifest.name,
        }
        .into());
    }
    let deployed = state
        .registry
        .deploy(Upload {
            manifest_toml: &manifest_toml,
            component: &component,
            uploaded_by: &caller.0,
            notes: parts.notes.as_deref().unwrap_or(""),
            activate: query.activate.unwrap_or(true),
        })
        .await?;
    let status = if deployed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(DeployedView::from(deployed))))
}

async fn read_upload(mut multipart: Multipart, limit: BodyLimit) -> ApiResult<UploadParts> {
    let failed = |err: MultipartError| body_error(err.status(), err.body_text(), Some(limit));
    let mut parts = UploadParts::default();
    while let Some(field) = multipart.next_field().await.map_err(failed)? {
        let name = field.name().unwrap_or_default().to_string();
        let twice = || ApiError::BadRequest(format!("the upload has two `{name}` parts"));
        match name.as_str() {
            "manifest" if parts.manifest.is_some() => return Err(twice()),
            "component" if parts.component.is_some() => return Err(twice()),
            "notes" if parts.notes.is_some() => return Err(twice()),
            "manifest" => parts.manifest = Some(field.text().await.map_err(failed)?),
            "component" => parts.component = Some(field.bytes().await.map_err(failed)?),
            "notes" => parts.notes = Some(field.text().await.map_err(failed)?),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown part {other:?}: an upload has the parts `manifest`, `component` \
                     and, optionally, `notes`"
                )))
            }
        }
    }
    Ok(parts)
}
