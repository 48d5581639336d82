//! File intake, shared by the FTP drop, the drop-directory watcher and `leadgate import`:
//! a file of leads becomes submissions, and the vendor gets one answer per row.
//!
//! How a file goes through (and why it survives a crash):
//! 1. Its bytes are hashed (SHA-256) and it is recorded in `files` as `processing`,
//!    with where it lies and the results file it is to get: from here on a restart finds
//!    it (channels call [`resume`] for their unfinished files at start).
//! 2. A blocking reader streams it (CSV, JSON lines and XLSX row by row; XML and JSON
//!    files whole, within `files.max_document_bytes`) and hands over chunks of
//!    `files.chunk_rows` rows through a 2-slot channel.
//! 3. Each chunk is one [`Submission`] (its rows as JSON lines, so it can be replayed
//!    like any submission) carrying the Idempotency-Key `file:<digest>:<chunk_rows>:<n>`.
//!    The chunk's leads, dedupe decisions and that key commit in one transaction. Up to
//!    [`IN_FLIGHT`] chunks are prepared (parsed, normalized, validated) in the background
//!    while the ones before them commit; commits go in file order, so of two duplicate
//!    rows the earlier is the one accepted. With one commit loop (SQLite) the next chunk
//!    is queued to the writer before the previous one's answer is back.
//! 4. Row identity is file digest + row number, through the chunk key: after a crash the
//!    file is read again from the start, chunks already committed are answered from their
//!    stored answer (without being submitted again) and the others are committed. No row
//!    is lost or doubled, and the same file uploaded twice gets the same answers. The chunk
//!    size is pinned per digest (the first record's), so a config change cannot move
//!    chunk boundaries under a resumed file.
//! 5. The results file is written beside the vendor's upload (see [`results`]), then the
//!    file is archived under `files.archive_dir` and its record closed (`done`, or
//!    `failed` with the reason when it could not be read to its end).
//!
//! Memory is bounded by the chunk size, not the file size: at most [`IN_FLIGHT`] chunks
//! being prepared, two being committed and 2 waiting in the channel (XLSX also keeps its shared-string table).

mod chunks;
pub mod reader;
pub mod results;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::parse::Format;
use crate::pipeline::Outcome;
use crate::pipeline::writer::Writer;
use crate::store::files::{FileOutcome, FileRecord};
use crate::store::{Store, StoreError};
use crate::submission::{channel, new_id};
use chunks::{Step, answers_for, prepare_chunk};
use reader::{Chunk, Event, Facts, ReadPlan};
use results::{ColumnIndex, ResultsWriter};

/// Chunks being prepared at once for one file.
pub const IN_FLIGHT: usize = 3;

/// Chunks queued for commit at once for one file (with an ordered writer).
const COMMITS_IN_FLIGHT: usize = 2;

/// A chunk's answer: stored already, or on its way from the writer.
enum Answer {
    Ready(crate::pipeline::SubmissionResult),
    Queued(crate::pipeline::writer::Queued),
}

/// What file processing needs. Without a store and writer it is a dry run: rows are
/// parsed, normalized and validated, nothing is stored.
#[derive(Clone)]
pub struct FileContext {
    pub config: Arc<ArcSwap<Config>>,
    pub commit: Option<(Store, Writer)>,
    pub clock: Arc<dyn Clock>,
    /// Checked between chunks: a file interrupted by shutdown resumes at the next start.
    pub shutdown: CancellationToken,
}

impl FileContext {
    pub fn from_channel(cx: &super::ChannelContext) -> Self {
        Self {
            config: cx.config.clone(),
            commit: Some((cx.store.clone(), cx.writer.clone())),
            clock: cx.clock.clone(),
            shutdown: cx.shutdown.clone(),
        }
    }

    fn store(&self) -> Option<&Store> {
        self.commit.as_ref().map(|(s, _)| s)
    }
}

/// Why a file could not be taken in or finished. A file that could not be *read* is not
/// an error: it ends `failed` with the reason in its results file ([`FileReport::failure`]).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("source {0:?} is not in the config")]
    UnknownSource(String),
    #[error(
        "cannot tell the format of {0:?}: name it .csv, .xlsx, .xml, .jsonl or .json, or set [files] format for the source"
    )]
    UnknownFormat(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("interrupted by shutdown; the file resumes at the next start")]
    Interrupted,
}

impl FileError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> FileError {
        let what = what.into();
        move |source| FileError::Io { what, source }
    }

    /// The file is known and recorded but could not be finished now (the database or the
    /// disk failed, or shutdown): it stays `processing` and is resumed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, FileError::Store(_) | FileError::Io { .. } | FileError::Interrupted)
    }
}

