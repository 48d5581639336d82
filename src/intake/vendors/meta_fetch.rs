//! Fetching Meta leads from the Graph API: the first attempt right after the
//! notification is stored, then retries by [`MetaFetcher`], an intake channel that
//! leases due fetches from the store (so they survive restarts and, on PostgreSQL, are
//! shared by every instance without being fetched twice).
//!
//! An attempt is `GET {graph_url}/{leadgen_id}?fields=…&access_token=…&appsecret_proof=…`
//! through the guarded HTTP client (the Graph URL is configuration: the egress policy
//! applies, and tests open loopback with `allow_private`). A 2xx body is submitted to
//! the pipeline as it came (format `meta-lead`, channel `meta_graph`): stored raw, then
//! parsed, so a lead the parser refuses is still kept for replay, and the fetch is done.
//! Anything else (network error, 4xx, 5xx) is retried on the source's `[meta] retry`
//! schedule, honouring `Retry-After`; when the schedule runs out the fetch is dead,
//! which is logged as an error (a lead is missing until an operator re-queues it with
//! `POST /v1/admin/meta/fetches/{id}/retry`).
//!
//! The page token never appears in a log line, an error or the store: errors are built
//! without the URL.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::config::vendors::Meta;
use crate::deliver::http_client::{check_url, error_chain};
use crate::deliver::retry::{RetryPolicy, random_unit};
use crate::intake::{Channel, ChannelContext, ChannelError};
use crate::parse::Format;
use crate::pipeline::SubmissionResult;
use crate::pipeline::writer::Writer;
use crate::store::{MetaFetch, Store};
use crate::submission::{Submission, new_id};

/// The channel name of leads fetched from the Graph API.
pub const CHANNEL: &str = "meta_graph";

/// How long an attempt owns its fetch (longer than any Graph API timeout plus the commit).
pub const LEASE_MS: i64 = 120_000;

/// Longest pause between looks at the store (new fetches from other instances, requeues).
const POLL: Duration = Duration::from_millis(500);

/// Fetches leased per look.
const BATCH: i64 = 32;

/// Longest error text stored with a fetch.
const ERROR_MAX: usize = 500;

/// The retrying half of the Meta intake.
#[derive(Debug, Default)]
pub struct MetaFetcher;

impl Channel for MetaFetcher {
    fn name(&self) -> &'static str {
        CHANNEL
    }

    fn run(self: Box<Self>, cx: ChannelContext) -> BoxFuture<'static, Result<(), ChannelError>> {
        Box::pin(run(cx))
    }
}

async fn run(cx: ChannelContext) -> Result<(), ChannelError> {
    let owner = new_id();
    loop {
        if cx.shutdown.is_cancelled() {
            return Ok(());
        }
        // A read first: an idle fetcher never takes the write lock (SQLite has one).
        let now = cx.clock.now_ms();
        let next = match cx.store.meta_next_due().await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error.message = %e, "Cannot look for due Meta fetches; trying again shortly.");
                None
            }
        };
        if next.is_some_and(|at| at <= now) {
            match cx.store.meta_lease_due(&owner, now, LEASE_MS, BATCH).await {
                Ok(due) if !due.is_empty() => {
                    let config = cx.config.load_full();
                    let attempts = due.into_iter().map(|f| {
                        attempt(&config, &cx.writer, &cx.store, cx.clock.as_ref(), &cx.shutdown, &owner, f)
                    });
                    futures_util::future::join_all(attempts).await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error.message = %e, "Cannot lease Meta fetches; trying again shortly.")
                }
            }
        }
        let wait = match next {
            Some(at) if at > now => Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(POLL),
            _ => POLL,
        };
        tokio::select! {
            () = cx.shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
        }
    }
}

/// Why an attempt failed.
struct Failure {
    message: String,
    retry_after: Option<Duration>,
}

