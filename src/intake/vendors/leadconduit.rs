//! `POST /v1/sources/{source}/leadconduit`: LeadConduit-compatible posts.
//!
//! A vendor already posting to a LeadConduit flow switches by changing the URL. The key
//! of the source is required: as `X-API-Key` or `Authorization: Bearer` (what a
//! LeadConduit source sends), as the password of HTTP Basic auth, or — only when the
//! source sets `[leadconduit] key_in_url = true`, for vendors that can change nothing
//! but the URL — as `?key=…`.
//!
//! The answer is LeadConduit's (unless the source chooses `answer = "leadgate"`), in XML
//! when the request is XML or asks for it with `Accept`, else JSON:
//!
//! | lead | status | body |
//! |---|---|---|
//! | accepted | 201 | `{"outcome": "success", "lead": {"id": …}, "price": <source price>}` |
//! | duplicate, rejected | 200 | `{"outcome": "failure", "reason": "…", "lead": {"id": …}, "price": 0}` |
//! | unparseable | 400 | `{"outcome": "error", "reason": "… at line L, column C"}` |
//! | bad key | 401/403 | `{"outcome": "error", "reason": "…"}` |

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;
use serde_json::json;

use super::{check_source_key, http_submission, read_body, source_for};
use crate::api::AppState;
use crate::api::response::{ApiError, Shape, submission_answer};
use crate::config::vendors::LeadconduitAnswer;
use crate::parse::Format;
use crate::pipeline::{Outcome, SubmissionResult};

/// The post handler.
pub async fn post(
    State(state): State<AppState>,
    Path(source_name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let xml = wants_xml(&headers);
    let config = state.config.load_full();
    let source = match source_for(&config, &source_name, "LeadConduit", |s| s.vendors.leadconduit.is_some()) {
        Ok(s) => s,
        Err(e) => return error(e.status, &e.message, xml),
    };
    let Some(settings) = &source.vendors.leadconduit else {
        return error(StatusCode::NOT_FOUND, "no LeadConduit endpoint for this source", xml);
    };
    let url_key = settings.key_in_url.then(|| query.get("key").map(String::as_str)).flatten();
    if let Err(e) = check_source_key(&config, &source.name, &headers, url_key) {
        return error(e.status, &e.message, xml);
    }
    let raw = match read_body(body, config.server.max_body_bytes).await {
        Ok(r) => r,
        Err(e) => return error(e.status, &e.message, xml),
    };
    let submission = http_submission(
        &source.name,
        Format::Leadconduit,
        &headers,
        peer,
        raw.to_vec(),
        state.clock.now_ms(),
    );
    let result = match crate::intake::submit(&config, &state.writer, submission).await {
        Ok(r) => r,
        Err(e) => {
            let e = ApiError::internal(&e);
            return error(e.status, &e.message, xml);
        }
    };
    match settings.answer {
        LeadconduitAnswer::Leadgate => submission_answer(result, if xml { Shape::Xml } else { Shape::Json }),
        LeadconduitAnswer::Leadconduit => answer(result, settings.price, xml),
    }
}

/// XML when the request is XML, or its `Accept` names XML and not JSON.
fn wants_xml(headers: &HeaderMap) -> bool {
    let get = |h: header::HeaderName| {
        headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase()
    };
    let accept = get(header::ACCEPT);
    if accept.contains("json") {
        return false;
    }
    accept.contains("xml") || get(header::CONTENT_TYPE).contains("xml")
}

/// LeadConduit's answer for a committed submission.
fn answer(result: SubmissionResult, price: f64, xml: bool) -> Response {
    match result {
        SubmissionResult::Processed { results, .. } => {
            let Some(r) = results.first() else {
                return error(StatusCode::BAD_REQUEST, "the post holds no lead", xml);
            };
            match r.outcome {
                Outcome::Accepted => body(StatusCode::CREATED, "success", None, Some(&r.lead_id), price, xml),
                Outcome::Duplicate => {
                    body(StatusCode::OK, "failure", Some("duplicate lead"), Some(&r.lead_id), 0.0, xml)
                }
                Outcome::Rejected => {
                    let reason: Vec<String> =
                        r.reasons.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
                    body(StatusCode::OK, "failure", Some(&reason.join("; ")), Some(&r.lead_id), 0.0, xml)
                }
            }
        }
        SubmissionResult::Unparseable { error: message, line, column, .. } => {
            let reason = match (line, column) {
                (Some(l), Some(c)) => format!("{message} at line {l}, column {c}"),
                _ => message,
            };
            error(StatusCode::BAD_REQUEST, &reason, xml)
        }
        SubmissionResult::IdempotencyConflict { .. } => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "this Idempotency-Key was already used with a different body",
            xml,
        ),
    }
}

fn error(status: StatusCode, reason: &str, xml: bool) -> Response {
    body(status, "error", Some(reason), None, 0.0, xml)
}

fn body(
    status: StatusCode,
    outcome: &str,
    reason: Option<&str>,
    lead_id: Option<&str>,
    price: f64,
    xml: bool,
) -> Response {
    let (text, content_type) = if xml {
        let mut x =
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<result><outcome>{outcome}</outcome>");
        match reason {
            Some(r) => x.push_str(&format!("<reason>{}</reason>", escape(r))),
            None => x.push_str("<reason/>"),
        }
        if let Some(id) = lead_id {
            x.push_str(&format!("<lead><id>{}</id></lead><price>{price}</price>", escape(id)));
        }
        x.push_str("</result>\n");
        (x, "application/xml; charset=utf-8")
    } else {
        let mut v = json!({ "outcome": outcome });
        if let Some(r) = reason {
            v["reason"] = r.into();
        }
        if let Some(id) = lead_id {
            v["lead"] = json!({ "id": id });
            v["price"] = json!(price);
        }
        (v.to_string(), "application/json")
    };
    let mut r = (status, text).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_chosen_by_accept_or_content_type() {
        let mut h = HeaderMap::new();
        assert!(!wants_xml(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
        assert!(wants_xml(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_xml(&h));
    }
}
