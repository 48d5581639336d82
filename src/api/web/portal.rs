//! The partner portal: open offers (masked as the partner API masks them), the atomic
//! claim, the claimed lead in full, confirmation, dispositions, history and SLA timers.
//!
//! Every read goes through the same calls as the partner API ([`crate::claim`] and the
//! store), with the signed-in partner's name: `offers_for` lists only offers made to it,
//! `claim` refuses leads not offered to it (answered like an unknown lead), and
//! `partner_lead` returns a lead only while the partner holds its own claim on it.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::session::{Area, Session};
use super::{WebState, form_fields, page_ctx, see_other, signin};
use crate::api::AppState;
use crate::api::partner::{preview, relay_for};
use crate::auth::Principal;
use crate::claim::{
    ClaimOutcome, ConfirmOutcome, Disposition, DispositionKind, DispositionOutcome, OfferQuery,
};
use crate::clock::rfc3339;
use crate::route::{Buyer, PullTarget, Target};
use crate::store::offers::ClaimStatus;

const AREA: &str = "portal";

/// The signed-in partner.
struct Partner {
    session: Session,
    buyer: Arc<Buyer>,
    terms: PullTarget,
}

/// The partner of the request's session, or the redirect to the sign-in page.
fn partner(state: &AppState, web: &WebState, headers: &HeaderMap) -> Result<Partner, Box<Response>> {
    let to_login = || Box::new(see_other(Area::Portal.login_path()));
    let session = web.sessions.get(headers, Area::Portal, state.clock.now_ms()).ok_or_else(to_login)?;
    let Principal::Buyer(name) = &session.principal else { return Err(to_login()) };
    // The partner may have been removed or turned into a push buyer by a reload.
    let buyer = state.config.load().routing.buyers.get(name).cloned().ok_or_else(to_login)?;
    let Target::Pull(terms) = &buyer.target else { return Err(to_login()) };
    let terms = terms.clone();
    Ok(Partner { session, buyer, terms })
}

/// Like [`partner`], for a POST: the form's CSRF token must be the session's.
fn partner_post(
    state: &AppState,
    web: &WebState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Partner, std::collections::HashMap<String, String>), Box<Response>> {
    let p = partner(state, web, headers)?;
    let fields = form_fields(body);
    if !p.session.csrf_ok(fields.get("csrf").map(String::as_str)) {
        return Err(Box::new(web.templates.message(
            StatusCode::FORBIDDEN,
            AREA,
            "Please try again",
            "The form had expired (or came from another site). Reload the page and try again.",
            "/portal",
        )));
    }
    Ok((p, fields))
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The SLA terms of route `name` in the current config.
fn sla_of(state: &AppState, route: Option<&str>) -> crate::route::Sla {
    let config = state.config.load();
    route
        .and_then(|name| config.routing.routes.iter().find(|r| r.name == name))
        .map(|r| r.sla)
        .unwrap_or_default()
}

fn chrome(p: &Partner, page: &str) -> serde_json::Value {
    serde_json::json!({
        "area": AREA,
        "signed_in": true,
        "page": page,
        "who": p.buyer.name,
        "csrf": p.session.csrf,
        "flash": p.session.flash,
    })
}

/// `GET /portal/login`.
pub async fn login_page(Extension(web): Extension<WebState>, headers: HeaderMap) -> Response {
    signin::page(&web, Area::Portal, &headers)
}

/// `POST /portal/login`.
pub async fn login(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    signin::submit(&state, &web, Area::Portal, &headers, &body)
}

/// `POST /portal/logout`.
pub async fn logout(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    signin::sign_out(&state, &web, Area::Portal, &headers, &body)
}

#[derive(Debug, serde::Deserialize)]
pub struct OffersQuery {
    order: Option<String>,
}

/// `GET /portal`: the open offers, newest first (or best score first with `?order=score`).
pub async fn offers(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<OffersQuery>,
) -> Response {
    let p = match partner(&state, &web, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let now = state.clock.now_ms();
    let by_score = q.order.as_deref() == Some("score");
    let query = OfferQuery { limit: 100, by_score, ..OfferQuery::default() };
    let rows = match crate::claim::offers_for(&state.store, &p.buyer.name, now, &query).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&web, &e),
    };
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|o| {
            let mut v = preview(o, p.terms.preview);
            if let Some(within) = sla_of(&state, Some(&o.route)).claim_within {
                v["claim_by"] = rfc3339(o.created_at_ms.saturating_add(ms(within))).into();
            }
            v
        })
        .collect();
    let ctx = page_ctx(
        chrome(&p, "offers"),
        serde_json::json!({ "offers": list, "masked": p.terms.preview == crate::route::Preview::Masked, "lease": humanize(p.terms.lease), "order": if by_score { "score" } else { "newest" } }),
    );
    web.templates.page("portal_offers.html", ctx)
}

