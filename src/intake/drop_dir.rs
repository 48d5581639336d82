//! The drop-directory watcher: files that arrive by other means (SFTP through the
//! system's sshd, rsync, a mounted share) in `<drop_dir.root>/<source>/` are taken in
//! like FTP uploads, with the same results files (in the directory's `results/`).
//!
//! Whether a file is complete cannot be known from outside the program writing it, so:
//! - dot files and names ending in `.part`, `.partial`, `.tmp`, `.filepart` or `~` are
//!   never picked up (rsync, WinSCP and most uploaders write under such names and rename
//!   at the end — the rename is the signal);
//! - any other file is taken once its size and modification time have not changed for
//!   `drop_dir.settle`.
//!
//! File-system events (inotify through `notify`) wake the scan at once; a rescan every
//! `drop_dir.poll` covers file systems without events (NFS, SMB). A file is first moved
//! to the work directory, so it is processed once even if the scan sees it again; a file
//! that cannot be taken in at all (unknown format, over the size limit) is moved to
//! `rejected/` with a results file saying why.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::files::{self, FileContext, FileError, Incoming, results};
use super::{Channel, ChannelContext, ChannelError};
use crate::config::file_intake::DropDirSettings;
use crate::submission::channel;

/// Where results files go, in each source's drop directory.
pub const RESULTS_DIR: &str = "results";
/// Where files that could not be taken in are moved.
pub const REJECTED_DIR: &str = "rejected";

/// The drop-directory channel.
pub struct DropDirChannel {
    settings: DropDirSettings,
}

impl DropDirChannel {
    pub fn new(settings: DropDirSettings) -> Self {
        Self { settings }
    }
}

/// Names that uploaders use while they are still writing.
pub fn is_in_progress_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.ends_with('~')
        || [".part", ".partial", ".tmp", ".filepart", ".crdownload"].iter().any(|s| lower.ends_with(s))
}

impl Channel for DropDirChannel {
    fn name(&self) -> &'static str {
        channel::DROP_DIR
    }

    fn run(self: Box<Self>, cx: ChannelContext) -> BoxFuture<'static, Result<(), ChannelError>> {
        Box::pin(async move {
            let settings = self.settings;
            std::fs::create_dir_all(&settings.root).map_err(|e| ChannelError::Failed {
                channel: channel::DROP_DIR,
                message: format!("cannot create {}: {e}", settings.root.display()),
            })?;
            let fcx = FileContext::from_channel(&cx);
            super::ftp::resume_all(fcx.clone(), channel::DROP_DIR).await;

            // Events only wake the scan; losing some (a full channel) loses nothing.
            let (tx, mut events) = mpsc::channel::<()>(1);
            let watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
                let _ignored = tx.try_send(());
            });
            let mut watcher = match watcher {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(error.message = %e, "No file-system events for the drop directory; polling only.");
                    None
                }
            };
            let mut watched: Vec<PathBuf> = Vec::new();
            let mut seen: HashMap<PathBuf, (u64, SystemTime, Instant)> = HashMap::new();
            let mut retry_unfinished = false;
            tracing::info!(root = %settings.root.display(), "Drop directory watched.");
            loop {
                if cx.shutdown.is_cancelled() {
                    return Ok(());
                }
                let sources: Vec<String> =
                    cx.config.load().sources.values().filter(|s| s.enabled).map(|s| s.name.clone()).collect();
                for source in &sources {
                    let dir = settings.root.join(source);
                    if !watched.contains(&dir) && std::fs::create_dir_all(dir.join(RESULTS_DIR)).is_ok() {
                        if let Some(w) = watcher.as_mut() {
                            use notify::Watcher as _;
                            if let Err(e) = w.watch(&dir, notify::RecursiveMode::NonRecursive) {
                                tracing::warn!(dir = %dir.display(), error.message = %e, "Cannot watch; polling it.");
                            }
                        }
                        watched.push(dir);
                    }
                }
                if retry_unfinished {
                    retry_unfinished = false;
                    super::ftp::resume_all(fcx.clone(), channel::DROP_DIR).await;
                }
                let (ready, waiting) = scan(&settings, &sources, &mut seen);
                for (source, path) in ready {
                    if cx.shutdown.is_cancelled() {
                        return Ok(());
                    }
                    seen.remove(&path);
                    retry_unfinished |= take(&fcx, &settings, &source, &path).await;
                }
                let pause = if waiting { settings.settle.min(settings.poll) } else { settings.poll };
                tokio::select! {
                    () = cx.shutdown.cancelled() => return Ok(()),
                    _ = events.recv() => {},
                    () = tokio::time::sleep(pause) => {},
                }
            }
        })
    }
}

