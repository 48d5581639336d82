//! Per-format vendor endpoints: each vendor's webhook or post, with its own
//! authentication and answer conventions, feeding the one pipeline ([`crate::intake::submit`]).
//!
//! | endpoint | auth | answer |
//! |---|---|---|
//! | `POST /v1/sources/{source}/google-ads` | `google_key` in the body | 200 JSON whatever the outcome |
//! | `GET  /v1/sources/{source}/meta` | `hub.verify_token` | the `hub.challenge` |
//! | `POST /v1/sources/{source}/meta` | `X-Hub-Signature-256` | 200 once stored; leads fetched after |
//! | `POST /v1/sources/{source}/hubspot[/submissions/v3/integration/[secure/]submit/{portal}/{form}]` | source key | HubSpot's shape |
//! | `POST /v1/sources/{source}/web-to-lead` | `oid` (and optionally the key) | 303 to `retURL`, or JSON |
//! | `POST /v1/sources/{source}/leadconduit` | source key (header, Basic, `?key=`) | LeadConduit's shape |
//!
//! A source enables an endpoint with its table in `sources/<name>.toml`; an endpoint the
//! source has not enabled answers 404, like an unknown source (names are not revealed).
//! Requests that fail authentication are not stored. Everything authenticated is stored
//! raw before anything else can fail (a secret inside the body, the Google key, is
//! redacted first), so a body the parser refuses is kept for replay.

pub mod google_ads;
pub mod hubspot;
pub mod leadconduit;
pub mod meta;
pub mod meta_fetch;
pub mod web_to_lead;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;

use crate::api::response::{ApiError, code};
use crate::auth::{Principal, presented_key};
use crate::config::{Config, Source};
use crate::parse::Format;
use crate::pipeline::LeadResult;
use crate::submission::{Submission, channel, new_id};

/// The source named in the path, when it exists and has enabled this endpoint (`has`).
/// Unknown sources and sources without the endpoint get the same 404.
pub(crate) fn source_for(
    config: &Config,
    name: &str,
    endpoint: &str,
    has: impl Fn(&Source) -> bool,
) -> Result<Arc<Source>, ApiError> {
    let source = config
        .source(name)
        .filter(|s| has(s))
        .ok_or_else(|| ApiError::not_found(&format!("{endpoint} endpoint for this source")))?;
    if !source.enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::FORBIDDEN,
            format!("source {name} is disabled"),
        ));
    }
    Ok(source.clone())
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {limit} bytes"),
        )
    })
}

/// A submission from an HTTP vendor endpoint.
pub(crate) fn http_submission(
    source: &str,
    format: Format,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    body: Vec<u8>,
    received_at: i64,
) -> Submission {
    Submission {
        id: new_id(),
        source: source.to_owned(),
        channel: channel::HTTP,
        format,
        content_type: headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
        meta: crate::intake::http::request_meta(headers, Some(peer)),
        body,
        received_at,
        idempotency_key: None,
    }
}

/// Checks that the request carries a key of source `name`: `Authorization: Bearer`,
/// `X-API-Key`, HTTP Basic (the password, or the user when there is none), or `url_key`.
pub(crate) fn check_source_key(
    config: &Config,
    name: &str,
    headers: &HeaderMap,
    url_key: Option<&str>,
) -> Result<(), ApiError> {
    let presented = presented_key(headers)
        .map(str::to_owned)
        .or_else(|| basic_key(headers))
        .or(url_key.map(str::to_owned));
    match presented.as_deref().map(|k| config.keys.authenticate(k)) {
        None => Err(ApiError::unauthorized("missing API key: send Authorization: Bearer <key> or X-API-Key")),
        Some(None) => Err(ApiError::unauthorized("unknown API key")),
        Some(Some(Principal::Source(owner))) if owner == name => Ok(()),
        Some(Some(_)) => {
            Err(ApiError::new(StatusCode::FORBIDDEN, code::FORBIDDEN, "this key may not post to this source"))
        }
    }
}

/// The key in `Authorization: Basic base64(user:password)`.
fn basic_key(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if !v.get(..6)?.eq_ignore_ascii_case("basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(v.get(6..)?.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':').unwrap_or((text.as_str(), ""));
    let key = if password.is_empty() { user } else { password };
    (!key.is_empty()).then(|| key.to_owned())
}

/// One lead's answer as JSON, with the submission id (the `/v1/leads` shape).
pub(crate) fn lead_json(submission_id: &str, r: Option<&LeadResult>) -> serde_json::Value {
    let mut v = r.and_then(|r| serde_json::to_value(r).ok()).unwrap_or_else(|| serde_json::json!({}));
    v["submission_id"] = submission_id.into();
    v
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
