//! The outbox in the store: lease due deliveries, record attempts guarded by the lease,
//! re-queue by hand.
//!
//! Leasing is one short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
//! instances never lease the same row; `BEGIN IMMEDIATE` on SQLite). The network call
//! happens with no transaction open. The result is written only if the lease is still
//! ours: a worker that stalled past its lease cannot overwrite the result of the worker
//! that took over.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, Row};

use super::commit::{Arg, Stage, begin_write, event, insert_events, insert_rows};
use super::tx::Exec;
use super::{Dialect, Store, StoreError};

/// The status of an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Due at `next_attempt_at` (first attempt or a retry).
    Scheduled,
    Delivered,
    /// The retry schedule ran out: a dead letter, replayable by hand.
    Dead,
    /// The buyer refused the lead (or its endpoint is gone).
    Rejected,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Scheduled => "scheduled",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
            DeliveryStatus::Rejected => "rejected",
        }
    }

    /// The status a stored string names.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "scheduled" => DeliveryStatus::Scheduled,
            "delivered" => DeliveryStatus::Delivered,
            "dead" => DeliveryStatus::Dead,
            "rejected" => DeliveryStatus::Rejected,
            other => return Err(StoreError::Commit(format!("unknown delivery status {other:?}"))),
        })
    }
}

/// A delivery row leased by this instance, as stored (the outbox parses its payload and
/// counters).
#[derive(Debug, Clone)]
pub struct LeasedRow {
    pub id: String,
    pub lead_id: String,
    pub buyer: String,
    pub route: String,
    /// What to send, as JSON.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
    pub lease_until: i64,
    /// The cap counters the delivery took, as JSON.
    pub cap_periods: String,
}

/// A delivery as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryRecord {
    pub id: String,
    pub buyer: String,
    pub route: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub price: Option<String>,
    pub attempt_log: Vec<serde_json::Value>,
}

