//! What an attempt's result does: the delivery row settled under its lease, the attempt
//! and the lead's history written, and for a refusal the buyer's cap units given back and
//! the lead offered to the next buyer of its waterfall.
//!
//! Decided here, written by the store ([`crate::store::outbox`]), in the caller's
//! transaction: the writer's group commit, or one of its own when the writer has stopped.
//! Delivered attempts, the common case, are written with a handful of multi-row statements
//! whatever their number; the rest one by one.

use std::collections::HashSet;
use std::sync::Arc;

use super::Payload;
use crate::config::Config;
use crate::route::caps::Counter;
use crate::route::{Routing, Strategy};
use crate::store::commit::{NewEvent, begin_write, event, insert_events, lock_keys};
use crate::store::outbox::{
    self as rows, AttemptRow, CLOSED_LOOP_ROUTE, DeliveryStatus, LeasedRow, Settle, stored_lead,
};
use crate::store::routing::{lock_key, release_counters};
use crate::store::tx::Exec;
use crate::store::{Store, StoreError};

/// A delivery leased by this instance's outbox.
#[derive(Debug, Clone)]
pub struct Leased {
    pub id: String,
    pub lead_id: String,
    pub buyer: String,
    pub route: String,
    pub payload: Payload,
    /// Attempts made before this one.
    pub attempts: i64,
    pub lease_until: i64,
    pub cap_periods: Vec<Counter>,
}

impl TryFrom<LeasedRow> for Leased {
    type Error = StoreError;

    fn try_from(r: LeasedRow) -> Result<Self, StoreError> {
        Ok(Leased {
            payload: serde_json::from_str(&r.payload)
                .map_err(|source| StoreError::Json { what: "payload", source })?,
            cap_periods: serde_json::from_str(&r.cap_periods)
                .map_err(|source| StoreError::Json { what: "caps", source })?,
            id: r.id,
            lead_id: r.lead_id,
            buyer: r.buyer,
            route: r.route,
            attempts: r.attempts,
            lease_until: r.lease_until,
        })
    }
}

/// What one attempt came to, as the worker decided from the buyer's answer.
#[derive(Debug, Clone)]
pub enum Resolution {
    Delivered,
    /// Try again at this time.
    Retry {
        at: i64,
    },
    /// The schedule is exhausted: dead letter.
    Dead,
    /// The buyer refused the lead; with `reroute`, offer it to the next buyer.
    Rejected {
        reroute: bool,
    },
    /// The endpoint is gone (410): disable the buyer, then as `Rejected`.
    Gone {
        reroute: bool,
    },
}

impl Resolution {
    /// The delivery's status after it, when the next attempt is due, and the attempt's
    /// outcome as recorded.
    fn settles_as(&self, now: i64) -> (DeliveryStatus, i64, &'static str) {
        match self {
            Resolution::Delivered => (DeliveryStatus::Delivered, now, "delivered"),
            Resolution::Retry { at } => (DeliveryStatus::Scheduled, *at, "retry"),
            Resolution::Dead => (DeliveryStatus::Dead, now, "dead"),
            Resolution::Rejected { .. } => (DeliveryStatus::Rejected, now, "rejected"),
            Resolution::Gone { .. } => (DeliveryStatus::Rejected, now, "gone"),
        }
    }

    /// The lead's history event: named after how the delivery ended when it did,
    /// `delivery_attempt` for a retry.
    fn event_kind(&self) -> &'static str {
        match self {
            Resolution::Delivered => "delivered",
            Resolution::Dead => "dead_lettered",
            Resolution::Rejected { .. } | Resolution::Gone { .. } => "delivery_rejected",
            Resolution::Retry { .. } => "delivery_attempt",
        }
    }

    /// A refusal: the buyer's cap units go back.
    fn refused(&self) -> bool {
        matches!(self, Resolution::Rejected { .. } | Resolution::Gone { .. })
    }

    /// A refusal the route's waterfall continues after.
    fn reroutes(&self) -> bool {
        matches!(self, Resolution::Rejected { reroute: true } | Resolution::Gone { reroute: true })
    }
}

