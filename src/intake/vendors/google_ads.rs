//! `POST /v1/sources/{source}/google-ads`: the Google Ads lead-form webhook.
//!
//! Google authenticates with `google_key`, a secret the advertiser types into the lead
//! form and that Google puts in every body. It is compared in constant time (as hashes)
//! with the source's `[google_ads] key`, then **redacted from the body before it is
//! stored**, and never logged or answered: a stored submission, a replay or an admin
//! lookup can never reveal it. A body without a key, or with a wrong one, is refused
//! (401/403) and not stored. To find the key in a body the JSON reader refuses, the
//! member is looked for textually, so a broken but authentic post is still stored (with
//! its error) rather than lost.
//!
//! Google cannot fix a lead, so every stored lead is answered 200 whatever its outcome
//! (the body says `accepted`, `duplicate` or `rejected`); only an unparseable body gets
//! 400, which "Send test data" in Google Ads shows to the advertiser.

use std::ops::Range;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{http_submission, json_response, lead_json, read_body, source_for};
use crate::api::AppState;
use crate::api::response::{ApiError, Shape, submission_answer};
use crate::parse::Format;
use crate::parse::vendors::google_ads::GOOGLE_KEY;
use crate::parse::vendors::lenient_json::{self, Tolerance};
use crate::pipeline::SubmissionResult;

/// What the stored body says instead of the key.
pub const REDACTED: &[u8] = b"\"[redacted]\"";

/// The webhook handler.
pub async fn post(
    State(state): State<AppState>,
    Path(source_name): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let source = source_for(&config, &source_name, "Google Ads", |s| s.vendors.google_ads.is_some())?;
    let Some(settings) = &source.vendors.google_ads else {
        return Err(ApiError::not_found("Google Ads endpoint for this source"));
    };
    let raw = read_body(body, config.server.max_body_bytes).await?;

    let found = locate_key(&raw);
    let (span, presented, is_test) = match found {
        Some(Found { span, key, is_test }) if !key.is_empty() => (span, key, is_test),
        _ => {
            return Err(ApiError::unauthorized(
                "missing google_key: set the key in the lead form's webhook settings",
            ));
        }
    };
    if !settings.key.matches(&presented) {
        tracing::warn!(source = %source.name, peer = %peer, "Google Ads post refused: wrong google_key.");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            crate::api::response::code::FORBIDDEN,
            "wrong google_key",
        ));
    }

    let submission = http_submission(
        &source.name,
        Format::GoogleAds,
        &headers,
        peer,
        redact(&raw, span),
        state.clock.now_ms(),
    );
    let result = crate::intake::submit(&config, &state.writer, submission)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(answer(result, is_test))
}

/// 200 with the lead's answer for every stored lead; errors as `/v1/leads` answers them.
fn answer(result: SubmissionResult, is_test: bool) -> Response {
    match result {
        SubmissionResult::Processed { submission_id, results, .. } => {
            let mut body = lead_json(&submission_id, results.first());
            if is_test {
                body["test"] = Value::Bool(true);
            }
            json_response(StatusCode::OK, &body)
        }
        other => submission_answer(other, Shape::Json).into_response(),
    }
}

/// Where the key is and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    /// The value's bytes, quotes included.
    span: Range<usize>,
    key: String,
    is_test: bool,
}

/// Finds `google_key`: through the JSON reader (with the Google parser's tolerance), or
/// textually when the body is not JSON it can read.
fn locate_key(raw: &[u8]) -> Option<Found> {
    match lenient_json::parse(raw, Tolerance::HAND_MADE, 64) {
        Ok(doc) => {
            let span = doc.span(GOOGLE_KEY)?;
            let key = match doc.value.get(GOOGLE_KEY)? {
                Value::String(s) => s.clone(),
                // A number or anything else is not a key Google sent; it still must not be stored.
                _ => String::from("\u{0}not a string"),
            };
            let is_test = doc.value.get("is_test").and_then(crate::parse::vendors::flag) == Some(true);
            Some(Found { span, key, is_test })
        }
        Err(_) => scan_key(raw),
    }
}

/// The first `"google_key"` member followed by `:` and a string, in a body that is not
/// valid JSON.
fn scan_key(raw: &[u8]) -> Option<Found> {
    let needle = b"\"google_key\"";
    let mut from = 0;
    while let Some(i) = raw.get(from..)?.windows(needle.len()).position(|w| w == needle) {
        let mut p = from + i + needle.len();
        from = p;
        p += raw.get(p..)?.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if raw.get(p) != Some(&b':') {
            continue;
        }
        p += 1;
        p += raw.get(p..)?.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if raw.get(p) != Some(&b'"') {
            continue;
        }
        let start = p;
        p += 1;
        while let Some(&b) = raw.get(p) {
            match b {
                b'\\' => p += 2,
                b'"' => {
                    let token = raw.get(start..=p)?;
                    let key = serde_json::from_slice::<String>(token).ok()?;
                    return Some(Found { span: start..p + 1, key, is_test: false });
                }
                _ => p += 1,
            }
        }
        return None;
    }
    None
}

/// The body with the key's value replaced by [`REDACTED`]; everything else byte for byte.
fn redact(raw: &[u8], span: Range<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(raw.get(..span.start).unwrap_or_default());
    out.extend_from_slice(REDACTED);
    out.extend_from_slice(raw.get(span.end..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_found_and_redacted_byte_for_byte() {
        let raw = b"{\"lead_id\": \"x\",\n \"google_key\" : \"s3\\\"cret\", \"is_test\": true}";
        let f = locate_key(raw).unwrap();
        assert_eq!(f.key, "s3\"cret");
        assert!(f.is_test);
        let stored = redact(raw, f.span);
        assert_eq!(stored, b"{\"lead_id\": \"x\",\n \"google_key\" : \"[redacted]\", \"is_test\": true}");
    }

    #[test]
    fn the_key_is_found_in_broken_json_too() {
        let raw = b"{\"lead_id\": \"x\", \"google_key\": \"k1\", \"user_column_data\": [ {oops ]}";
        let f = locate_key(raw).unwrap();
        assert_eq!(f.key, "k1");
        assert_eq!(&raw[f.span.clone()], b"\"k1\"");
        assert!(locate_key(b"{\"google_key\" 12 oops").is_none());
        assert!(locate_key(b"{\"lead_id\": \"x\"}").is_none());
        let num = locate_key(b"{\"google_key\": 12345}").unwrap();
        assert_ne!(num.key, "12345");
    }
}
