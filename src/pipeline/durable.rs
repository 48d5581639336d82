//! Answers only once durable, with the disk's sync overlapping the next batch's writing.
//!
//! With `synchronous = "full"` SQLite syncs the WAL inside every `COMMIT`, and the
//! writer, which is the bound of the write path, sits idle for that sync (about half of
//! its time under load on this project's machine). So the writer's own connection commits
//! with `synchronous = NORMAL` (the frames are written to the WAL, not synced) and hands
//! the batch's answers to this thread, which syncs the WAL file and only then answers,
//! while the writer already writes the next batch. One sync covers every batch committed
//! before it started, so under load a sync is shared by several commits.
//!
//! Why this keeps the guarantee of `synchronous = "full"`: a commit's frames are in the
//! WAL file before its answers are queued here, a sync of the file makes every frame
//! written before it durable, and WAL recovery replays exactly the committed transactions
//! whose frames reached the disk (checksummed, in order). Answers are given in commit
//! order, each after a sync that started after its commit. Another connection's write
//! (an admin action) commits with a full sync of its own, which covers whatever the
//! writer committed before it. What is not covered: a reader may see a batch for the
//! moment between its commit and its sync, as a reader of PostgreSQL's asynchronous
//! commit would; nothing is acknowledged or delivered before the sync.
//!
//! A failed sync is not retried (after a failed `fsync` Linux may have dropped the dirty
//! pages, so a later sync succeeding proves nothing): that batch and every later one get
//! an error, the vendor a 5xx, until leadgate is restarted and SQLite recovers the WAL.

use std::path::PathBuf;
use std::sync::mpsc;

use crate::store::StoreError;

/// Runs once the batch it belongs to is durable (`Ok`) or cannot be made so (`Err`).
pub(crate) type AfterSync = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// The handle the writer queues answers on.
pub(crate) struct Syncer {
    tx: mpsc::Sender<AfterSync>,
}

impl Syncer {
    /// Starts the thread that syncs `wal` (the SQLite file's `-wal`) before answering.
    /// The file is opened for each sync (a few µs, once per sync, not per lead): the
    /// sync then always reaches the WAL SQLite is writing, even if it was recreated.
    pub(crate) fn spawn_for_wal(wal: PathBuf) -> std::io::Result<Syncer> {
        Syncer::spawn(move || std::fs::File::open(&wal)?.sync_data())
    }

    /// Starts the thread with `sync` as the operation that makes committed batches durable.
    fn spawn(mut sync: impl FnMut() -> std::io::Result<()> + Send + 'static) -> std::io::Result<Syncer> {
        let (tx, rx) = mpsc::channel::<AfterSync>();
        std::thread::Builder::new().name("leadgate-sync".into()).spawn(move || {
            let mut failed: Option<String> = None;
            // Ends when the writer drops its handle and everything queued is answered.
            while let Ok(first) = rx.recv() {
                let mut waiting = vec![first];
                waiting.extend(rx.try_iter());
                if failed.is_none() {
                    let started = std::time::Instant::now();
                    match sync() {
                        Ok(()) => crate::telemetry::wal_synced(waiting.len(), started.elapsed()),
                        Err(e) => {
                            tracing::error!(
                                error.message = %e,
                                "Cannot sync the SQLite WAL: nothing more is acknowledged until leadgate is restarted."
                            );
                            failed = Some(format!("the database file could not be synced ({e}); restart leadgate"));
                        }
                    }
                }
                for after in waiting {
                    after(match &failed {
                        None => Ok(()),
                        Some(why) => Err(StoreError::Commit(why.clone())),
                    });
                }
            }
        })?;
        Ok(Syncer { tx })
    }

    /// Returns once everything queued so far has been answered.
    pub(crate) async fn drained(&self) {
        let (done, drained) = tokio::sync::oneshot::channel();
        self.after_sync(Box::new(move |_| {
            let _ignored = done.send(());
        }));
        let _ignored = drained.await;
    }

    /// Runs `after` once everything committed so far is durable. If the sync thread is
    /// gone (it only stops when this handle is dropped), `after` gets an error at once.
    pub(crate) fn after_sync(&self, after: AfterSync) {
        if let Err(mpsc::SendError(after)) = self.tx.send(after) {
            after(Err(StoreError::Closed));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn every_answer_comes_after_a_sync_that_started_after_it_was_queued() {
        let syncs = Arc::new(AtomicUsize::new(0));
        let counted = syncs.clone();
        let syncer = Syncer::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(2));
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        for i in 0..50 {
            let queued_after = syncs.load(Ordering::SeqCst);
            let (syncs, done_tx) = (syncs.clone(), done_tx.clone());
            syncer.after_sync(Box::new(move |r| {
                // A sync that was already running when this was queued does not count.
                let synced_since = syncs.load(Ordering::SeqCst) > queued_after;
                done_tx.send((i, r.is_ok() && synced_since)).unwrap();
            }));
        }
        drop(syncer);
        let answers: Vec<(usize, bool)> = done_rx.iter().take(50).collect();
        assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), (0..50).collect::<Vec<_>>(), "in order");
        assert!(answers.iter().all(|a| a.1), "{answers:?}");
        // Batches queued while a sync runs share the next one.
        assert!(syncs.load(Ordering::SeqCst) < 50, "{} syncs", syncs.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn drained_returns_after_everything_queued_before_it_is_answered() {
        let syncer = Syncer::spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            Ok(())
        })
        .unwrap();
        let answered = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let answered = answered.clone();
            syncer.after_sync(Box::new(move |r| {
                assert!(r.is_ok());
                answered.fetch_add(1, Ordering::SeqCst);
            }));
        }
        syncer.drained().await;
        assert_eq!(answered.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn after_a_failed_sync_nothing_is_acknowledged() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let syncer = Syncer::spawn(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Err(std::io::Error::other("EIO"))
        })
        .unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..3 {
            let done_tx = done_tx.clone();
            syncer.after_sync(Box::new(move |r| done_tx.send(r.map_err(|e| e.to_string())).unwrap()));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let answers: Vec<_> = done_rx.iter().take(3).collect();
        for a in &answers {
            let e = a.as_ref().unwrap_err();
            assert!(e.contains("could not be synced") && e.contains("EIO"), "{e}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a failed sync is not retried");
    }

    #[test]
    fn a_missing_wal_file_is_a_failed_sync() {
        let dir = tempfile::tempdir().unwrap();
        let syncer = Syncer::spawn_for_wal(dir.path().join("none.db-wal")).unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        syncer.after_sync(Box::new(move |r| done_tx.send(r.is_err()).unwrap()));
        assert!(done_rx.recv().unwrap());
    }
}