/// The attempt's facts, for `delivery_attempts` and the lead's history.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response: String,
}

/// An attempt's result on its way to the store, with what recording it needs.
#[derive(Debug, Clone)]
pub struct AttemptWrite {
    pub leased: Leased,
    /// The lease holder: the result is written only if the lease is still this owner's.
    pub owner: String,
    pub record: AttemptRecord,
    pub resolution: Resolution,
    /// The config the attempt ran under (a rejection reroutes by its routes).
    pub config: Arc<Config>,
    pub now: i64,
}

impl AttemptWrite {
    fn settle(&self) -> Settle {
        let (status, next_attempt_at, _) = self.resolution.settles_as(self.now);
        Settle {
            id: self.leased.id.clone(),
            owner: self.owner.clone(),
            lease_until: self.leased.lease_until,
            status,
            next_attempt_at,
            last_error: self.record.error.clone(),
            now: self.now,
        }
    }

    fn attempt_row(&self) -> AttemptRow {
        let (_, _, outcome) = self.resolution.settles_as(self.now);
        AttemptRow {
            delivery_id: self.leased.id.clone(),
            attempt: self.leased.attempts + 1,
            started_at: self.record.started_at,
            duration_ms: self.record.duration_ms,
            outcome,
            status_code: self.record.status_code,
            error: self.record.error.clone(),
            response: self.record.response.clone(),
        }
    }

    fn event(&self) -> NewEvent {
        let (d, r) = (&self.leased, &self.record);
        let (_, _, outcome) = self.resolution.settles_as(self.now);
        event(
            &d.lead_id,
            self.now,
            self.resolution.event_kind(),
            serde_json::json!({
                "delivery_id": d.id, "buyer": d.buyer, "attempt": d.attempts + 1, "outcome": outcome,
                "status": r.status_code, "duration_ms": r.duration_ms, "reason": r.error,
            }),
        )
    }
}

/// Records attempts in the caller's transaction; one flag per attempt, false where the
/// lease was lost (nothing written for it).
pub(crate) async fn record_attempts(
    tx: &mut impl Exec,
    writes: &[AttemptWrite],
) -> Result<Vec<bool>, StoreError> {
    let mut done = vec![false; writes.len()];
    let delivered: Vec<usize> =
        (0..writes.len()).filter(|&i| matches!(writes[i].resolution, Resolution::Delivered)).collect();
    if !delivered.is_empty() {
        let settles: Vec<Settle> = delivered.iter().map(|&i| writes[i].settle()).collect();
        let won: HashSet<String> = rows::settle_delivered(tx, &settles).await?;
        let (mut attempts, mut events, mut staged) = (Vec::new(), Vec::new(), Vec::new());
        for &i in &delivered {
            let w = &writes[i];
            if !won.contains(w.leased.id.as_str()) {
                continue;
            }
            done[i] = true;
            attempts.push(w.attempt_row());
            events.push(w.event());
            // Relays to a source vendor are not the lead's distribution.
            if w.leased.route != CLOSED_LOOP_ROUTE {
                staged.push((w.leased.lead_id.clone(), w.now));
            }
        }
        rows::insert_attempts(tx, attempts).await?;
        insert_events(tx, events).await?;
        rows::mark_leads_delivered(tx, &staged).await?;
    }
    for (i, w) in writes.iter().enumerate() {
        if !matches!(w.resolution, Resolution::Delivered) {
            done[i] = record_one(tx, w).await?;
        }
    }
    Ok(done)
}

/// Records one attempt in a transaction of its own (an attempt that finishes while the
/// writer shuts down). Returns false (and writes nothing) when the lease was lost.
pub async fn record_attempt(store: &Store, write: &AttemptWrite) -> Result<bool, StoreError> {
    let mut tx = begin_write(store).await?;
    let done = record_attempts(&mut tx, std::slice::from_ref(write)).await?;
    tx.commit().await?;
    Ok(done.first().copied().unwrap_or(false))
}

