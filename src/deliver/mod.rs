//! Delivery: pushing committed leads to buyers through a durable outbox.
//!
//! The routing decision writes delivery rows in the same transaction as the lead; the
//! outbox worker leases due rows, calls the buyer's [`Delivery`] with no transaction
//! open, and records the result guarded by the lease. A delivery only decides what the
//! buyer's answer *means* ([`ErrorKind`]); when to retry is the outbox's business.

pub mod adf;
pub mod attempt;
pub mod email;
pub mod handoff;
pub mod http_client;
pub mod outbox;
pub mod retry;
pub mod sign;
pub mod webhook;

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// What to send, rendered at routing time so every retry sends the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    WebhookV1(WebhookPayload),
    EmailV1(EmailPayload),
}

/// An HTTP request to a buyer's endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub method: String,
    pub url: String,
    /// Extra headers from the buyer's config (signature headers are added at send time).
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    pub body: String,
}

/// An e-mail to a buyer's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailPayload {
    pub from: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    pub subject: String,
    pub text: String,
    #[serde(default)]
    pub html: Option<String>,
    /// An ADF/XML document: attached as `lead.xml`, or the whole body when `adf_body`.
    #[serde(default)]
    pub adf: Option<String>,
    #[serde(default)]
    pub adf_body: bool,
}

/// One delivery attempt as the worker hands it to a [`Delivery`].
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    /// Stable across retries: the `webhook-id` header and the e-mail `Message-ID`.
    pub delivery_id: String,
    pub lead_id: String,
    pub buyer: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub payload: Payload,
}

/// The buyer took the lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// HTTP status or SMTP reply code.
    pub status: Option<u16>,
    /// The buyer's answer, truncated to [`RESPONSE_KEEP`] bytes.
    pub response: String,
}

/// How a failed attempt is treated by the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Network error, timeout, 408, 5xx, SMTP 4xx: retry on the schedule.
    Transient,
    /// 429 (or 503 with `Retry-After`): retry, not before `retry_after` when given.
    RateLimited { retry_after: Option<Duration> },
    /// The buyer refused this lead (4xx, a reject rule matched, SMTP 5xx): no retry.
    Permanent,
    /// 410: the endpoint is gone; the buyer is disabled and an operator alerted.
    Gone,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub kind: ErrorKind,
    /// What went wrong, or the buyer's reason for a rejection.
    pub message: String,
    pub status: Option<u16>,
    /// The buyer's answer, truncated to [`RESPONSE_KEEP`] bytes.
    pub response: String,
}

impl DeliveryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), status: None, response: String::new() }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Most bytes of a buyer's answer kept with the attempt.
pub const RESPONSE_KEEP: usize = 64 * 1024;

/// A buyer transport (the delivery seam): webhook, e-mail.
pub trait Delivery: Send + Sync {
    /// Makes one attempt. Never retries by itself; classifies the answer.
    fn deliver<'a>(&'a self, job: &'a DeliveryJob) -> BoxFuture<'a, Result<Accepted, DeliveryError>>;
}

/// Truncates `s` to at most `max` bytes on a character boundary.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
