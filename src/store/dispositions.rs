//! What buyers report about the leads they got (dispositions: accepted, returned,
//! converted, …) and the SLA breaches the pool's sweep records, in the caller's
//! transaction. The rules (the return window and cap, when a breach is due) are the
//! `claim` module's; this module knows the tables.

use serde::Serialize;
use sqlx::{AssertSqlSafe, Row as _};

use super::offers::{ClaimStatus, OfferStatus};
use super::outbox::DeliveryStatus;
use super::tx::Exec;
use super::{Store, StoreError};

/// `dispositions.kind`: what a partner or push buyer reports about a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DispositionKind {
    Accepted,
    Rejected,
    Returned,
    Contacted,
    Converted,
}

impl DispositionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DispositionKind::Accepted => "accepted",
            DispositionKind::Rejected => "rejected",
            DispositionKind::Returned => "returned",
            DispositionKind::Contacted => "contacted",
            DispositionKind::Converted => "converted",
        }
    }
}

/// `sla_breaches.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreachKind {
    /// An offer was not claimed in time.
    Claim,
    /// A delivered or confirmed lead got no disposition in time.
    Disposition,
}

impl BreachKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BreachKind::Claim => "claim",
            BreachKind::Disposition => "disposition",
        }
    }
}

/// When `buyer` got `lead_id` through the delivery `delivery_id`, if it was delivered.
pub(crate) async fn delivered_at(
    tx: &mut impl Exec,
    delivery_id: &str,
    lead_id: &str,
    buyer: &str,
) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "SELECT updated_at FROM deliveries WHERE id = $1 AND lead_id = $2 AND buyer = $3 AND status = '{}'",
        DeliveryStatus::Delivered.as_str()
    );
    tx.fetch_optional(&sql, vec![delivery_id.into(), lead_id.into(), buyer.into()])
        .await?
        .map(|r| r.get("updated_at"))
        .transpose()
}

/// When `partner` last claimed `lead_id`, if that claim is leased or confirmed.
pub(crate) async fn claimed_at(
    tx: &mut impl Exec,
    lead_id: &str,
    partner: &str,
) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "SELECT claimed_at FROM claims WHERE lead_id = $1 AND partner = $2 AND status IN ('{}', '{}') \
         ORDER BY claimed_at DESC LIMIT 1",
        ClaimStatus::Leased.as_str(),
        ClaimStatus::Confirmed.as_str()
    );
    tx.fetch_optional(&sql, vec![lead_id.into(), partner.into()])
        .await?
        .map(|r| r.get("claimed_at"))
        .transpose()
}

/// How many leads `buyer` returned from `since` on.
pub(crate) async fn returns_since(tx: &mut impl Exec, buyer: &str, since: i64) -> Result<i64, StoreError> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM dispositions WHERE buyer = $1 AND kind = '{}' AND at >= $2",
        DispositionKind::Returned.as_str()
    );
    match tx.fetch_optional(&sql, vec![buyer.into(), since.into()]).await? {
        Some(row) => row.get("n"),
        None => Ok(0),
    }
}

/// A new `dispositions` row.
#[derive(Debug, Clone)]
pub struct NewDisposition<'a> {
    pub id: &'a str,
    pub lead_id: &'a str,
    pub buyer: &'a str,
    pub delivery_id: Option<&'a str>,
    pub kind: DispositionKind,
    pub reason: Option<&'a str>,
    pub value: Option<&'a str>,
    pub at: i64,
}

pub(crate) async fn insert_disposition(tx: &mut impl Exec, d: &NewDisposition<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO dispositions (id, lead_id, buyer, delivery_id, kind, reason, value, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            d.id.into(),
            d.lead_id.into(),
            d.buyer.into(),
            d.delivery_id.map(str::to_string).into(),
            d.kind.as_str().into(),
            d.reason.map(str::to_string).into(),
            d.value.map(str::to_string).into(),
            d.at.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Up to 500 leads offered on `route` by `cutoff`, still open, with no claim breach
/// recorded.
pub(crate) async fn unclaimed_since(
    store: &Store,
    route: &str,
    cutoff: i64,
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT lead_id FROM offers WHERE route = $1 AND status = '{}' AND sla_breached = 0 AND created_at <= $2 LIMIT 500",
        OfferStatus::Open.as_str()
    );
    route_rows(store, sql, route, cutoff, |r| Ok(r.try_get("lead_id")?)).await
}

/// Up to 500 (lead, buyer) pairs of `route` delivered or confirmed by `cutoff` that have
/// no disposition and no disposition breach recorded.
pub(crate) async fn undispositioned_since(
    store: &Store,
    route: &str,
    cutoff: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let sql = format!(
        "SELECT lead_id, buyer FROM deliveries d WHERE route = $1 AND status = '{delivered}' AND updated_at <= $2 \
         AND NOT EXISTS (SELECT 1 FROM dispositions x WHERE x.lead_id = d.lead_id AND x.buyer = d.buyer) \
         AND NOT EXISTS (SELECT 1 FROM sla_breaches s WHERE s.lead_id = d.lead_id AND s.buyer = d.buyer AND s.kind = '{breach}') \
         UNION SELECT c.lead_id, c.partner FROM claims c JOIN offers o ON o.lead_id = c.lead_id \
         WHERE o.route = $1 AND c.status = '{confirmed}' AND c.confirmed_at <= $2 \
         AND NOT EXISTS (SELECT 1 FROM dispositions x WHERE x.lead_id = c.lead_id AND x.buyer = c.partner) \
         AND NOT EXISTS (SELECT 1 FROM sla_breaches s WHERE s.lead_id = c.lead_id AND s.buyer = c.partner AND s.kind = '{breach}') \
         LIMIT 500",
        breach = BreachKind::Disposition.as_str(),
        delivered = DeliveryStatus::Delivered.as_str(),
        confirmed = ClaimStatus::Confirmed.as_str()
    );
    route_rows(store, sql, route, cutoff, |r| Ok((r.try_get("lead_id")?, r.try_get("buyer")?))).await
}

/// The rows of an SLA sweep's query over `route` (`$1`) and a `cutoff` time (`$2`).
async fn route_rows<T>(
    store: &Store,
    sql: String,
    route: &str,
    cutoff: i64,
    read: impl Fn(&sqlx::any::AnyRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(route.to_string())
        .bind(cutoff)
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(read)
        .collect()
}

/// Records a breach once per (lead, buyer, kind); returns whether it is new.
pub(crate) async fn insert_breach(
    tx: &mut impl Exec,
    lead_id: &str,
    buyer: &str,
    kind: BreachKind,
    now: i64,
) -> Result<bool, StoreError> {
    let inserted = tx
        .execute(
            "INSERT INTO sla_breaches (lead_id, buyer, kind, at) VALUES ($1, $2, $3, $4) ON CONFLICT (lead_id, buyer, kind) DO NOTHING",
            vec![lead_id.into(), buyer.into(), kind.as_str().into(), now.into()],
        )
        .await?;
    Ok(inserted > 0)
}
