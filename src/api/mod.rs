//! The HTTP surface: vendor intake, partner and admin APIs, health, the OpenAPI
//! document, and the web pages (partner portal, operator console).
//!
//! Every route comes from the one table in [`endpoints`].

pub mod admin;
pub mod endpoints;
pub mod health;
pub mod openapi;
pub mod partner;
pub mod response;
pub mod web;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::clock::Clock;
use crate::config::Config;
use crate::pipeline::writer::Writer;
use crate::store::Store;
use response::{ApiError, Shape, code};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The current config snapshot; a reload swaps it whole.
    pub config: Arc<ArcSwap<Config>>,
    pub store: Store,
    pub writer: Writer,
    pub clock: Arc<dyn Clock>,
    /// Cancelled when the process starts shutting down (readiness turns 503).
    pub shutdown: CancellationToken,
    pub reloader: crate::config::reload::Reloader,
}

/// Who the request's key belongs to: 401 (naming why) when nobody.
pub fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<crate::auth::Principal, ApiError> {
    let config = state.config.load();
    match crate::auth::presented_key(headers).map(|k| config.keys.authenticate(k)) {
        Some(Some(p)) => Ok(p.clone()),
        Some(None) => Err(ApiError::unauthorized("unknown API key")),
        None => Err(ApiError::unauthorized("missing API key: send Authorization: Bearer <key> or X-API-Key")),
    }
}

/// 403 for a known key that may not do this.
pub fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code::FORBIDDEN, message)
}

/// All routes with their layers.
pub fn router(state: AppState) -> Router {
    let config = state.config.load();
    let limit = config.server.max_body_bytes;
    let timeout = config.server.request_timeout;
    let mut routes = Router::new();
    for e in endpoints::all() {
        routes = routes.route(e.path, (e.handler)());
    }
    routes
        .layer(middleware::from_fn(web::security_headers))
        .layer(axum::Extension(web::WebState::new()))
        .fallback(|| async { ApiError::not_found("route") })
        // Defence in depth for bodies without Content-Length: reads stop at the limit.
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(middleware::from_fn_with_state(state.clone(), refuse_oversized))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL, "internal error").into_response()
        }))
        // Spans carry the path, never the query: vendor endpoints may carry a secret there
        // (a Meta verify token, a LeadConduit key in the URL).
        .layer(TraceLayer::new_for_http().make_span_with(
            |req: &Request| tracing::debug_span!("request", method = %req.method(), path = %req.uri().path()),
        ))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ]))
        .with_state(state)
}

/// Answers 413 with a body in the request's format as soon as `Content-Length` says
/// the body is over the limit, before reading any of it.
async fn refuse_oversized(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.load().server.max_body_bytes;
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|l| l > limit as u64) {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {limit} bytes"),
        )
        .shaped(Shape::for_content_type(ct))
        .into_response();
    }
    next.run(req).await
}
