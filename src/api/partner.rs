//! Partner API (pull distribution) and disposition reports from push buyers.
//!
//! Partners authenticate with their buyer key (`Authorization: Bearer` or `X-API-Key`).
//! Before a claim they see a preview per their terms (`masked`: no name, e-mail, phone
//! or street; `blind`: product and score only); a claim returns the whole lead.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::response::{ApiError, code};
use crate::auth::Principal;
use crate::claim::{
    ClaimOutcome, ConfirmOutcome, Disposition, DispositionKind, DispositionOutcome, OfferQuery, OfferRow,
    Relay,
};
use crate::route::{Buyer, Preview, Target};

/// The buyer a request's key belongs to.
fn require_buyer(state: &AppState, headers: &HeaderMap) -> Result<Arc<Buyer>, ApiError> {
    match super::authenticate(state, headers)? {
        Principal::Buyer(name) => state
            .config
            .load()
            .routing
            .buyers
            .get(&name)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("unknown API key")),
        _ => Err(super::forbidden("this endpoint needs a buyer key")),
    }
}

fn require_partner(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Arc<Buyer>, crate::route::PullTarget), ApiError> {
    let buyer = require_buyer(state, headers)?;
    match &buyer.target {
        Target::Pull(p) => {
            let p = p.clone();
            Ok((buyer, p))
        }
        _ => Err(ApiError::new(StatusCode::FORBIDDEN, code::FORBIDDEN, "this endpoint is for pull partners")),
    }
}

