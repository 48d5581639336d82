//! The outbox worker: leases due deliveries, makes each attempt with no transaction
//! open, and records the result guarded by the lease.
//!
//! Woken at once when a commit creates deliveries (in-process [`Notify`], and PostgreSQL
//! `LISTEN/NOTIFY` across instances), and by time for retries and expired leases.
//! Delivery is at least once: a worker that dies mid-attempt leaves a lease that expires,
//! and another worker tries again with the same `webhook-id`.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::attempt::{AttemptRecord, AttemptWrite, Leased, Resolution};
use super::retry::random_unit;
use super::{DeliveryJob, ErrorKind};
use crate::clock::Clock;
use crate::config::Config;
use crate::deliver::handoff::{HandoffReceiver, Pending};
use crate::pipeline::writer::Writer;
use crate::store::{Store, StoreError};

/// Outbox settings (`[outbox]` in leadgate.toml).
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// How long a leased delivery is ours; longer than any buyer timeout.
    pub lease: Duration,
    /// Attempts in flight at once, per instance.
    pub concurrency: usize,
    /// Longest sleep between looks at the queue when nothing wakes the worker.
    pub poll: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self { lease: Duration::from_secs(120), concurrency: 64, poll: Duration::from_secs(1) }
    }
}

/// One instance's delivery worker.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    writer: Writer,
    config: Arc<ArcSwap<Config>>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    /// Lease owner: unique per instance, so results are only recorded by the lease holder.
    owner: String,
    /// Handed-over deliveries not recorded yet.
    pending: Arc<Pending>,
    settings: OutboxSettings,
}

/// How long a handed-over delivery must still be ours when its attempt starts: a buyer
/// timeout and the recording fit in it, or the poller takes it once the lease ran out.
const LEASE_MARGIN_MS: i64 = 30_000;

impl Outbox {
    /// `owner` is the lease owner the writer's [`Handoff`](crate::deliver::handoff::Handoff)
    /// writes, `pending` its count of unrecorded deliveries.
    pub fn new(
        store: Store,
        writer: Writer,
        config: Arc<ArcSwap<Config>>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        owner: String,
        pending: Arc<Pending>,
    ) -> Outbox {
        let settings = config.load().outbox.clone();
        Outbox { store, writer, config, clock, wake, owner, pending, settings }
    }

