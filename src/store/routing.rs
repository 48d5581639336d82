//! Routing state in the store: buyers' cap counters and round-robin order, and the rows a
//! routing decision writes (deliveries, offers), all in the caller's transaction.
//!
//! Only loading and saving: which buyer gets a lead is decided by `route` from what is
//! loaded here, under the buyers' locks the caller holds.

use super::commit::{Arg, insert_rows};
use super::tx::Exec;
use super::{Dialect, StoreError, param_list, param_list_at};

/// One counter a lead uses up: `amount` (1 lead, or the price in cents) against `limit`.
///
/// Stored with the delivery or claim that took it (`cap_periods`), so a rejection or an
/// expired claim gives back exactly what was taken, whatever the config says by then.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    /// `day:2026-11-25`, `spend-day:2026-11-25`, …
    pub key: String,
    pub limit: i64,
    pub amount: i64,
}

/// Lock key of a buyer's counters and state (PostgreSQL advisory lock).
pub(crate) fn lock_key(buyer: &str) -> String {
    format!("buyer:{buyer}")
}

/// A buyer's counter for one period, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CounterRow {
    pub buyer: String,
    pub period: String,
    pub count: i64,
}

/// A buyer's round-robin position and whether the outbox disabled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuyerRow {
    pub buyer: String,
    pub assigned_seq: i64,
    pub disabled: bool,
}

/// The counters of `buyers` for `periods` (absent rows count zero).
pub(crate) async fn load_counters(
    tx: &mut impl Exec,
    buyers: &[String],
    periods: &[String],
) -> Result<Vec<CounterRow>, StoreError> {
    if buyers.is_empty() || periods.is_empty() {
        return Ok(Vec::new());
    }
    let positional = tx.positional();
    let sql = format!(
        "SELECT buyer, period, count FROM cap_counters WHERE buyer IN ({}) AND period IN ({})",
        param_list(buyers.len(), positional),
        param_list_at(buyers.len() + 1, periods.len(), positional)
    );
    let args = buyers.iter().chain(periods).map(|b| Arg::Text(b.clone())).collect();
    tx.fetch(&sql, args)
        .await?
        .iter()
        .map(|r| Ok(CounterRow { buyer: r.get("buyer")?, period: r.get("period")?, count: r.get("count")? }))
        .collect()
}

/// The stored state of `buyers` (buyers never assigned have no row).
pub(crate) async fn load_buyers(tx: &mut impl Exec, buyers: &[String]) -> Result<Vec<BuyerRow>, StoreError> {
    if buyers.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT buyer, assigned_seq, disabled_at FROM buyer_state WHERE buyer IN ({})",
        param_list(buyers.len(), tx.positional())
    );
    tx.fetch(&sql, buyers.iter().map(|b| Arg::Text(b.clone())).collect())
        .await?
        .iter()
        .map(|r| {
            Ok(BuyerRow {
                buyer: r.get("buyer")?,
                assigned_seq: r.get("assigned_seq")?,
                disabled: r.get::<Option<i64>>("disabled_at")?.is_some(),
            })
        })
        .collect()
}

/// Writes counters as they now stand.
pub(crate) async fn save_counters(tx: &mut impl Exec, rows: Vec<CounterRow>) -> Result<(), StoreError> {
    let rows = rows.into_iter().map(|c| vec![c.buyer.into(), c.period.into(), c.count.into()]).collect();
    insert_rows(
        tx,
        "INSERT INTO cap_counters (buyer, period, count)",
        3,
        rows,
        "ON CONFLICT (buyer, period) DO UPDATE SET count = excluded.count",
    )
    .await
}