fn conflict(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

#[derive(Debug, Deserialize)]
pub struct OffersQuery {
    /// `newest` (default) or `score`.
    order: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    product: Option<String>,
    min_score: Option<i64>,
    state: Option<String>,
}

/// `GET /v1/partner/offers`: what this partner may claim now, previewed.
pub async fn list_offers(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<OffersQuery>,
) -> Result<Response, ApiError> {
    let (buyer, terms) = require_partner(&state, &headers)?;
    let by_score = match q.order.as_deref() {
        None | Some("newest") => false,
        Some("score") => true,
        Some(other) => return Err(ApiError::bad_request(format!("order {other:?}: use newest or score"))),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let offset = q.offset.unwrap_or(0).max(0);
    let query =
        OfferQuery { by_score, limit, offset, product: q.product, min_score: q.min_score, state: q.state };
    let offers = crate::claim::offers_for(&state.store, &buyer.name, state.clock.now_ms(), &query)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let next = (offers.len() as i64 == limit).then_some(offset + limit);
    let list: Vec<serde_json::Value> = offers.iter().map(|o| preview(o, terms.preview)).collect();
    Ok(Json(serde_json::json!({ "offers": list, "next_offset": next })).into_response())
}

/// An offer as a partner sees it before claiming.
pub fn preview(o: &OfferRow, mode: Preview) -> serde_json::Value {
    let mut v = serde_json::json!({
        "lead_id": o.lead_id,
        "product": o.product,
        "score": o.score,
        "grade": o.grade,
        "offered_at": o.offered_at,
        "expires_at": o.expires_at,
    });
    if mode == Preview::Masked {
        let f = &o.fields;
        let initial =
            |s: &Option<String>| s.as_deref().and_then(|n| n.chars().next()).map(|c| format!("{c}."));
        v["city"] = f.city.clone().into();
        v["state"] = f.state.clone().into();
        v["country"] = f.country.clone().into();
        v["postal_prefix"] = f.postal_code.as_deref().map(|p| p.chars().take(3).collect::<String>()).into();
        v["initials"] = match (initial(&f.first_name), initial(&f.last_name)) {
            (None, None) => serde_json::Value::Null,
            (a, b) => format!("{}{}", a.unwrap_or_default(), b.unwrap_or_default()).into(),
        };
        v["has_email"] = f.email.is_some().into();
        v["has_phone"] = f.phone.is_some().into();
    }
    v
}

fn claimed_response(c: crate::claim::Claimed) -> Response {
    Json(serde_json::json!({
        "lead_id": c.lead_id,
        "claim_id": c.claim_id,
        "fields": c.fields,
        "lease_expires_at": c.lease_expires_at,
    }))
    .into_response()
}

fn lease_ms(terms: &crate::route::PullTarget) -> i64 {
    i64::try_from(terms.lease.as_millis()).unwrap_or(i64::MAX / 4)
}

/// `POST /v1/partner/offers/{lead_id}/claim`: exactly one partner wins.
pub async fn claim(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
) -> Result<Response, ApiError> {
    let (buyer, terms) = require_partner(&state, &headers)?;
    let outcome = crate::claim::claim(&state.store, &lead_id, &buyer, lease_ms(&terms), state.clock.now_ms())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    match outcome {
        ClaimOutcome::Claimed(c) => {
            crate::telemetry::claim_event(&buyer.name, &c.lead_id, "claimed");
            Ok(claimed_response(*c))
        }
        ClaimOutcome::Taken(why) => {
            Err(conflict("already_claimed", format!("lead {lead_id} cannot be claimed: {why}")))
        }
        ClaimOutcome::NotEligible(why) => Err(conflict("not_eligible", why)),
        ClaimOutcome::CapReached(why) => Err(conflict("cap_reached", why)),
        ClaimOutcome::NotFound => Err(ApiError::not_found("offer")),
    }
}

/// `POST /v1/partner/claims/next`: claims the best eligible offer; 204 when none.
pub async fn claim_next(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (buyer, terms) = require_partner(&state, &headers)?;
    match crate::claim::claim_next(
        &state.store,
        &buyer,
        terms.claim_order,
        lease_ms(&terms),
        state.clock.now_ms(),
    )
    .await
    .map_err(|e| ApiError::internal(&e))?
    {
        Some(c) => {
            crate::telemetry::claim_event(&buyer.name, &c.lead_id, "claimed");
            Ok(claimed_response(c))
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `POST /v1/partner/claims/{lead_id}/confirm`: keeps the lead for good.
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
) -> Result<Response, ApiError> {
    let (buyer, _) = require_partner(&state, &headers)?;
    match crate::claim::confirm(&state.store, &lead_id, &buyer.name, state.clock.now_ms())
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        ConfirmOutcome::Confirmed => {
            Ok(Json(serde_json::json!({ "lead_id": lead_id, "status": "confirmed" })).into_response())
        }
        ConfirmOutcome::NoLiveClaim => Err(conflict(
            "no_live_claim",
            format!("no live claim of yours on lead {lead_id} (the lease may have expired)"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispositionBody {
    status: DispositionKind,
    #[serde(default)]
    reason: Option<String>,
    /// Conversion value (any JSON number or string, kept verbatim).
    #[serde(default)]
    value: Option<serde_json::Value>,
}

/// `POST /v1/partner/leads/{lead_id}/disposition`.
pub async fn partner_disposition(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (buyer, _) = require_partner(&state, &headers)?;
    record(&state, &buyer, &lead_id, None, &body).await
}

/// `POST /v1/deliveries/{delivery_id}/disposition`: a push buyer reports on a lead it got.
pub async fn delivery_disposition(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(delivery_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let buyer = require_buyer(&state, &headers)?;
    let lead_id = state
        .store
        .lead_of_delivery(&delivery_id, &buyer.name)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    record(&state, &buyer, &lead_id, Some(&delivery_id), &body).await
}

async fn record(
    state: &AppState,
    buyer: &Buyer,
    lead_id: &str,
    delivery_id: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let b: DispositionBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid disposition: {e} (expected {{\"status\": \"accepted|rejected|returned|contacted|converted\", \"reason\", \"value\"}})"
        ))
    })?;
    if matches!(b.status, DispositionKind::Rejected | DispositionKind::Returned)
        && b.reason.as_deref().is_none_or(|r| r.trim().is_empty())
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason_required",
            format!("a {} disposition needs a reason", b.status.as_str()),
        ));
    }
    let value = b.value.map(|v| match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    let d = Disposition { kind: b.status, reason: b.reason, value };
    let now = state.clock.now_ms();
    let relay = relay_for(state, lead_id, buyer, &d, now).await?;
    match crate::claim::disposition(&state.store, lead_id, buyer, delivery_id, &d, relay, now)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        DispositionOutcome::Recorded { id } => Ok((
            StatusCode::CREATED,
            Json(serde_json::json!({ "disposition_id": id, "lead_id": lead_id, "status": d.kind })),
        )
            .into_response()),
        DispositionOutcome::NotYours => Err(ApiError::not_found("lead claimed or delivered to you")),
        DispositionOutcome::Refused(why) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", why))
        }
    }
}

/// The closed-loop relay to the lead's source, when its config asks for this status.
pub(crate) async fn relay_for(
    state: &AppState,
    lead_id: &str,
    buyer: &Buyer,
    d: &Disposition,
    now: i64,
) -> Result<Option<Relay>, ApiError> {
    let Some(lead) = state.store.lead(lead_id).await.map_err(|e| ApiError::internal(&e))? else {
        return Ok(None);
    };
    let config = state.config.load();
    let Some(loop_cfg) = config.source(&lead.source).and_then(|s| s.closed_loop.clone()) else {
        return Ok(None);
    };
    if !loop_cfg.events.contains(&d.kind) {
        return Ok(None);
    }
    let body = serde_json::json!({
        "event": "disposition",
        "status": d.kind,
        "lead_id": lead_id,
        "vendor_lead_id": lead.fields.get("vendor_lead_id"),
        "source": lead.source,
        "buyer": buyer.name,
        "reason": d.reason,
        "value": d.value,
        "at": crate::clock::rfc3339(now),
    });
    Ok(Some(Relay {
        target: crate::config::closed_loop_target(&lead.source),
        payload: crate::deliver::Payload::WebhookV1(crate::deliver::WebhookPayload {
            method: "POST".into(),
            url: loop_cfg.url.clone(),
            headers: Vec::new(),
            content_type: "application/json".into(),
            body: body.to_string(),
        }),
    }))
}
