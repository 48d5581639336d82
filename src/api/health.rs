//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The process can take leads: the store answers and the writer runs. The body also
/// shows each IMAP consumer's state (a broken mailbox does not make HTTP intake unready).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match state.store.ping().await {
        Ok(()) if !state.shutdown.is_cancelled() => {
            let mut body = serde_json::json!({ "status": "ready" });
            if let Ok(mailboxes) = state.store.mailboxes().await
                && !mailboxes.is_empty()
            {
                body["mailboxes"] = mailboxes
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "mailbox": m.mailbox,
                            "state": m.state,
                            "last_fetch_at": m.last_fetch_at,
                            "last_error": m.last_error,
                        })
                    })
                    .collect();
            }
            (StatusCode::OK, Json(body))
        }
        Ok(()) => (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "shutting down" }))),
        Err(e) => {
            tracing::warn!(error.message = %e, "Readiness check failed: the store does not answer.");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "store unavailable" })))
        }
    }
}

/// `GET /metrics`: Prometheus text format. The metrics name buyers and sources and show
/// volumes, so they need the admin key or a `[metrics]` key; with no `[metrics] keys`
/// configured, a loopback client may scrape without a key (a Prometheus on the same host).
/// A key that is presented is always checked, even from loopback.
pub async fn metrics(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, super::response::ApiError> {
    use axum::response::IntoResponse as _;
    let keyless = crate::auth::presented_key(&headers).is_none()
        && state.config.load().metrics_keyless_loopback
        && peer.ip().to_canonical().is_loopback();
    if !keyless {
        match super::authenticate(&state, &headers)? {
            crate::auth::Principal::Admin | crate::auth::Principal::Metrics => {}
            _ => return Err(super::forbidden("/metrics needs the admin key or a [metrics] key")),
        }
    }
    let body = crate::telemetry::metrics().map(|h| h.render()).unwrap_or_default();
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}
