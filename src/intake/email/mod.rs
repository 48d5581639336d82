//! E-mail intake: one consumer per configured IMAP mailbox.
//!
//! A consumer logs in, selects the folder, takes every message it has not handled yet
//! (ascending UID), then waits with IDLE when the server offers it (new mail becomes a
//! lead within about a second) or polls. Any error ends the session: it is logged and
//! recorded as the consumer state (`/readyz`, `GET /v1/admin/mailboxes`), and the
//! consumer reconnects with exponential backoff. It never stops on its own.
//!
//! Exactly once, per message:
//! 1. `RFC822.SIZE` first: a message over `email.max_message_bytes` is not fetched; its
//!    headers become a failed submission and it goes to the failed folder.
//! 2. `BODY.PEEK[]` (so a failure leaves it unread), keyed by Message-ID (or a hash of the
//!    message) within the mailbox. A row in `email_messages` names the submission id
//!    *before* the commit; a message whose row exists is never submitted twice: if its
//!    submission committed (a crash between commit and move, a second copy of the
//!    message, a UIDVALIDITY change) it is only filed.
//! 3. DKIM, when the source requires it: unauthenticated mail is committed as a
//!    `quarantined` submission, never routed.
//! 4. The pipeline, and only after the commit, the move to the processed or failed folder
//!    (or a flag when no folder is set). The highest UID handled is recorded with the
//!    folder's UIDVALIDITY; a new UIDVALIDITY restarts from the first UID, and the rows
//!    of step 2 keep that from duplicating anything.

mod dkim;
mod imap;

use std::time::Duration;

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::{Channel, ChannelContext, ChannelError};
use crate::config::Config;
use crate::config::email::Mailbox;
use crate::parse::email::{self as email_parse, is_needs_template};
use crate::parse::{Format, ParseError};
use crate::pipeline::{self, Outcome, Prepared, SubmissionResult};
use crate::submission::{Submission, new_id};
pub use imap::ImapError;
use imap::{FAILED_KEYWORD, ImapSession, PROCESSED_KEYWORD, timed};

/// The channel name submissions carry.
pub const CHANNEL: &str = "imap";

/// The problem code validation gives a missing required field.
const REQUIRED: &str = "required";

/// First wait before reconnecting.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// IDLE is re-issued before servers drop it (RFC 2177: at most every 29 minutes).
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

/// Submission statuses this channel sets besides `processed` and `failed`.
pub mod status {
    /// No template fits and required fields are missing: write a template, then replay.
    pub const NEEDS_TEMPLATE: &str = "needs_template";
    /// The source requires DKIM and the message has no passing signature of the vendor.
    pub const QUARANTINED: &str = "quarantined";
}

/// The consumer of one mailbox.
pub struct ImapChannel {
    mailbox: Mailbox,
}

impl Channel for ImapChannel {
    fn name(&self) -> &'static str {
        CHANNEL
    }

    fn run(self: Box<Self>, cx: ChannelContext) -> BoxFuture<'static, Result<(), ChannelError>> {
        Box::pin(consume(self.mailbox, cx))
    }
}

/// One channel per mailbox of every enabled source.
pub fn channels(config: &Config) -> Vec<Box<dyn Channel>> {
    config
        .sources
        .values()
        .filter(|s| s.enabled)
        .flat_map(|s| s.email.mailboxes.iter())
        .map(|m| Box::new(ImapChannel { mailbox: m.clone() }) as Box<dyn Channel>)
        .collect()
}

/// Runs sessions until shutdown, reconnecting with backoff.
async fn consume(mb: Mailbox, cx: ChannelContext) -> Result<(), ChannelError> {
    tracing::info!(mailbox = %mb.id, host = %mb.host, folder = %mb.folder, "Mailbox consumer starting.");
    let mut backoff = FIRST_BACKOFF;
    while !cx.shutdown.is_cancelled() {
        state(&cx, &mb, "connecting", false, None).await;
        match session(&mb, &cx, &mut backoff).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(mailbox = %mb.id, error.message = %e, retry_in_ms = backoff.as_millis() as u64, "Mailbox session failed; reconnecting.");
                state(&cx, &mb, "error", false, Some(&e.to_string())).await;
                tokio::select! {
                    () = cx.shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(mb.max_backoff);
            }
        }
    }
    state(&cx, &mb, "stopped", false, None).await;
    tracing::info!(mailbox = %mb.id, "Mailbox consumer stopped.");
    Ok(())
}