/// Rows counted by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub rows: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        self.rows += 1;
        match outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Duplicate => self.duplicate += 1,
            Outcome::Rejected => self.rejected += 1,
        }
    }
}

/// How a file ended.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The `files` row (`None` on a dry run).
    pub file_id: Option<String>,
    pub digest: String,
    pub tally: Tally,
    /// Why the file could not be read (at all, or to its end); the rows before stand.
    pub failure: Option<String>,
    pub results_path: Option<PathBuf>,
    pub archive_path: Option<PathBuf>,
}

/// A file to take in.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub source: String,
    /// One of [`channel`]'s constants.
    pub channel: &'static str,
    /// The name the vendor gave it (for the results file and the record).
    pub name: String,
    /// Where its bytes are now.
    pub path: PathBuf,
    /// Overrides the source's format and the extension.
    pub format: Option<Format>,
    /// Where to write the results file, if anywhere.
    pub results: Option<PathBuf>,
    /// Move the file into `files.work_dir` once it is recorded (it lies where others
    /// write, e.g. a drop directory).
    pub stage: bool,
}

/// Called with the running count after each chunk.
pub type Progress<'a> = &'a mut (dyn FnMut(&Tally) + Send);

/// Records a file, reads it, commits its rows, writes its results and archives it.
pub async fn take_in(
    cx: &FileContext,
    incoming: Incoming,
    progress: Progress<'_>,
) -> Result<FileReport, FileError> {
    let config = cx.config.load_full();
    let source =
        config.source(&incoming.source).ok_or_else(|| FileError::UnknownSource(incoming.source.clone()))?;
    let format = incoming
        .format
        .or(source.files.format)
        .or_else(|| Format::from_file_name(&incoming.name))
        .ok_or_else(|| FileError::UnknownFormat(incoming.name.clone()))?;
    let facts = inspect(&incoming.path).await?;
    let chunk_rows = match cx.store() {
        Some(store) => store.file_chunk_rows(&incoming.source, &facts.digest).await?,
        None => None,
    }
    .unwrap_or(config.file_intake.files.chunk_rows as i64);
    let mut record = FileRecord {
        id: new_id(),
        source: incoming.source.clone(),
        channel: incoming.channel.to_owned(),
        name: incoming.name.clone(),
        digest: facts.digest.clone(),
        size: i64::try_from(facts.size).unwrap_or(i64::MAX),
        format: format.name().to_owned(),
        chunk_rows,
        status: "processing".into(),
        work_path: incoming.path.display().to_string(),
        results_path: incoming.results.as_ref().map(|p| p.display().to_string()),
        archive_path: None,
        rows: 0,
        accepted: 0,
        duplicate: 0,
        rejected: 0,
        error: None,
        received_at: cx.clock.now_ms(),
    };
    if let Some(store) = cx.store() {
        store.file_begin(&record, cx.clock.now_ms()).await?;
        if incoming.stage {
            record.work_path = stage(cx, &config, &record).await?;
        }
    }
    tracing::info!(file_id = %record.id, source = %record.source, channel = %record.channel, name = %record.name, bytes = facts.size, "File received.");
    run(cx, &config, record, facts, progress).await
}

/// Finishes a file recorded before a crash or shutdown (see the module docs).
pub async fn resume(cx: &FileContext, mut record: FileRecord) -> Result<FileReport, FileError> {
    let config = cx.config.load_full();
    let path = PathBuf::from(&record.work_path);
    if !path.is_file() {
        let failure = format!("the file is no longer at {}; it cannot be resumed", record.work_path);
        return close_unreadable(cx, &record, failure).await;
    }
    let facts = inspect(&path).await?;
    if facts.digest != record.digest {
        let failure = "the file changed after it was received; it cannot be resumed".to_owned();
        return close_unreadable(cx, &record, failure).await;
    }
    if record.channel == channel::DROP_DIR && !path.starts_with(&config.file_intake.files.work_dir) {
        record.work_path = stage(cx, &config, &record).await?;
    }
    tracing::info!(file_id = %record.id, source = %record.source, name = %record.name, "Resuming an interrupted file.");
    run(cx, &config, record, facts, &mut |_| {}).await
}

async fn close_unreadable(
    cx: &FileContext,
    record: &FileRecord,
    failure: String,
) -> Result<FileReport, FileError> {
    tracing::warn!(file_id = %record.id, error.message = %failure, "File closed as failed.");
    if let Some(store) = cx.store() {
        let outcome =
            FileOutcome { status: "failed", error: Some(failure.clone()), ..FileOutcome::default() };
        store.file_finish(&record.id, &outcome, cx.clock.now_ms()).await?;
    }
    Ok(FileReport {
        file_id: Some(record.id.clone()),
        digest: record.digest.clone(),
        tally: Tally::default(),
        failure: Some(failure),
        results_path: None,
        archive_path: None,
    })
}

