//! `POST /v1/leads`: JSON, form and XML leads from vendors, answered after commit.

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::AppState;
use crate::api::response::{ApiError, Shape, code, submission_answer};
use crate::auth::{Principal, presented_key};
use crate::parse::Format;
use crate::submission::{Submission, channel, new_id};

/// Longest `Idempotency-Key` accepted.
const IDEMPOTENCY_KEY_MAX: usize = 255;

/// Vendor intake. Order of checks: key (401/403), content type (415), body size (413),
/// then the pipeline (201/200/422/400).
pub async fn post_lead(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let shape = Shape::for_content_type(content_type.as_deref());
    let config = state.config.load_full();

    let source_name = match presented_key(&headers).map(|k| config.keys.authenticate(k)) {
        None => {
            return Err(ApiError::unauthorized(
                "missing API key: send Authorization: Bearer <key> or X-API-Key",
            )
            .shaped(shape));
        }
        Some(None) => return Err(ApiError::unauthorized("unknown API key").shaped(shape)),
        Some(Some(Principal::Source(name))) => name.clone(),
        Some(Some(Principal::Admin | Principal::Buyer(_) | Principal::Metrics)) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                "only a source key can submit leads",
            )
            .shaped(shape));
        }
    };
    let Some(source) = config.source(&source_name) else {
        return Err(ApiError::unauthorized("unknown API key").shaped(shape));
    };
    if !source.enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::FORBIDDEN,
            format!("source {source_name} is disabled"),
        )
        .shaped(shape));
    }

    let format = match content_type.as_deref() {
        None => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::UNSUPPORTED_MEDIA_TYPE,
                "missing Content-Type: use application/json, application/x-www-form-urlencoded or application/xml",
            ));
        }
        Some(ct) => Format::from_content_type(ct).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {ct:?} is not accepted: use application/json, application/x-www-form-urlencoded or application/xml"
                ),
            )
        })?,
    };

    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str().map(str::trim) {
            Ok(k) if !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_MAX => Some(k.to_string()),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"
                ))
                .shaped(shape));
            }
        },
    };

    let authed = std::time::Instant::now();
    let limit = config.server.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {limit} bytes"),
        )
        .shaped(shape)
    })?;

    let submission = Submission {
        id: new_id(),
        source: source_name,
        channel: channel::HTTP,
        format,
        content_type,
        meta: request_meta(&headers, Some(peer)),
        body: bytes.to_vec(),
        received_at: state.clock.now_ms(),
        idempotency_key,
    };
    let read = std::time::Instant::now();
    let job = crate::intake::prepare(&config, submission)
        .await
        .map_err(|e| ApiError::internal(&e).shaped(shape))?;
    let prepared = std::time::Instant::now();
    let result =
        crate::intake::commit(&state.writer, job).await.map_err(|e| ApiError::internal(&e).shaped(shape))?;
    let committed = std::time::Instant::now();
    let response = submission_answer(result, shape).into_response();
    crate::telemetry::http_intake_phases(&[
        ("auth", authed - started),
        ("body", read - authed),
        ("prepare", prepared - read),
        ("commit", committed - prepared),
        ("answer", committed.elapsed()),
    ]);
    Ok(response)
}

/// What we keep of the request besides the body: enough to trace a vendor's call.
pub(crate) fn request_meta(headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> serde_json::Value {
    let mut meta = serde_json::Map::new();
    if let Some(p) = peer {
        meta.insert("peer".into(), p.to_string().into());
    }
    for name in ["user-agent", "x-forwarded-for", "x-request-id", "idempotency-key"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            meta.insert(name.into(), v.into());
        }
    }
    serde_json::Value::Object(meta)
}