/// One attempt that did not deliver (a retry, a refusal, a dead letter: the rare cases).
async fn record_one(tx: &mut impl Exec, w: &AttemptWrite) -> Result<bool, StoreError> {
    let (d, routing, now) = (&w.leased, &w.config.routing, w.now);
    let refused = w.resolution.refused();
    // A refusal gives back cap units and may reroute: lock the buyers like intake does.
    if refused {
        let mut keys: Vec<String> = routing.buyers.keys().map(|b| lock_key(b)).collect();
        keys.push(lock_key(&d.buyer));
        keys.sort();
        keys.dedup();
        lock_keys(tx, &keys).await?;
    }
    if !rows::settle(tx, &w.settle()).await? {
        // Nothing was written: the transaction goes on with the rest of the batch.
        return Ok(false);
    }
    rows::insert_attempts(tx, vec![w.attempt_row()]).await?;
    let mut events = vec![w.event()];
    if let Resolution::Gone { .. } = w.resolution {
        let reason = w.record.error.clone().unwrap_or_else(|| "410 Gone".into());
        rows::disable_buyer(tx, &d.buyer, &reason, now).await?;
        events.push(event(
            &d.lead_id,
            now,
            "buyer_disabled",
            serde_json::json!({ "buyer": d.buyer, "status": 410 }),
        ));
    }
    if refused {
        release_counters(tx, &d.buyer, &d.cap_periods).await?;
        if w.resolution.reroutes() {
            reroute(tx, d, routing, now, &mut events).await?;
        }
    }
    insert_events(tx, events).await?;
    rows::update_stage(tx, &d.lead_id, now).await?;
    Ok(true)
}

/// Offers a refused lead to the next buyer of the route it came from (with fresh
/// counters: the refused delivery's units were given back), never to a buyer it had.
async fn reroute(
    tx: &mut impl Exec,
    d: &Leased,
    routing: &Routing,
    now: i64,
    events: &mut Vec<NewEvent>,
) -> Result<(), StoreError> {
    let Some(lead) = stored_lead(tx, &d.lead_id).await? else { return Ok(()) };
    let tried = rows::buyers_of_lead(tx, &d.lead_id).await?;
    let mut plan = routing.plan(&lead.view(&d.lead_id), now, &tried);
    // Only the route the refused delivery came from continues its waterfall.
    plan.routes.retain(|r| r.route == d.route && r.strategy == Strategy::Exclusive && r.pull.is_none());
    crate::route::assign::assign_one(tx, &plan, lead.facts(&d.lead_id), now, events).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_resolution_settles_the_delivery_and_names_the_event() {
        let now = 1_000;
        let cases = [
            (Resolution::Delivered, DeliveryStatus::Delivered, now, "delivered", "delivered"),
            (Resolution::Retry { at: 5_000 }, DeliveryStatus::Scheduled, 5_000, "retry", "delivery_attempt"),
            (Resolution::Dead, DeliveryStatus::Dead, now, "dead", "dead_lettered"),
            (
                Resolution::Rejected { reroute: true },
                DeliveryStatus::Rejected,
                now,
                "rejected",
                "delivery_rejected",
            ),
            (Resolution::Gone { reroute: false }, DeliveryStatus::Rejected, now, "gone", "delivery_rejected"),
        ];
        for (r, status, next, outcome, kind) in cases {
            assert_eq!(r.settles_as(now), (status, next, outcome), "{r:?}");
            assert_eq!(r.event_kind(), kind, "{r:?}");
        }
        assert!(Resolution::Gone { reroute: false }.refused());
        assert!(!Resolution::Gone { reroute: false }.reroutes());
        assert!(Resolution::Rejected { reroute: true }.reroutes());
        assert!(!Resolution::Dead.refused(), "a dead letter keeps its cap units: the buyer was sent it");
    }
}
