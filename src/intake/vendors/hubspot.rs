//! `POST /v1/sources/{source}/hubspot`: HubSpot Forms API v3 submission bodies.
//!
//! The same body is also taken at HubSpot's own paths under the source
//! (`…/hubspot/submissions/v3/integration/[secure/]submit/{portalId}/{formGuid}`), so an
//! integration that posts to `api.hsforms.com` switches by changing its base URL and
//! token: the source's key is the bearer token (`Authorization: Bearer <key>`, as the
//! secure endpoint expects) or `X-API-Key`. The portal and form ids are kept with the
//! submission.
//!
//! Answers follow HubSpot: 200 with `inlineMessage` for a stored lead (accepted or
//! duplicate), 400 `{"status": "error", "errors": [{"message", "errorType"}]}` for a
//! rejected lead or a body that cannot be parsed; leadgate's own `outcome`, `lead_id` and
//! `submission_id` ride along.

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{check_source_key, http_submission, json_response, read_body, source_for};
use crate::api::AppState;
use crate::api::response::{ApiError, Shape, submission_answer};
use crate::lead::Problem;
use crate::parse::Format;
use crate::pipeline::{Outcome, SubmissionResult};

/// What HubSpot answers for a successful submission without a configured message.
pub const INLINE_MESSAGE: &str = "Thanks for submitting the form.";

/// `POST /v1/sources/{source}/hubspot`.
pub async fn post(
    State(state): State<AppState>,
    Path(source): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    handle(state, source, None, peer, headers, body).await
}

/// `POST …/hubspot/submissions/v3/integration/[secure/]submit/{portalId}/{formGuid}`.
pub async fn post_form(
    State(state): State<AppState>,
    Path((source, portal, form)): Path<(String, String, String)>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    handle(state, source, Some((portal, form)), peer, headers, body).await
}

async fn handle(
    state: AppState,
    source_name: String,
    form: Option<(String, String)>,
    peer: std::net::SocketAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let source = source_for(&config, &source_name, "HubSpot", |s| s.vendors.hubspot)?;
    check_source_key(&config, &source.name, &headers, None)?;
    let raw = read_body(body, config.server.max_body_bytes).await?;
    let mut submission =
        http_submission(&source.name, Format::Hubspot, &headers, peer, raw.to_vec(), state.clock.now_ms());
    if let Some((portal, form)) = form {
        submission.meta["hubspot_portal_id"] = portal.into();
        submission.meta["hubspot_form_guid"] = form.into();
    }
    let result = crate::intake::submit(&config, &state.writer, submission)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(answer(result))
}

fn answer(result: SubmissionResult) -> Response {
    match result {
        SubmissionResult::Processed { submission_id, results, .. } => {
            let Some(r) = results.first() else {
                return json_response(
                    StatusCode::OK,
                    &json!({ "inlineMessage": INLINE_MESSAGE, "submission_id": submission_id }),
                );
            };
            let mut body = json!({
                "outcome": r.outcome,
                "lead_id": r.lead_id,
                "submission_id": submission_id,
            });
            if let Some(d) = &r.duplicate_of {
                body["duplicate_of"] = d.clone().into();
            }
            if r.outcome == Outcome::Rejected {
                body["status"] = "error".into();
                body["message"] = "The request is not valid".into();
                body["correlationId"] = submission_id.into();
                body["errors"] = r.reasons.iter().map(error).collect::<Vec<Value>>().into();
                return json_response(StatusCode::BAD_REQUEST, &body);
            }
            body["inlineMessage"] = INLINE_MESSAGE.into();
            json_response(StatusCode::OK, &body)
        }
        SubmissionResult::Unparseable { submission_id, error, line, column } => {
            let position = match (line, column) {
                (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
                _ => String::new(),
            };
            json_response(
                StatusCode::BAD_REQUEST,
                &json!({
                    "status": "error",
                    "message": format!("{error}{position}"),
                    "correlationId": submission_id,
                    "errors": [{ "message": error, "errorType": "INVALID_REQUEST" }],
                    "line": line,
                    "column": column,
                    "submission_id": submission_id,
                }),
            )
        }
        other => submission_answer(other, Shape::Json).into_response(),
    }
}

/// A rejection reason in HubSpot's error shape.
fn error(p: &Problem) -> Value {
    let error_type = match (p.field.as_str(), p.code.as_str()) {
        ("email", "invalid") => "INVALID_EMAIL",
        (_, "required") => "REQUIRED_FIELD",
        ("ip_address", _) => "INVALID_IP_ADDRESS",
        ("landing_page_url", _) => "INVALID_PAGE_URI",
        _ => "INVALID_FIELD",
    };
    json!({ "message": format!("{}: {}", p.field, p.message), "errorType": error_type, "field": p.field })
}
