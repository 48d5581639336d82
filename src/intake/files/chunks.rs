//! A file's chunks: each becomes a submission, prepared in the background (or answered
//! from what an earlier run committed), and its answer split back into one per row.

use std::sync::Arc;

use super::reader::Chunk;
use super::{FileContext, FileError, chunk_key};
use crate::config::Config;
use crate::parse::{Format, jsonl};
use crate::pipeline::{self, LeadResult, Outcome, Prepared, SubmissionResult};
use crate::store::files::FileRecord;
use crate::submission::{Submission, channel, new_id};

/// A chunk made ready in the background.
pub(super) enum Step {
    /// Its answer is known: committed before (a resumed or re-sent file), or a dry run.
    Answered(SubmissionResult),
    /// Parsed, normalized and validated: ready for the writer.
    Prepared(Box<pipeline::Job>),
    /// The store could not be asked: the file stays `processing` and is resumed later.
    Failed(FileError),
}

/// Builds a chunk's submission and prepares it (or finds its committed answer). Runs as
/// its own task so that the next chunks get ready while one is being committed.
pub(super) fn prepare_chunk(
    cx: FileContext,
    config: Arc<Config>,
    record: &FileRecord,
    chunk: &Chunk,
) -> impl std::future::Future<Output = Step> + Send + 'static {
    let key = chunk_key(&record.digest, record.chunk_rows, chunk.index);
    let mut body = Vec::with_capacity(chunk.rows.len() * 256);
    for row in &chunk.rows {
        jsonl::write_record(&row.record, &mut body);
    }
    let submission = Submission {
        id: new_id(),
        source: record.source.clone(),
        channel: channel_name(&record.channel),
        format: Format::Jsonl,
        content_type: Some("application/x-ndjson".into()),
        meta: serde_json::json!({
            "file_id": record.id,
            "file": record.name,
            "digest": record.digest,
            "file_format": record.format,
            "chunk": chunk.index,
            "first_row": chunk.rows.first().map(|r| r.number),
            "last_row": chunk.rows.last().map(|r| r.number),
        }),
        body,
        received_at: record.received_at,
        idempotency_key: Some(key.clone()),
    };
    async move {
        let Some((store, _)) = &cx.commit else {
            return Step::Answered(dry_run(&config, submission).await);
        };
        match pipeline::commit::committed_answer(store, &submission.source, &key).await {
            Ok(Some(answer)) => return Step::Answered(answer),
            Ok(None) => {}
            Err(e) => return Step::Failed(e.into()),
        }
        match tokio::task::spawn_blocking(move || pipeline::job(&config, submission, false)).await {
            Ok(job) => Step::Prepared(Box::new(job)),
            Err(e) => Step::Failed(FileError::Io {
                what: "chunk preparation".into(),
                source: std::io::Error::other(e),
            }),
        }
    }
}

/// One answer per row of the chunk, or why the chunk as a whole was refused (the source
/// vanished from the config, or its key was used with other contents): the file then
/// ends failed, the rows before standing.
pub(super) fn answers_for(chunk: &Chunk, answer: SubmissionResult) -> Result<Vec<LeadResult>, String> {
    match answer {
        SubmissionResult::Processed { results, .. } if results.len() == chunk.rows.len() => Ok(results),
        SubmissionResult::Processed { results, .. } => {
            Err(format!("chunk {} gave {} answers for {} rows", chunk.index, results.len(), chunk.rows.len()))
        }
        SubmissionResult::Unparseable { error, .. } => Err(format!("rows {}: {error}", describe_rows(chunk))),
        SubmissionResult::IdempotencyConflict { .. } => Err(format!(
            "rows {} were committed before with other contents (was the parser or the column mapping changed mid-file?)",
            describe_rows(chunk)
        )),
    }
}

fn describe_rows(chunk: &Chunk) -> String {
    match (chunk.rows.first(), chunk.rows.last()) {
        (Some(a), Some(b)) => format!("{}-{}", a.number, b.number),
        _ => "(none)".into(),
    }
}

/// A dry run's answer: what validation says, nothing stored, no dedupe.
async fn dry_run(config: &Arc<Config>, submission: Submission) -> SubmissionResult {
    let config = config.clone();
    let id = submission.id.clone();
    let prepared = tokio::task::spawn_blocking(move || pipeline::job(&config, submission, false).prepared)
        .await
        .unwrap_or_else(|_| Prepared::Failed(crate::parse::ParseError::new("internal parser error")));
    match prepared {
        Prepared::Failed(e) => SubmissionResult::Unparseable {
            submission_id: id,
            error: e.message,
            line: e.line,
            column: e.column,
        },
        Prepared::Parsed { batch, candidates } => SubmissionResult::Processed {
            submission_id: id,
            batch,
            results: candidates
                .into_iter()
                .map(|c| LeadResult {
                    outcome: if c.errors.is_empty() { Outcome::Accepted } else { Outcome::Rejected },
                    lead_id: String::new(),
                    reasons: c.errors,
                    warnings: c.warnings,
                    duplicate_of: None,
                })
                .collect(),
        },
    }
}

/// The `&'static` channel name for a stored channel string.
fn channel_name(name: &str) -> &'static str {
    match name {
        channel::FTP => channel::FTP,
        channel::DROP_DIR => channel::DROP_DIR,
        _ => channel::IMPORT,
    }
}