impl Store {
    /// Leases up to `limit` due deliveries for `lease_ms`.
    pub async fn lease_due(
        &self,
        owner: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<LeasedRow>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let rows = self
            .lease_rows(
                "deliveries",
                "scheduled",
                "id, lead_id, buyer, route, payload, attempts, lease_until, cap_periods",
                owner,
                now,
                lease_ms,
                limit,
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LeasedRow {
                    id: r.try_get("id")?,
                    lead_id: r.try_get("lead_id")?,
                    buyer: r.try_get("buyer")?,
                    route: r.try_get("route")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                    lease_until: r.try_get("lease_until")?,
                    cap_periods: r.try_get("cap_periods")?,
                })
            })
            .collect()
    }

    /// Leases up to `limit` rows of a work table (`status`, `next_attempt_at`,
    /// `lease_owner`, `lease_until` columns) that are due and not leased, in one short
    /// transaction: `FOR UPDATE SKIP LOCKED` on PostgreSQL so instances never lease the
    /// same row, the single write lock on SQLite. `table`, `ready` and `returning` are
    /// names from the code, never input.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn lease_rows(
        &self,
        table: &str,
        ready: &str,
        returning: &str,
        owner: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let skip_locked = if self.dialect == Dialect::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        let limit = limit.clamp(1, 1000);
        // A read first: an idle poll takes no write lock (on SQLite it would queue behind
        // and delay the group commit).
        let probe = format!(
            "SELECT 1 FROM {table} WHERE status = '{ready}' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) LIMIT 1"
        );
        if sqlx::query(AssertSqlSafe(probe)).bind(now).fetch_optional(&self.pool).await?.is_none() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE {table} SET lease_owner = $1, lease_until = $2 WHERE id IN (\
               SELECT id FROM {table} WHERE status = '{ready}' AND next_attempt_at <= $3 \
               AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_attempt_at LIMIT {limit} {skip_locked}) \
             RETURNING {returning}"
        );
        let mut tx = begin_write(self).await?;
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(owner.to_string())
            .bind(now + lease_ms)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// When the next scheduled delivery becomes due (or its lease runs out).
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END) AS next_due \
             FROM deliveries WHERE status = 'scheduled'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("next_due")?)
    }

    /// Gives up `owner`'s leases on deliveries not attempted (handed over but not started
    /// at shutdown): due again at once, for this instance's next start or another instance.
    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let mut tx = begin_write(self).await?;
        let done = sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 AND status = 'scheduled'",
        )
        .bind(owner.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 && self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_notify('leadgate_outbox', '')").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Puts a dead-lettered or rejected delivery back in the queue, due now.
    pub async fn requeue(&self, delivery_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = begin_write(self).await?;
        let row = sqlx::query(
            "UPDATE deliveries SET status = 'scheduled', attempts = 0, next_attempt_at = $1, lease_owner = NULL, \
             lease_until = NULL, updated_at = $1 WHERE id = $2 AND status IN ('dead', 'rejected') RETURNING lead_id, buyer",
        )
        .bind(now)
        .bind(delivery_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let lead_id: String = row.try_get("lead_id")?;
        let buyer: String = row.try_get("buyer")?;
        insert_events(
            &mut tx,
            vec![event(
                &lead_id,
                now,
                "redelivery_requested",
                serde_json::json!({ "delivery_id": delivery_id, "buyer": buyer }),
            )],
        )
        .await?;
        update_stage(&mut tx, &lead_id, now).await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_notify('leadgate_outbox', '')").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Ids of a buyer's dead-lettered (and, with `rejected`, rejected) deliveries since `since`.
    pub async fn failed_deliveries(
        &self,
        buyer: &str,
        since: i64,
        rejected: bool,
    ) -> Result<Vec<String>, StoreError> {
        let statuses = if rejected { "('dead', 'rejected')" } else { "('dead')" };
        // The first status term is the `deliveries_failed` index's own condition, spelled the
        // same so SQLite sees the partial index applies.
        let sql = format!(
            "SELECT id FROM deliveries WHERE buyer = $1 AND created_at >= $2 AND status IN ('dead', 'rejected') \
             AND status IN {statuses} ORDER BY created_at"
        );
        let rows =
            sqlx::query(AssertSqlSafe(sql)).bind(buyer.to_string()).bind(since).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// Buyers disabled by the outbox (410 Gone), with when and why.
    pub async fn disabled_buyers(&self) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT buyer, disabled_at, disabled_reason FROM buyer_state WHERE disabled_at IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("buyer")?,
                    crate::clock::rfc3339(r.try_get("disabled_at")?),
                    r.try_get("disabled_reason")?,
                ))
            })
            .collect()
    }

    /// Re-enables a buyer the outbox disabled. Returns whether it was disabled.
    pub async fn enable_buyer(&self, buyer: &str) -> Result<bool, StoreError> {
        let mut tx = begin_write(self).await?;
        let done = sqlx::query(
            "UPDATE buyer_state SET disabled_at = NULL, disabled_reason = NULL WHERE buyer = $1 AND disabled_at IS NOT NULL",
        )
        .bind(buyer.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The lead a delivery to `buyer` carried.
    pub async fn lead_of_delivery(
        &self,
        delivery_id: &str,
        buyer: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT lead_id FROM deliveries WHERE id = $1 AND buyer = $2")
            .bind(delivery_id.to_string())
            .bind(buyer.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("lead_id")).transpose()?)
    }
}

/// One row of `delivery_attempts`: what an attempt came to.
#[derive(Debug, Clone)]
pub(crate) struct AttemptRow {
    pub delivery_id: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    /// `delivered`, `retry`, `dead`, `rejected` or `gone`.
    pub outcome: &'static str,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response: String,
}

/// Inserts attempt rows.
pub(crate) async fn insert_attempts(tx: &mut impl Exec, rows: Vec<AttemptRow>) -> Result<(), StoreError> {
    let rows = rows
        .into_iter()
        .map(|a| {
            vec![
                a.delivery_id.into(),
                a.attempt.into(),
                a.started_at.into(),
                a.duration_ms.into(),
                a.outcome.into(),
                Arg::OptInt(a.status_code.map(i64::from)),
                Arg::OptText(a.error),
                Arg::OptText(Some(a.response)),
            ]
        })
        .collect();
    insert_rows(tx, ATTEMPT_INSERT, 8, rows, "").await
}

const ATTEMPT_INSERT: &str = "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error, response)";

/// A lease-guarded change of an outbox row: written only if `owner` still holds the lease
/// it took until `lease_until` (a worker that stalled past its lease cannot overwrite the
/// result of the worker that took over).
#[derive(Debug, Clone)]
pub(crate) struct Settle {
    pub id: String,
    pub owner: String,
    pub lease_until: i64,
    pub status: DeliveryStatus,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub now: i64,
}

