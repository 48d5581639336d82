//! Group commit: many concurrent requests share one transaction.
//!
//! Request tasks hand their prepared [`Job`] to the writer and wait; a writer takes
//! whatever is queued (up to `batch_max`), commits it in one transaction and answers
//! each request only after that commit. Under load, batches grow by themselves and the
//! cost of a durable commit (`fsync`) is shared; when idle, a batch is one request and
//! nothing waits for a timer.
//!
//! The outbox's bookkeeping goes through the same commits: attempt results are queued
//! here like submissions, so on SQLite intake and delivery never fight for the single
//! write lock, and deliveries a commit creates are handed to the outbox in memory
//! ([`super::handoff`]) once that commit is durable.

use std::sync::Arc;

use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::commit;
use super::durable::Syncer;
use super::{Job, SubmissionResult};
use crate::clock::Clock;
use crate::deliver::attempt::AttemptWrite;
use crate::deliver::handoff::Handoff;
use crate::store::write_conn::WriteConn;
use crate::store::{Store, StoreError};

/// How many times a loaded writer yields to let more requests join its batch.
const LINGER_YIELDS: usize = 4;

type Reply = oneshot::Sender<Result<SubmissionResult, StoreError>>;
type RecordReply = oneshot::Sender<Result<bool, StoreError>>;

enum Request {
    Submit { job: Job, reply: Reply },
    Record { write: AttemptWrite, reply: RecordReply },
}

/// The handle channels use to commit submissions (cheap to clone).
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
    /// One commit loop: jobs commit in the order they were queued.
    ordered: bool,
}

/// A job queued for commit; its answer comes once the transaction holding it is durable.
#[derive(Debug)]
pub struct Queued(oneshot::Receiver<Result<SubmissionResult, StoreError>>);

impl Queued {
    pub async fn answer(self) -> Result<SubmissionResult, StoreError> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Submit { job, .. } => {
                f.debug_struct("Submit").field("submission", &job.submission.id).finish()
            }
            Request::Record { write, .. } => {
                f.debug_struct("Record").field("delivery", &write.leased.id).finish()
            }
        }
    }
}

/// How the commit loops run.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub batch_max: usize,
    /// Commit loops (1 for SQLite, which has one write lock anyway).
    pub writers: usize,
    /// Where committed deliveries go in memory (the serving instance's outbox).
    pub handoff: Option<Handoff>,
    /// Cancelled: drain what is queued, commit it, stop (besides stopping when every
    /// handle is dropped).
    pub stop: CancellationToken,
}

impl Writer {
    /// Starts `writers` commit loops (1 for SQLite, which has one write lock anyway).
    /// They stop once every `Writer` handle is dropped and the queue is drained.
    /// `wake` is notified after every commit that created deliveries (the outbox waits on it).
    pub fn spawn(
        store: Store,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        opts: WriterOptions,
    ) -> (Writer, JoinSet<()>) {
        let batch_max = opts.batch_max.max(1);
        let (tx, rx) = mpsc::channel::<Request>(batch_max * 4);
        let rx = Arc::new(Mutex::new(rx));
        let mut set = JoinSet::new();
        // SQLite on a file: one writer thread that owns its connection (`store::write_conn`).
        let raw = store.writes_on_own_thread();
        let writers = if raw { 1 } else { opts.writers.max(1) };
        // If its thread cannot start, the requests of this loop get errors (`Syncer` is
        // never optional when the WAL is to be synced: answering unsynced is not allowed).
        let syncer = store.wal_synced_by_writer().map(|wal| {
            Syncer::spawn_for_wal(wal).map(Arc::new).map_err(|e| {
                tracing::error!(error.message = %e, "Cannot start the WAL sync thread.");
                format!("cannot start the WAL sync thread: {e}")
            })
        });
        for _ in 0..writers {
            let cx = Loop {
                store: store.clone(),
                clock: clock.clone(),
                wake: wake.clone(),
                handoff: opts.handoff.clone(),
                batch_max,
                raw,
                syncer: syncer.clone(),
            };
            let (rx, stop) = (rx.clone(), opts.stop.clone());
            if raw {
                // The thread runs the loop's future to completion; its statements are plain
                // synchronous calls, its waits (the queue, a retry's backoff) use the runtime.
                let handle = tokio::runtime::Handle::current();
                let (done, finished) = oneshot::channel::<()>();
                let thread = std::thread::Builder::new().name("leadgate-writer".into()).spawn(move || {
                    handle.block_on(run(cx, rx, stop));
                    let _ignored = done.send(());
                });
                set.spawn(async move {
                    match thread {
                        // Also received (as an error) if the thread panicked.
                        Ok(_) => {
                            if finished.await.is_err() {
                                tracing::error!("The SQLite writer thread stopped unexpectedly.");
                            }
                        }
                        Err(e) => {
                            tracing::error!(error.message = %e, "Cannot start the SQLite writer thread.")
                        }
                    }
                });
            } else {
                set.spawn(run(cx, rx, stop));
            }
        }
        (Writer { tx, ordered: writers == 1 }, set)
    }