/// One attempt at one fetch, its result recorded under `owner`'s lease.
pub async fn attempt(
    config: &Arc<Config>,
    writer: &Writer,
    store: &Store,
    clock: &dyn Clock,
    shutdown: &CancellationToken,
    owner: &str,
    fetch: MetaFetch,
) {
    let meta = config.source(&fetch.source).and_then(|s| s.vendors.meta.clone());
    let outcome = match &meta {
        None => Err(Failure {
            message: format!("source {} has no [meta] table any more", fetch.source),
            retry_after: None,
        }),
        Some(meta) => {
            let fetched = tokio::select! {
                r = get_lead(meta, &fetch, config.server.max_body_bytes) => r,
                // Abandoned at shutdown: the lease is given back and the fetch retried.
                () = shutdown.cancelled() => {
                    if let Err(e) = store.meta_release(&fetch.id, owner).await {
                        tracing::warn!(leadgen_id = %fetch.leadgen_id, error.message = %e, "Cannot release a Meta fetch lease; it will be retried when the lease ends.");
                    }
                    return;
                }
            };
            match fetched {
                Ok((content_type, body)) => submit(config, writer, clock, &fetch, content_type, body).await,
                Err(f) => Err(f),
            }
        }
    };
    let now = clock.now_ms();
    let recorded = match outcome {
        Ok(submission_id) => {
            tracing::info!(source = %fetch.source, leadgen_id = %fetch.leadgen_id, submission_id = %submission_id, "Meta lead fetched.");
            store.meta_fetched(&fetch.id, owner, &submission_id, now).await
        }
        Err(f) => {
            let policy = meta.as_ref().map_or_else(RetryPolicy::default, |m| m.retry.clone());
            let made = u32::try_from(fetch.attempts + 1).unwrap_or(u32::MAX);
            let next = policy.next_delay(made, f.retry_after, random_unit());
            let retry_at = next.map(|d| now + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
            match retry_at {
                Some(_) => {
                    tracing::warn!(source = %fetch.source, leadgen_id = %fetch.leadgen_id, attempt = made, error.message = %f.message, "Meta lead fetch failed; will retry.")
                }
                None => {
                    tracing::error!(source = %fetch.source, leadgen_id = %fetch.leadgen_id, attempt = made, error.message = %f.message, "Meta lead fetch failed for the last time; re-queue it once the cause is fixed.")
                }
            }
            store.meta_failed(&fetch.id, owner, &f.message, retry_at, now).await
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(leadgen_id = %fetch.leadgen_id, "Meta fetch lease lost before its result was recorded.")
        }
        Err(e) => {
            tracing::warn!(leadgen_id = %fetch.leadgen_id, error.message = %e, "Cannot record a Meta fetch result; it will be retried.")
        }
    }
}

/// `GET {graph_url}/{leadgen_id}`: the body and its content type, or why not.
async fn get_lead(
    meta: &Meta,
    fetch: &MetaFetch,
    limit: usize,
) -> Result<(Option<String>, Vec<u8>), Failure> {
    let fail = |message: String| Failure { message, retry_after: None };
    let token = meta
        .token_for(fetch.page_id.as_deref())
        .ok_or_else(|| fail(format!("no page token for page {}", fetch.page_id.as_deref().unwrap_or("?"))))?;
    let mut url = meta.graph_url.clone();
    url.path_segments_mut()
        .map_err(|()| fail("the Graph URL cannot take a path".into()))?
        .push(&fetch.leadgen_id);
    url.query_pairs_mut()
        .append_pair("fields", &meta.fields)
        .append_pair("access_token", token.expose())
        .append_pair("appsecret_proof", &appsecret_proof(meta, token.expose()));
    check_url(&url, &meta.egress).map_err(fail)?;
    let mut response = meta
        .client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(format!("Graph API request failed: {}", error_chain(&e.without_url()))))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        fail(format!("reading the Graph API answer failed: {}", error_chain(&e.without_url())))
    })? {
        if body.len() + chunk.len() > limit {
            return Err(fail(format!("the Graph API answer is larger than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(Failure {
            message: format!("Graph API answered {}: {}", status.as_u16(), graph_error(&body)),
            retry_after,
        });
    }
    Ok((content_type, body))
}

/// HMAC-SHA256 of the token with the app secret, which Meta requires when the app has
/// "Require App Secret" on and accepts otherwise.
fn appsecret_proof(meta: &Meta, token: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(meta.app_secret.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(token.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The message of a Graph API error body (`{"error": {"message", "code", …}}`), bounded.
fn graph_error(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let text = match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(e) => format!(
            "{} (code {}, type {})",
            e.get("message").and_then(|m| m.as_str()).unwrap_or("no message"),
            e.get("code").map_or_else(|| "?".into(), ToString::to_string),
            e.get("type").and_then(|m| m.as_str()).unwrap_or("?")
        ),
        None => String::from_utf8_lossy(body).into_owned(),
    };
    let mut out: String = text.chars().take(ERROR_MAX).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Commits the fetched lead; its submission id, or a failure to retry.
async fn submit(
    config: &Arc<Config>,
    writer: &Writer,
    clock: &dyn Clock,
    fetch: &MetaFetch,
    content_type: Option<String>,
    body: Vec<u8>,
) -> Result<String, Failure> {
    let submission = Submission {
        id: new_id(),
        source: fetch.source.clone(),
        channel: CHANNEL,
        format: Format::MetaLead,
        content_type,
        meta: serde_json::json!({
            "leadgen_id": fetch.leadgen_id,
            "page_id": fetch.page_id,
            "form_id": fetch.form_id,
            "ad_id": fetch.ad_id,
            "adgroup_id": fetch.adgroup_id,
            "notification_id": fetch.notification_id,
        }),
        body,
        received_at: clock.now_ms(),
        idempotency_key: None,
    };
    match crate::intake::submit(config, writer, submission).await {
        Ok(result) => {
            if let SubmissionResult::Unparseable { error, .. } = &result {
                tracing::warn!(leadgen_id = %fetch.leadgen_id, error.message = %error, "The fetched Meta lead could not be parsed; it is stored for replay.");
            }
            Ok(result.submission_id().to_owned())
        }
        Err(e) => {
            Err(Failure { message: format!("storing the fetched lead failed: {e}"), retry_after: None })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_errors_are_summarised_and_bounded() {
        let body = br#"{"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}"#;
        assert_eq!(graph_error(body), "Invalid OAuth access token. (code 190, type OAuthException)");
        let long = "x".repeat(2000);
        assert_eq!(graph_error(long.as_bytes()).chars().count(), ERROR_MAX + 1);
    }
}
