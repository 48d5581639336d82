//! The pull pool's tables, `offers` and `claims`, loaded and saved as typed rows
//! (dispositions and SLA breaches: [`super::dispositions`]). Who may claim, why a claim
//! is refused, caps, returns, relays and fallbacks are decided in the `claim` module; this
//! module only knows the tables.
//!
//! Functions that take `tx` run in the caller's transaction (a write transaction from
//! [`super::commit::begin_write`]); the caller holds the locks and commits. Functions that
//! take the store read from the pool, outside any transaction: their rows are candidates,
//! which the writes re-check (`… WHERE status = 'open'` and the like) under the lock.
//!
//! Exactly one claimer wins an offer because [`take_offer`] is a compare-and-set on the
//! offer row (`UPDATE … WHERE status = 'open'`): in SQLite under the single write lock, in
//! PostgreSQL under the row lock. [`claim_candidates`] reads with `FOR UPDATE SKIP LOCKED`
//! on PostgreSQL, so concurrent claimers do not queue on the same rows.

use sqlx::{AssertSqlSafe, Row as _};

use super::tx::{Exec, Row};
use super::{Dialect, Store, StoreError};

/// `offers.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferStatus {
    /// Partners may claim it (until `expires_at`).
    Open,
    /// A partner holds a lease on it.
    Claimed,
    /// The claiming partner kept it.
    Confirmed,
    /// Nobody claimed it in time; the route's fallback ran.
    Expired,
}

impl OfferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OfferStatus::Open => "open",
            OfferStatus::Claimed => "claimed",
            OfferStatus::Confirmed => "confirmed",
            OfferStatus::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "open" => OfferStatus::Open,
            "claimed" => OfferStatus::Claimed,
            "confirmed" => OfferStatus::Confirmed,
            "expired" => OfferStatus::Expired,
            other => return Err(unknown("offers.status", other)),
        })
    }
}

/// `claims.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStatus {
    /// Held until `lease_until`, not yet confirmed.
    Leased,
    Confirmed,
    /// The lease ran out before a confirmation.
    Expired,
}

impl ClaimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Leased => "leased",
            ClaimStatus::Confirmed => "confirmed",
            ClaimStatus::Expired => "expired",
        }
    }

    /// The status a stored string names.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        [ClaimStatus::Leased, ClaimStatus::Confirmed, ClaimStatus::Expired]
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| unknown("claims.status", s))
    }
}

fn unknown(column: &str, value: &str) -> StoreError {
    StoreError::Column { column: column.to_string(), problem: format!("unknown value {value:?}") }
}

/// Who an offer is made to, and when: the partners in hand-over order, each partner's
/// exclusive turn (0: open at once), and when it opens to all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferTerms {
    pub partners: Vec<String>,
    pub exclusive_ms: i64,
    pub open_at: i64,
    pub created_at: i64,
}

fn partners_of(json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::Json { what: "partners", source })
}

/// `LIKE` pattern of offers listing `partner` (a prefilter: the JSON list decides).
fn like_pattern(partner: &str) -> String {
    format!("%\"{partner}\"%")
}

fn terms_of(row: &Row) -> Result<OfferTerms, StoreError> {
    Ok(OfferTerms {
        partners: partners_of(&row.get::<String>("partners")?)?,
        exclusive_ms: row.get("exclusive_ms")?,
        open_at: row.get("open_at")?,
        created_at: row.get("created_at")?,
    })
}

/// The order of [`open_offers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOrder {
    Newest,
    /// Highest score first, then newest.
    BestScore,
}

/// What [`open_offers`] narrows the list to in SQL.
#[derive(Debug, Clone, Copy)]
pub struct OfferFilter<'a> {
    pub product: Option<&'a str>,
    pub min_score: Option<i64>,
    pub order: ListOrder,
}

/// An open, unexpired offer listing a partner, with its lead.
#[derive(Debug, Clone)]
pub struct OpenOffer {
    pub lead_id: String,
    pub route: String,
    pub source: String,
    pub product: Option<String>,
    pub score: i64,
    pub terms: OfferTerms,
    pub expires_at: i64,
    pub grade: Option<String>,
    /// The lead's canonical fields, as stored (see [`OpenOffer::fields`]).
    fields: String,
}