/// Writes buyers' round-robin positions, assigned at `now`.
pub(crate) async fn save_assigned(
    tx: &mut impl Exec,
    seqs: Vec<(String, i64)>,
    now: i64,
) -> Result<(), StoreError> {
    let rows = seqs.into_iter().map(|(buyer, seq)| vec![buyer.into(), now.into(), seq.into()]).collect();
    insert_rows(
        tx,
        "INSERT INTO buyer_state (buyer, last_assigned_at, assigned_seq)",
        3,
        rows,
        "ON CONFLICT (buyer) DO UPDATE SET last_assigned_at = excluded.last_assigned_at, assigned_seq = excluded.assigned_seq",
    )
    .await
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

/// Whether `counters` still fit under their limits for `buyer`; if not, which one is full.
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

/// A new outbox row: a lead chosen for a push buyer (or news relayed to its vendor).
#[derive(Debug, Clone)]
pub(crate) struct NewDelivery {
    pub id: String,
    pub lead_id: String,
    pub buyer: String,
    pub route: String,
    /// What to send, as JSON (rendered at routing time: every retry sends the same bytes).
    pub payload: String,
    /// The cap counters it took, as JSON ([`Counter`]s).
    pub cap_periods: String,
    pub price: Option<String>,
    pub created_at: i64,
    /// Leased to this instance's outbox from the start (handed over in memory).
    pub lease: Option<(String, i64)>,
}

/// A new offer in the pull pool: `lead_id` offered on `route` to `partners`, open to all at
/// `open_at`.
#[derive(Debug, Clone)]
pub(crate) struct NewOffer {
    pub lead_id: String,
    pub route: String,
    pub source: String,
    pub product: Option<String>,
    pub score: i64,
    pub partners: Vec<String>,
    pub exclusive_ms: i64,
    pub open_at: i64,
    pub expires_at: i64,
    pub created_at: i64,
}

const DELIVERY_INSERT: &str = "INSERT INTO deliveries (id, lead_id, buyer, route, payload, status, attempts, next_attempt_at, cap_periods, price, created_at, updated_at, lease_owner, lease_until)";
const DELIVERY_COLUMNS: usize = 14;
const OFFER_INSERT: &str = "INSERT INTO offers (lead_id, route, source, product, score, partners, exclusive_ms, open_at, status, expires_at, sla_breached, created_at, updated_at)";

/// Inserts outbox rows, due at once.
pub(crate) async fn insert_deliveries(tx: &mut impl Exec, rows: Vec<NewDelivery>) -> Result<(), StoreError> {
    let rows = rows
        .into_iter()
        .map(|d| {
            let (owner, until) = d.lease.unzip();
            vec![
                d.id.into(),
                d.lead_id.into(),
                d.buyer.into(),
                d.route.into(),
                d.payload.into(),
                super::outbox::DeliveryStatus::Scheduled.as_str().into(),
                0i64.into(),
                d.created_at.into(),
                d.cap_periods.into(),
                d.price.into(),
                d.created_at.into(),
                d.created_at.into(),
                Arg::OptText(owner),
                Arg::OptInt(until),
            ]
        })
        .collect();
    insert_rows(tx, DELIVERY_INSERT, DELIVERY_COLUMNS, rows, "").await
}

/// Inserts offers, open.
pub(crate) async fn insert_offers(tx: &mut impl Exec, rows: Vec<NewOffer>) -> Result<(), StoreError> {
    let rows = rows
        .into_iter()
        .map(|o| {
            let partners = serde_json::to_string(&o.partners)
                .map_err(|source| StoreError::Json { what: "partners", source })?;
            Ok(vec![
                o.lead_id.into(),
                o.route.into(),
                o.source.into(),
                o.product.into(),
                o.score.into(),
                partners.into(),
                o.exclusive_ms.into(),
                o.open_at.into(),
                super::offers::OfferStatus::Open.as_str().into(),
                o.expires_at.into(),
                0i64.into(),
                o.created_at.into(),
                o.created_at.into(),
            ])
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    insert_rows(tx, OFFER_INSERT, 13, rows, "").await
}

/// Wakes the outbox workers of every instance once the transaction commits (PostgreSQL
/// `NOTIFY`; SQLite has one instance, woken in process).
pub(crate) async fn notify_outbox(tx: &mut impl Exec) -> Result<(), StoreError> {
    if tx.dialect() == Dialect::Postgres {
        tx.execute("SELECT pg_notify('leadgate_outbox', '')", Vec::new()).await?;
    }
    Ok(())
}
