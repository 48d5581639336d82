//! Routing state in the store: cap counters and round-robin order read under lock,
//! written back with the deliveries, all in the caller's transaction.

use std::collections::BTreeSet;

use super::commit::{Arg, insert_rows};
use super::outbox::Leased;
use super::tx::Exec;
use super::{Dialect, StoreError, param_list, param_list_at};
use crate::route::caps::Counter;
use crate::route::strategy::{BuyerState, State};
use crate::route::{Offer, Plan};

/// Lock key of a buyer's counters and state (PostgreSQL advisory lock).
pub(crate) fn lock_key(buyer: &str) -> String {
    format!("buyer:{buyer}")
}

/// Reads counters and buyer state for every buyer (and counter key) of `plans`.
pub(crate) async fn load_state<'a>(
    tx: &mut impl Exec,
    plans: impl Iterator<Item = &'a Plan>,
) -> Result<State, StoreError> {
    let mut buyers = BTreeSet::new();
    let mut periods = BTreeSet::new();
    for plan in plans {
        for route in &plan.routes {
            for offer in &route.offers {
                buyers.insert(offer.buyer.clone());
                periods.extend(offer.caps.iter().map(|c| c.key.clone()));
            }
        }
    }
    let mut state = State { next_seq: 1, ..State::default() };
    if buyers.is_empty() {
        return Ok(state);
    }
    let buyers: Vec<String> = buyers.into_iter().collect();
    let periods: Vec<String> = periods.into_iter().collect();
    let positional = tx.positional();
    if !periods.is_empty() {
        let sql = format!(
            "SELECT buyer, period, count FROM cap_counters WHERE buyer IN ({}) AND period IN ({})",
            param_list(buyers.len(), positional),
            param_list_at(buyers.len() + 1, periods.len(), positional)
        );
        let args = buyers.iter().chain(periods.iter()).map(|b| Arg::Text(b.clone())).collect();
        for row in tx.fetch(&sql, args).await? {
            state.counters.insert((row.get("buyer")?, row.get("period")?), row.get("count")?);
        }
    }
    let sql = format!(
        "SELECT buyer, assigned_seq, disabled_at FROM buyer_state WHERE buyer IN ({})",
        param_list(buyers.len(), positional)
    );
    for row in tx.fetch(&sql, buyers.iter().map(|b| Arg::Text(b.clone())).collect()).await? {
        let seq: i64 = row.get("assigned_seq")?;
        let disabled: Option<i64> = row.get("disabled_at")?;
        state.next_seq = state.next_seq.max(seq + 1);
        state.buyers.insert(row.get("buyer")?, BuyerState { seq, disabled: disabled.is_some() });
    }
    Ok(state)
}

/// Writes back the counters and buyer state `choose`/`release` changed.
pub(crate) async fn save_state(tx: &mut impl Exec, state: &State, now: i64) -> Result<(), StoreError> {
    let counters: BTreeSet<&(String, String)> = state.touched_counters.iter().collect();
    let rows: Vec<Vec<Arg>> = counters
        .into_iter()
        .map(|k| {
            let count = state.counters.get(k).copied().unwrap_or(0);
            vec![k.0.clone().into(), k.1.clone().into(), count.into()]
        })
        .collect();
    insert_rows(
        tx,
        "INSERT INTO cap_counters (buyer, period, count)",
        3,
        rows,
        "ON CONFLICT (buyer, period) DO UPDATE SET count = excluded.count",
    )
    .await?;
    let buyers: BTreeSet<&String> = state.touched_buyers.iter().collect();
    let rows: Vec<Vec<Arg>> = buyers
        .into_iter()
        .map(|b| {
            let seq = state.buyers.get(b).map_or(0, |s| s.seq);
            vec![b.clone().into(), now.into(), seq.into()]
        })
        .collect();
    insert_rows(
        tx,
        "INSERT INTO buyer_state (buyer, last_assigned_at, assigned_seq)",
        3,
        rows,
        "ON CONFLICT (buyer) DO UPDATE SET last_assigned_at = excluded.last_assigned_at, assigned_seq = excluded.assigned_seq",
    )
    .await?;
    Ok(())
}

/// Adds `counters` to `buyer`'s cap counters (under the buyer's lock).
pub(crate) async fn take_counters(
    tx: &mut impl Exec,
    buyer: &str,
    counters: &[Counter],
) -> Result<(), StoreError> {
    for c in counters {
        tx.execute(
            "INSERT INTO cap_counters (buyer, period, count) VALUES ($1, $2, $3) \
             ON CONFLICT (buyer, period) DO UPDATE SET count = cap_counters.count + excluded.count",
            vec![buyer.into(), c.key.clone().into(), c.amount.into()],
        )
        .await?;
    }
    Ok(())
}

/// Gives back what a delivery or claim took (the buyer rejected the lead, a lease expired).
pub(crate) async fn release_counters(
    tx: &mut impl Exec,
    buyer: &str,
    counters: &[Counter],
) -> Result<(), StoreError> {
    for c in counters {
        tx.execute(
            "UPDATE cap_counters SET count = CASE WHEN count > $3 THEN count - $3 ELSE 0 END WHERE buyer = $1 AND period = $2",
            vec![buyer.into(), c.key.clone().into(), c.amount.into()],
        )
        .await?;
    }
    Ok(())
}

