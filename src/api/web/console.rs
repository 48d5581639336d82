//! The operator console (admin key): counts per source and buyer with charts, lead
//! search and history, dead letters with redeliver, failed submissions with replay, the
//! loaded config with reload, and the mailbox and file channel state.
//!
//! Every action is the admin API's own call (`requeue`, `replay_one`, `reload`), behind
//! the session's CSRF check.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::dashboard::{Period, dashboard_view};
use super::portal::urlencode;
use super::session::{Area, Session};
use super::{WebState, form_fields, page_ctx, see_other, signin};
use crate::api::AppState;
use crate::auth::Principal;
use crate::pipeline::SubmissionResult;
use crate::store::SubmissionFilter;
use crate::store::console::LeadSearch;

const AREA: &str = "console";

fn operator(state: &AppState, web: &WebState, headers: &HeaderMap) -> Result<Session, Box<Response>> {
    match web.sessions.get(headers, Area::Console, state.clock.now_ms()) {
        Some(s) if s.principal == Principal::Admin => Ok(s),
        _ => Err(Box::new(see_other(Area::Console.login_path()))),
    }
}

fn operator_post(
    state: &AppState,
    web: &WebState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Session, std::collections::HashMap<String, String>), Box<Response>> {
    let s = operator(state, web, headers)?;
    let fields = form_fields(body);
    if !s.csrf_ok(fields.get("csrf").map(String::as_str)) {
        return Err(Box::new(web.templates.message(
            StatusCode::FORBIDDEN,
            AREA,
            "Please try again",
            "The form had expired (or came from another site). Reload the page and try again.",
            "/console",
        )));
    }
    Ok((s, fields))
}

/// Where to go after an action: the form's `back` when it is a console page.
fn back_to(fields: &std::collections::HashMap<String, String>, default: &str) -> String {
    match fields.get("back") {
        Some(b) if b.starts_with("/console") && !b.starts_with("//") && !b.contains("://") => b.clone(),
        _ => default.to_string(),
    }
}

fn chrome(s: &Session, page: &str) -> serde_json::Value {
    serde_json::json!({ "area": AREA, "signed_in": true, "page": page, "who": "operator", "csrf": s.csrf, "flash": s.flash })
}

fn unavailable(web: &WebState, e: &dyn std::fmt::Display) -> Response {
    tracing::warn!(error.message = %e, "Console page failed: the store did not answer.");
    web.templates.message(
        StatusCode::SERVICE_UNAVAILABLE,
        AREA,
        "Please try again",
        "The gateway could not answer just now.",
        "/console",
    )
}

macro_rules! signed_in {
    ($e:expr) => {
        match $e {
            Ok(x) => x,
            Err(r) => return *r,
        }
    };
}

/// `GET /console/login`.
pub async fn login_page(Extension(web): Extension<WebState>, headers: HeaderMap) -> Response {
    signin::page(&web, Area::Console, &headers)
}

/// `POST /console/login`.
pub async fn login(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    signin::submit(&state, &web, Area::Console, &headers, &body)
}

/// `POST /console/logout`.
pub async fn logout(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    signin::sign_out(&state, &web, Area::Console, &headers, &body)
}

#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    period: Option<String>,
}

