//! `/v1/dead-letters`: list with filters and paging, show one, re-drive
//! and discard (one, a filter, or all), with dry runs.
//!
//! A selection is exactly one of an `id`, a non-empty `filter`, or
//! `"all": true`: a request that names none is refused instead of taken
//! as "everything", so a forgotten filter cannot re-drive or discard the
//! whole set. Keys in filters are text or `base64:...`; times are RFC 3339
//! or milliseconds ([`crate::time`]).
//!
//! Listing and counting read sled directly, so they run on the blocking
//! pool; re-drive and discard are the registry's.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use wactor_registry::{RedriveRequest, RedriveTarget, Registry, RegistryError};
use wactor_store::DeadLetterFilter;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{non_empty, JsonBody, PathParams, Query};
use crate::time::parse_time;
use crate::wire::{
    parse_key, BatchFailure, BatchReport, DeadLetterPageView, DeadLetterQuery, DeadLetterView,
    DiscardBody, FilterBody, RedriveBody, TimeArg,
};
use crate::ApiState;

/// Page size when the request gives none.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page.
pub const MAX_LIMIT: usize = 1000;

/// The routes of this module.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/dead-letters", get(list))
        .route("/v1/dead-letters/redrive", post(redrive))
        .route("/v1/dead-letters/discard", post(discard))
        .route("/v1/dead-letters/{id}", get(show).delete(remove))
}

/// Runs a synchronous registry read on the blocking pool.
pub(crate) async fn blocking<T, F>(registry: &Arc<Registry>, read: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Registry) -> Result<T, RegistryError> + Send + 'static,
{
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || read(&registry))
        .await
        .map_err(|err| ApiError::from(RegistryError::Internal(format!("read task failed: {err}"))))?
        .map_err(ApiError::from)
}