impl OpenOffer {
    /// The lead's canonical fields (parsed on demand: most candidates are not listed).
    pub fn fields(&self) -> Result<crate::lead::Lead, StoreError> {
        serde_json::from_str(&self.fields).map_err(|source| StoreError::Json { what: "fields", source })
    }
}

/// Open offers listing `partner` that have not expired at `now`, per `filter` (every row;
/// who may claim which, and paging, are the caller's).
pub(crate) async fn open_offers(
    store: &Store,
    partner: &str,
    now: i64,
    filter: OfferFilter<'_>,
) -> Result<Vec<OpenOffer>, StoreError> {
    let mut sql = format!(
        "SELECT o.lead_id, o.route, o.source, o.product, o.score, o.partners, o.exclusive_ms, o.open_at, \
         o.expires_at, o.created_at, l.fields, l.grade FROM offers o JOIN leads l ON l.id = o.lead_id \
         WHERE o.status = '{}' AND o.expires_at > $1 AND o.partners LIKE $2",
        OfferStatus::Open.as_str()
    );
    if filter.product.is_some() {
        sql.push_str(" AND o.product = $3");
    }
    if let Some(min) = filter.min_score {
        // An integer: inlining it is safe.
        sql.push_str(&format!(" AND o.score >= {min}"));
    }
    sql.push_str(match filter.order {
        ListOrder::Newest => " ORDER BY o.created_at DESC, o.lead_id",
        ListOrder::BestScore => " ORDER BY o.score DESC, o.created_at DESC, o.lead_id",
    });
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(like_pattern(partner));
    if let Some(p) = filter.product {
        query = query.bind(p.to_string());
    }
    let rows = query.fetch_all(&store.pool).await?;
    rows.iter()
        .map(|r| {
            Ok(OpenOffer {
                lead_id: r.try_get("lead_id")?,
                route: r.try_get("route")?,
                source: r.try_get("source")?,
                product: r.try_get("product")?,
                score: r.try_get("score")?,
                terms: OfferTerms {
                    partners: partners_of(&r.try_get::<String, _>("partners")?)?,
                    exclusive_ms: r.try_get("exclusive_ms")?,
                    open_at: r.try_get("open_at")?,
                    created_at: r.try_get("created_at")?,
                },
                expires_at: r.try_get("expires_at")?,
                grade: r.try_get("grade")?,
                fields: r.try_get("fields")?,
            })
        })
        .collect()
}

/// An offer as a claim finds it.
#[derive(Debug, Clone)]
pub struct OfferState {
    pub terms: OfferTerms,
    pub status: OfferStatus,
    pub expires_at: i64,
    pub claimed_by: Option<String>,
}

/// The offer of `lead_id`, if one was made.
pub(crate) async fn load_offer(tx: &mut impl Exec, lead_id: &str) -> Result<Option<OfferState>, StoreError> {
    let Some(row) = tx
        .fetch_optional(
            "SELECT partners, exclusive_ms, open_at, created_at, status, expires_at, claimed_by FROM offers WHERE lead_id = $1",
            vec![lead_id.into()],
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(OfferState {
        terms: terms_of(&row)?,
        status: OfferStatus::parse(&row.get::<String>("status")?)?,
        expires_at: row.get("expires_at")?,
        claimed_by: row.get("claimed_by")?,
    }))
}

/// The order of [`claim_candidates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateOrder {
    Oldest,
    /// Highest score first, then oldest.
    BestScore,
}

/// An open offer `claims/next` may take.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub lead_id: String,
    pub terms: OfferTerms,
}