/// `GET /console?period=hour|day|month`.
pub async fn dashboard(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    Query(q): Query<DashboardQuery>,
) -> Response {
    let s = signed_in!(operator(&state, &web, &headers));
    let period = Period::parse(q.period.as_deref());
    let (span, bucket) = period.spans();
    let now = state.clock.now_ms();
    // Buckets end at the next bucket boundary after now, so the last bar is the current one.
    let to = (now.div_euclid(bucket) + 1) * bucket;
    let from = to - span;
    let counts = match state.store.console_counts(from, to, bucket).await {
        Ok(c) => c,
        Err(e) => return unavailable(&web, &e),
    };
    let view = dashboard_view(&counts, period, from);
    web.templates.page(
        "console_dashboard.html",
        page_ctx(
            chrome(&s, "dashboard"),
            serde_json::json!({ "period": period.name(), "view": view, "refresh": 30 }),
        ),
    )
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

/// `GET /console/leads?q=…`: by e-mail, phone, vendor lead id, lead or submission id.
pub async fn search(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let s = signed_in!(operator(&state, &web, &headers));
    let text = q.q.unwrap_or_default();
    let hits = match LeadSearch::parse(&text) {
        None => None,
        Some(query) => match state.store.search_leads(&query, 50).await {
            Ok(h) => Some(h),
            Err(e) => return unavailable(&web, &e),
        },
    };
    let list: Option<Vec<serde_json::Value>> = hits.map(|hits| {
        hits.iter()
            .map(|h| {
                let name = [h.fields.first_name.as_deref(), h.fields.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                serde_json::json!({
                    "id": h.id, "href": format!("/console/leads/{}", urlencode(&h.id)),
                    "source": h.source, "status": h.status, "stage": h.stage,
                    "name": name, "email": h.fields.email, "phone": h.fields.phone, "created_at": h.created_at,
                })
            })
            .collect()
    });
    web.templates.page(
        "console_search.html",
        page_ctx(chrome(&s, "search"), serde_json::json!({ "q": text, "hits": list })),
    )
}

/// `GET /console/leads/{id}`: the lead, its events and deliveries on one page.
pub async fn lead(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let s = signed_in!(operator(&state, &web, &headers));
    let lead = match state.store.lead(&id).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return web.templates.message(
                StatusCode::NOT_FOUND,
                AREA,
                "No such lead",
                "No lead has this id.",
                "/console/leads",
            );
        }
        Err(e) => return unavailable(&web, &e),
    };
    let submission = state.store.submission(&lead.submission_id).await.ok().flatten();
    let fields: Vec<(String, String)> = lead.fields.as_object().map(super::field_rows).unwrap_or_default();
    let mut v = serde_json::to_value(&lead).unwrap_or_default();
    v["fields"] = serde_json::Value::Null;
    let events: Vec<serde_json::Value> = lead
        .events
        .iter()
        .map(|e| serde_json::json!({ "at": e.at, "kind": e.kind, "detail": if e.detail.is_null() { String::new() } else { e.detail.to_string() } }))
        .collect();
    let deliveries: Vec<serde_json::Value> = lead
        .deliveries
        .iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id, "buyer": d.buyer, "route": d.route, "status": d.status, "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at, "last_error": d.last_error,
                "redeliverable": d.status == "dead" || d.status == "rejected",
                "attempt_log": d.attempt_log.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let back = format!("/console/leads/{}", urlencode(&lead.id));
    web.templates.page(
        "console_lead.html",
        page_ctx(chrome(&s, "search"), serde_json::json!({ "lead": v, "fields": fields, "events": events, "deliveries": deliveries, "back": back, "submission": submission.map(|s| serde_json::json!({
                "id": s.id, "channel": s.channel, "format": s.format, "status": s.status,
                "error": s.error, "received_at": s.received_at, "attempts": s.attempts,
            })) })),
    )
}

/// `GET /console/dead-letters`.
pub async fn dead_letters(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
) -> Response {
    let s = signed_in!(operator(&state, &web, &headers));
    let rows = match state.store.dead_letters(200).await {
        Ok(r) => r,
        Err(e) => return unavailable(&web, &e),
    };
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id, "lead_id": d.lead_id, "lead_href": format!("/console/leads/{}", urlencode(&d.lead_id)),
                "buyer": d.buyer, "route": d.route, "status": d.status, "attempts": d.attempts,
                "last_error": d.last_error, "updated_at": d.updated_at,
                "action": format!("/console/deliveries/{}/redeliver", urlencode(&d.id)),
            })
        })
        .collect();
    web.templates.page(
        "console_dead_letters.html",
        page_ctx(chrome(&s, "dead-letters"), serde_json::json!({ "rows": list })),
    )
}

/// `POST /console/deliveries/{id}/redeliver`: the admin API's re-queue.
pub async fn redeliver(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (_, fields) = signed_in!(operator_post(&state, &web, &headers, &body));
    match state.store.requeue(&id, state.clock.now_ms()).await {
        Ok(true) => {
            tracing::info!(delivery_id = %id, "Delivery re-queued from the console.");
            web.sessions.flash(&headers, "Scheduled for redelivery.");
        }
        Ok(false) => {
            web.sessions.flash(&headers, "That delivery is not dead-lettered or rejected (any more).")
        }
        Err(e) => return unavailable(&web, &e),
    }
    see_other(&back_to(&fields, "/console/dead-letters"))
}

/// `GET /console/submissions`: failed submissions, newest first.
pub async fn submissions(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
) -> Response {
    let s = signed_in!(operator(&state, &web, &headers));
    let filter = SubmissionFilter { status: Some("failed".into()), source: None, limit: 200 };
    let rows = match state.store.submissions(&filter).await {
        Ok(r) => r,
        Err(e) => return unavailable(&web, &e),
    };
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id, "source": s.source, "channel": s.channel, "format": s.format,
                "error": s.error, "received_at": s.received_at, "attempts": s.attempts, "bytes": s.body_bytes,
                "action": format!("/console/submissions/{}/replay", urlencode(&s.id)),
            })
        })
        .collect();
    web.templates.page(
        "console_submissions.html",
        page_ctx(chrome(&s, "submissions"), serde_json::json!({ "rows": list })),
    )
}

