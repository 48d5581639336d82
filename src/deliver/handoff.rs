//! Committed deliveries go straight to this instance's outbox, in memory.
//!
//! The commit that creates a delivery row also leases it to this instance's outbox (its
//! `lease_owner` and `lease_until` are written with the row), and once that commit is
//! durable the writer hands the leased delivery over through an in-memory queue. The
//! outbox never has to find it in the table: no lease transaction per delivery, no
//! wake-up and scan. The table stays the durable record: a delivery whose process dies
//! before its attempt is recorded is leased again by any instance once the lease runs
//! out, exactly as before.
//!
//! The queue is bounded by reservation: a commit reserves room for its deliveries before
//! it writes them; when the outbox is that far behind, the rows are written unleased and
//! the outbox's poller takes them from the table instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc};

use super::attempt::Leased;

/// The writer's side: reserve room, then send the committed deliveries.
#[derive(Debug, Clone)]
pub struct Handoff {
    tx: mpsc::UnboundedSender<Leased>,
    owner: String,
    lease_ms: i64,
    queued: Arc<AtomicUsize>,
    capacity: usize,
    pending: Arc<Pending>,
}

/// The outbox's side of the queue.
#[derive(Debug)]
pub struct HandoffReceiver {
    rx: mpsc::UnboundedReceiver<Leased>,
    queued: Arc<AtomicUsize>,
}

/// Deliveries handed over whose result is not recorded yet (so `deliver_due` can wait for
/// them).
#[derive(Debug, Default)]
pub struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

/// A queue for the outbox whose lease owner is `owner`, holding at most `capacity`
/// deliveries not yet taken.
pub fn handoff(owner: String, lease_ms: i64, capacity: usize) -> (Handoff, HandoffReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let pending = Arc::new(Pending::default());
    (
        Handoff { tx, owner, lease_ms, queued: queued.clone(), capacity: capacity.max(1), pending },
        HandoffReceiver { rx, queued },
    )
}

impl Handoff {
    /// The lease owner written with handed-over rows.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// When a delivery leased now stops being ours.
    pub fn lease_until(&self, now: i64) -> i64 {
        now.saturating_add(self.lease_ms)
    }

    /// Room for `n` deliveries, or None when the outbox is that far behind.
    pub fn reserve(&self, n: usize) -> Option<Reservation> {
        if n == 0 {
            return None;
        }
        let mut current = self.queued.load(Ordering::Relaxed);
        loop {
            if current + n > self.capacity {
                return None;
            }
            match self.queued.compare_exchange_weak(current, current + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(Reservation { handoff: self.clone(), left: n }),
                Err(now) => current = now,
            }
        }
    }

    /// The count of handed-over deliveries whose result is not recorded yet.
    pub fn pending(&self) -> Arc<Pending> {
        self.pending.clone()
    }
}

/// Room in the queue, taken before the commit; given back if the commit fails.
#[derive(Debug)]
pub struct Reservation {
    handoff: Handoff,
    left: usize,
}

impl Reservation {
    /// Hands the committed deliveries to the outbox.
    pub fn send(mut self, leased: Vec<Leased>) {
        for l in leased {
            if self.left == 0 {
                break;
            }
            self.left -= 1;
            self.handoff.pending.add();
            if self.handoff.tx.send(l).is_err() {
                // The outbox has stopped: the row stays leased until it expires (or the
                // shutdown releases it), then any instance delivers it.
                self.handoff.queued.fetch_sub(1, Ordering::AcqRel);
                self.handoff.pending.done();
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.left > 0 {
            self.handoff.queued.fetch_sub(self.left, Ordering::AcqRel);
        }
    }
}

impl HandoffReceiver {
    /// The next handed-over delivery; None once every writer is gone.
    pub async fn recv(&mut self) -> Option<Leased> {
        let l = self.rx.recv().await?;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        Some(l)
    }

    /// A handed-over delivery if one is waiting.
    pub fn try_recv(&mut self) -> Option<Leased> {
        let l = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        Some(l)
    }
}

impl Pending {
    fn add(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// One handed-over delivery is finished with (its result recorded, or given up).
    pub fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until every handed-over delivery is finished with.
    pub async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            // Bounded: a missed wake-up costs at most this long.
            let _ignored = tokio::time::timeout(std::time::Duration::from_millis(50), idle).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leased(id: &str) -> Leased {
        Leased {
            id: id.into(),
            lead_id: "l".into(),
            buyer: "b".into(),
            route: "r".into(),
            payload: crate::deliver::Payload::WebhookV1(crate::deliver::WebhookPayload {
                method: "POST".into(),
                url: "http://127.0.0.1/".into(),
                headers: vec![],
                content_type: "application/json".into(),
                body: "{}".into(),
            }),
            attempts: 0,
            lease_until: 0,
            cap_periods: vec![],
        }
    }

    #[tokio::test]
    async fn reservations_bound_the_queue_and_a_failed_commit_gives_room_back() {
        let (h, mut rx) = handoff("me".into(), 1000, 3);
        let a = h.reserve(2).unwrap();
        assert!(h.reserve(2).is_none(), "only one place left");
        drop(h.reserve(1).unwrap()); // a commit that failed
        a.send(vec![leased("1"), leased("2")]);
        assert_eq!(rx.recv().await.unwrap().id, "1");
        assert_eq!(rx.try_recv().unwrap().id, "2");
        assert!(h.reserve(3).is_some(), "everything taken: the whole queue is free again");
        let pending = h.pending();
        pending.done();
        pending.done();
        pending.wait_idle().await;
    }
}
