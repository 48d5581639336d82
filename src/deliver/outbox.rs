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

use super::retry::random_unit;
use super::{DeliveryJob, ErrorKind};
use crate::clock::Clock;
use crate::config::Config;
use crate::store::outbox::{AttemptRecord, Leased, Resolution};
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
    config: Arc<ArcSwap<Config>>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    /// Lease owner: unique per worker, so results are only recorded by the lease holder.
    owner: String,
    settings: OutboxSettings,
}

impl Outbox {
    pub fn new(
        store: Store,
        config: Arc<ArcSwap<Config>>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Outbox {
        let settings = config.load().outbox.clone();
        Outbox { store, config, clock, wake, owner: crate::submission::new_id(), settings }
    }

    /// Runs until `shutdown`; then lets in-flight attempts finish and record.
    pub async fn run(self, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            while in_flight.try_join_next().is_some() {}
            self.sweep().await;
            let free = permits.available_permits();
            let leased = match self
                .store
                .lease_due(&self.owner, self.clock.now_ms(), self.lease_ms(), free as i64)
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error.message = %e, "Cannot lease deliveries; retrying shortly.");
                    Vec::new()
                }
            };
            let full = !leased.is_empty() && leased.len() == free;
            for d in leased {
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                let me = self.clone();
                in_flight.spawn(async move {
                    me.attempt(d).await;
                    drop(permit);
                });
            }
            if full {
                continue;
            }
            let sleep = self.sleep_for().await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {},
                () = tokio::time::sleep(sleep) => {},
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Leases and attempts everything due now, waiting for the results (tests, CLI).
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let leased = self.store.lease_due(&self.owner, self.clock.now_ms(), self.lease_ms(), 256).await?;
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
        match self.store.sweep_pool(&config.routing, self.clock.now_ms()).await {
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
        match self.store.record_attempt(&d, &self.owner, &record, &resolution, &config.routing, now).await {
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