/// `POST /console/submissions/{id}/replay`: the admin API's replay.
pub async fn replay(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (_, fields) = signed_in!(operator_post(&state, &web, &headers, &body));
    let config = state.config.load_full();
    let message = match crate::replay::replay_one(&state.store, &state.writer, &config, &id).await {
        Ok(SubmissionResult::Processed { results, .. }) => {
            let mut by: BTreeMap<String, usize> = BTreeMap::new();
            for r in &results {
                *by.entry(
                    serde_json::to_value(r.outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                )
                .or_default() += 1;
            }
            let parts: Vec<String> = by.iter().map(|(k, n)| format!("{n} {k}")).collect();
            format!("Replayed: {}.", if parts.is_empty() { "no leads".into() } else { parts.join(", ") })
        }
        Ok(SubmissionResult::Unparseable { error, .. }) => format!("Replayed, still unreadable: {error}"),
        Ok(other) => format!(
            "Replayed: {}.",
            serde_json::to_value(&other)
                .ok()
                .and_then(|v| v["kind"].as_str().map(str::to_string))
                .unwrap_or_default()
        ),
        Err(crate::replay::ReplayError::NotFound(_)) => "No such submission.".into(),
        Err(e @ crate::replay::ReplayError::UnknownFormat { .. }) => e.to_string(),
        Err(e) => return unavailable(&web, &e),
    };
    web.sessions.flash(&headers, message);
    see_other(&back_to(&fields, "/console/submissions"))
}

/// `GET /console/config`.
pub async fn config(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
) -> Response {
    let s = signed_in!(operator(&state, &web, &headers));
    let c = state.config.load();
    let buyers: Vec<serde_json::Value> = c
        .routing
        .buyers
        .values()
        .map(|b| {
            let kind = match b.target {
                crate::route::Target::Webhook(_) => "webhook",
                crate::route::Target::Email(_) => "email",
                crate::route::Target::Pull(_) => "pull",
            };
            serde_json::json!({ "name": b.name, "kind": kind, "enabled": b.enabled })
        })
        .collect();
    let sources: Vec<serde_json::Value> = c
        .sources
        .values()
        .map(|src| serde_json::json!({ "name": src.name, "enabled": src.enabled }))
        .collect();
    web.templates.page(
        "console_config.html",
        page_ctx(chrome(&s, "config"), serde_json::json!({ "dir": c.dir.display().to_string(), "sources": sources, "buyers": buyers, "routes": c.routing.routes.iter().map(|r| r.name.clone()).collect::<Vec<_>>(), "warnings": c.warnings.clone(), "reload": state.reloader.status() })),
    )
}

/// `POST /console/config/reload`.
pub async fn reload(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _ = signed_in!(operator_post(&state, &web, &headers, &body));
    let ok = state.reloader.reload().await;
    web.sessions.flash(
        &headers,
        if ok {
            "Reloaded: the new config is in service."
        } else {
            "Reload refused: the old config stays in service (see below)."
        },
    );
    see_other("/console/config")
}

/// `GET /console/channels`: IMAP consumers and file channels.
pub async fn channels(
    State(state): State<AppState>,
    Extension(web): Extension<WebState>,
    headers: HeaderMap,
) -> Response {
    let s = signed_in!(operator(&state, &web, &headers));
    let mailboxes = match state.store.mailboxes().await {
        Ok(m) => m,
        Err(e) => return unavailable(&web, &e),
    };
    let files = match state.store.file_channels().await {
        Ok(f) => f,
        Err(e) => return unavailable(&web, &e),
    };
    let config = state.config.load();
    let ftp = config.file_intake.ftp.as_ref().map(|f| {
        serde_json::json!({
            "listen": f.listen, "tls": f.tls.is_some(), "allow_plain": f.allow_plain,
            "passive_ports": format!("{}–{}", f.passive_ports.start(), f.passive_ports.end()),
        })
    });
    let files: Vec<serde_json::Value> = files
        .iter()
        .map(|f| {
            serde_json::json!({
                "channel": f.channel, "processing": f.processing, "done": f.done, "failed": f.failed,
                "last_received_at": f.last_received_at, "last_error": f.last_error,
            })
        })
        .collect();
    web.templates.page(
        "console_channels.html",
        page_ctx(
            chrome(&s, "channels"),
            serde_json::json!({ "mailboxes": mailboxes, "files": files, "ftp": ftp }),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_an_action_only_console_pages_are_gone_back_to() {
        let f = |b: &str| std::collections::HashMap::from([("back".to_string(), b.to_string())]);
        assert_eq!(back_to(&f("/console/leads/x"), "/d"), "/console/leads/x");
        assert_eq!(back_to(&f("https://evil.example/console"), "/d"), "/d");
        assert_eq!(back_to(&f("//evil.example"), "/d"), "/d");
    }
}