/// Files that have settled, and whether any is still settling.
fn scan(
    settings: &DropDirSettings,
    sources: &[String],
    seen: &mut HashMap<PathBuf, (u64, SystemTime, Instant)>,
) -> (Vec<(String, PathBuf)>, bool) {
    let mut ready = Vec::new();
    let mut waiting = false;
    let now = Instant::now();
    let mut present = Vec::new();
    for source in sources {
        let Ok(entries) = std::fs::read_dir(settings.root.join(source)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || is_in_progress_name(name) {
                continue;
            }
            let path = entry.path();
            present.push(path.clone());
            let stamp = (meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
            match seen.get(&path) {
                Some((len, modified, since)) if (*len, *modified) == stamp => {
                    if now.duration_since(*since) >= settings.settle {
                        ready.push((source.clone(), path));
                    } else {
                        waiting = true;
                    }
                }
                _ => {
                    seen.insert(path, (stamp.0, stamp.1, now));
                    waiting = true;
                }
            }
        }
    }
    seen.retain(|p, _| present.contains(p));
    (ready, waiting)
}

/// Takes one settled file in; `true` when it should be retried (store or disk trouble).
async fn take(cx: &FileContext, settings: &DropDirSettings, source: &str, path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file").to_owned();
    let dir = settings.root.join(source);
    let results = dir.join(RESULTS_DIR).join(results::results_name(&name));
    let max = cx.config.load().file_intake.files.max_file_bytes;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size > max {
        reject(&dir, path, &results, &format!("the file is {size} bytes, over the limit of {max} bytes"));
        return false;
    }
    let incoming = Incoming {
        source: source.to_owned(),
        channel: channel::DROP_DIR,
        name: name.clone(),
        path: path.to_path_buf(),
        format: None,
        results: Some(results.clone()),
        stage: true,
    };
    match files::take_in(cx, incoming, &mut |_| {}).await {
        Ok(_) => false,
        Err(FileError::UnknownFormat(_)) => {
            reject(
                &dir,
                path,
                &results,
                "cannot tell the file's format: name it .csv, .xlsx, .xml, .jsonl or .json",
            );
            false
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error.message = %e, "Drop-directory file not finished; retrying.");
            e.is_retryable()
        }
    }
}

/// Moves a file that cannot be taken in to `rejected/` and says why in its results file.
fn reject(dir: &Path, path: &Path, results_path: &Path, why: &str) {
    tracing::warn!(path = %path.display(), reason = why, "Drop-directory file rejected.");
    if let Some(name) = path.file_name() {
        let _ignored = files::move_file(path, &dir.join(REJECTED_DIR).join(name));
    }
    let written = results::ResultsWriter::create(results_path, &[], results::ColumnIndex::default())
        .and_then(|mut w| w.failure(why).map(|()| w))
        .and_then(results::ResultsWriter::finish);
    if let Err(e) = written {
        tracing::warn!(error.message = %e, "Cannot write the results file of a rejected file.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploader_temporary_names_are_skipped() {
        for n in [".leads.csv", "leads.csv.part", "leads.CSV.TMP", "leads.csv~", "x.filepart"] {
            assert!(is_in_progress_name(n), "{n}");
        }
        assert!(!is_in_progress_name("leads.csv"));
    }
}
