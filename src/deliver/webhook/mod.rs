//! Webhook delivery: one signed HTTP request per attempt, and what the answer means.
//!
//! Each attempt sends the bytes rendered at routing time (method, URL, headers, content
//! type, body) plus the Standard Webhooks headers ([`crate::deliver::sign`]):
//! `webhook-id` is the delivery id, the same on every retry, so a buyer can drop
//! duplicates; `webhook-timestamp` is this attempt's time; `webhook-signature` is present
//! when the buyer has secrets. The request goes through the guarded client
//! ([`crate::deliver::http_client`]): the URL is checked against the egress policy first
//! and every resolved address again at connect time; redirects are never followed.
//!
//! Failures are classified, never retried here:
//! - egress refused, an invalid URL, method or header, a non-webhook payload: `Permanent`
//!   (configuration problems a retry cannot fix);
//! - timeout, connection and other network errors: `Transient`, the message naming which;
//! - an answer: [`response::classify`].
//!
//! The answer body is read only up to [`RESPONSE_KEEP`] bytes, then the connection is
//! dropped, so a buyer streaming gigabytes costs 64 KiB.

pub mod response;
mod xpath;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::clock::{Clock, SystemClock};
use crate::deliver::http_client::{EgressPolicy, USER_AGENT, check_url, egress_refusal, error_chain};
use crate::deliver::sign::{
    WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSecret, signature_header,
};
use crate::deliver::{
    Accepted, Delivery, DeliveryError, DeliveryJob, ErrorKind, Payload, RESPONSE_KEEP, WebhookPayload,
};
pub use response::{Extractor, ResponseRules, Rule, classify};

/// Headers leadgate sets itself (or that would break the request's framing): a buyer's
/// config may not set them.
pub const RESERVED_HEADERS: &[&str] = &[
    WEBHOOK_ID,
    WEBHOOK_TIMESTAMP,
    WEBHOOK_SIGNATURE,
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
];

/// Delivers [`Payload::WebhookV1`] jobs to one buyer.
pub struct WebhookDelivery {
    client: reqwest::Client,
    policy: EgressPolicy,
    secrets: Vec<WebhookSecret>,
    rules: ResponseRules,
    timeout: Option<Duration>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WebhookDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDelivery")
            .field("policy", &self.policy)
            .field("secrets", &self.secrets)
            .field("rules", &self.rules)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookDelivery {
    /// `client` must come from [`http_client`](crate::deliver::http_client::http_client)
    /// with the same `policy` (the client checks resolved addresses, this checks
    /// IP-literal URLs). With no secrets, requests are not signed.
    pub fn new(
        client: reqwest::Client,
        policy: EgressPolicy,
        secrets: Vec<WebhookSecret>,
        rules: ResponseRules,
    ) -> Self {
        Self { client, policy, secrets, rules, timeout: None, clock: Arc::new(SystemClock) }
    }

    /// A per-request timeout for this buyer, instead of the client's.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The clock for `webhook-timestamp` and `Retry-After` dates (tests move it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn send(&self, job: &DeliveryJob, payload: &WebhookPayload) -> Result<Accepted, DeliveryError> {
        let now_ms = self.clock.now_ms();
        let request = self.request(job, payload, now_ms.div_euclid(1000))?;
        let host = request.url().host_str().unwrap_or_default().to_owned();
        let mut response = self.client.execute(request).await.map_err(|e| self.send_error(e, &host))?;

        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        let (body, read_error) = read_bounded(&mut response).await;
        drop(response);
        let body = String::from_utf8_lossy(&body).into_owned();
        if let Some(e) = read_error
            && (200..300).contains(&status)
        {
            // The buyer may have taken the lead, but without the whole answer no rule can
            // say so; the stable webhook-id lets it recognise the retry.
            let mut err = DeliveryError::new(
                ErrorKind::Transient,
                format!("HTTP {status}, but reading the answer from {host} failed: {}", cause(e)),
            );
            err.status = Some(status);
            err.response = body;
            return Err(err);
        }
        let now = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        classify(status, &headers, &body, &self.rules, now)
    }