/// Marks deliveries delivered, one statement per 256, where the lease is still the
/// settler's; returns the ids written.
pub(crate) async fn settle_delivered(
    tx: &mut impl Exec,
    settles: &[Settle],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut won = std::collections::HashSet::new();
    for chunk in settles.chunks(256) {
        // VALUES columns are column1… on both engines.
        let sql = format!(
            "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, next_attempt_at = v.column2, \
             lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = v.column2 \
             FROM (VALUES {}) AS v \
             WHERE deliveries.id = v.column1 AND deliveries.lease_owner = v.column3 AND deliveries.lease_until = v.column4 \
             RETURNING deliveries.id",
            super::value_rows(chunk.len(), 4, tx.positional())
        );
        let mut args = Vec::with_capacity(chunk.len() * 4);
        for s in chunk {
            args.extend([s.id.clone().into(), s.now.into(), s.owner.clone().into(), s.lease_until.into()]);
        }
        for row in tx.fetch(&sql, args).await? {
            won.insert(row.get::<String>("id")?);
        }
    }
    Ok(won)
}

/// Settles one delivery (a retry, a rejection, a dead letter); false when the lease was
/// lost (nothing written).
pub(crate) async fn settle(tx: &mut impl Exec, s: &Settle) -> Result<bool, StoreError> {
    let updated = tx
        .execute(
            "UPDATE deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, lease_owner = NULL, \
             lease_until = NULL, last_error = $3, updated_at = $4 WHERE id = $5 AND lease_owner = $6 AND lease_until = $7",
            vec![
                s.status.as_str().into(),
                s.next_attempt_at.into(),
                s.last_error.clone().into(),
                s.now.into(),
                s.id.clone().into(),
                s.owner.clone().into(),
                s.lease_until.into(),
            ],
        )
        .await?;
    Ok(updated > 0)
}

/// Disables a buyer (its endpoint answered 410 Gone) until an operator enables it again.
pub(crate) async fn disable_buyer(
    tx: &mut impl Exec,
    buyer: &str,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO buyer_state (buyer, disabled_at, disabled_reason) VALUES ($1, $2, $3) \
         ON CONFLICT (buyer) DO UPDATE SET disabled_at = excluded.disabled_at, disabled_reason = excluded.disabled_reason",
        vec![buyer.into(), now.into(), reason.into()],
    )
    .await?;
    Ok(())
}

/// Every buyer a lead has had a delivery row for (tried or not).
pub(crate) async fn buyers_of_lead(tx: &mut impl Exec, lead_id: &str) -> Result<Vec<String>, StoreError> {
    tx.fetch("SELECT buyer FROM deliveries WHERE lead_id = $1", vec![lead_id.into()])
        .await?
        .iter()
        .map(|r| r.get("buyer"))
        .collect()
}

/// `stage = delivered` for leads one of whose deliveries just succeeded (what
/// [`update_stage`] would derive), unless a partner or buyer stage is set.
pub(crate) async fn mark_leads_delivered(
    tx: &mut impl Exec,
    leads: &[(String, i64)],
) -> Result<(), StoreError> {
    let Some(now) = leads.iter().map(|(_, at)| *at).max() else { return Ok(()) };
    for chunk in leads.chunks(512) {
        let positional = tx.positional();
        let (p1, p2) = if positional { ("?", "?") } else { ("$1", "$2") };
        let sql = format!(
            "UPDATE leads SET stage = 'delivered', stage_since = CASE WHEN stage = 'delivered' THEN stage_since ELSE {p1} END, \
             updated_at = {p2} WHERE id IN ({}) AND stage NOT IN {KEPT_STAGES}",
            super::param_list_at(3, chunk.len(), positional),
        );
        let mut args: Vec<Arg> = vec![now.into(), now.into()];
        args.extend(chunk.iter().map(|(id, _)| Arg::Text(id.clone())));
        tx.execute(&sql, args).await?;
    }
    Ok(())
}

