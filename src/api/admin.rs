//! Admin API (admin key): lead lookup with history, failed submissions, replay, config.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
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

/// Every status a stored submission can have (the channels set the last two).
pub const SUBMISSION_STATUSES: &[&str] = &[
    "processed",
    "failed",
    crate::intake::email::status::NEEDS_TEMPLATE,
    crate::intake::email::status::QUARANTINED,
];

/// 400 for a `?status=` filter that no row can have (which would silently list nothing).
pub fn check_status(status: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match status {
        Some(s) if !allowed.contains(&s) => {
            Err(ApiError::bad_request(format!("unknown status {s:?}: use one of {}", allowed.join(", "))))
        }
        _ => Ok(()),
    }
}

/// `GET /v1/admin/submissions?status=failed&source=S&limit=N`, newest first.
pub async fn list_submissions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    check_status(q.status.as_deref(), SUBMISSION_STATUSES)?;
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
        Err(e) => Err(replay_error(e)),
    }
}

/// The API's answer for a replay or a release that could not run.
fn replay_error(e: ReplayError) -> ApiError {
    match e {
        ReplayError::NotFound(_) => ApiError::not_found("submission"),
        ReplayError::LeadNotFound(_) => ApiError::not_found("lead"),
        e @ ReplayError::NotHeld { .. } => {
            ApiError::new(StatusCode::CONFLICT, crate::api::response::code::NOT_HELD, e.to_string())
        }
        e @ ReplayError::UnknownFormat { .. } => ApiError::bad_request(e.to_string()),
        ReplayError::Store(e) => ApiError::internal(&e),
    }
}

/// `POST /v1/admin/review/{lead_id}/release`: route a lead held in `needs_review` as it
/// stands (the operator vouches for its guessed contacts). 200 with its new stage; 404 for
/// an unknown lead; 409 for a lead that is not held (released already, or never held).
pub async fn release_lead(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let config = state.config.load_full();
    match replay::release_held(&state.store, &state.writer, &config, &id).await {
        Ok(stage) => {
            Ok(Json(serde_json::json!({ "lead_id": id, "released": true, "stage": stage })).into_response())
        }
        Err(e) => Err(replay_error(e)),
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
        Ok(false) => Err(ApiError::not_found(&format!("dead-lettered or rejected delivery {id}"))),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    /// A time as [`parse_time`] reads it; default 30 days before `to`.
    from: Option<String>,
    /// A time as [`parse_time`] reads it, exclusive (a date: the end of that day); default now.
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// What a bare date (`2026-12-01`) stands for: the start of the UTC day, or its end (the
/// next day's start), so that `--to 2026-12-31` includes the 31st of an exclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayEdge {
    Start,
    End,
}

/// What a time option or query parameter accepts, for error messages.
pub const TIME_FORMS: &str =
    "a date (2026-12-01, UTC), an RFC 3339 time (2026-12-01T09:30:00Z) or a time ago (30m, 1h, 7d)";

/// Parses a time as every CLI option and API query parameter takes one, to unix ms:
/// a date (`2026-12-01`, a UTC day: its start, or with [`DayEdge::End`] its end), an RFC 3339
/// time (`2026-12-01T09:30:00+01:00`), `now`, or a duration ago (`30m`, `1h`, `7d`, `1h30m`,
/// counted back from `now_ms`). One function, so the CLI and the API never disagree.
pub fn parse_time(text: &str, now_ms: i64, date: DayEdge) -> Result<i64, String> {
    let t = text.trim();
    let invalid = || format!("{t:?} is not a time: use {TIME_FORMS}");
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if t.len() == 10 && t.as_bytes().get(4) == Some(&b'-') {
        let day = time::Date::parse(t, time::macros::format_description!("[year]-[month]-[day]"))
            .map_err(|e| format!("{t:?} is not a date ({e}): use {TIME_FORMS}"))?;
        let day = match date {
            DayEdge::Start => day,
            DayEdge::End => day.next_day().ok_or_else(invalid)?,
        };
        return Ok(day.midnight().assume_utc().unix_timestamp() * 1000);
    }
    if let Ok(at) = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        return Ok(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0));
    }
    let ago = crate::config::duration::parse(t).map_err(|_| invalid())?;
    Ok(now_ms.saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX)))
}

/// The `[from, to)` period of a report request.
pub fn period(from: Option<&str>, to: Option<&str>, now: i64) -> Result<(i64, i64), String> {
    let to = to
        .map(|t| parse_time(t, now, DayEdge::End))
        .transpose()
        .map_err(|e| format!("to: {e}"))?
        .unwrap_or(now + 1);
    let from = from
        .map(|f| parse_time(f, now, DayEdge::Start))
        .transpose()
        .map_err(|e| format!("from: {e}"))?
        .unwrap_or(to - 30 * 86_400_000);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-04T12:00:00Z.
    const NOW: i64 = 1_796_385_600_000;

    #[test]
    fn times_are_dates_rfc3339_or_durations_ago() {
        let day = 1_796_083_200_000; // 2026-12-01T00:00:00Z
        assert_eq!(parse_time("2026-12-01", NOW, DayEdge::Start), Ok(day));
        assert_eq!(parse_time("2026-12-01", NOW, DayEdge::End), Ok(day + 86_400_000));
        assert_eq!(parse_time("2026-12-01T00:00:00Z", NOW, DayEdge::End), Ok(day));
        assert_eq!(parse_time("2026-12-01T01:30:00+01:30", NOW, DayEdge::Start), Ok(day));
        assert_eq!(parse_time("1h", NOW, DayEdge::Start), Ok(NOW - 3_600_000));
        assert_eq!(parse_time("30m", NOW, DayEdge::Start), Ok(NOW - 1_800_000));
        assert_eq!(parse_time(" 7d ", NOW, DayEdge::End), Ok(NOW - 7 * 86_400_000));
        assert_eq!(parse_time("1h30m", NOW, DayEdge::Start), Ok(NOW - 5_400_000));
        assert_eq!(parse_time("now", NOW, DayEdge::Start), Ok(NOW));
        for bad in ["yesterday", "2026-13-01", "2026", "", "12:00", "-1h"] {
            let e = parse_time(bad, NOW, DayEdge::Start).unwrap_err();
            assert!(e.contains("2026-12-01") && e.contains("7d"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_period_to_a_date_includes_that_day() {
        let (from, to) = period(Some("2026-12-01"), Some("2026-12-01"), NOW).unwrap();
        assert_eq!(to - from, 86_400_000);
        assert_eq!(period(None, None, NOW), Ok((NOW + 1 - 30 * 86_400_000, NOW + 1)));
        assert!(period(Some("1h"), Some("2h"), NOW).unwrap_err().contains("before"));
        assert!(period(Some("soon"), None, NOW).unwrap_err().starts_with("from: "));
    }
}