/// Whether `counters` still fit under their limits for `buyer`.
pub(crate) async fn fits(
    tx: &mut impl Exec,
    buyer: &str,
    counters: &[Counter],
) -> Result<Option<String>, StoreError> {
    for c in counters {
        let used: Option<i64> = tx
            .fetch_optional(
                "SELECT count FROM cap_counters WHERE buyer = $1 AND period = $2",
                vec![buyer.into(), c.key.clone().into()],
            )
            .await?
            .map(|r| r.get("count"))
            .transpose()?;
        if used.unwrap_or(0).saturating_add(c.amount) > c.limit {
            return Ok(Some(format!("cap {} of {} reached", c.key, c.limit)));
        }
    }
    Ok(None)
}

/// Rows a routing decision writes (events go to the caller's list).
#[derive(Default)]
pub(crate) struct RouteWrites {
    pub deliveries: Vec<Vec<Arg>>,
    /// The deliveries as the outbox attempts them, row for row with `deliveries`.
    pub fresh: Vec<Leased>,
    /// The deliveries are leased to this instance's outbox (handed over in memory): no
    /// NOTIFY to the other instances.
    pub leased: bool,
    pub offers: Vec<Vec<Arg>>,
}

impl RouteWrites {
    /// Leases the new deliveries to `owner` until `until`, before they are written.
    pub fn lease_to(&mut self, owner: &str, until: i64) {
        for row in &mut self.deliveries {
            if let Some(slot) = row.get_mut(DELIVERY_LEASE_OWNER) {
                *slot = Arg::OptText(Some(owner.to_string()));
            }
            if let Some(slot) = row.get_mut(DELIVERY_LEASE_OWNER + 1) {
                *slot = Arg::OptInt(Some(until));
            }
        }
        for l in &mut self.fresh {
            l.lease_until = until;
        }
        self.leased = true;
    }
}

/// One `offers` row: `lead_id` offered on `route` to `partners`, open to all at `open_at`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn offer_row(
    lead_id: &str,
    route: &str,
    source: &str,
    product: Option<&str>,
    score: i64,
    partners: &[&str],
    exclusive_ms: i64,
    open_at: i64,
    expires_at: i64,
    now: i64,
) -> Result<Vec<Arg>, StoreError> {
    let partners_json =
        serde_json::to_string(partners).map_err(|source| StoreError::Json { what: "partners", source })?;
    Ok(vec![
        lead_id.into(),
        route.into(),
        source.into(),
        product.map(str::to_string).into(),
        score.into(),
        partners_json.into(),
        exclusive_ms.into(),
        open_at.into(),
        "open".into(),
        expires_at.into(),
        0i64.into(),
        now.into(),
        now.into(),
    ])
}

pub(crate) const OFFER_INSERT: &str = "INSERT INTO offers (lead_id, route, source, product, score, partners, exclusive_ms, open_at, status, expires_at, sla_breached, created_at, updated_at)";

/// Writes what [`apply`] produced; returns whether deliveries were created.
pub(crate) async fn write(tx: &mut impl Exec, w: RouteWrites) -> Result<bool, StoreError> {
    let created = !w.deliveries.is_empty();
    insert_rows(tx, DELIVERY_INSERT, DELIVERY_COLUMNS, w.deliveries, "").await?;
    insert_rows(tx, OFFER_INSERT, 13, w.offers, "").await?;
    if created && !w.leased && tx.dialect() == Dialect::Postgres {
        // Wakes the outbox workers of every instance (delivered on commit).
        tx.execute("SELECT pg_notify('leadgate_outbox', '')", Vec::new()).await?;
    }
    Ok(created)
}

/// One outbox row for a chosen offer.
pub(crate) fn delivery_row(
    lead_id: &str,
    route: &str,
    offer: &Offer,
    now: i64,
) -> Result<Vec<Arg>, StoreError> {
    let payload = offer
        .payload
        .as_ref()
        .ok_or_else(|| StoreError::Commit(format!("buyer {} has no payload to deliver", offer.buyer)))?;
    let payload =
        serde_json::to_string(payload).map_err(|source| StoreError::Json { what: "payload", source })?;
    let caps =
        serde_json::to_string(&offer.caps).map_err(|source| StoreError::Json { what: "caps", source })?;
    Ok(vec![
        offer.delivery_id.clone().into(),
        lead_id.into(),
        offer.buyer.clone().into(),
        route.into(),
        payload.into(),
        "scheduled".into(),
        0i64.into(),
        now.into(),
        caps.into(),
        offer.price.clone().into(),
        now.into(),
        now.into(),
        Arg::OptText(None),
        Arg::OptInt(None),
    ])
}

pub(crate) const DELIVERY_INSERT: &str = "INSERT INTO deliveries (id, lead_id, buyer, route, payload, status, attempts, next_attempt_at, cap_periods, price, created_at, updated_at, lease_owner, lease_until)";
pub(crate) const DELIVERY_COLUMNS: usize = 14;
/// Index of `lease_owner` in a delivery row (`lease_until` follows).
const DELIVERY_LEASE_OWNER: usize = 12;
