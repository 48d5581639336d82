//! `/v1/sources/{source}/meta`: the Meta Lead Ads webhook.
//!
//! - `GET` is Meta's subscription check: `hub.mode=subscribe`, `hub.verify_token` (compared
//!   in constant time with the source's `[meta] verify_token`) and `hub.challenge`, which
//!   is echoed back.
//! - `POST` is a notification. Its `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with
//!   the app secret) is verified first; a missing or wrong signature is refused and not
//!   stored. A notification carries only ids, so it is stored (as a submission of format
//!   `meta-notification`), each `leadgen` change becomes a durable fetch, and Meta is
//!   answered 200 at once. The first fetch of each lead starts right away; retries
//!   ([`super::meta_fetch`]) follow the source's schedule and survive restarts. A lead
//!   announced again (same source and `leadgen_id`) is not fetched twice.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::meta_fetch::{self, LEASE_MS};
use super::{http_submission, json_response, read_body, source_for};
use crate::api::AppState;
use crate::api::response::{ApiError, Shape, code, submission_answer};
use crate::parse::Format;
use crate::parse::vendors::meta::parse_notification;
use crate::pipeline::SubmissionResult;
use crate::store::NewMetaFetch;
use crate::submission::new_id;

/// The signature header Meta sends with every notification.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Longest `hub.challenge` echoed (Meta sends a short number).
const CHALLENGE_MAX: usize = 256;

/// `GET`: the subscription check.
pub async fn verify(
    State(state): State<AppState>,
    Path(source_name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let source = source_for(&config, &source_name, "Meta", |s| s.vendors.meta.is_some())?;
    let Some(meta) = &source.vendors.meta else {
        return Err(ApiError::not_found("Meta endpoint for this source"));
    };
    if q.get("hub.mode").map(String::as_str) != Some("subscribe") {
        return Err(ApiError::bad_request("hub.mode must be subscribe"));
    }
    let token = q.get("hub.verify_token").map(String::as_str).unwrap_or_default();
    if token.is_empty() || !meta.verify_token.matches(token) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, code::FORBIDDEN, "wrong hub.verify_token"));
    }
    let challenge = q.get("hub.challenge").map(String::as_str).unwrap_or_default();
    if challenge.is_empty()
        || challenge.len() > CHALLENGE_MAX
        || !challenge.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::bad_request("hub.challenge must be 1 to 256 visible ASCII characters"));
    }
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], challenge.to_owned())
        .into_response())
}

/// `POST`: a notification.
pub async fn notify(
    State(state): State<AppState>,
    Path(source_name): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let source = source_for(&config, &source_name, "Meta", |s| s.vendors.meta.is_some())?;
    let Some(meta) = &source.vendors.meta else {
        return Err(ApiError::not_found("Meta endpoint for this source"));
    };
    let raw = read_body(body, config.server.max_body_bytes).await?;
    let Some(signature) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::unauthorized("missing X-Hub-Signature-256"));
    };
    if !signature_ok(meta.app_secret.expose().as_bytes(), &raw, signature) {
        tracing::warn!(source = %source.name, peer = %peer, "Meta notification refused: bad X-Hub-Signature-256.");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::FORBIDDEN,
            "X-Hub-Signature-256 does not match the body",
        ));
    }

    let now = state.clock.now_ms();
    let submission =
        http_submission(&source.name, Format::MetaNotification, &headers, peer, raw.to_vec(), now);
    let notification_id = submission.id.clone();
    let result = crate::intake::submit(&config, &state.writer, submission)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if !matches!(result, SubmissionResult::Processed { .. }) {
        return Ok(submission_answer(result, Shape::Json));
    }
    // The pipeline parsed it, so this cannot fail; an error here is still only a 400.
    let rows = fetches(&source.name, &notification_id, &raw, &source.parse)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let owner = new_id();
    let fresh = state
        .store
        .meta_enqueue(&rows, &owner, now, now + LEASE_MS)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let fetching = fresh.len();
    // The first attempt, at once (the lease keeps the worker off these rows meanwhile).
    let (config, writer, store, clock, shutdown) = (
        config.clone(),
        state.writer.clone(),
        state.store.clone(),
        state.clock.clone(),
        state.shutdown.clone(),
    );
    tokio::spawn(async move {
        let attempts = fresh.into_iter().map(|fetch| {
            meta_fetch::attempt(&config, &writer, &store, clock.as_ref(), &shutdown, &owner, fetch)
        });
        futures_util::future::join_all(attempts).await;
    });
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "submission_id": notification_id,
            "leads_announced": rows.len(),
            "leads_to_fetch": fetching,
        }),
    ))
}

/// The fetches a stored notification asks for.
fn fetches(
    source: &str,
    notification_id: &str,
    raw: &[u8],
    cx: &crate::parse::ParseContext,
) -> Result<Vec<NewMetaFetch>, crate::parse::ParseError> {
    Ok(parse_notification(raw, cx)?
        .into_iter()
        .map(|c| NewMetaFetch {
            source: source.to_owned(),
            leadgen_id: c.leadgen_id,
            page_id: c.page_id,
            form_id: c.form_id,
            ad_id: c.ad_id,
            adgroup_id: c.adgroup_id,
            notification_id: notification_id.to_owned(),
        })
        .collect())
}

/// After a stored notification was replayed (say, once a parser fix let it through):
/// records its fetches, due at once for the fetcher. Leads already known are left alone.
pub async fn schedule_replayed(
    store: &crate::store::Store,
    config: &crate::config::Config,
    submission: &crate::submission::StoredSubmission,
    now: i64,
) -> Result<usize, crate::store::StoreError> {
    let Some(source) = config.source(&submission.source) else {
        return Ok(0);
    };
    let Ok(rows) = fetches(&source.name, &submission.id, &submission.body, &source.parse) else {
        return Ok(0);
    };
    // Leased to nobody, with a lease already over: the fetcher takes them on its next look.
    Ok(store.meta_enqueue(&rows, "replay", now, 0).await?.len())
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`), compared in constant time.
pub fn signature_ok(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_part) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[derive(Debug, Deserialize)]
pub struct FetchQuery {
    source: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/admin/meta/fetches?source=S&status=dead`: the Graph API fetches, newest first.
pub async fn list_fetches(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FetchQuery>,
) -> Result<Response, ApiError> {
    crate::api::admin::require_admin(&state, &headers)?;
    crate::api::admin::check_status(q.status.as_deref(), &["pending", "fetched", "dead"])?;
    let list = state
        .store
        .meta_fetches(q.source.as_deref(), q.status.as_deref(), q.limit.unwrap_or(100))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "fetches": list })))
}

/// `POST /v1/admin/meta/fetches/{id}/retry`: a dead fetch is tried again, now.
pub async fn retry_fetch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    crate::api::admin::require_admin(&state, &headers)?;
    match state.store.meta_requeue(&id, state.clock.now_ms()).await {
        Ok(true) => Ok(json_response(StatusCode::OK, &serde_json::json!({ "id": id, "status": "pending" }))),
        Ok(false) => Err(ApiError::not_found("dead Meta fetch")),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_raw_body() {
        let body = br#"{"object":"page"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"app-secret").unwrap();
        mac.update(body);
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signature_ok(b"app-secret", body, &good));
        assert!(!signature_ok(b"other", body, &good));
        assert!(!signature_ok(b"app-secret", b"{}", &good));
        assert!(!signature_ok(b"app-secret", body, "sha1=abc"));
        assert!(!signature_ok(b"app-secret", body, "sha256=zz"));
    }
}
