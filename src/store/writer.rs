//! Group commit: many concurrent requests share one transaction.
//!
//! Request tasks hand their prepared [`Job`] to the writer and wait; a writer takes
//! whatever is queued (up to `batch_max`), commits it in one transaction and answers
//! each request only after that commit. Under load, batches grow by themselves and the
//! cost of a durable commit (`fsync`) is shared; when idle, a batch is one request and
//! nothing waits for a timer.

use std::sync::Arc;

use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinSet;

use super::{Store, StoreError, commit};
use crate::clock::Clock;
use crate::pipeline::{Job, SubmissionResult};

/// How many times a loaded writer yields to let more requests join its batch.
const LINGER_YIELDS: usize = 4;

type Reply = oneshot::Sender<Result<SubmissionResult, StoreError>>;

struct Request {
    job: Job,
    reply: Reply,
}

/// The handle channels use to commit submissions (cheap to clone).
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("submission", &self.job.submission.id).finish()
    }
}

impl Writer {
    /// Starts `writers` commit loops (1 for SQLite, which has one write lock anyway).
    /// They stop once every `Writer` handle is dropped and the queue is drained.
    /// `wake` is notified after every commit that created deliveries (the outbox waits on it).
    pub fn spawn(
        store: Store,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        batch_max: usize,
        writers: usize,
    ) -> (Writer, JoinSet<()>) {
        let (tx, rx) = mpsc::channel::<Request>(batch_max.max(1) * 4);
        let rx = Arc::new(Mutex::new(rx));
        let mut set = JoinSet::new();
        for _ in 0..writers.max(1) {
            let (store, clock, rx, wake) = (store.clone(), clock.clone(), rx.clone(), wake.clone());
            set.spawn(run(store, clock, wake, rx, batch_max.max(1)));
        }
        (Writer { tx }, set)
    }

    /// Commits `job` and returns its answer, once the transaction holding it is durable.
    pub async fn submit(&self, job: Job) -> Result<SubmissionResult, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request { job, reply }).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(
    store: Store,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    rx: Arc<Mutex<mpsc::Receiver<Request>>>,
    batch_max: usize,
) {
    // The writer keeps its connection: a pooled one would come back with a cold page
    // cache (SQLite re-reads what other connections changed) on every commit.
    let mut conn: Option<sqlx::pool::PoolConnection<sqlx::Any>> = None;
    let mut last_batch = 0;
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
            while batch.len() < batch_max {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            // Under load (the last commit was shared), let the request tasks that are about
            // to enqueue run first: a bigger batch shares one commit's fixed cost. No timer:
            // an idle gateway commits a lone request at once.
            if last_batch > 1 {
                for _ in 0..LINGER_YIELDS {
                    tokio::task::yield_now().await;
                    while batch.len() < batch_max {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                }
            }
            last_batch = batch.len();
        }
        if conn.is_none() {
            conn = match store.pool.acquire().await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error.message = %e, "The writer cannot get a database connection.");
                    fail_all(batch, &StoreError::Database(e));
                    continue;
                }
            };
        }
        let Some(c) = conn.as_mut() else { continue };
        if !commit_and_answer(&store, c, clock.as_ref(), &wake, batch).await {
            // A failed commit may have left the connection unusable: take a fresh one.
            conn = None;
        }
    }
}

fn fail_all(batch: Vec<Request>, e: &StoreError) {
    for r in batch {
        let _ignored = r.reply.send(Err(StoreError::Commit(e.to_string())));
    }
}

/// Commits a batch and answers its requesters; false when the commit failed.
async fn commit_and_answer(
    store: &Store,
    conn: &mut sqlx::AnyConnection,
    clock: &dyn Clock,
    wake: &Notify,
    batch: Vec<Request>,
) -> bool {
    let (jobs, replies): (Vec<Job>, Vec<Reply>) = batch.into_iter().map(|r| (r.job, r.reply)).unzip();
    let started = std::time::Instant::now();
    let result = commit_with_retry(store, conn, clock, &jobs).await;
    crate::telemetry::batch_committed(jobs.len(), started.elapsed());
    match result {
        Ok(committed) => {
            if committed.created_deliveries {
                wake.notify_one();
            }
            for (reply, result) in replies.into_iter().zip(committed.results) {
                // The requester may have gone away (client disconnect): its lead is
                // committed all the same, and a retry gets the same answer.
                let _ignored = reply.send(Ok(result));
            }
            true
        }
        Err(e) if jobs.len() > 1 => {
            tracing::warn!(error.message = %e, batch = jobs.len(), "Batch commit failed; committing its submissions one by one.");
            let mut all_ok = true;
            for (job, reply) in jobs.into_iter().zip(replies) {
                let result = commit_with_retry(store, conn, clock, std::slice::from_ref(&job)).await;
                if result.as_ref().is_ok_and(|c| c.created_deliveries) {
                    wake.notify_one();
                }
                all_ok &= result.is_ok();
                let _ignored = reply.send(result.and_then(|mut c| c.results.pop().ok_or(StoreError::Closed)));
            }
            all_ok
        }
        Err(e) => {
            tracing::error!(error.message = %e, "Submission commit failed; the vendor gets a 5xx and may retry.");
            for reply in replies {
                let _ignored = reply.send(Err(StoreError::Commit(e.to_string())));
            }
            false
        }
    }
}

async fn commit_with_retry(
    store: &Store,
    conn: &mut sqlx::AnyConnection,
    clock: &dyn Clock,
    jobs: &[Job],
) -> Result<commit::Committed, StoreError> {
    let mut attempt = 0;
    loop {
        match commit::commit_batch(store, conn, jobs, clock.now_ms()).await {
            Err(e) if e.is_transient() && attempt < 5 => {
                attempt += 1;
                tracing::debug!(error.message = %e, attempt, "Transient commit failure; retrying.");
                tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
            }
            other => return other,
        }
    }
}