    /// The lease owner this worker writes.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs until `shutdown`; then lets in-flight attempts finish and record. Deliveries
    /// arrive from `handed` (this instance's commits, in memory) and from the table
    /// (retries, expired leases, other instances' rows, a restart), which is looked at
    /// when woken, when the next retry is due, and at least every poll interval.
    pub async fn run(self, mut handed: Option<HandoffReceiver>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        let mut next_poll = tokio::time::Instant::now();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            while in_flight.try_join_next().is_some() {}
            if tokio::time::Instant::now() >= next_poll {
                let (leased, full) = self.poll(permits.available_permits()).await;
                for d in leased {
                    let Ok(permit) = permits.clone().acquire_owned().await else { break };
                    let me = self.clone();
                    in_flight.spawn(async move {
                        me.attempt(d).await;
                        drop(permit);
                    });
                }
                next_poll =
                    tokio::time::Instant::now() + if full { Duration::ZERO } else { self.sleep_for().await };
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                d = recv(&mut handed) => match d {
                    Some(d) => {
                        let (me, permits, stop) = (self.clone(), permits.clone(), shutdown.clone());
                        in_flight.spawn(async move {
                            // One that has not started when the gateway stops is left to the
                            // shutdown, which releases its lease (due again at once).
                            let permit = tokio::select! {
                                p = permits.acquire_owned() => p,
                                () = stop.cancelled() => {
                                    me.pending.done();
                                    return;
                                }
                            };
                            let Ok(permit) = permit else {
                                me.pending.done();
                                return;
                            };
                            me.attempt_handed(d).await;
                            drop(permit);
                        });
                    }
                    None => handed = None,
                },
                () = self.wake.notified() => next_poll = tokio::time::Instant::now(),
                () = tokio::time::sleep_until(next_poll) => {},
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// One look at the table: the pool sweep, then what is due, up to `free`. `full`: there
    /// may be more.
    async fn poll(&self, free: usize) -> (Vec<Leased>, bool) {
        self.sweep().await;
        if free == 0 {
            // Every worker is busy (with handed-over deliveries, typically): look again at
            // the next due time, or when woken, not in a loop.
            return (Vec::new(), false);
        }
        match self.lease_due(free as i64).await {
            Ok(l) => {
                let full = l.len() == free;
                (l, full)
            }
            Err(e) => {
                tracing::warn!(error.message = %e, "Cannot lease deliveries; retrying shortly.");
                (Vec::new(), false)
            }
        }
    }

    /// A delivery handed over by this instance's commit: attempted if enough of its lease
    /// is left, else left to the poller once the lease runs out.
    async fn attempt_handed(&self, d: Leased) {
        if d.lease_until.saturating_sub(self.clock.now_ms()) < LEASE_MARGIN_MS.min(self.lease_ms() / 2) {
            tracing::warn!(delivery_id = %d.id, "Handed-over delivery waited too long; it is retried when its lease runs out.");
        } else {
            self.attempt(d).await;
        }
        self.pending.done();
    }

    /// Leases and attempts everything due now, waiting for the results (tests, CLI).
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        // What this instance's commits handed over is the running worker's: wait for it.
        self.pending.wait_idle().await;
        let mut total = 0;
        loop {
            let leased = self.lease_due(256).await?;
            if leased.is_empty() {
                return Ok(total);
            }
            total += leased.len();
            let mut set = JoinSet::new();
            for d in leased {
                let me = self.clone();
                set.spawn(async move { me.attempt(d).await });
            }
            while set.join_next().await.is_some() {}
        }
    }

    /// Expires claim leases and offers (running their fallbacks) and records SLA
    /// breaches; errors are logged, and the next sweep tries again.
    pub async fn sweep(&self) -> usize {
        let config = self.config.load_full();
        match crate::claim::sweep_pool(&self.store, &config.routing, self.clock.now_ms()).await {
            Ok(n) => {
                if n > 0 {
                    self.wake.notify_one();
                }
                n
            }
            Err(e) => {
                tracing::warn!(error.message = %e, "Pool sweep failed; it runs again shortly.");
                0
            }
        }
    }

    /// Leases up to `limit` due deliveries to this instance.
    async fn lease_due(&self, limit: i64) -> Result<Vec<Leased>, StoreError> {
        let rows = self.store.lease_due(&self.owner, self.clock.now_ms(), self.lease_ms(), limit).await?;
        rows.into_iter().map(Leased::try_from).collect()
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Until the next due delivery, at most the poll interval.
    async fn sleep_for(&self) -> Duration {
        let poll = self.settings.poll;
        match self.store.next_due_at().await {
            Ok(Some(at)) => {
                let wait = at.saturating_sub(self.clock.now_ms()).max(0);
                Duration::from_millis(u64::try_from(wait).unwrap_or(0)).min(poll)
            }
            _ => poll,
        }
    }

    async fn attempt(&self, d: Leased) {
        let config = self.config.load_full();
        let started_at = self.clock.now_ms();
        let timer = std::time::Instant::now();
        let job = DeliveryJob {
            delivery_id: d.id.clone(),
            lead_id: d.lead_id.clone(),
            buyer: d.buyer.clone(),
            attempt: u32::try_from(d.attempts + 1).unwrap_or(u32::MAX),
            payload: d.payload.clone(),
        };
        let result = match config.deliveries.get(&d.buyer) {
            Some(delivery) => delivery.0.deliver(&job).await,
            None => Err(super::DeliveryError::new(
                ErrorKind::Transient,
                format!("buyer {} is not in the current config", d.buyer),
            )),
        };
        let duration_ms = i64::try_from(timer.elapsed().as_millis()).unwrap_or(i64::MAX);
        let buyer = config.routing.buyers.get(&d.buyer);
        let retry = buyer.map(|b| b.retry.clone()).unwrap_or_default();
        // Only a buyer's own route continues a waterfall (not closed-loop relays).
        let next_on_reject =
            config.routing.routes.iter().find(|r| r.name == d.route).is_some_and(|r| r.next_on_reject);
        let now = self.clock.now_ms();
        let (record, resolution) = match result {
            Ok(ok) => (
                AttemptRecord {
                    started_at,
                    duration_ms,
                    status_code: ok.status,
                    error: None,
                    response: ok.response,
                },
                Resolution::Delivered,
            ),
            Err(e) => {
                let resolution = match e.kind {
                    ErrorKind::Permanent => Resolution::Rejected { reroute: next_on_reject },
                    ErrorKind::Gone => Resolution::Gone { reroute: next_on_reject },
                    ErrorKind::Transient | ErrorKind::RateLimited { .. } => {
                        let retry_after = match e.kind {
                            ErrorKind::RateLimited { retry_after } => retry_after,
                            _ => None,
                        };
                        let made = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
                        match retry.next_delay(made, retry_after, random_unit()) {
                            Some(delay) => Resolution::Retry {
                                at: now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                            },
                            None => Resolution::Dead,
                        }
                    }
                };
                (
                    AttemptRecord {
                        started_at,
                        duration_ms,
                        status_code: e.status,
                        error: Some(e.message),
                        response: e.response,
                    },
                    resolution,
                )
            }
        };
        crate::telemetry::delivery_attempted(
            &d.id,
            &d.lead_id,
            &d.buyer,
            d.attempts + 1,
            &resolution,
            record.error.as_deref(),
        );
        let write = AttemptWrite { leased: d, owner: self.owner.clone(), record, resolution, config, now };
        // Through the group commit; straight to the store once the writer has stopped
        // (an attempt finishing during shutdown).
        let recorded = match self.writer.record(write.clone()).await {
            Err(StoreError::Closed) => super::attempt::record_attempt(&self.store, &write).await,
            other => other,
        };
        let d = &write.leased;
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery_id = %d.id, "Lease lost before the result was recorded; another worker owns the delivery.");
            }
            Err(e) => {
                tracing::error!(delivery_id = %d.id, error.message = %e, "Cannot record a delivery attempt; it will be retried when the lease expires.");
            }
        }
    }
}

/// The next handed-over delivery; never, without a queue.
async fn recv(handed: &mut Option<HandoffReceiver>) -> Option<Leased> {
    match handed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
