//! Sign-in and sign-out, the same for both areas: the key is checked exactly as the API
//! checks it (SHA-256, constant time, through the config's keyring).
//!
//! The sign-in form has no session yet, so its CSRF token is a double-submit cookie on
//! the sign-in path: the form's hidden field must equal the cookie.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::session::{self, Area, LOGIN_COOKIE};
use super::{WebState, form_fields, over_tls, see_other};
use crate::api::AppState;
use crate::api::openapi::SESSION_COOKIE;
use crate::auth::Principal;
use crate::route::Target;

fn area_name(area: Area) -> &'static str {
    match area {
        Area::Portal => "portal",
        Area::Console => "console",
    }
}

fn form(
    web: &WebState,
    area: Area,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let token = session::random_token();
    let mut r = web.templates.render(
        status,
        "login.html",
        minijinja::context! { area => area_name(area), action => area.login_path(), csrf => token.clone(), error => error },
    );
    let cookie = session::set_cookie(LOGIN_COOKIE, &token, area.login_path(), 3600, over_tls(headers));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The sign-in page.
pub fn page(web: &WebState, area: Area, headers: &HeaderMap) -> Response {
    form(web, area, headers, StatusCode::OK, None)
}

/// Whether `who` may use `area`: the console is for admin keys; the portal for pull
/// partners' keys.
fn allowed(state: &AppState, area: Area, who: &Principal) -> bool {
    match (area, who) {
        (Area::Console, Principal::Admin) => true,
        (Area::Portal, Principal::Buyer(name)) => {
            state.config.load().routing.buyers.get(name).is_some_and(|b| matches!(b.target, Target::Pull(_)))
        }
        _ => false,
    }
}

/// The sign-in form's POST: a session and its cookie, or the form again.
pub fn submit(state: &AppState, web: &WebState, area: Area, headers: &HeaderMap, body: &[u8]) -> Response {
    let fields = form_fields(body);
    let presented = fields.get("csrf").map(String::as_str).unwrap_or_default();
    let expected = session::cookie(headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        return form(
            web,
            area,
            headers,
            StatusCode::FORBIDDEN,
            Some("The form had expired. Please sign in again."),
        );
    }
    let key = fields.get("key").map(|k| k.trim()).unwrap_or_default();
    let who = state.config.load().keys.authenticate(key).cloned();
    let Some(who) = who.filter(|w| allowed(state, area, w)) else {
        let hint = match area {
            Area::Portal => "That key is not a partner key. Check it and try again.",
            Area::Console => "That key is not an admin key. Check it and try again.",
        };
        return form(web, area, headers, StatusCode::UNAUTHORIZED, Some(hint));
    };
    let Some(token) = web.sessions.create(area, who.clone(), state.clock.now_ms()) else {
        return form(
            web,
            area,
            headers,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("Could not start a session. Try again."),
        );
    };
    match &who {
        Principal::Buyer(name) => tracing::info!(partner = %name, "Partner signed in to the portal."),
        _ => tracing::info!("Operator signed in to the console."),
    }
    let secure = over_tls(headers);
    let mut r = see_other(area.path());
    let cookie = session::set_cookie(SESSION_COOKIE, &token, area.path(), session::IDLE_MS / 1000, secure);
    let clear = session::set_cookie(LOGIN_COOKIE, "", area.login_path(), 0, secure);
    for c in [cookie, clear] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// Sign-out (a CSRF-checked POST, so a link elsewhere cannot sign anyone out).
pub fn sign_out(state: &AppState, web: &WebState, area: Area, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(s) = web.sessions.get(headers, area, state.clock.now_ms()) else {
        return see_other(area.login_path());
    };
    if !s.csrf_ok(form_fields(body).get("csrf").map(String::as_str)) {
        return web.templates.message(
            StatusCode::FORBIDDEN,
            area_name(area),
            "Please try again",
            "The form had expired.",
            area.path(),
        );
    }
    web.sessions.end(headers);
    let mut r = see_other(area.login_path());
    let clear = session::set_cookie(SESSION_COOKIE, "", area.path(), 0, over_tls(headers));
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