    fn request(
        &self,
        job: &DeliveryJob,
        payload: &WebhookPayload,
        timestamp: i64,
    ) -> Result<reqwest::Request, DeliveryError> {
        let permanent = |message: String| DeliveryError::new(ErrorKind::Permanent, message);
        let url =
            Url::parse(payload.url.trim()).map_err(|e| permanent(format!("invalid webhook URL: {e}")))?;
        check_url(&url, &self.policy).map_err(permanent)?;
        let method = payload.method.trim().to_ascii_uppercase();
        let method = Method::from_bytes(method.as_bytes())
            .ok()
            .filter(|_| !method.is_empty())
            .ok_or_else(|| permanent(format!("invalid HTTP method `{}`", payload.method)))?;

        let mut headers = HeaderMap::new();
        for (name, value) in &payload.headers {
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| permanent(format!("invalid header name `{name}`")))?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(permanent(format!(
                    "header `{name}` is set by leadgate and may not be configured"
                )));
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| permanent(format!("invalid value for header `{name}`")))?;
            headers.append(name, value);
        }
        let header = |value: &str, what: &str| {
            HeaderValue::from_str(value).map_err(|_| permanent(format!("invalid {what} `{value}`")))
        };
        if !payload.content_type.trim().is_empty() {
            headers.insert(CONTENT_TYPE, header(payload.content_type.trim(), "content type")?);
        }
        headers.insert(reqwest::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        headers.insert(WEBHOOK_ID, header(&job.delivery_id, "delivery id")?);
        headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
        if !self.secrets.is_empty() {
            let signature =
                signature_header(&self.secrets, &job.delivery_id, timestamp, payload.body.as_bytes());
            headers.insert(WEBHOOK_SIGNATURE, header(&signature, "signature")?);
        }

        let mut request = self.client.request(method, url).headers(headers).body(payload.body.clone());
        if let Some(timeout) = self.timeout {
            request = request.timeout(timeout);
        }
        request.build().map_err(|e| permanent(format!("invalid request: {}", cause(e))))
    }

    /// What a failed send means. The URL is left out of messages (its query may hold a
    /// buyer's token); the host names the endpoint.
    fn send_error(&self, e: reqwest::Error, host: &str) -> DeliveryError {
        if let Some(refused) = egress_refusal(&e) {
            return DeliveryError::new(ErrorKind::Permanent, refused.to_string());
        }
        let (timeout, connect) = (e.is_timeout(), e.is_connect());
        let why = cause(e);
        let message = if timeout {
            match self.timeout {
                Some(t) => format!("timeout: {host} did not answer within {t:?} ({why})"),
                None => format!("timeout: {host} did not answer in time ({why})"),
            }
        } else if connect {
            format!("connect: could not connect to {host}: {why}")
        } else {
            format!("request to {host} failed: {why}")
        };
        DeliveryError::new(ErrorKind::Transient, message)
    }
}

/// The error and its causes, without the URL (its query may hold a buyer's token).
fn cause(e: reqwest::Error) -> String {
    error_chain(&e.without_url())
}

/// Reads at most [`RESPONSE_KEEP`] bytes of the body; a read error ends the read and is
/// returned beside what arrived.
async fn read_bounded(response: &mut reqwest::Response) -> (Vec<u8>, Option<reqwest::Error>) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_KEEP.saturating_sub(body.len());
                body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                if body.len() >= RESPONSE_KEEP {
                    return (body, None);
                }
            }
            Ok(None) => return (body, None),
            Err(e) => return (body, Some(e)),
        }
    }
}

impl Delivery for WebhookDelivery {
    fn deliver<'a>(&'a self, job: &'a DeliveryJob) -> BoxFuture<'a, Result<Accepted, DeliveryError>> {
        Box::pin(async move {
            match &job.payload {
                Payload::WebhookV1(payload) => self.send(job, payload).await,
                _ => Err(DeliveryError::new(ErrorKind::Permanent, "wrong payload for webhook delivery")),
            }
        })
    }
}

#[cfg(test)]
mod tests;