/// Records the consumer state; a store failure here is only logged (the next one retries).
async fn state(cx: &ChannelContext, mb: &Mailbox, state: &str, fetched: bool, error: Option<&str>) {
    crate::telemetry::mailbox_state(&mb.id, state, fetched, error.is_some(), cx.clock.now_ms());
    if let Err(e) = cx.store.set_mailbox_state(&mb.id, state, fetched, error, cx.clock.now_ms()).await {
        tracing::warn!(mailbox = %mb.id, error.message = %e, "Cannot record the mailbox state.");
    }
}

/// One connection: returns `Ok` at shutdown, `Err` on anything that needs a reconnect.
async fn session(mb: &Mailbox, cx: &ChannelContext, backoff: &mut Duration) -> Result<(), ImapError> {
    let mut s = imap::connect(mb).await?;
    let caps = timed("CAPABILITY", s.capabilities()).await?;
    let ext = imap::Extensions {
        idle: caps.has_str("IDLE"),
        moves: caps.has_str("MOVE"),
        uidplus: caps.has_str("UIDPLUS"),
    };
    for folder in [&mb.processed_folder, &mb.failed_folder].into_iter().flatten() {
        // Usually exists already: the error for that is expected and harmless.
        let _exists = timed("CREATE", s.create(folder)).await;
    }
    let selected = timed("SELECT", s.select(&mb.folder)).await?;
    let validity =
        i64::from(selected.uid_validity.ok_or_else(|| ImapError::NoUidValidity(mb.folder.clone()))?);
    let now = cx.clock.now_ms();
    let (stored_validity, mut last_uid) = cx.store.mailbox_progress(&mb.id, &mb.source, now).await?;
    if stored_validity != Some(validity) {
        if stored_validity.is_some() {
            tracing::warn!(mailbox = %mb.id, old = ?stored_validity, new = validity, "UIDVALIDITY changed: every message is looked at again (Message-ID dedupe keeps them from duplicating).");
        }
        last_uid = 0;
        cx.store.save_mailbox_progress(&mb.id, validity, 0, now).await?;
    }
    tracing::info!(mailbox = %mb.id, idle = ext.idle && mb.idle, last_uid, "Mailbox selected.");
    *backoff = FIRST_BACKOFF;
    let mut taker = Taker { mb, cx, validity, ext, dns: None };
    let idle = ext.idle && mb.idle;
    loop {
        last_uid = taker.take_new(&mut s, last_uid).await?;
        state(cx, mb, if idle { "idle" } else { "polling" }, true, None).await;
        if cx.shutdown.is_cancelled() {
            let _bye = timed("LOGOUT", s.logout()).await;
            return Ok(());
        }
        // Mail that arrived while we were busy was announced (EXISTS) during our own
        // commands; IDLE would not announce it again.
        if new_mail_announced(&mut s) {
            continue;
        }
        if idle {
            let mut handle = s.idle();
            timed("IDLE", handle.init()).await?;
            let stopping = {
                // The poll interval also bounds each IDLE: a safety net for an
                // announcement that came in with the IDLE command's own responses.
                let (wait, _interrupt) = handle.wait_with_timeout(mb.poll_interval.min(IDLE_RENEW));
                tokio::select! {
                    r = wait => {
                        r.map_err(|e| ImapError::Command { command: "IDLE", message: e.to_string() })?;
                        false
                    }
                    () = cx.shutdown.cancelled() => true,
                }
            };
            s = timed("DONE", handle.done()).await?;
            if stopping {
                let _bye = timed("LOGOUT", s.logout()).await;
                return Ok(());
            }
        } else {
            tokio::select! {
                () = cx.shutdown.cancelled() => {
                    let _bye = timed("LOGOUT", s.logout()).await;
                    return Ok(());
                }
                () = tokio::time::sleep(mb.poll_interval) => {}
            }
        }
    }
}