/// Up to 200 open, unexpired offers listing `partner`, in `order`; on PostgreSQL the rows
/// are locked, skipping rows other claimers hold.
pub(crate) async fn claim_candidates(
    tx: &mut impl Exec,
    partner: &str,
    order: CandidateOrder,
    now: i64,
) -> Result<Vec<Candidate>, StoreError> {
    let order_by = match order {
        CandidateOrder::Oldest => "created_at ASC, lead_id",
        CandidateOrder::BestScore => "score DESC, created_at ASC, lead_id",
    };
    let skip = if tx.dialect() == Dialect::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "SELECT lead_id, partners, exclusive_ms, open_at, created_at FROM offers \
         WHERE status = '{}' AND expires_at > $1 AND partners LIKE $2 ORDER BY {order_by} LIMIT 200 {skip}",
        OfferStatus::Open.as_str()
    );
    tx.fetch(&sql, vec![now.into(), like_pattern(partner).into()])
        .await?
        .iter()
        .map(|r| Ok(Candidate { lead_id: r.get("lead_id")?, terms: terms_of(r)? }))
        .collect()
}

/// Compare-and-set: the open, unexpired offer of `lead_id` becomes `partner`'s claim
/// `claim_id` until `lease_until`. Returns when the offer was made, or `None` when
/// another claimer got there first (or it expired).
pub(crate) async fn take_offer(
    tx: &mut impl Exec,
    lead_id: &str,
    claim_id: &str,
    partner: &str,
    lease_until: i64,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "UPDATE offers SET status = '{}', claim_id = $1, claimed_by = $2, lease_until = $3, updated_at = $4 \
         WHERE lead_id = $5 AND status = '{}' AND expires_at > $4 RETURNING created_at",
        OfferStatus::Claimed.as_str(),
        OfferStatus::Open.as_str()
    );
    tx.fetch_optional(
        &sql,
        vec![claim_id.into(), partner.into(), lease_until.into(), now.into(), lead_id.into()],
    )
    .await?
    .map(|r| r.get("created_at"))
    .transpose()
}

/// A new `claims` row (status `leased`).
#[derive(Debug, Clone)]
pub struct NewClaim<'a> {
    pub id: &'a str,
    pub lead_id: &'a str,
    pub partner: &'a str,
    pub offered_at: i64,
    pub claimed_at: i64,
    pub lease_until: i64,
    /// The cap counters the claim took, as JSON (given back if the lease expires).
    pub cap_periods: String,
}

pub(crate) async fn insert_claim(tx: &mut impl Exec, c: &NewClaim<'_>) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO claims (id, lead_id, partner, status, offered_at, claimed_at, lease_until, cap_periods) \
         VALUES ($1, $2, $3, '{}', $4, $5, $6, $7)",
        ClaimStatus::Leased.as_str()
    );
    tx.execute(
        &sql,
        vec![
            c.id.into(),
            c.lead_id.into(),
            c.partner.into(),
            c.offered_at.into(),
            c.claimed_at.into(),
            c.lease_until.into(),
            c.cap_periods.clone().into(),
        ],
    )
    .await?;
    Ok(())
}

/// Confirms `partner`'s live claim on `lead_id` (offer and claim row); returns the claim's
/// id, or `None` when there is no live claim of `partner` on it.
pub(crate) async fn confirm_claim(
    tx: &mut impl Exec,
    lead_id: &str,
    partner: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let sql = format!(
        "UPDATE offers SET status = '{}', lease_until = NULL, updated_at = $1 \
         WHERE lead_id = $2 AND status = '{}' AND claimed_by = $3 AND lease_until > $1 RETURNING claim_id",
        OfferStatus::Confirmed.as_str(),
        OfferStatus::Claimed.as_str()
    );
    let Some(row) = tx.fetch_optional(&sql, vec![now.into(), lead_id.into(), partner.into()]).await? else {
        return Ok(None);
    };
    let claim_id: String = row.get("claim_id")?;
    let sql = format!(
        "UPDATE claims SET status = '{}', confirmed_at = $1 WHERE id = $2",
        ClaimStatus::Confirmed.as_str()
    );
    tx.execute(&sql, vec![now.into(), claim_id.clone().into()]).await?;
    Ok(Some(claim_id))
}

