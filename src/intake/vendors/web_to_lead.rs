//! `POST /v1/sources/{source}/web-to-lead`: Salesforce Web-to-Lead form posts.
//!
//! A page built for Salesforce posts here instead of `servlet.WebToLead` by changing the
//! form's `action`. Web-to-Lead has no secret (the `oid` is written in every form), so:
//! when the source sets `[web_to_lead] oid`, posts carrying another `oid` (or none) are
//! refused and not stored; `require_key = true` also demands the source's API key, for
//! server-to-server posts. (Spam protection, as with Salesforce's own form, is the
//! page's business: reCAPTCHA fields are ignored here.)
//!
//! The answer is Salesforce's: `303 See Other` to the post's `retURL` (or the source's
//! `return_url` when the post has none, or `retURL`'s host is not in `return_hosts`),
//! whatever the lead's outcome, since the visitor cannot act on it; the outcome is in
//! the lead's history. With `answer = "json"`, with `debug=1` in the post, or with no
//! URL to go to, the answer is the JSON of `/v1/leads`. A lead that could not be stored
//! is never redirected: the visitor gets the error.

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{check_source_key, http_submission, read_body, source_for};
use crate::api::AppState;
use crate::api::response::{ApiError, Shape, code, submission_answer};
use crate::config::vendors::{WebToLead, WebToLeadAnswer};
use crate::parse::Format;
use crate::parse::vendors::web_to_lead::control;

/// The form handler.
pub async fn post(
    State(state): State<AppState>,
    Path(source_name): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let source = source_for(&config, &source_name, "Web-to-Lead", |s| s.vendors.web_to_lead.is_some())?;
    let Some(settings) = &source.vendors.web_to_lead else {
        return Err(ApiError::not_found("Web-to-Lead endpoint for this source"));
    };
    if settings.require_key {
        check_source_key(&config, &source.name, &headers, None)?;
    }
    let raw = read_body(body, config.server.max_body_bytes).await?;
    if let Some(expected) = &settings.oid
        && control(&raw, "oid").as_deref() != Some(expected.as_str())
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::FORBIDDEN,
            "the post's oid is not this source's organization id",
        ));
    }
    let debug = control(&raw, "debug").is_some_and(|d| d == "1" || d.eq_ignore_ascii_case("true"));
    let target = (settings.answer == WebToLeadAnswer::Redirect && !debug)
        .then(|| return_to(settings, control(&raw, "retURL").as_deref()))
        .flatten();

    let submission =
        http_submission(&source.name, Format::WebToLead, &headers, peer, raw.to_vec(), state.clock.now_ms());
    let result = crate::intake::submit(&config, &state.writer, submission)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    match target.and_then(|t| HeaderValue::from_str(t.as_str()).ok()) {
        Some(location) => Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()),
        None => Ok(submission_answer(result, Shape::Json)),
    }
}

/// Where to send the browser: the post's `retURL` when it is an absolute http(s) URL on
/// an allowed host, else the configured `return_url`.
fn return_to(settings: &WebToLead, ret_url: Option<&str>) -> Option<reqwest::Url> {
    let from_post = ret_url.and_then(|u| reqwest::Url::parse(u).ok()).filter(|u| {
        matches!(u.scheme(), "http" | "https")
            && (settings.return_hosts.is_empty()
                || u.host_str()
                    .is_some_and(|h| settings.return_hosts.iter().any(|a| a.eq_ignore_ascii_case(h))))
    });
    from_post.or_else(|| settings.return_url.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(hosts: &[&str], fallback: Option<&str>) -> WebToLead {
        WebToLead {
            oid: None,
            answer: WebToLeadAnswer::Redirect,
            return_url: fallback.map(|u| reqwest::Url::parse(u).unwrap()),
            return_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            require_key: false,
        }
    }

    #[test]
    fn ret_url_must_be_http_on_an_allowed_host() {
        let any = settings(&[], None);
        assert_eq!(
            return_to(&any, Some("https://a.example/thanks")).unwrap().as_str(),
            "https://a.example/thanks"
        );
        assert!(return_to(&any, Some("javascript:alert(1)")).is_none());
        assert!(return_to(&any, Some("/relative")).is_none());
        let only = settings(&["shop.example"], Some("https://shop.example/default"));
        assert_eq!(
            return_to(&only, Some("https://evil.example/x")).unwrap().as_str(),
            "https://shop.example/default"
        );
        assert_eq!(
            return_to(&only, Some("https://SHOP.example/ok")).unwrap().as_str(),
            "https://shop.example/ok"
        );
    }
}
