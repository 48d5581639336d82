//! Claiming and confirming: a claim leases an offer to one partner until its lease runs
//! out; a confirmation keeps the lead for good.
//!
//! Shaped as load → decide → write in one transaction under the partner's lock, because a
//! claim both reads and changes the partner's cap counters: checking a cap and counting
//! the claim must not interleave with another claim by the same partner. The winner among
//! partners is the store's compare-and-set ([`offers::take_offer`]), not a check made
//! here, so a race lost after [`refusal`] passed still answers `Taken`.

use super::{ClaimOutcome, Claimed, ConfirmOutcome, eligible, record_event, refusal};
use crate::route::{Buyer, ClaimOrder};
use crate::store::commit::{Stage, begin_write, lock_keys};
use crate::store::offers::{self, CandidateOrder, NewClaim};
use crate::store::outbox::{set_stage, stored_lead};
use crate::store::routing;
use crate::store::tx::Exec;
use crate::store::{Store, StoreError};

/// Claims `lead_id` for `partner` (exactly one claimer wins).
pub async fn claim(
    store: &Store,
    lead_id: &str,
    partner: &Buyer,
    lease_ms: i64,
    now: i64,
) -> Result<ClaimOutcome, StoreError> {
    let mut tx = begin_write(store).await?;
    lock_keys(&mut tx, &[routing::lock_key(&partner.name)]).await?;
    let Some(offer) = offers::load_offer(&mut tx, lead_id).await? else {
        tx.rollback().await?;
        return Ok(ClaimOutcome::NotFound);
    };
    if let Some(refused) = refusal(&offer, &partner.name, now) {
        tx.rollback().await?;
        return Ok(refused);
    }
    let result = take(&mut tx, lead_id, partner, lease_ms, now).await?;
    match &result {
        ClaimOutcome::Claimed(_) => tx.commit().await?,
        _ => tx.rollback().await?,
    }
    Ok(result)
}

/// Claims the best offer `partner` may claim now (its claim order), if any.
pub async fn claim_next(
    store: &Store,
    partner: &Buyer,
    order: ClaimOrder,
    lease_ms: i64,
    now: i64,
) -> Result<Option<Claimed>, StoreError> {
    let order = match order {
        ClaimOrder::Fifo => CandidateOrder::Oldest,
        ClaimOrder::Score => CandidateOrder::BestScore,
    };
    let mut tx = begin_write(store).await?;
    lock_keys(&mut tx, &[routing::lock_key(&partner.name)]).await?;
    let candidates = offers::claim_candidates(&mut tx, &partner.name, order, now).await?;
    let Some(next) = candidates.iter().find(|c| eligible(&c.terms, &partner.name, now)) else {
        tx.rollback().await?;
        return Ok(None);
    };
    match take(&mut tx, &next.lead_id, partner, lease_ms, now).await? {
        ClaimOutcome::Claimed(c) => {
            tx.commit().await?;
            Ok(Some(*c))
        }
        _ => {
            tx.rollback().await?;
            Ok(None)
        }
    }
}

/// Caps, compare-and-set, counters, claim row, event and stage, in the caller's
/// transaction (which commits only a `Claimed`).
async fn take(
    tx: &mut impl Exec,
    lead_id: &str,
    partner: &Buyer,
    lease_ms: i64,
    now: i64,
) -> Result<ClaimOutcome, StoreError> {
    let caps = partner.caps.counters(now, partner.price_cents);
    if let Some(why) = routing::fits(tx, &partner.name, &caps).await? {
        return Ok(ClaimOutcome::CapReached(why));
    }
    let claim_id = crate::submission::new_id();
    let lease_until = now.saturating_add(lease_ms);
    let Some(offered_at) =
        offers::take_offer(tx, lead_id, &claim_id, &partner.name, lease_until, now).await?
    else {
        return Ok(ClaimOutcome::Taken("another partner claimed it".into()));
    };
    routing::take_counters(tx, &partner.name, &caps).await?;
    let cap_periods =
        serde_json::to_string(&caps).map_err(|source| StoreError::Json { what: "caps", source })?;
    offers::insert_claim(
        tx,
        &NewClaim {
            id: &claim_id,
            lead_id,
            partner: &partner.name,
            offered_at,
            claimed_at: now,
            lease_until,
            cap_periods,
        },
    )
    .await?;
    record_event(
        tx,
        lead_id,
        now,
        "claimed",
        serde_json::json!({ "partner": partner.name, "claim_id": claim_id, "lease_until": crate::clock::rfc3339(lease_until) }),
    )
    .await?;
    set_stage(tx, lead_id, Stage::Claimed, now).await?;
    let Some(lead) = stored_lead(tx, lead_id).await? else {
        return Ok(ClaimOutcome::NotFound);
    };
    Ok(ClaimOutcome::Claimed(Box::new(Claimed {
        lead_id: lead_id.to_string(),
        claim_id,
        fields: lead.fields,
        lease_expires_at: crate::clock::rfc3339(lease_until),
    })))
}

/// Confirms `partner`'s live claim on `lead_id`.
pub async fn confirm(
    store: &Store,
    lead_id: &str,
    partner: &str,
    now: i64,
) -> Result<ConfirmOutcome, StoreError> {
    let mut tx = begin_write(store).await?;
    let Some(claim_id) = offers::confirm_claim(&mut tx, lead_id, partner, now).await? else {
        tx.rollback().await?;
        return Ok(ConfirmOutcome::NoLiveClaim);
    };
    record_event(
        &mut tx,
        lead_id,
        now,
        "claim_confirmed",
        serde_json::json!({ "partner": partner, "claim_id": claim_id }),
    )
    .await?;
    set_stage(&mut tx, lead_id, Stage::Confirmed, now).await?;
    tx.commit().await?;
    crate::telemetry::claim_event(partner, lead_id, "confirmed");
    Ok(ConfirmOutcome::Confirmed)
}