/// A claim whose lease ran out.
#[derive(Debug, Clone)]
pub struct ExpiredLease {
    pub lead_id: String,
    pub claim_id: String,
    pub partner: String,
}

/// Up to 500 claimed offers whose lease ran out by `now`.
pub(crate) async fn expired_leases(store: &Store, now: i64) -> Result<Vec<ExpiredLease>, StoreError> {
    due_offers(store, "lead_id, claim_id, claimed_by", OfferStatus::Claimed, "lease_until", now, |r| {
        Ok(ExpiredLease {
            lead_id: r.try_get("lead_id")?,
            claim_id: r.try_get("claim_id")?,
            partner: r.try_get("claimed_by")?,
        })
    })
    .await
}

/// Up to 500 offers in `status` whose `due` time is `now` or earlier (`columns` of each,
/// read with `read`): what the sweeps work through.
async fn due_offers<T>(
    store: &Store,
    columns: &str,
    status: OfferStatus,
    due: &str,
    now: i64,
    read: impl Fn(&sqlx::any::AnyRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let sql = format!(
        "SELECT {columns} FROM offers WHERE status = '{}' AND {due} <= $1 LIMIT 500",
        status.as_str()
    );
    sqlx::query(AssertSqlSafe(sql)).bind(now).fetch_all(&store.pool).await?.iter().map(read).collect()
}

/// Opens the offer of `lead_id` again if `claim_id` still holds it; returns whether it did.
pub(crate) async fn reopen_offer(
    tx: &mut impl Exec,
    lead_id: &str,
    claim_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE offers SET status = '{}', claim_id = NULL, claimed_by = NULL, lease_until = NULL, updated_at = $1 \
         WHERE lead_id = $2 AND claim_id = $3 AND status = '{}'",
        OfferStatus::Open.as_str(),
        OfferStatus::Claimed.as_str()
    );
    Ok(tx.execute(&sql, vec![now.into(), lead_id.into(), claim_id.into()]).await? > 0)
}

/// Ends the claim `claim_id` as expired; returns the cap counters it took (JSON), if the
/// claim exists.
pub(crate) async fn expire_claim(
    tx: &mut impl Exec,
    claim_id: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let sql = format!(
        "UPDATE claims SET status = '{}', ended_at = $1 WHERE id = $2 RETURNING cap_periods",
        ClaimStatus::Expired.as_str()
    );
    tx.fetch_optional(&sql, vec![now.into(), claim_id.into()])
        .await?
        .map(|r| r.get("cap_periods"))
        .transpose()
}

/// An open offer nobody claimed in time.
#[derive(Debug, Clone)]
pub struct StaleOffer {
    pub lead_id: String,
    pub route: String,
    pub partners: Vec<String>,
}

/// Up to 500 open offers that expired by `now`.
pub(crate) async fn stale_offers(store: &Store, now: i64) -> Result<Vec<StaleOffer>, StoreError> {
    due_offers(store, "lead_id, route, partners", OfferStatus::Open, "expires_at", now, |r| {
        Ok(StaleOffer {
            lead_id: r.try_get("lead_id")?,
            route: r.try_get("route")?,
            partners: partners_of(&r.try_get::<String, _>("partners")?)?,
        })
    })
    .await
}

/// Marks the offer of `lead_id` expired if it is still open; returns whether it was.
pub(crate) async fn expire_open_offer(
    tx: &mut impl Exec,
    lead_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE offers SET status = '{}', updated_at = $1 WHERE lead_id = $2 AND status = '{}'",
        OfferStatus::Expired.as_str(),
        OfferStatus::Open.as_str()
    );
    Ok(tx.execute(&sql, vec![now.into(), lead_id.into()]).await? > 0)
}

/// Marks the offer of `lead_id` as past its claim SLA (the sweep no longer looks at it).
pub(crate) async fn mark_offer_breached(tx: &mut impl Exec, lead_id: &str) -> Result<(), StoreError> {
    tx.execute("UPDATE offers SET sla_breached = 1 WHERE lead_id = $1", vec![lead_id.into()]).await?;
    Ok(())
}
