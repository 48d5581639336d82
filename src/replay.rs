//! Replay: run stored submissions through the pipeline again (after a config or parser
//! fix). The raw body is the one stored at intake; the leads it now yields are committed
//! like new ones (dedupe and vendor-id idempotency still apply).

use crate::config::Config;
use crate::parse::Format;
use crate::pipeline::writer::Writer;
use crate::pipeline::{self, SubmissionResult};
use crate::store::{Store, StoreError, SubmissionFilter};
use crate::submission::{StoredSubmission, Submission, channel};

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("submission {0} not found")]
    NotFound(String),
    #[error("submission {id} has format {format:?}, which this build cannot parse")]
    UnknownFormat { id: String, format: String },
    #[error("lead {0} not found")]
    LeadNotFound(String),
    #[error("lead {id} is not held for review (its stage is {stage})")]
    NotHeld { id: String, stage: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replays one stored submission.
pub async fn replay_one(
    store: &Store,
    writer: &Writer,
    config: &Config,
    id: &str,
) -> Result<SubmissionResult, ReplayError> {
    let stored = store.submission(id).await?.ok_or_else(|| ReplayError::NotFound(id.to_string()))?;
    if stored.format == Format::MetaNotification.name() {
        // A notification yields no lead itself: replaying it schedules its Graph API fetches.
        let result = replay_stored(writer, config, stored.clone()).await?;
        if matches!(result, SubmissionResult::Processed { .. }) {
            let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
            crate::intake::vendors::meta::schedule_replayed(store, config, &stored, now).await?;
        }
        return Ok(result);
    }
    replay_stored(writer, config, stored).await
}

/// Releases a lead held in `needs_review`: its submission is replayed with the lead's
/// contacts taken as they are, so the lead is routed (and, if sold, delivered) like any
/// accepted lead, keeping its id; its history shows `released`. Returns the lead's stage
/// afterwards. A lead that is not held is refused (`NotHeld`), and of two releases at
/// once the second finds it no longer held and changes nothing.
pub async fn release_held(
    store: &Store,
    writer: &Writer,
    config: &Config,
    lead_id: &str,
) -> Result<String, ReplayError> {
    let held = crate::store::review::NEEDS_REVIEW;
    let (submission_id, record_index, stage) =
        store.lead_stage(lead_id).await?.ok_or_else(|| ReplayError::LeadNotFound(lead_id.to_owned()))?;
    if stage != held {
        return Err(ReplayError::NotHeld { id: lead_id.to_owned(), stage });
    }
    let stored = store
        .submission(&submission_id)
        .await?
        .ok_or_else(|| ReplayError::NotFound(submission_id.clone()))?;
    let index = usize::try_from(record_index).unwrap_or(usize::MAX);
    let submission = stored_submission(stored)?;
    writer.submit(pipeline::release_job(config, submission, lead_id, index)).await?;
    match store.lead_stage(lead_id).await? {
        Some((_, _, stage)) if stage == held => Err(ReplayError::NotHeld { id: lead_id.to_owned(), stage }),
        Some((_, _, stage)) => Ok(stage),
        None => Err(ReplayError::LeadNotFound(lead_id.to_owned())),
    }
}

async fn replay_stored(
    writer: &Writer,
    config: &Config,
    s: StoredSubmission,
) -> Result<SubmissionResult, ReplayError> {
    let job = pipeline::job(config, stored_submission(s)?, true);
    Ok(writer.submit(job).await?)
}

/// A stored submission as the pipeline takes it, to run again.
fn stored_submission(s: StoredSubmission) -> Result<Submission, ReplayError> {
    let format = Format::from_name(&s.format)
        .ok_or_else(|| ReplayError::UnknownFormat { id: s.id.clone(), format: s.format.clone() })?;
    Ok(Submission {
        id: s.id,
        source: s.source,
        channel: channel::REPLAY,
        format,
        content_type: s.content_type,
        meta: s.meta,
        body: s.body,
        received_at: s.received_at_ms,
        idempotency_key: None,
    })
}

/// Replays every failed submission (optionally of one source), oldest first.
pub async fn replay_failed(
    store: &Store,
    writer: &Writer,
    config: &Config,
    source: Option<&str>,
) -> Result<Vec<Result<SubmissionResult, ReplayError>>, ReplayError> {
    let mut listed = store
        .submissions(&SubmissionFilter {
            status: Some("failed".into()),
            source: source.map(str::to_string),
            limit: 10_000,
        })
        .await?;
    listed.reverse();
    let mut out = Vec::with_capacity(listed.len());
    for s in listed {
        out.push(replay_one(store, writer, config, &s.id).await);
    }
    Ok(out)
}
