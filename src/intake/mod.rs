//! Intake channels: each turns its protocol's input into [`Submission`]s and the
//! committed answer back into its protocol's acknowledgement (HTTP body, IMAP flag/move,
//! FTP results file). Every channel goes through [`submit`]: the one pipeline, and an
//! answer only after the commit that holds the submission.

pub mod drop_dir;
pub mod email;
pub mod files;
pub mod ftp;
pub mod http;
pub mod vendors;

use std::sync::Arc;

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::pipeline::writer::Writer;
use crate::pipeline::{self, SubmissionResult};
use crate::store::{Store, StoreError};
use crate::submission::Submission;

/// What a channel can use while it runs.
#[derive(Clone)]
pub struct ChannelContext {
    /// The current config snapshot (reloads swap it).
    pub config: Arc<ArcSwap<Config>>,
    pub writer: Writer,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Cancelled at shutdown: stop taking input, finish what is in hand.
    pub shutdown: CancellationToken,
}

impl ChannelContext {
    /// Runs `submission` through the pipeline with the current config and commits it.
    pub async fn submit(&self, submission: Submission) -> Result<SubmissionResult, StoreError> {
        submit(&self.config.load_full(), &self.writer, submission).await
    }
}

/// Parses (on the blocking pool for big payloads), commits, and returns the answer.
pub async fn submit(
    config: &Arc<Config>,
    writer: &Writer,
    submission: Submission,
) -> Result<SubmissionResult, StoreError> {
    let job = prepare(config, submission).await?;
    commit(writer, job).await
}

/// Parses, normalizes, validates, scores and plans a submission: inline for a small body,
/// on the blocking pool for a big one (a long parse must not hold a runtime thread).
pub async fn prepare(config: &Arc<Config>, submission: Submission) -> Result<pipeline::Job, StoreError> {
    const INLINE_PARSE_MAX: usize = 64 * 1024;
    if submission.body.len() > INLINE_PARSE_MAX {
        let config = config.clone();
        tokio::task::spawn_blocking(move || pipeline::job(&config, submission, false))
            .await
            .map_err(|e| StoreError::Commit(format!("parser task failed: {e}")))
    } else {
        Ok(pipeline::job(config, submission, false))
    }
}

/// Commits a prepared submission through the group commit; the answer comes once durable.
pub async fn commit(writer: &Writer, job: pipeline::Job) -> Result<SubmissionResult, StoreError> {
    let result = writer.submit(job).await?;
    crate::telemetry::submission_committed(&result);
    Ok(result)
}

/// Why a channel stopped.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{channel}: {message}")]
    Failed { channel: &'static str, message: String },
}

/// An intake channel (the channel seam): config → `build` → `run`.
pub trait Channel: Send {
    /// Short protocol name for logs (`imap`, `ftp`, `drop_dir`).
    fn name(&self) -> &'static str;

    /// Runs until `cx.shutdown` is cancelled. Transient failures (a mailbox down) are
    /// retried inside with backoff; an error return means the channel cannot run at all.
    fn run(self: Box<Self>, cx: ChannelContext) -> BoxFuture<'static, Result<(), ChannelError>>;
}

/// The channels the config asks for, besides HTTP (which the API router serves).
pub fn channels(config: &Config) -> Vec<Box<dyn Channel>> {
    // The Meta fetcher always runs: a reload may add a `[meta]` source, and fetches
    // stored before a restart must go on. Idle, it is one indexed query per half second.
    let mut channels: Vec<Box<dyn Channel>> = vec![Box::new(vendors::meta_fetch::MetaFetcher)];
    channels.extend(email::channels(config));
    if let Some(ftp) = &config.file_intake.ftp {
        channels.push(Box::new(ftp::FtpChannel::new(ftp.clone())));
    }
    if let Some(drop_dir) = &config.file_intake.drop_dir {
        channels.push(Box::new(drop_dir::DropDirChannel::new(drop_dir.clone())));
    }
    channels
}
