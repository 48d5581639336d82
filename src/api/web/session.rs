//! Browser sessions, in memory: a random token in an HttpOnly cookie, its SHA-256 as the
//! key, a CSRF token per session, an idle timeout.
//!
//! In memory on purpose: sessions are short-lived conveniences over the API keys, so
//! losing them on restart only means signing in again. With several instances behind a
//! load balancer, the balancer must keep a browser on one instance (sticky sessions).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::openapi::SESSION_COOKIE;
use crate::auth::Principal;

/// How long a session lives without use.
pub const IDLE_MS: i64 = 8 * 3_600_000;
/// The most sessions kept; beyond, expired ones are dropped, then the oldest.
const MAX_SESSIONS: usize = 10_000;
/// The cookie holding the sign-in form's CSRF token (before there is a session).
pub const LOGIN_COOKIE: &str = "lg_login";

/// Which half of the site a session belongs to; each has its own cookie path, so a
/// partner's and an operator's sessions never mix, even in one browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Portal,
    Console,
}

impl Area {
    pub fn path(self) -> &'static str {
        match self {
            Area::Portal => "/portal",
            Area::Console => "/console",
        }
    }
    pub fn login_path(self) -> &'static str {
        match self {
            Area::Portal => "/portal/login",
            Area::Console => "/console/login",
        }
    }
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub area: Area,
    pub principal: Principal,
    /// Every POST form must send this back.
    pub csrf: String,
    pub expires_at: i64,
    /// A one-time message for the next page ("Lead returned.").
    pub flash: Option<String>,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<[u8; 32], Session>>,
}

/// A fresh random token (32 bytes, URL-safe base64).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source means no safe token: fall back to one that never matches a
        // cookie (sign-in then fails instead of handing out a guessable session).
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, on `path`, Secure over TLS.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

impl Sessions {
    /// Starts a session; returns its cookie token.
    pub fn create(&self, area: Area, principal: Principal, now: i64) -> Option<String> {
        let token = random_token();
        let csrf = random_token();
        if token.is_empty() || csrf.is_empty() {
            return None;
        }
        let Ok(mut map) = self.inner.lock() else { return None };
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires_at > now);
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires_at).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(key(&token), Session { area, principal, csrf, expires_at: now + IDLE_MS, flash: None });
        Some(token)
    }

    /// The live session of `area` the request's cookie names, its idle timer renewed and
    /// its flash message taken.
    pub fn get(&self, headers: &HeaderMap, area: Area, now: i64) -> Option<Session> {
        let token = cookie(headers, SESSION_COOKIE)?;
        let k = key(token);
        let mut map = self.inner.lock().ok()?;
        let s = map.get_mut(&k)?;
        if s.expires_at <= now || s.area != area {
            if s.expires_at <= now {
                map.remove(&k);
            }
            return None;
        }
        s.expires_at = now + IDLE_MS;
        let out = s.clone();
        s.flash = None;
        Some(out)
    }

    /// Leaves a message for the session's next page.
    pub fn flash(&self, headers: &HeaderMap, message: impl Into<String>) {
        let Some(token) = cookie(headers, SESSION_COOKIE) else { return };
        if let Ok(mut map) = self.inner.lock()
            && let Some(s) = map.get_mut(&key(token))
        {
            s.flash = Some(message.into());
        }
    }

    /// Ends the request's session.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(token) = cookie(headers, SESSION_COOKIE)
            && let Ok(mut map) = self.inner.lock()
        {
            map.remove(&key(token));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::COOKIE, v.parse().unwrap());
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_in_its_own_area_until_it_idles_out() {
        let s = Sessions::default();
        let token = s.create(Area::Portal, Principal::Buyer("p".into()), 1_000).unwrap();
        let h = with_cookie(&format!("other=1; {SESSION_COOKIE}={token}"));
        assert_eq!(s.get(&h, Area::Portal, 2_000).unwrap().principal, Principal::Buyer("p".into()));
        assert!(s.get(&h, Area::Console, 2_000).is_none(), "a portal session is no console session");
        assert!(s.get(&h, Area::Portal, 2_000 + IDLE_MS).is_none(), "idle too long");
        assert!(s.get(&with_cookie(&format!("{SESSION_COOKIE}=forged")), Area::Portal, 2_000).is_none());
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        let s = Sessions::default();
        let token = s.create(Area::Console, Principal::Admin, 0).unwrap();
        let session = s.get(&with_cookie(&format!("{SESSION_COOKIE}={token}")), Area::Console, 1).unwrap();
        assert!(session.csrf_ok(Some(&session.csrf.clone())));
        assert!(!session.csrf_ok(Some("nope")));
        assert!(!session.csrf_ok(None));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        let c = set_cookie("a", "b", "/portal", 60, true);
        assert_eq!(c, "a=b; Path=/portal; Max-Age=60; HttpOnly; SameSite=Strict; Secure");
        assert!(!set_cookie("a", "b", "/portal", 60, false).contains("Secure"));
    }
}
