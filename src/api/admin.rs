//! Admin API (admin key): lead lookup with history, failed submissions, replay, config.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;

use super::AppState;
use super::response::{ApiError, Shape, submission_answer};
use crate::auth::Principal;
use crate::replay::{self, ReplayError};
use crate::store::SubmissionFilter;

pub(crate) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match super::authenticate(state, headers)? {
        Principal::Admin => Ok(()),
        _ => Err(super::forbidden("this endpoint needs an admin key")),
    }
}

/// `GET /v1/leads/{id}`: the normalized lead, its submission and its history.
pub async fn get_lead(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let lead = state
        .store
        .lead(&id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::not_found("lead"))?;
    let mut v = serde_json::to_value(&lead).unwrap_or_default();
    if let Some(since) = lead.stage_since_ms {
        v["time_in_stage_secs"] = ((state.clock.now_ms() - since).max(0) / 1000).into();
    }
    Ok(Json(v).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    source: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/admin/submissions?status=failed&source=S&limit=N`, newest first.
pub async fn list_submissions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let filter = SubmissionFilter { status: q.status, source: q.source, limit: q.limit.unwrap_or(100) };
    let list = state.store.submissions(&filter).await.map_err(|e| ApiError::internal(&e))?;
    Ok(Json(serde_json::json!({ "submissions": list })).into_response())
}

/// `GET /v1/admin/submissions/{id}`: metadata, the raw body and the leads it produced.
pub async fn get_submission(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let s = state
        .store
        .submission(&id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::not_found("submission"))?;
    let leads = state.store.leads_of_submission(&id).await.map_err(|e| ApiError::internal(&e))?;
    let mut v = serde_json::to_value(&s).unwrap_or_default();
    match std::str::from_utf8(&s.body) {
        Ok(text) => v["body"] = text.into(),
        Err(_) => v["body_base64"] = base64::engine::general_purpose::STANDARD.encode(&s.body).into(),
    }
    v["lead_ids"] = leads.into();
    Ok(Json(v).into_response())
}

/// `POST /v1/admin/submissions/{id}/replay`: the pipeline again, answered like intake.
pub async fn replay_submission(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let config = state.config.load_full();
    match replay::replay_one(&state.store, &state.writer, &config, &id).await {
        Ok(result) => Ok(submission_answer(result, Shape::Json)),
        Err(ReplayError::NotFound(_)) => Err(ApiError::not_found("submission")),
        Err(e @ ReplayError::UnknownFormat { .. }) => Err(ApiError::bad_request(e.to_string())),
        Err(ReplayError::Store(e)) => Err(ApiError::internal(&e)),
    }
}

/// `GET /v1/admin/config`: what is loaded and any warnings.
pub async fn config_status(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let c = state.config.load();
    Ok(Json(serde_json::json!({
        "dir": c.dir.display().to_string(),
        "sources": c.sources.keys().collect::<Vec<_>>(),
        "buyers": c.routing.buyers.keys().collect::<Vec<_>>(),
        "routes": c.routing.routes.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "warnings": c.warnings,
        "reload": state.reloader.status(),
    }))
    .into_response())
}

/// `POST /v1/admin/config/reload`: like SIGHUP; 200 when the new tree is in service,
/// 422 with the problems when it was refused.
pub async fn reload_config(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let ok = state.reloader.reload().await;
    let status = state.reloader.status();
    let code = if ok { axum::http::StatusCode::OK } else { axum::http::StatusCode::UNPROCESSABLE_ENTITY };
    Ok((code, Json(status)).into_response())
}

/// `POST /v1/admin/deliveries/{id}/redeliver`: re-queues a dead-lettered or rejected delivery.
pub async fn redeliver(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    match state.store.requeue(&id, state.clock.now_ms()).await {
        Ok(true) => Ok(Json(serde_json::json!({ "delivery_id": id, "status": "scheduled" })).into_response()),
        Ok(false) => Err(ApiError::not_found("dead-lettered or rejected delivery")),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    /// RFC 3339; default 30 days before `to`.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// Parses an RFC 3339 time to unix ms.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))?;
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
}

/// The `[from, to)` period of a report request.
pub fn period(from: Option<&str>, to: Option<&str>, now: i64) -> Result<(i64, i64), String> {
    let to = to.map(parse_time).transpose()?.unwrap_or(now + 1);
    let from = from.map(parse_time).transpose()?.unwrap_or(to - 30 * 86_400_000);
    if from >= to {
        return Err("`from` must be before `to`".into());
    }
    Ok((from, to))
}

/// `GET /v1/admin/report?from=…&to=…&format=json|csv`: the funnel per source and buyer.
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let (from, to) =
        period(q.from.as_deref(), q.to.as_deref(), state.clock.now_ms()).map_err(ApiError::bad_request)?;
    let rows = state.store.report_rows(from, to).await.map_err(|e| ApiError::internal(&e))?;
    let r = crate::report::compute(&rows, from, to);
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(r).into_response()),
        Some("csv") => {
            Ok(([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")], crate::report::to_csv(&r))
                .into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!("format {other:?}: use json or csv"))),
    }
}

/// `GET /v1/admin/buyers`: configured buyers and those the outbox disabled (410).
pub async fn buyers(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let disabled = state.store.disabled_buyers().await.map_err(|e| ApiError::internal(&e))?;
    let config = state.config.load();
    let list: Vec<serde_json::Value> = config
        .routing
        .buyers
        .values()
        .map(|b| {
            let off = disabled.iter().find(|(name, _, _)| name == &b.name);
            serde_json::json!({
                "name": b.name,
                "enabled_in_config": b.enabled,
                "disabled_at": off.map(|d| d.1.clone()),
                "disabled_reason": off.and_then(|d| d.2.clone()),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "buyers": list })).into_response())
}

/// `POST /v1/admin/buyers/{name}/enable`: lifts a 410 disablement.
pub async fn enable_buyer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    match state.store.enable_buyer(&name).await.map_err(|e| ApiError::internal(&e))? {
        true => {
            tracing::info!(buyer = %name, "Buyer re-enabled by an operator.");
            Ok(Json(serde_json::json!({ "buyer": name, "enabled": true })).into_response())
        }
        false => Err(ApiError::not_found("disabled buyer")),
    }
}

/// `GET /v1/admin/mailboxes`: each IMAP consumer's state (last successful fetch, last error).
pub async fn mailboxes(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let list = state.store.mailboxes().await.map_err(|e| ApiError::internal(&e))?;
    Ok(Json(serde_json::json!({ "mailboxes": list })).into_response())
}

#[derive(Debug, Deserialize)]
pub struct StageQuery {
    stage: Option<String>,
    source: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/admin/leads?stage=S&source=S&limit=N`: leads in a distribution stage, newest
/// first. `stage` is required here; `GET /v1/admin/review` is the same for
/// `needs_review`, the leads held because their contacts were only guessed.
pub async fn leads_by_stage(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StageQuery>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let Some(stage) = q.stage.filter(|s| !s.trim().is_empty()) else {
        return Err(ApiError::bad_request("give ?stage=, e.g. needs_review"));
    };
    staged(&state, &stage, q.source.as_deref(), q.limit).await
}

/// `GET /v1/admin/review?source=S&limit=N`: the `needs_review` leads, newest first.
pub async fn review(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StageQuery>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    staged(&state, crate::store::review::NEEDS_REVIEW, q.source.as_deref(), q.limit).await
}

async fn staged(
    state: &AppState,
    stage: &str,
    source: Option<&str>,
    limit: Option<i64>,
) -> Result<Response, ApiError> {
    let leads = state
        .store
        .leads_in_stage(stage, source, limit.unwrap_or(100))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(serde_json::json!({ "stage": stage, "leads": leads })).into_response())
}