    /// Commits `job` and returns its answer, once the transaction holding it is durable.
    pub async fn submit(&self, job: Job) -> Result<SubmissionResult, StoreError> {
        self.queue(job).await?.answer().await
    }

    /// Queues `job` for commit without waiting for its answer, so a caller can queue the
    /// next one meanwhile (file import keeps the writer busy this way).
    pub async fn queue(&self, job: Job) -> Result<Queued, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Submit { job, reply }).await.map_err(|_| StoreError::Closed)?;
        Ok(Queued(rx))
    }

    /// Whether jobs commit in the order they were queued (one commit loop, as on SQLite).
    /// With several loops (PostgreSQL), a caller that needs an order waits for each answer.
    pub fn ordered(&self) -> bool {
        self.ordered
    }

    /// Records a delivery attempt in the next group commit; false when the lease was lost
    /// (nothing written).
    pub async fn record(&self, write: AttemptWrite) -> Result<bool, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Record { write, reply }).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// What one commit loop works with.
struct Loop {
    store: Store,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    handoff: Option<Handoff>,
    batch_max: usize,
    /// This loop runs on a thread of its own with a rusqlite connection.
    raw: bool,
    /// Answers wait for this thread's sync of the WAL (SQLite with `synchronous = "full"`).
    syncer: Option<Result<Arc<Syncer>, String>>,
}

async fn run(cx: Loop, rx: Arc<Mutex<mpsc::Receiver<Request>>>, stop: CancellationToken) {
    let mut conn: Option<WriteConn> = None;
    let mut last_batch = 0;
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            let first = tokio::select! {
                biased;
                r = rx.recv() => r,
                () = stop.cancelled() => rx.try_recv().ok(),
            };
            match first {
                Some(first) => batch.push(first),
                None => {
                    // The last answers go out before the loop is reported stopped: the store
                    // is closed after that (the WAL checkpointed and removed).
                    if let Some(Ok(syncer)) = &cx.syncer {
                        syncer.drained().await;
                    }
                    return;
                }
            }
            while batch.len() < cx.batch_max {
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
                    if cx.raw {
                        std::thread::yield_now();
                    } else {
                        tokio::task::yield_now().await;
                    }
                    while batch.len() < cx.batch_max {
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
            conn = match cx.store.write_conn().await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error.message = %e, "The writer cannot get a database connection.");
                    fail_all(batch, &e);
                    continue;
                }
            };
        }
        let Some(c) = conn.as_mut() else { continue };
        if !commit_and_answer(&cx, c, batch).await {
            // A failed commit may have left the connection unusable: take a fresh one.
            conn = None;
        }
    }
}

fn fail_all(batch: Vec<Request>, e: &StoreError) {
    for r in batch {
        match r {
            Request::Submit { reply, .. } => {
                let _ignored = reply.send(Err(StoreError::Commit(e.to_string())));
            }
            Request::Record { reply, .. } => {
                let _ignored = reply.send(Err(StoreError::Commit(e.to_string())));
            }
        }
    }
}

/// A batch split by kind, each with its requesters.
#[derive(Default)]
struct Split {
    jobs: Vec<Job>,
    replies: Vec<Reply>,
    records: Vec<AttemptWrite>,
    record_replies: Vec<RecordReply>,
}