async fn list(
    State(state): State<ApiState>,
    Query(query): Query<DeadLetterQuery>,
) -> ApiResult<Json<DeadLetterPageView>> {
    let filter = filter_of(FilterBody {
        actor: query.actor,
        topic: query.topic,
        key: query.key,
        error: query.error,
        since: query.since.map(TimeArg::Text),
        until: query.until.map(TimeArg::Text),
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let after = non_empty(query.after);
    let with_total = query.total.unwrap_or(false);
    let (page, total) = blocking(&state.registry, move |registry| {
        let page = registry.dead_letters(&filter, limit, after.as_deref())?;
        let total = if with_total {
            Some(registry.count_dead_letters(&filter)?)
        } else {
            None
        };
        Ok((page, total))
    })
    .await?;
    Ok(Json(DeadLetterPageView {
        items: page.items.iter().map(DeadLetterView::from).collect(),
        next: page.next,
        total,
    }))
}

async fn show(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<DeadLetterView>> {
    let dead = blocking(&state.registry, move |registry| registry.dead_letter(&id)).await?;
    Ok(Json(DeadLetterView::from(&dead)))
}

async fn remove(
    State(state): State<ApiState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<BatchReport>> {
    let report = state
        .registry
        .discard(Some(&id), &DeadLetterFilter::default(), false)
        .await?;
    tracing::info!(id = %id, by = %caller.0, "dead letter discarded through the API");
    Ok(Json(batch_report(report, false)))
}

async fn redrive(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(body): JsonBody<RedriveBody>,
) -> ApiResult<Json<BatchReport>> {
    let (id, filter) = selection(body.id, body.filter, body.all, "re-drive")?;
    let request = RedriveRequest {
        filter,
        id,
        target: body
            .version
            .map_or(RedriveTarget::Active, RedriveTarget::Version),
        dry_run: body.dry_run,
        rate_per_sec: body.rate,
        by: caller.0,
    };
    // A task of its own: a client that hangs up (or a CLI stopped with
    // Ctrl-C) must not drop the request between sending a window of
    // re-drives and removing their letters.
    let registry = state.registry.clone();
    let report = tokio::spawn(async move { registry.redrive(request).await })
        .await
        .map_err(|err| RegistryError::Internal(format!("the re-drive task failed: {err}")))??;
    Ok(Json(batch_report(report, true)))
}

async fn discard(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(body): JsonBody<DiscardBody>,
) -> ApiResult<Json<BatchReport>> {
    let (id, filter) = selection(body.id, body.filter, body.all, "discard")?;
    let report = state
        .registry
        .discard(id.as_deref(), &filter, body.dry_run)
        .await?;
    if !body.dry_run {
        tracing::info!(
            discarded = report.redriven,
            by = %caller.0,
            "dead letters discarded through the API"
        );
    }
    Ok(Json(batch_report(report, false)))
}

fn batch_report(report: wactor_registry::RedriveReport, redrive: bool) -> BatchReport {
    BatchReport {
        dry_run: report.dry_run,
        matched: report.matched,
        redriven: redrive.then_some(report.redriven),
        discarded: (!redrive).then_some(report.redriven),
        ids: report.ids,
        failed: report
            .failed
            .into_iter()
            .map(|(id, error)| BatchFailure { id, error })
            .collect(),
    }
}

/// The dead letters a re-drive or discard names: one id, a non-empty
/// filter, or all; exactly one of them.
fn selection(
    id: Option<String>,
    filter: Option<FilterBody>,
    all: bool,
    action: &str,
) -> ApiResult<(Option<String>, DeadLetterFilter)> {
    let id = non_empty(id);
    let filter = filter_of(filter.unwrap_or_default())?;
    let has_filter = filter != DeadLetterFilter::default();
    match (id, has_filter, all) {
        (Some(id), false, false) => Ok((Some(id), filter)),
        (None, true, false) => Ok((None, filter)),
        (None, false, true) => Ok((None, filter)),
        (None, false, false) => Err(ApiError::BadRequest(format!(
            "a {action} needs an `id`, a non-empty `filter`, or `\"all\": true`"
        ))),
        _ => Err(ApiError::BadRequest(format!(
            "a {action} takes one of `id`, `filter` and `\"all\": true`, not several"
        ))),
    }
}

/// The store's filter for a request's filter fields.
fn filter_of(body: FilterBody) -> ApiResult<DeadLetterFilter> {
    let time = |arg: Option<TimeArg>, name: &str| -> ApiResult<Option<i64>> {
        match arg {
            None => Ok(None),
            Some(TimeArg::Ms(ms)) => Ok(Some(ms)),
            Some(TimeArg::Text(text)) if text.trim().is_empty() => Ok(None),
            Some(TimeArg::Text(text)) => parse_time(&text)
                .map(Some)
                .map_err(|err| ApiError::BadRequest(format!("{name}: {err}"))),
        }
    };
    Ok(DeadLetterFilter {
        actor: non_empty(body.actor),
        topic: non_empty(body.topic),
        key: non_empty(body.key)
            .map(|key| parse_key(&key))
            .transpose()
            .map_err(ApiError::BadRequest)?,
        error_contains: non_empty(body.error),
        since_ms: time(body.since, "since")?,
        until_ms: time(body.until, "until")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_is_exactly_one_of_id_filter_and_all() {
        let actor = || {
            Some(FilterBody {
                actor: Some("billing".into()),
                ..FilterBody::default()
            })
        };
        assert!(matches!(
            selection(Some("a:t:0:1".into()), None, false, "re-drive"),
            Ok((Some(_), _))
        ));
        assert!(matches!(
            selection(None, actor(), false, "re-drive"),
            Ok((None, DeadLetterFilter { actor: Some(_), .. }))
        ));
        assert!(matches!(
            selection(None, None, true, "re-drive"),
            Ok((None, _))
        ));
        for (id, filter, all) in [
            (None, None, false),
            (None, Some(FilterBody::default()), false),
            (Some("x".to_string()), actor(), false),
            (Some("x".to_string()), None, true),
            (None, actor(), true),
        ] {
            assert!(
                matches!(
                    selection(id, filter, all, "re-drive"),
                    Err(ApiError::BadRequest(_))
                ),
                "accepted"
            );
        }
    }

    #[test]
    fn filters_decode_keys_and_times() {
        let filter = filter_of(FilterBody {
            key: Some("base64:/wA=".into()),
            since: Some(TimeArg::Text("1970-01-01T00:00:01Z".into())),
            until: Some(TimeArg::Ms(5000)),
            error: Some("  ".into()),
            ..FilterBody::default()
        });
        let filter = filter.unwrap_or_default();
        assert_eq!(filter.key, Some(vec![0xff, 0x00]));
        assert_eq!(filter.since_ms, Some(1000));
        assert_eq!(filter.until_ms, Some(5000));
        assert_eq!(filter.error_contains, None);
        let bad = filter_of(FilterBody {
            since: Some(TimeArg::Text("last tuesday".into())),
            ..FilterBody::default()
        });
        assert!(matches!(bad, Err(ApiError::BadRequest(msg)) if msg.starts_with("since:")));
    }
}
