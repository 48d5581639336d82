//! The pool's clock: leases that ran out go back to the pool, offers nobody claimed in
//! time take their route's fallback, and missed SLAs become `sla_breach` events.
//!
//! Shaped as a read of candidates outside any transaction, then one short transaction per
//! candidate that re-checks it with a compare-and-set (the lease still held by the same
//! claim, the offer still open, the breach not yet recorded): a partner claiming or
//! confirming at the same moment, or another instance sweeping, wins or loses cleanly, and
//! no sweep holds the write lock for long. An expired offer's fallback is routed by
//! [`crate::route::assign::assign_one`], the same path as a lead's first routing, under the
//! locks of every buyer the fallback may touch.

use super::{millis, record_event};
use crate::route::Routing;
use crate::route::caps::Counter;
use crate::store::commit::{Stage, begin_write, event, insert_events, lock_keys};
use crate::store::dispositions::{self, BreachKind};
use crate::store::offers::{self, ExpiredLease, StaleOffer};
use crate::store::outbox::{set_stage, stored_lead};
use crate::store::routing::{lock_key, release_counters};
use crate::store::{Store, StoreError};

/// Expires leases and offers, runs expired offers' fallbacks and records SLA breaches.
/// Returns how many rows changed.
pub async fn sweep_pool(store: &Store, routing: &Routing, now: i64) -> Result<usize, StoreError> {
    let mut changed = 0;
    for lease in offers::expired_leases(store, now).await? {
        changed += usize::from(expire_lease(store, &lease, now).await?);
    }
    for offer in offers::stale_offers(store, now).await? {
        changed += usize::from(expire_offer(store, routing, &offer, now).await?);
    }
    changed += record_sla_breaches(store, routing, now).await?;
    Ok(changed)
}

/// The lead goes back to the pool and the partner gets back the caps the claim took.
async fn expire_lease(store: &Store, lease: &ExpiredLease, now: i64) -> Result<bool, StoreError> {
    let mut tx = begin_write(store).await?;
    lock_keys(&mut tx, &[lock_key(&lease.partner)]).await?;
    if !offers::reopen_offer(&mut tx, &lease.lead_id, &lease.claim_id, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let caps: Vec<Counter> = offers::expire_claim(&mut tx, &lease.claim_id, now)
        .await?
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    release_counters(&mut tx, &lease.partner, &caps).await?;
    record_event(
        &mut tx,
        &lease.lead_id,
        now,
        "claim_expired",
        serde_json::json!({ "partner": lease.partner, "claim_id": lease.claim_id }),
    )
    .await?;
    set_stage(&mut tx, &lease.lead_id, Stage::Offered, now).await?;
    tx.commit().await?;
    crate::telemetry::claim_event(&lease.partner, &lease.lead_id, "expired");
    Ok(true)
}

/// The offer expires and the lead is routed by the routes after the offer's (its
/// partners left out), or is unsold.
async fn expire_offer(
    store: &Store,
    routing: &Routing,
    offer: &StaleOffer,
    now: i64,
) -> Result<bool, StoreError> {
    let lead_id = offer.lead_id.as_str();
    let mut tx = begin_write(store).await?;
    let Some(lead) = stored_lead(&mut tx, lead_id).await? else {
        tx.rollback().await?;
        return Ok(false);
    };
    let plan = routing.plan_after(&offer.route, &lead.view(lead_id), now, &offer.partners);
    let mut keys: Vec<String> = plan.buyers().map(lock_key).collect();
    keys.sort();
    keys.dedup();
    lock_keys(&mut tx, &keys).await?;
    if !offers::expire_open_offer(&mut tx, lead_id, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let mut events = vec![event(lead_id, now, "offer_expired", serde_json::json!({ "route": offer.route }))];
    let stage =
        crate::route::assign::assign_one(&mut tx, &plan, lead.facts(lead_id), now, &mut events).await?;
    insert_events(&mut tx, events).await?;
    set_stage(&mut tx, lead_id, stage, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// `sla_breach` events for offers not claimed, and leads not dispositioned, in time.
async fn record_sla_breaches(store: &Store, routing: &Routing, now: i64) -> Result<usize, StoreError> {
    let mut found = 0;
    for route in &routing.routes {
        if let Some(within) = route.sla.claim_within {
            // A claim SLA is the route's: nobody has the lead yet.
            let who = format!("route:{}", route.name);
            for lead_id in dispositions::unclaimed_since(store, &route.name, now - millis(within)).await? {
                found +=
                    usize::from(breach(store, &lead_id, &who, BreachKind::Claim, &route.name, now).await?);
            }
        }
        if let Some(within) = route.sla.disposition_within {
            for (lead_id, buyer) in
                dispositions::undispositioned_since(store, &route.name, now - millis(within)).await?
            {
                found += usize::from(
                    breach(store, &lead_id, &buyer, BreachKind::Disposition, &route.name, now).await?,
                );
            }
        }
    }
    Ok(found)
}

/// Records one breach (once per lead, buyer and kind); returns whether it is new.
async fn breach(
    store: &Store,
    lead_id: &str,
    buyer: &str,
    kind: BreachKind,
    route: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let mut tx = begin_write(store).await?;
    if !dispositions::insert_breach(&mut tx, lead_id, buyer, kind, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    if kind == BreachKind::Claim {
        offers::mark_offer_breached(&mut tx, lead_id).await?;
    }
    record_event(
        &mut tx,
        lead_id,
        now,
        "sla_breach",
        serde_json::json!({ "kind": kind.as_str(), "route": route, "buyer": buyer }),
    )
    .await?;
    tx.commit().await?;
    crate::telemetry::sla_breached(lead_id, buyer, kind.as_str(), route);
    Ok(true)
}
