//! Answers in the request's format: JSON for JSON and form requests, XML for XML.
//!
//! 4xx bodies name the problem (fields, parser position); 5xx bodies are generic and
//! the detail goes to the log, never to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;
use serde::Serialize;

use crate::lead::Problem;
use crate::pipeline::{LeadResult, Outcome, SubmissionResult};

/// The shape of an answer body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Json,
    Xml,
}

impl Shape {
    /// XML requests get XML answers; everything else JSON.
    pub fn for_content_type(ct: Option<&str>) -> Shape {
        match ct.and_then(crate::parse::Format::from_content_type) {
            Some(crate::parse::Format::Xml) => Shape::Xml,
            _ => Shape::Json,
        }
    }
}

/// Reason codes used in error answers.
pub mod code {
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const UNPARSEABLE: &str = "unparseable";
    pub const IDEMPOTENCY_CONFLICT: &str = "idempotency_conflict";
    pub const BAD_REQUEST: &str = "bad_request";
    pub const NOT_FOUND: &str = "not_found";
    /// A release of a lead that is not held for review.
    pub const NOT_HELD: &str = "not_held";
    pub const INTERNAL: &str = "internal";
    pub const UNAVAILABLE: &str = "unavailable";
}

/// An error answer.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    #[serde(skip)]
    pub shape: Shape,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    #[serde(skip)]
    pub submission_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            shape: Shape::Json,
            code,
            message: message.into(),
            line: None,
            column: None,
            submission_id: None,
        }
    }

    pub fn shaped(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, code::NOT_FOUND, format!("{what} not found"))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::BAD_REQUEST, message)
    }

    /// A server-side failure: logged in full here, answered generically.
    pub fn internal(err: &dyn std::error::Error) -> Self {
        tracing::error!(error.message = %err, "Request failed with an internal error.");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            "internal error; the request may be retried",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.shape {
            Shape::Json => {
                let mut v = serde_json::json!({ "error": &self });
                if let Some(id) = &self.submission_id {
                    v["submission_id"] = id.clone().into();
                }
                v.to_string()
            }
            Shape::Xml => {
                let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>");
                push_el(&mut x, "code", self.code);
                push_el(&mut x, "message", &self.message);
                if let Some(l) = self.line {
                    push_el(&mut x, "line", &l.to_string());
                }
                if let Some(c) = self.column {
                    push_el(&mut x, "column", &c.to_string());
                }
                if let Some(id) = &self.submission_id {
                    push_el(&mut x, "submission_id", id);
                }
                x.push_str("</error>\n");
                x
            }
        };
        with_body(self.status, self.shape, body)
    }
}

fn with_body(status: StatusCode, shape: Shape, body: String) -> Response {
    let ct = match shape {
        Shape::Json => "application/json",
        Shape::Xml => "application/xml; charset=utf-8",
    };
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

fn status_of(outcome: Outcome) -> StatusCode {
    match outcome {
        Outcome::Accepted => StatusCode::CREATED,
        Outcome::Duplicate => StatusCode::OK,
        Outcome::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The answer to a vendor for a committed submission.
pub fn submission_answer(result: SubmissionResult, shape: Shape) -> Response {
    match result {
        SubmissionResult::Unparseable { submission_id, error, line, column } => ApiError {
            status: StatusCode::BAD_REQUEST,
            shape,
            code: code::UNPARSEABLE,
            message: error,
            line,
            column,
            submission_id: Some(submission_id),
        }
        .into_response(),
        SubmissionResult::IdempotencyConflict { submission_id } => ApiError {
            submission_id: Some(submission_id),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::IDEMPOTENCY_CONFLICT,
                "this Idempotency-Key was already used with a different body",
            )
            .shaped(shape)
        }
        .into_response(),
        SubmissionResult::Processed { submission_id, batch, results } => {
            // A batch gets the status a single lead would get when all its leads share an
            // outcome, and 200 when they differ: the per-lead answers are in the body.
            let status = match results.first() {
                Some(first) if results.iter().all(|r| r.outcome == first.outcome) => status_of(first.outcome),
                _ => StatusCode::OK,
            };
            let body = match (shape, batch) {
                (Shape::Json, false) => {
                    let mut v = serde_json::to_value(results.first()).unwrap_or_default();
                    v["submission_id"] = submission_id.into();
                    v.to_string()
                }
                (Shape::Json, true) => {
                    serde_json::json!({ "submission_id": submission_id, "results": results }).to_string()
                }
                (Shape::Xml, false) => {
                    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                    if let Some(r) = results.first() {
                        lead_xml(&mut x, "result", r, Some(&submission_id));
                    }
                    x
                }
                (Shape::Xml, true) => {
                    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<results>");
                    push_el(&mut x, "submission_id", &submission_id);
                    for r in &results {
                        lead_xml(&mut x, "result", r, None);
                    }
                    x.push_str("</results>\n");
                    x
                }
            };
            with_body(status, shape, body)
        }
    }
}

fn lead_xml(x: &mut String, tag: &str, r: &LeadResult, submission_id: Option<&str>) {
    x.push('<');
    x.push_str(tag);
    x.push('>');
    push_el(x, "outcome", r.outcome.as_str());
    push_el(x, "lead_id", &r.lead_id);
    problems_xml(x, "reasons", "reason", &r.reasons);
    if !r.warnings.is_empty() {
        problems_xml(x, "warnings", "warning", &r.warnings);
    }
    if let Some(d) = &r.duplicate_of {
        push_el(x, "duplicate_of", d);
    }
    if let Some(s) = submission_id {
        push_el(x, "submission_id", s);
    }
    x.push_str("</");
    x.push_str(tag);
    x.push_str(">\n");
}

fn problems_xml(x: &mut String, list: &str, item: &str, problems: &[Problem]) {
    x.push_str(&format!("<{list}>"));
    for p in problems {
        x.push_str(&format!(
            "<{item} field=\"{}\" code=\"{}\">{}</{item}>",
            escape(p.field.as_str()),
            escape(p.code.as_str()),
            escape(p.message.as_str())
        ));
    }
    x.push_str(&format!("</{list}>"));
}

fn push_el(x: &mut String, tag: &str, text: &str) {
    x.push_str(&format!("<{tag}>{}</{tag}>", escape(text)));
}