/// Drains the server's unsolicited responses; true if one announced new mail.
fn new_mail_announced(s: &mut ImapSession) -> bool {
    let mut announced = false;
    while let Ok(r) = s.unsolicited_responses.try_recv() {
        if matches!(
            r,
            async_imap::types::UnsolicitedResponse::Exists(_)
                | async_imap::types::UnsolicitedResponse::Recent(_)
        ) {
            announced = true;
        }
    }
    announced
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filed {
    Processed,
    Failed,
}

/// Takes messages from the selected folder.
struct Taker<'a> {
    mb: &'a Mailbox,
    cx: &'a ChannelContext,
    validity: i64,
    ext: imap::Extensions,
    /// DKIM key lookups, made on first need.
    dns: Option<Option<mail_auth::MessageAuthenticator>>,
}

impl Taker<'_> {
    /// Every message above `last_uid`, in UID order; returns the new `last_uid`.
    async fn take_new(&mut self, s: &mut ImapSession, last_uid: i64) -> Result<i64, ImapError> {
        let query =
            format!("UID {}:* UNKEYWORD {PROCESSED_KEYWORD} UNKEYWORD {FAILED_KEYWORD}", last_uid + 1);
        let found = timed("UID SEARCH", s.uid_search(&query)).await?;
        // `n:*` always includes the highest UID, even below n.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| i64::from(*u) > last_uid).collect();
        uids.sort_unstable();
        let mut last = last_uid;
        for uid in uids {
            self.take(s, uid).await?;
            last = i64::from(uid);
            self.cx
                .store
                .save_mailbox_progress(&self.mb.id, self.validity, last, self.cx.clock.now_ms())
                .await?;
            if self.cx.shutdown.is_cancelled() {
                break;
            }
        }
        Ok(last)
    }

    /// One message: size check, fetch, exactly-once commit, then filing.
    async fn take(&mut self, s: &mut ImapSession, uid: u32) -> Result<(), ImapError> {
        let config = self.cx.config.load_full();
        let source =
            config.source(&self.mb.source).ok_or_else(|| ImapError::SourceGone(self.mb.source.clone()))?;
        let max = source.email.max_message_bytes;
        let sized = imap::fetch(s, uid, "(UID RFC822.SIZE)").await?;
        let Some(size) = sized.iter().find_map(|f| f.size) else {
            // Expunged by someone else meanwhile: nothing to take.
            return Ok(());
        };
        let size = size as usize;
        let (raw, oversize) = if size > max {
            let head = imap::fetch(s, uid, "BODY.PEEK[HEADER]").await?;
            let header = head.iter().find_map(|f| f.header().map(<[u8]>::to_vec)).unwrap_or_default();
            (header, true)
        } else {
            let full = imap::fetch(s, uid, "BODY.PEEK[]").await?;
            let Some(body) = full.iter().find_map(|f| f.body().map(<[u8]>::to_vec)) else {
                return Ok(());
            };
            (body, false)
        };
        let key = message_key(&raw);
        let now = self.cx.clock.now_ms();
        let fresh = new_id();
        let row = self
            .cx
            .store
            .claim_email_message(&self.mb.id, &key, self.validity, i64::from(uid), &fresh, now)
            .await?;
        let outcome = if row.status != "pending" {
            tracing::info!(mailbox = %self.mb.id, uid, submission_id = %row.submission_id, "Message already taken (same Message-ID); filing it only.");
            row.outcome.unwrap_or_else(|| "processed".into())
        } else if let Some(status) = self.cx.store.submission_status(&row.submission_id).await? {
            // Committed, then a crash before the row said so: do not submit again.
            tracing::info!(mailbox = %self.mb.id, uid, submission_id = %row.submission_id, "Message committed before a restart; filing it only.");
            status
        } else {
            let submission = self.submission(row.submission_id.clone(), uid, &raw, now);
            let outcome = self.commit(submission, &config, size, max, oversize).await?;
            self.cx
                .store
                .mark_email_message(
                    &self.mb.id,
                    &key,
                    "committed",
                    Some(&outcome),
                    (self.validity, i64::from(uid)),
                    now,
                )
                .await?;
            outcome
        };
        let filed = if outcome == "processed" { Filed::Processed } else { Filed::Failed };
        let (folder, keyword) = match filed {
            Filed::Processed => (self.mb.processed_folder.as_deref(), PROCESSED_KEYWORD),
            Filed::Failed => (self.mb.failed_folder.as_deref(), FAILED_KEYWORD),
        };
        imap::file(s, uid, folder, keyword, self.ext).await?;
        self.cx
            .store
            .mark_email_message(
                &self.mb.id,
                &key,
                "done",
                None,
                (self.validity, i64::from(uid)),
                self.cx.clock.now_ms(),
            )
            .await?;
        Ok(())
    }

    fn submission(&self, id: String, uid: u32, raw: &[u8], now: i64) -> Submission {
        let head = mail_parser::MessageParser::default().parse_headers(raw);
        let meta = serde_json::json!({
            "mailbox": self.mb.id,
            "uid": uid,
            "uidvalidity": self.validity,
            "message_id": head.as_ref().and_then(|m| m.message_id()),
            "from": head.as_ref().and_then(|m| m.from()).and_then(|a| a.first()).and_then(|a| a.address()),
            "subject": head.as_ref().and_then(|m| m.subject()),
        });
        Submission {
            id,
            source: self.mb.source.clone(),
            channel: CHANNEL,
            format: Format::Email,
            content_type: Some("message/rfc822".into()),
            meta,
            body: raw.to_vec(),
            received_at: now,
            idempotency_key: None,
        }
    }

    /// Commits the submission (quarantined, oversize or through the pipeline) and
    /// returns the outcome that decides where the message is filed.
    async fn commit(
        &mut self,
        mut submission: Submission,
        config: &Config,
        size: usize,
        max: usize,
        oversize: bool,
    ) -> Result<String, ImapError> {
        let source =
            config.source(&self.mb.source).ok_or_else(|| ImapError::SourceGone(self.mb.source.clone()))?;
        let id = submission.id.clone();
        let refused = if oversize {
            Some((
                "failed",
                format!(
                    "the message is {size} bytes, over the limit of {max} bytes: not fetched; its headers are \
                     kept here and the message is in the failed folder"
                ),
            ))
        } else if let Some(policy) = &source.email.dkim {
            let auth = self.dns.get_or_insert_with(dkim::authenticator).as_ref();
            match dkim::check(&submission.body, policy, auth).await {
                Ok(domain) => {
                    if let Some(meta) = submission.meta.as_object_mut() {
                        meta.insert("dkim".into(), format!("pass ({domain})").into());
                    }
                    None
                }
                Err(why) => Some((status::QUARANTINED, format!("quarantined: {why}"))),
            }
        } else {
            None
        };
        if let Some((status, why)) = refused {
            tracing::warn!(mailbox = %self.mb.id, submission_id = %id, reason = %why, "Message not taken as a lead.");
            let job = pipeline::Job {
                submission,
                replay: false,
                release: None,
                prepared: Prepared::Failed(ParseError::new(why)),
            };
            let result = self.cx.writer.submit(job).await?;
            crate::telemetry::submission_committed(&result);
            if status != "failed" {
                self.cx.store.set_submission_status(&id, status, self.cx.clock.now_ms()).await?;
            }
            return Ok(status.to_owned());
        }
        let template = email_parse::template_name(&submission.body, &source.parse.email);
        let result = self.cx.submit(submission).await?;
        let outcome = match &result {
            SubmissionResult::Unparseable { error, .. } if is_needs_template(error) => status::NEEDS_TEMPLATE,
            SubmissionResult::Unparseable { .. } | SubmissionResult::IdempotencyConflict { .. } => "failed",
            SubmissionResult::Processed { results, .. }
                if template.is_none()
                    && results.iter().any(|r| {
                        r.outcome == Outcome::Rejected && r.reasons.iter().any(|p| p.code == REQUIRED)
                    }) =>
            {
                status::NEEDS_TEMPLATE
            }
            SubmissionResult::Processed { .. } => "processed",
        };
        if outcome == status::NEEDS_TEMPLATE {
            self.cx.store.set_submission_status(&id, outcome, self.cx.clock.now_ms()).await?;
            tracing::warn!(mailbox = %self.mb.id, submission_id = %id, "No template fits this message: it is stored as needs_template; write one and replay.");
        }
        Ok(outcome.to_owned())
    }
}

/// Message-ID (angle brackets stripped) or, without one, a hash of the message.
fn message_key(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.message_id().map(|id| id.trim().to_owned()))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(raw))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_keys_prefer_the_message_id() {
        assert_eq!(super::message_key(b"Message-ID: <a@b.example>\r\nSubject: x\r\n\r\nbody"), "a@b.example");
        assert!(super::message_key(b"Subject: x\r\n\r\nbody").starts_with("sha256:"));
    }
}