async fn inspect(path: &Path) -> Result<Facts, FileError> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || reader::inspect(&p))
        .await
        .map_err(|e| FileError::Io { what: "file inspection".into(), source: std::io::Error::other(e) })?
        .map_err(FileError::io(format!("cannot read {}", path.display())))
}

/// Moves a recorded file into the work directory (out of the vendor's reach).
async fn stage(cx: &FileContext, config: &Config, record: &FileRecord) -> Result<String, FileError> {
    let dir = config.file_intake.files.work_dir.join(&record.source);
    let dest = dir.join(format!("{}-{}", record.id, record.name));
    let from = PathBuf::from(&record.work_path);
    let to = dest.clone();
    tokio::task::spawn_blocking(move || move_file(&from, &to))
        .await
        .map_err(|e| FileError::Io { what: "file move".into(), source: std::io::Error::other(e) })?
        .map_err(FileError::io(format!("cannot move {} to {}", record.work_path, dest.display())))?;
    let dest = dest.display().to_string();
    if let Some(store) = cx.store() {
        store.file_moved(&record.id, &dest, cx.clock.now_ms()).await?;
    }
    Ok(dest)
}

/// Renames `from` to `to` (creating `to`'s directory), copying across file systems, and
/// syncs the directory so the move survives a power loss.
pub fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    match std::fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            std::fs::copy(from, to)?;
            std::fs::File::open(to)?.sync_all()?;
            std::fs::remove_file(from)?;
        }
        Err(e) => return Err(e),
    }
    sync_dir(dir)
}

/// fsync of a directory (its entries); a no-op where directories cannot be opened.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

/// The Idempotency-Key of a file's chunk: row identity is digest + row number.
pub fn chunk_key(digest: &str, chunk_rows: i64, index: u64) -> String {
    format!("file:{digest}:{chunk_rows}:{index}")
}

/// Reads, commits, writes results, archives and closes a recorded file.
async fn run(
    cx: &FileContext,
    config: &Arc<Config>,
    record: FileRecord,
    facts: Facts,
    progress: Progress<'_>,
) -> Result<FileReport, FileError> {
    let source =
        config.source(&record.source).ok_or_else(|| FileError::UnknownSource(record.source.clone()))?;
    let format =
        Format::from_name(&record.format).ok_or_else(|| FileError::UnknownFormat(record.name.clone()))?;
    let settings = &config.file_intake.files;
    let mut rx = reader::spawn(ReadPlan {
        path: PathBuf::from(&record.work_path),
        format,
        facts,
        parse: source.parse.clone(),
        chunk_rows: usize::try_from(record.chunk_rows).unwrap_or(1000).max(1),
        max_rows: settings.max_rows,
        max_document_bytes: settings.max_document_bytes,
    });
    let results_path = record.results_path.as_ref().map(PathBuf::from);
    let mut results: Option<ResultsWriter> = None;
    let mut tally = Tally::default();
    let mut failure: Option<String> = None;
    let mut done_reading = false;
    // Chunks being prepared (or looked up) in the background, in file order.
    let mut queue: VecDeque<(Chunk, JoinHandle<Step>)> = VecDeque::with_capacity(IN_FLIGHT);
    // Chunks queued for commit (or answered already), in file order.
    let mut committing: VecDeque<(Chunk, Answer)> = VecDeque::with_capacity(COMMITS_IN_FLIGHT);
    loop {
        while !done_reading && queue.len() < IN_FLIGHT {
            match rx.recv().await {
                None => done_reading = true,
                Some(Event::Header(columns)) => {
                    if let Some(path) = &results_path {
                        let index = ColumnIndex::new(&columns, &source.files.normalize.aliases);
                        results = Some(
                            ResultsWriter::create(path, &columns, index)
                                .map_err(FileError::io(format!("cannot create {}", path.display())))?,
                        );
                    }
                }
                Some(Event::Chunk(chunk)) => {
                    let step = tokio::spawn(prepare_chunk(cx.clone(), config.clone(), &record, &chunk));
                    queue.push_back((chunk, step));
                }
                Some(Event::Failed(e)) => {
                    failure = Some(e.to_string());
                    done_reading = true;
                }
            }
        }
        // Answers are taken in file order; with an ordered writer (SQLite) the next chunk
        // is queued before the one before it has its answer, so the writer always has the
        // next chunk at hand when a commit ends.
        let depth = match &cx.commit {
            Some((_, writer)) if writer.ordered() => COMMITS_IN_FLIGHT,
            _ => 1,
        };
        if let Some((chunk, step)) = queue.pop_front() {
            if cx.shutdown.is_cancelled() {
                return Err(FileError::Interrupted);
            }
            let step = step.await.map_err(|e| FileError::Io {
                what: "chunk preparation".into(),
                source: std::io::Error::other(e),
            })?;
            // Commits go in file order, so the first of two duplicate rows is always the
            // one accepted, however the preparations finish.
            let answer = match step {
                Step::Answered(answer) => Answer::Ready(answer),
                Step::Prepared(job) => match &cx.commit {
                    Some((_, writer)) => Answer::Queued(writer.queue(*job).await?),
                    None => return Err(FileError::Interrupted),
                },
                Step::Failed(e) => return Err(e),
            };
            committing.push_back((chunk, answer));
            if committing.len() < depth {
                continue;
            }
        }
        let Some((chunk, answer)) = committing.pop_front() else { break };
        let answer = match answer {
            Answer::Ready(answer) => answer,
            Answer::Queued(queued) => {
                let answer = queued.answer().await?;
                crate::telemetry::submission_committed(&answer);
                answer
            }
        };
        match answers_for(&chunk, answer) {
            Ok(answers) => {
                for (row, answer) in chunk.rows.iter().zip(&answers) {
                    tally.add(answer.outcome);
                    if let Some(w) = results.as_mut() {
                        w.row(row.number, answer, &row.cells)
                            .map_err(FileError::io("cannot write the results file"))?;
                    }
                }
                progress(&tally);
            }
            Err(message) => {
                failure = Some(message);
                break;
            }
        }
    }
    drop(rx);
    for (_, step) in queue {
        step.abort();
    }
    finish(cx, config, record, tally, failure, results, results_path).await
}