/// Commits a batch and answers its requesters; false when the commit failed.
async fn commit_and_answer(cx: &Loop, conn: &mut WriteConn, batch: Vec<Request>) -> bool {
    let mut b = Split::default();
    for r in batch {
        match r {
            Request::Submit { job, reply } => {
                b.jobs.push(job);
                b.replies.push(reply);
            }
            Request::Record { write, reply } => {
                b.records.push(write);
                b.record_replies.push(reply);
            }
        }
    }
    let started = std::time::Instant::now();
    let result = commit_with_retry(cx, conn, &b.jobs, &b.records).await;
    crate::telemetry::batch_committed(b.jobs.len() + b.records.len(), started.elapsed());
    match result {
        Ok(committed) => {
            answer(cx, committed, b.replies, b.record_replies);
            true
        }
        Err(e) if b.jobs.len() + b.records.len() > 1 => {
            tracing::warn!(error.message = %e, batch = b.jobs.len() + b.records.len(), "Batch commit failed; committing its parts one by one.");
            let mut all_ok = true;
            for (job, reply) in b.jobs.into_iter().zip(b.replies) {
                match commit_with_retry(cx, conn, std::slice::from_ref(&job), &[]).await {
                    Ok(c) => answer(cx, c, vec![reply], Vec::new()),
                    Err(e) => {
                        all_ok = false;
                        let _ignored = reply.send(Err(e));
                    }
                }
            }
            for (write, reply) in b.records.into_iter().zip(b.record_replies) {
                match commit_with_retry(cx, conn, &[], std::slice::from_ref(&write)).await {
                    Ok(c) => answer(cx, c, Vec::new(), vec![reply]),
                    Err(e) => {
                        all_ok = false;
                        let _ignored = reply.send(Err(e));
                    }
                }
            }
            all_ok
        }
        Err(e) => {
            tracing::error!(error.message = %e, "Commit failed; a vendor gets a 5xx and may retry, an attempt result is retried after its lease.");
            fail_replies(b.replies, b.record_replies, &e);
            false
        }
    }
}

/// After a commit: once it is durable (at once, or after the WAL sync thread's next sync),
/// hand the new deliveries over, wake the poller if it has work, answer every requester.
fn answer(cx: &Loop, committed: commit::Committed, replies: Vec<Reply>, record_replies: Vec<RecordReply>) {
    let syncer = match &cx.syncer {
        None => return answer_durable(&cx.wake, committed, replies, record_replies),
        Some(Ok(syncer)) => syncer,
        Some(Err(e)) => return fail_replies(replies, record_replies, &StoreError::Commit(e.clone())),
    };
    let wake = cx.wake.clone();
    syncer.after_sync(Box::new(move |synced| match synced {
        Ok(()) => answer_durable(&wake, committed, replies, record_replies),
        // The deliveries stay leased to this instance until their lease expires; the
        // outbox's poller then sends them (they are committed, just not known durable).
        Err(e) => fail_replies(replies, record_replies, &e),
    }));
}

fn fail_replies(replies: Vec<Reply>, record_replies: Vec<RecordReply>, e: &StoreError) {
    for reply in replies {
        let _ignored = reply.send(Err(StoreError::Commit(e.to_string())));
    }
    for reply in record_replies {
        let _ignored = reply.send(Err(StoreError::Commit(e.to_string())));
    }
}

fn answer_durable(
    wake: &Notify,
    committed: commit::Committed,
    replies: Vec<Reply>,
    record_replies: Vec<RecordReply>,
) {
    if let Some((reservation, leased)) = committed.handed {
        reservation.send(leased);
    }
    if committed.needs_poll {
        wake.notify_one();
    }
    for (reply, result) in replies.into_iter().zip(committed.results) {
        // The requester may have gone away (client disconnect): its lead is
        // committed all the same, and a retry gets the same answer.
        let _ignored = reply.send(Ok(result));
    }
    for (reply, done) in record_replies.into_iter().zip(committed.recorded) {
        let _ignored = reply.send(Ok(done));
    }
}

async fn commit_with_retry(
    cx: &Loop,
    conn: &mut WriteConn,
    jobs: &[Job],
    records: &[AttemptWrite],
) -> Result<commit::Committed, StoreError> {
    let mut attempt = 0;
    loop {
        let now = cx.clock.now_ms();
        match commit_once(cx, conn, jobs, records, now).await {
            Err(e) if e.is_transient() && attempt < 5 => {
                attempt += 1;
                tracing::debug!(error.message = %e, attempt, "Transient commit failure; retrying.");
                tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
            }
            other => return other,
        }
    }
}

/// One transaction: begin, write the batch, commit.
async fn commit_once(
    cx: &Loop,
    conn: &mut WriteConn,
    jobs: &[Job],
    records: &[AttemptWrite],
    now: i64,
) -> Result<commit::Committed, StoreError> {
    let mut tx = conn.begin().await?;
    let done = commit::commit_batch(&mut tx, jobs, records, cx.handoff.as_ref(), now).await?;
    tx.commit().await?;
    Ok(done)
}
