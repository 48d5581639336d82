//! The page templates (`web/templates/*.html`, compiled into the binary) and rendering.
//!
//! Auto-escape is on for `.html` templates, so every value a template prints is escaped;
//! templates never use `|safe`. Undefined values render as empty (a missing lead field is
//! normal), but a template that fails to render answers a generic 500 page and is logged.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, UndefinedBehavior, Value};

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../web/templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "base.html",
    "home.html",
    "login.html",
    "message.html",
    "portal_offers.html",
    "portal_lead.html",
    "portal_history.html",
    "console_dashboard.html",
    "console_search.html",
    "console_lead.html",
    "console_dead_letters.html",
    "console_submissions.html",
    "console_config.html",
    "console_channels.html",
];

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
}

/// `2026-12-04T19:30:05.123Z` → `2026-12-04 19:30:05 UTC`: readable, unambiguous.
fn when(value: Option<String>) -> String {
    let Some(v) = value else { return String::new() };
    match v.get(..19) {
        Some(head) if v.len() >= 19 && v.as_bytes().get(10) == Some(&b'T') => {
            format!("{} UTC", head.replacen('T', " ", 1))
        }
        _ => v,
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.add_filter("when", when);
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                // Templates are part of the binary and covered by tests; a broken one
                // shows up as a 500 on its page, logged here once.
                tracing::error!(template = %name, error.message = %e, "Page template does not compile.");
            }
        }
        Self { env }
    }

    /// Renders `name` with `ctx`, answering `status`.
    pub fn render(&self, status: StatusCode, name: &str, ctx: Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
            Err(e) => {
                tracing::error!(template = %name, error.message = %e, "Page could not be rendered.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<!doctype html><title>Error</title><p>Something went wrong. Try again.</p>",
                )
                    .into_response()
            }
        }
    }

    /// A 200 page.
    pub fn page(&self, name: &str, ctx: Value) -> Response {
        self.render(StatusCode::OK, name, ctx)
    }

    /// A page with a title and a message (not found, taken, refused…).
    pub fn message(&self, status: StatusCode, area: &str, title: &str, text: &str, back: &str) -> Response {
        self.render(
            status,
            "message.html",
            minijinja::context! { area => area, title => title, text => text, back => back },
        )
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn printed_values_are_escaped() {
        let t = Templates::new();
        let r = t.message(StatusCode::OK, "portal", "<script>alert(1)</script>", "\"'&", "/");
        let body = futures_util::FutureExt::now_or_never(axum::body::to_bytes(r.into_body(), 1 << 20))
            .unwrap()
            .unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;") || html.contains("&lt;script&gt;")
        );
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(when(Some("2026-12-04T19:30:05.123Z".into())), "2026-12-04 19:30:05 UTC");
        assert_eq!(when(None), "");
    }
}