/// Writes the last results line, archives the file and closes its record.
async fn finish(
    cx: &FileContext,
    config: &Config,
    record: FileRecord,
    tally: Tally,
    failure: Option<String>,
    results: Option<ResultsWriter>,
    results_path: Option<PathBuf>,
) -> Result<FileReport, FileError> {
    let mut results = match (results, &results_path) {
        (Some(w), _) => Some(w),
        // Unreadable before its header: the results file holds the reason alone.
        (None, Some(path)) => Some(
            ResultsWriter::create(path, &[], ColumnIndex::default())
                .map_err(FileError::io(format!("cannot create {}", path.display())))?,
        ),
        (None, None) => None,
    };
    if let (Some(w), Some(message)) = (results.as_mut(), &failure) {
        w.failure(message).map_err(FileError::io("cannot write the results file"))?;
    }
    let results_path = match results {
        Some(w) => Some(w.finish().map_err(FileError::io("cannot finish the results file"))?),
        None => None,
    };
    let mut archive_path = None;
    if record.channel != channel::IMPORT && cx.store().is_some() {
        let day = chrono::DateTime::from_timestamp_millis(record.received_at)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "undated".into());
        let dest = config
            .file_intake
            .files
            .archive_dir
            .join(&record.source)
            .join(day)
            .join(format!("{}-{}", record.id, record.name));
        let (from, to) = (PathBuf::from(&record.work_path), dest.clone());
        tokio::task::spawn_blocking(move || move_file(&from, &to))
            .await
            .map_err(|e| FileError::Io { what: "archive".into(), source: std::io::Error::other(e) })?
            .map_err(FileError::io(format!("cannot archive {} to {}", record.work_path, dest.display())))?;
        archive_path = Some(dest);
    }
    let status = if failure.is_some() { "failed" } else { "done" };
    if let Some(store) = cx.store() {
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let outcome = FileOutcome {
            status,
            rows: to_i64(tally.rows),
            accepted: to_i64(tally.accepted),
            duplicate: to_i64(tally.duplicate),
            rejected: to_i64(tally.rejected),
            error: failure.clone(),
            results_path: results_path.as_ref().map(|p| p.display().to_string()),
            archive_path: archive_path.as_ref().map(|p| p.display().to_string()),
        };
        store.file_finish(&record.id, &outcome, cx.clock.now_ms()).await?;
    }
    tracing::info!(
        file_id = %record.id, rows = tally.rows, accepted = tally.accepted, duplicate = tally.duplicate,
        rejected = tally.rejected, status, "File processed."
    );
    Ok(FileReport {
        file_id: cx.store().map(|_| record.id.clone()),
        digest: record.digest,
        tally,
        failure,
        results_path,
        archive_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_name_digest_size_and_index() {
        assert_eq!(chunk_key("ab", 1000, 7), "file:ab:1000:7");
    }

    #[test]
    fn moving_a_file_creates_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a.csv");
        std::fs::write(&from, "x").unwrap();
        let to = dir.path().join("deep/er/b.csv");
        move_file(&from, &to).unwrap();
        assert!(!from.exists());
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "x");
    }
}
