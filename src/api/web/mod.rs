//! The web pages: the partner portal (`/portal`) and the operator console (`/console`),
//! rendered on the server from the templates in `web/` (built into the binary).
//!
//! Guarantees: every value is HTML-escaped by the template engine (auto-escape is on for
//! every `.html` template); no page carries an inline script or style, and every HTML
//! answer has a strict Content-Security-Policy; every POST form carries the session's
//! CSRF token and is refused (403) without it. Sessions are kept in memory (a restart
//! signs everyone out) behind an HttpOnly, SameSite=Strict cookie scoped to its area's
//! path, Secure when the request came over TLS (`X-Forwarded-Proto: https` from the
//! proxy that terminates it). Partner pages only ever show what the partner API would:
//! masked offers before a claim, the whole lead only for the partner's own claim.

pub mod console;
mod dashboard;
mod render;
pub mod portal;
mod session;
mod signin;

use std::sync::Arc;

use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use render::Templates;
pub use session::{Area, Session, Sessions};

/// What the page handlers share (an `Extension` on the router).
#[derive(Clone)]
pub struct WebState {
    pub sessions: Arc<Sessions>,
    pub templates: Arc<Templates>,
}

impl WebState {
    pub fn new() -> Self {
        Self { sessions: Arc::new(Sessions::default()), templates: Arc::new(Templates::new()) }
    }
}

impl Default for WebState {
    fn default() -> Self {
        Self::new()
    }
}

/// The policy of every page: nothing but this origin's own files; no inline script or
/// style; no framing; forms only to this origin.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Swagger UI sets style attributes from its script, so `/docs` allows inline styles
/// (never inline scripts).
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the security headers to every HTML (and docs) answer.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let docs = req.uri().path().starts_with("/docs");
    let mut res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if html || docs {
        let csp = if docs { DOCS_CSP } else { PAGE_CSP };
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        if !docs {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    res
}

/// `GET /`: where to go.
pub async fn home(axum::Extension(web): axum::Extension<WebState>) -> Response {
    web.templates.page("home.html", minijinja::context! {})
}

const APP_JS: &str = include_str!("../../../web/static/app.js");
const APP_CSS: &str = include_str!("../../../web/static/app.css");

/// `GET /static/{file}`: the one script and the one style sheet.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, ct) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    ([(header::CONTENT_TYPE, ct), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

/// Whether the browser reached us over TLS (directly or through a terminating proxy).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// A form body's fields (the last value of a repeated name wins).
pub fn form_fields(body: &[u8]) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// A page's context: the layout's values (`chrome`) and the page's own.
pub fn page_ctx(chrome: serde_json::Value, page: serde_json::Value) -> minijinja::Value {
    let mut all = chrome;
    if let (Some(base), serde_json::Value::Object(extra)) = (all.as_object_mut(), page) {
        base.extend(extra);
    }
    minijinja::Value::from(minijinja::value::Serde(all))
}

/// A lead's fields as (label, text) rows: `first_name` reads "first name"; nested values
/// are shown as compact JSON; empty ones are left out.
pub fn field_rows(fields: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    use serde_json::Value;
    fields
        .iter()
        .filter(|(_, v)| match v {
            Value::Null => false,
            Value::Object(o) => !o.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::String(s) => !s.is_empty(),
            _ => true,
        })
        .map(|(k, v)| (k.replace('_', " "), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect()
}

/// A 303 to `to`.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}