/// `POST /portal/offers/{lead_id}/claim`: the API's claim; the loser of a race gets a
/// page saying someone else took it.
pub async fn claim(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
    body: Bytes,
) -> Response {
    let (p, _) = match partner_post(&state, &web, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let lease = ms(p.terms.lease);
    let outcome =
        match crate::claim::claim(&state.store, &lead_id, &p.buyer, lease, state.clock.now_ms()).await {
            Ok(o) => o,
            Err(e) => return unavailable(&web, &e),
        };
    let gone =
        |title: &str, text: &str| web.templates.message(StatusCode::CONFLICT, AREA, title, text, "/portal");
    match outcome {
        ClaimOutcome::Claimed(c) => {
            crate::telemetry::claim_event(&p.buyer.name, &c.lead_id, "claimed");
            web.sessions.flash(
                &headers,
                format!(
                    "It is yours for {} (until {} UTC): confirm it to keep it.",
                    humanize(p.terms.lease),
                    c.lease_expires_at.get(11..16).unwrap_or_default()
                ),
            );
            see_other(&format!("/portal/leads/{}", urlencode(&c.lead_id)))
        }
        ClaimOutcome::Taken(_) => gone(
            "Someone else took it",
            "Another partner claimed this lead a moment before you did, or the offer ran out. \
             Nothing was charged to you. The other offers are still open.",
        ),
        ClaimOutcome::NotEligible(why) => gone("Not yet yours to claim", &why),
        ClaimOutcome::CapReached(why) => gone("Your cap is reached", &why),
        ClaimOutcome::NotFound => web.templates.message(
            StatusCode::NOT_FOUND,
            AREA,
            "No such offer",
            "This offer is not (or no longer) open to you.",
            "/portal",
        ),
    }
}

/// `POST /portal/claims/next`: the best offer by the partner's claim order, like
/// `POST /v1/partner/claims/next`.
pub async fn claim_next(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (p, _) = match partner_post(&state, &web, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let lease = ms(p.terms.lease);
    match crate::claim::claim_next(&state.store, &p.buyer, p.terms.claim_order, lease, state.clock.now_ms())
        .await
    {
        Ok(Some(c)) => {
            crate::telemetry::claim_event(&p.buyer.name, &c.lead_id, "claimed");
            web.sessions.flash(
                &headers,
                format!("It is yours for {}: confirm it to keep it.", humanize(p.terms.lease)),
            );
            see_other(&format!("/portal/leads/{}", urlencode(&c.lead_id)))
        }
        Ok(None) => {
            web.sessions.flash(&headers, "Nothing to claim right now.");
            see_other("/portal")
        }
        Err(e) => unavailable(&web, &e),
    }
}

/// `GET /portal/leads/{lead_id}`: the whole lead, only for the partner's own claim.
pub async fn lead(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
) -> Response {
    let p = match partner(&state, &web, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let now = state.clock.now_ms();
    let held = match state.store.partner_lead(&lead_id, &p.buyer.name, now).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return web.templates.message(
                StatusCode::NOT_FOUND,
                AREA,
                "Not one of your leads",
                "You can open a lead once you have claimed it. Claims that were not confirmed in time go back to the pool.",
                "/portal",
            );
        }
        Err(e) => return unavailable(&web, &e),
    };
    let c = &held.claim;
    let sla = sla_of(&state, c.route.as_deref());
    let leased = c.status == ClaimStatus::Leased;
    let disposition_by = sla
        .disposition_within
        .filter(|_| c.disposition.is_none())
        .map(|w| rfc3339(c.claimed_at_ms.saturating_add(ms(w))));
    let return_by = rfc3339(c.claimed_at_ms.saturating_add(ms(p.buyer.returns.window)));
    let fields = serde_json::to_value(&held.fields).unwrap_or_default();
    let fields: Vec<(String, String)> = fields.as_object().map(super::field_rows).unwrap_or_default();
    let history: Vec<serde_json::Value> = held
        .dispositions
        .iter()
        .map(|(kind, reason, value, at)| {
            serde_json::json!({ "kind": kind, "reason": reason, "value": value, "at": rfc3339(*at) })
        })
        .collect();
    let ctx = page_ctx(
        chrome(&p, "lead"),
        serde_json::json!({ "lead_id": lead_id, "fields": fields, "score": held.score, "grade": held.grade, "status": c.status.as_str(), "leased": leased, "lease_until": leased.then(|| rfc3339(c.lease_until_ms)), "claimed_at": rfc3339(c.claimed_at_ms), "disposition_by": disposition_by, "return_by": return_by, "dispositions": history }),
    );
    web.templates.page("portal_lead.html", ctx)
}

/// `POST /portal/leads/{lead_id}/confirm`.
pub async fn confirm(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
    body: Bytes,
) -> Response {
    let (p, _) = match partner_post(&state, &web, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match crate::claim::confirm(&state.store, &lead_id, &p.buyer.name, state.clock.now_ms()).await {
        Ok(ConfirmOutcome::Confirmed) => web.sessions.flash(&headers, "Confirmed: the lead is yours."),
        Ok(ConfirmOutcome::NoLiveClaim) => {
            return web.templates.message(
                StatusCode::CONFLICT,
                AREA,
                "Too late to confirm",
                "The lease ran out before the confirmation, so the lead went back to the pool.",
                "/portal",
            );
        }
        Err(e) => return unavailable(&web, &e),
    }
    see_other(&format!("/portal/leads/{}", urlencode(&lead_id)))
}

/// `POST /portal/leads/{lead_id}/disposition`: contacted, converted (with a value) or
/// returned (with a reason).
pub async fn disposition(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
    body: Bytes,
) -> Response {
    let (p, fields) = match partner_post(&state, &web, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let back = format!("/portal/leads/{}", urlencode(&lead_id));
    let kind = match fields.get("status").map(String::as_str) {
        Some("contacted") => DispositionKind::Contacted,
        Some("converted") => DispositionKind::Converted,
        Some("returned") => DispositionKind::Returned,
        _ => {
            web.sessions.flash(&headers, "Choose contacted, converted or returned.");
            return see_other(&back);
        }
    };
    let text = |name: &str| fields.get(name).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let reason = text("reason");
    if kind == DispositionKind::Returned && reason.is_none() {
        web.sessions.flash(&headers, "A return needs a reason.");
        return see_other(&back);
    }
    let d = Disposition { kind, reason, value: text("value").filter(|_| kind == DispositionKind::Converted) };
    let now = state.clock.now_ms();
    let relay = match relay_for(&state, &lead_id, &p.buyer, &d, now).await {
        Ok(r) => r,
        Err(_) => return unavailable_page(&web),
    };
    match crate::claim::disposition(&state.store, &lead_id, &p.buyer, None, &d, relay, now).await {
        Ok(DispositionOutcome::Recorded { .. }) => {
            web.sessions.flash(&headers, format!("Recorded: {}.", d.kind.as_str()));
            see_other(&back)
        }
        Ok(DispositionOutcome::NotYours) => web.templates.message(
            StatusCode::NOT_FOUND,
            AREA,
            "Not one of your leads",
            "You can report on a lead once you have claimed it.",
            "/portal",
        ),
        Ok(DispositionOutcome::Refused(why)) => {
            web.sessions.flash(&headers, format!("Not recorded: {why}."));
            see_other(&back)
        }
        Err(e) => unavailable(&web, &e),
    }
}

/// `GET /portal/history`: this partner's claims, newest first.
pub async fn history(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
) -> Response {
    let p = match partner(&state, &web, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let now = state.clock.now_ms();
    let rows = match state.store.partner_claims(&p.buyer.name, 200).await {
        Ok(r) => r,
        Err(e) => return unavailable(&web, &e),
    };
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|c| {
            let live = c.status == ClaimStatus::Confirmed
                || (c.status == ClaimStatus::Leased && c.lease_until_ms > now);
            serde_json::json!({
                "lead_id": c.lead_id,
                "product": c.product,
                "status": c.status.as_str(),
                "claimed_at": rfc3339(c.claimed_at_ms),
                "disposition": c.disposition,
                "disposition_at": c.disposition_at_ms.map(rfc3339),
                "open": live,
            })
        })
        .collect();
    web.templates
        .page("portal_history.html", page_ctx(chrome(&p, "history"), serde_json::json!({ "claims": list })))
}

/// A store failure: logged, and a page that says to try again.
fn unavailable(web: &WebState, e: &crate::store::StoreError) -> Response {
    tracing::warn!(error.message = %e, "Portal page failed: the store did not answer.");
    unavailable_page(web)
}

fn unavailable_page(web: &WebState) -> Response {
    web.templates.message(
        StatusCode::SERVICE_UNAVAILABLE,
        AREA,
        "Please try again",
        "The gateway could not answer just now.",
        "/portal",
    )
}

/// Percent-encodes a path segment.
pub(crate) fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `90s` → `1m 30s`; `2h`; `3d`.
pub(crate) fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 if s.is_multiple_of(60) => format!("{}m", s / 60),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        3600..86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d", s / 86_400),
    }
}
