//! Admin API (admin key): lead lookup with history, failed submissions, replay, config.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;

use super::AppState;
use super::response::{ApiError, Shape, submission_answer};
use crate::auth::{Principal, presented_key};
use crate::replay::{self, ReplayError};
use crate::store::SubmissionFilter;

pub(crate) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let config = state.config.load();
    match presented_key(headers).map(|k| config.keys.authenticate(k)) {
        Some(Some(Principal::Admin)) => Ok(()),
        Some(Some(_)) => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            super::response::code::FORBIDDEN,
            "this endpoint needs an admin key",
        )),
        Some(None) => Err(ApiError::unauthorized("unknown API key")),
        None => Err(ApiError::unauthorized("missing API key: send Authorization: Bearer <key> or X-API-Key")),
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
    Ok(Json(lead).into_response())
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