/// A lead's deliveries with their attempts, oldest first.
pub(crate) async fn deliveries_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lead_id: &str,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, buyer, route, status, attempts, next_attempt_at, last_error, price FROM deliveries WHERE lead_id = $1 ORDER BY created_at, id",
    )
    .bind(lead_id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let mut out: Vec<DeliveryRecord> = Vec::with_capacity(rows.len());
    let mut index = HashMap::new();
    for r in &rows {
        let status: String = r.try_get("status")?;
        let next: i64 = r.try_get("next_attempt_at")?;
        let id: String = r.try_get("id")?;
        index.insert(id.clone(), out.len());
        out.push(DeliveryRecord {
            next_attempt_at: (status == "scheduled").then(|| crate::clock::rfc3339(next)),
            id,
            buyer: r.try_get("buyer")?,
            route: r.try_get("route")?,
            status,
            attempts: r.try_get("attempts")?,
            last_error: r.try_get("last_error")?,
            price: r.try_get("price")?,
            attempt_log: Vec::new(),
        });
    }
    let attempts = sqlx::query(
        "SELECT a.delivery_id, a.attempt, a.started_at, a.duration_ms, a.outcome, a.status_code, a.error, a.response \
         FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.lead_id = $1 ORDER BY a.id",
    )
    .bind(lead_id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    for a in &attempts {
        let delivery_id: String = a.try_get("delivery_id")?;
        if let Some(d) = index.get(&delivery_id).and_then(|i| out.get_mut(*i)) {
            d.attempt_log.push(serde_json::json!({
                "attempt": a.try_get::<i64, _>("attempt")?,
                "at": crate::clock::rfc3339(a.try_get("started_at")?),
                "duration_ms": a.try_get::<i64, _>("duration_ms")?,
                "outcome": a.try_get::<String, _>("outcome")?,
                "status": a.try_get::<Option<i64>, _>("status_code")?,
                "error": a.try_get::<Option<String>, _>("error")?,
                "response": a.try_get::<Option<String>, _>("response")?,
            }));
        }
    }
    Ok(out)
}

/// A stored lead, as routing needs it again (reroute, offer expiry).
pub(crate) struct StoredLead {
    pub fields: crate::lead::Lead,
    pub source: String,
    pub score: i64,
    pub grade: Option<String>,
    pub created_at: i64,
}

pub(crate) async fn stored_lead(tx: &mut impl Exec, lead_id: &str) -> Result<Option<StoredLead>, StoreError> {
    let Some(row) = tx
        .fetch_optional(
            "SELECT fields, source, score, grade, created_at FROM leads WHERE id = $1",
            vec![lead_id.into()],
        )
        .await?
    else {
        return Ok(None);
    };
    let fields: String = row.get("fields")?;
    Ok(Some(StoredLead {
        fields: serde_json::from_str(&fields)
            .map_err(|source| StoreError::Json { what: "fields", source })?,
        source: row.get("source")?,
        score: row.get::<Option<i64>>("score")?.unwrap_or(0),
        grade: row.get("grade")?,
        created_at: row.get("created_at")?,
    }))
}

/// Stages set by partners and buyers, and the pull pool's: delivery bookkeeping never
/// overwrites them.
const KEPT_STAGES: &str = "('claimed', 'confirmed', 'returned', 'converted', 'offered')";

/// Derives a lead's distribution stage from its push deliveries (after an attempt, a
/// re-queue): delivered if one was, routed while one is scheduled, undelivered if one is
/// dead, else unsold.
pub(crate) async fn update_stage(tx: &mut impl Exec, lead_id: &str, now: i64) -> Result<(), StoreError> {
    let statuses: Vec<DeliveryStatus> = tx
        .fetch(
            "SELECT status FROM deliveries WHERE lead_id = $1 AND route <> $2",
            vec![lead_id.into(), CLOSED_LOOP_ROUTE.into()],
        )
        .await?
        .iter()
        .map(|r| DeliveryStatus::parse(&r.get::<String>("status")?))
        .collect::<Result<_, _>>()?;
    if statuses.is_empty() {
        return Ok(());
    }
    let has = |s: DeliveryStatus| statuses.contains(&s);
    let stage = if has(DeliveryStatus::Delivered) {
        Stage::Delivered
    } else if has(DeliveryStatus::Scheduled) {
        Stage::Routed
    } else if has(DeliveryStatus::Dead) {
        Stage::Undelivered
    } else {
        Stage::Unsold
    };
    let sql = format!(
        "UPDATE leads SET stage = $1, stage_since = CASE WHEN stage = $1 THEN stage_since ELSE $2 END, updated_at = $2 \
         WHERE id = $3 AND stage NOT IN {KEPT_STAGES}"
    );
    tx.execute(&sql, vec![stage.as_str().into(), now.into(), lead_id.into()]).await?;
    Ok(())
}

/// Sets a lead's stage (and when it entered it, if it changed).
pub(crate) async fn set_stage(
    tx: &mut impl Exec,
    lead_id: &str,
    stage: Stage,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE leads SET stage = $1, stage_since = CASE WHEN stage = $1 THEN stage_since ELSE $2 END, updated_at = $2 WHERE id = $3",
        vec![stage.as_str().into(), now.into(), lead_id.into()],
    )
    .await?;
    Ok(())
}

/// The route name of closed-loop relays to source vendors (not the lead's distribution).
pub const CLOSED_LOOP_ROUTE: &str = "closed-loop";
