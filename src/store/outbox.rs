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

use super::commit::{Arg, EVENT_INSERT, begin_write, event, insert_rows, lock_keys};
use super::tx::Exec;
use super::{Dialect, Store, StoreError, routing};
use crate::deliver::Payload;
use crate::route::{LeadView, Routing};

/// A delivery leased by this worker.
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
    pub cap_periods: Vec<crate::route::caps::Counter>,
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

/// The attempt's facts, for `delivery_attempts` and the lead's history.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response: String,
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
    ) -> Result<Vec<Leased>, StoreError> {
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
                let payload: String = r.try_get(4)?;
                let caps: String = r.try_get(7)?;
                Ok(Leased {
                    id: r.try_get(0)?,
                    lead_id: r.try_get(1)?,
                    buyer: r.try_get(2)?,
                    route: r.try_get(3)?,
                    payload: serde_json::from_str(&payload)
                        .map_err(|source| StoreError::Json { what: "payload", source })?,
                    attempts: r.try_get(5)?,
                    lease_until: r.try_get(6)?,
                    cap_periods: serde_json::from_str(&caps)
                        .map_err(|source| StoreError::Json { what: "caps", source })?,
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
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END) \
             FROM deliveries WHERE status = 'scheduled'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    /// Records an attempt and its resolution, if `owner` still holds the lease, in a
    /// transaction of its own. Returns false (and writes nothing) when the lease was lost.
    /// The outbox records through the writer's group commit instead ([`record_attempts_in`]).
    pub async fn record_attempt(&self, write: &AttemptWrite) -> Result<bool, StoreError> {
        let mut tx = begin_write(self).await?;
        let done = record_attempts_in(&mut tx, std::slice::from_ref(write)).await?;
        tx.commit().await?;
        Ok(done.first().copied().unwrap_or(false))
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
        let lead_id: String = row.try_get(0)?;
        let buyer: String = row.try_get(1)?;
        insert_rows(
            &mut tx,
            EVENT_INSERT,
            4,
            vec![event(
                &lead_id,
                now,
                "redelivery_requested",
                serde_json::json!({ "delivery_id": delivery_id, "buyer": buyer }),
            )],
            "",
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
        let sql = format!(
            "SELECT id FROM deliveries WHERE buyer = $1 AND created_at >= $2 AND status IN {statuses} ORDER BY created_at"
        );
        let rows =
            sqlx::query(AssertSqlSafe(sql)).bind(buyer.to_string()).bind(since).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Buyers disabled by the outbox (410 Gone), with when and why.
    pub async fn disabled_buyers(&self) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT buyer, disabled_at, disabled_reason FROM buyer_state WHERE disabled_at IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, crate::clock::rfc3339(r.try_get(1)?), r.try_get(2)?)))
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
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }
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
    pub config: std::sync::Arc<crate::config::Config>,
    pub now: i64,
}

/// Records attempts in the caller's transaction (the writer's group commit); one flag per
/// attempt, false where the lease was lost (nothing written for it). Delivered attempts,
/// the common case, are written with a handful of multi-row statements whatever their
/// number; the rest row by row.
pub(crate) async fn record_attempts_in(
    tx: &mut impl Exec,
    writes: &[AttemptWrite],
) -> Result<Vec<bool>, StoreError> {
    let mut done = vec![false; writes.len()];
    let delivered: Vec<usize> =
        (0..writes.len()).filter(|&i| matches!(writes[i].resolution, Resolution::Delivered)).collect();
    if !delivered.is_empty() {
        let won = mark_delivered(tx, writes, &delivered).await?;
        let mut attempts = Vec::new();
        let mut events = Vec::new();
        let mut staged = Vec::new();
        for &i in &delivered {
            let w = &writes[i];
            if !won.contains(w.leased.id.as_str()) {
                continue;
            }
            done[i] = true;
            let d = &w.leased;
            attempts.push(vec![
                d.id.clone().into(),
                (d.attempts + 1).into(),
                w.record.started_at.into(),
                w.record.duration_ms.into(),
                "delivered".into(),
                Arg::OptInt(w.record.status_code.map(i64::from)),
                Arg::OptText(None),
                Arg::OptText(Some(w.record.response.clone())),
            ]);
            events.push(event(
                &d.lead_id,
                w.now,
                "delivered",
                serde_json::json!({
                    "delivery_id": d.id, "buyer": d.buyer, "attempt": d.attempts + 1, "outcome": "delivered",
                    "status": w.record.status_code, "duration_ms": w.record.duration_ms, "reason": null,
                }),
            ));
            if d.route != CLOSED_LOOP_ROUTE {
                staged.push((d.lead_id.clone(), w.now));
            }
        }
        insert_rows(tx, ATTEMPT_INSERT, 8, attempts, "").await?;
        insert_rows(tx, EVENT_INSERT, 4, events, "").await?;
        mark_leads_delivered(tx, &staged).await?;
    }
    for (i, w) in writes.iter().enumerate() {
        if !matches!(w.resolution, Resolution::Delivered) {
            done[i] = record_one_in(tx, w).await?;
        }
    }
    Ok(done)
}

const ATTEMPT_INSERT: &str = "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error, response)";

/// Marks deliveries delivered where the lease is still the writer's; returns their ids.
async fn mark_delivered(
    tx: &mut impl Exec,
    writes: &[AttemptWrite],
    which: &[usize],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut won = std::collections::HashSet::new();
    for chunk in which.chunks(256) {
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
        for &i in chunk {
            let w = &writes[i];
            args.extend([
                w.leased.id.clone().into(),
                w.now.into(),
                w.owner.clone().into(),
                w.leased.lease_until.into(),
            ]);
        }
        for row in tx.fetch(&sql, args).await? {
            won.insert(row.get::<String>("id")?);
        }
    }
    Ok(won)
}

/// `stage = delivered` for leads one of whose deliveries just succeeded (what
/// [`update_stage`] would derive), unless a partner or buyer stage is set.
async fn mark_leads_delivered(tx: &mut impl Exec, leads: &[(String, i64)]) -> Result<(), StoreError> {
    let Some(now) = leads.iter().map(|(_, at)| *at).max() else { return Ok(()) };
    for chunk in leads.chunks(512) {
        let positional = tx.positional();
        let (p1, p2) = if positional { ("?", "?") } else { ("$1", "$2") };
        let sql = format!(
            "UPDATE leads SET stage = 'delivered', stage_since = CASE WHEN stage = 'delivered' THEN stage_since ELSE {p1} END, \
             updated_at = {p2} WHERE id IN ({}) AND stage NOT IN ('claimed', 'confirmed', 'returned', 'converted', 'offered')",
            super::param_list_at(3, chunk.len(), positional),
        );
        let mut args: Vec<Arg> = vec![now.into(), now.into()];
        args.extend(chunk.iter().map(|(id, _)| Arg::Text(id.clone())));
        tx.execute(&sql, args).await?;
    }
    Ok(())
}

/// One attempt, written row by row (retries, rejections, dead letters: the rare cases).
async fn record_one_in(tx: &mut impl Exec, write: &AttemptWrite) -> Result<bool, StoreError> {
    let AttemptWrite { leased: d, owner, record: attempt, resolution, config, now } = write;
    let (routing, now) = (&config.routing, *now);
    let (status, next_at, outcome) = match resolution {
        Resolution::Delivered => ("delivered", now, "delivered"),
        Resolution::Retry { at } => ("scheduled", *at, "retry"),
        Resolution::Dead => ("dead", now, "dead"),
        Resolution::Rejected { .. } => ("rejected", now, "rejected"),
        Resolution::Gone { .. } => ("rejected", now, "gone"),
    };
    let reroute =
        matches!(resolution, Resolution::Rejected { reroute: true } | Resolution::Gone { reroute: true });
    let releases = matches!(resolution, Resolution::Rejected { .. } | Resolution::Gone { .. });
    // Rerouting and cap releases touch buyer counters: lock like the intake path does.
    if reroute || releases {
        let mut keys: Vec<String> = routing.buyers.keys().map(|b| routing::lock_key(b)).collect();
        keys.push(routing::lock_key(&d.buyer));
        keys.sort();
        keys.dedup();
        lock_keys(tx, &keys).await?;
    }
    let updated = tx
        .execute(
            "UPDATE deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, lease_owner = NULL, \
             lease_until = NULL, last_error = $3, updated_at = $4 WHERE id = $5 AND lease_owner = $6 AND lease_until = $7",
            vec![
                status.into(),
                next_at.into(),
                attempt.error.clone().into(),
                now.into(),
                d.id.clone().into(),
                owner.clone().into(),
                d.lease_until.into(),
            ],
        )
        .await?;
    if updated == 0 {
        // Nothing was written: the transaction goes on with the rest of the batch.
        return Ok(false);
    }
    insert_rows(
        tx,
        ATTEMPT_INSERT,
        8,
        vec![vec![
            d.id.clone().into(),
            (d.attempts + 1).into(),
            attempt.started_at.into(),
            attempt.duration_ms.into(),
            outcome.into(),
            attempt.status_code.map(i64::from).into(),
            attempt.error.clone().into(),
            Arg::OptText(Some(attempt.response.clone())),
        ]],
        "",
    )
    .await?;

    // One event per attempt: named after how the delivery ended when it did
    // (`delivered`, `delivery_rejected`, `dead_lettered`), `delivery_attempt` for a retry.
    let kind = match resolution {
        Resolution::Delivered => "delivered",
        Resolution::Dead => "dead_lettered",
        Resolution::Rejected { .. } | Resolution::Gone { .. } => "delivery_rejected",
        Resolution::Retry { .. } => "delivery_attempt",
    };
    let mut events = vec![event(
        &d.lead_id,
        now,
        kind,
        serde_json::json!({
            "delivery_id": d.id, "buyer": d.buyer, "attempt": d.attempts + 1, "outcome": outcome,
            "status": attempt.status_code, "duration_ms": attempt.duration_ms, "reason": attempt.error,
        }),
    )];
    if let Resolution::Gone { .. } = resolution {
        tx.execute(
            "INSERT INTO buyer_state (buyer, disabled_at, disabled_reason) VALUES ($1, $2, $3) \
             ON CONFLICT (buyer) DO UPDATE SET disabled_at = excluded.disabled_at, disabled_reason = excluded.disabled_reason",
            vec![
                d.buyer.clone().into(),
                now.into(),
                attempt.error.clone().unwrap_or_else(|| "410 Gone".into()).into(),
            ],
        )
        .await?;
        events.push(event(
            &d.lead_id,
            now,
            "buyer_disabled",
            serde_json::json!({ "buyer": d.buyer, "status": 410 }),
        ));
    }

    if releases || reroute {
        reroute_in_tx(tx, d, reroute, routing, now, &mut events).await?;
    }
    insert_rows(tx, EVENT_INSERT, 4, events, "").await?;
    update_stage(tx, &d.lead_id, now).await?;
    Ok(true)
}

async fn reroute_in_tx(
    tx: &mut impl Exec,
    d: &Leased,
    reroute: bool,
    routing: &Routing,
    now: i64,
    events: &mut Vec<Vec<Arg>>,
) -> Result<(), StoreError> {
    // Give back the rejected delivery's cap units, then choose with fresh counters.
    routing::release_counters(tx, &d.buyer, &d.cap_periods).await?;
    if !reroute {
        return Ok(());
    }
    let Some(lead) = stored_lead(tx, &d.lead_id).await? else { return Ok(()) };
    let tried: Vec<String> = tx
        .fetch("SELECT buyer FROM deliveries WHERE lead_id = $1", vec![d.lead_id.clone().into()])
        .await?
        .iter()
        .map(|r| r.get("buyer"))
        .collect::<Result<_, _>>()?;
    let mut plan = routing.plan(&lead.view(&d.lead_id), now, &tried);
    // Only the route the rejected delivery came from continues its waterfall.
    plan.routes.retain(|r| {
        r.route == d.route && r.strategy == crate::route::Strategy::Exclusive && r.pull.is_none()
    });
    crate::route::assign::assign_one(tx, &plan, lead.facts(&d.lead_id), now, events).await?;
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
        let status: String = r.try_get(3)?;
        let next: i64 = r.try_get(5)?;
        let id: String = r.try_get(0)?;
        index.insert(id.clone(), out.len());
        out.push(DeliveryRecord {
            next_attempt_at: (status == "scheduled").then(|| crate::clock::rfc3339(next)),
            id,
            buyer: r.try_get(1)?,
            route: r.try_get(2)?,
            status,
            attempts: r.try_get(4)?,
            last_error: r.try_get(6)?,
            price: r.try_get(7)?,
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
        let delivery_id: String = a.try_get(0)?;
        if let Some(d) = index.get(&delivery_id).and_then(|i| out.get_mut(*i)) {
            d.attempt_log.push(serde_json::json!({
                "attempt": a.try_get::<i64, _>(1)?,
                "at": crate::clock::rfc3339(a.try_get(2)?),
                "duration_ms": a.try_get::<i64, _>(3)?,
                "outcome": a.try_get::<String, _>(4)?,
                "status": a.try_get::<Option<i64>, _>(5)?,
                "error": a.try_get::<Option<String>, _>(6)?,
                "response": a.try_get::<Option<String>, _>(7)?,
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

impl StoredLead {
    pub fn view<'a>(&'a self, lead_id: &'a str) -> LeadView<'a> {
        LeadView {
            lead: &self.fields,
            lead_id,
            source: &self.source,
            score: self.score,
            grade: self.grade.as_deref(),
            received_at: self.created_at,
        }
    }

    pub fn facts<'a>(&'a self, lead_id: &'a str) -> crate::route::assign::LeadFacts<'a> {
        crate::route::assign::LeadFacts {
            lead_id,
            source: &self.source,
            product: self.fields.product.as_deref(),
            score: self.score,
        }
    }
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

/// Derives a lead's distribution stage from its push deliveries (after an attempt).
/// Stages set by partners and buyers (`claimed`, `confirmed`, `returned`, `converted`)
/// are not overwritten by delivery bookkeeping.
async fn update_stage(tx: &mut impl Exec, lead_id: &str, now: i64) -> Result<(), StoreError> {
    let statuses: Vec<String> = tx
        .fetch(
            "SELECT status FROM deliveries WHERE lead_id = $1 AND route <> $2",
            vec![lead_id.into(), CLOSED_LOOP_ROUTE.into()],
        )
        .await?
        .iter()
        .map(|r| r.get("status"))
        .collect::<Result<_, _>>()?;
    if statuses.is_empty() {
        return Ok(());
    }
    let has = |s: &str| statuses.iter().any(|x| x == s);
    let stage = if has("delivered") {
        "delivered"
    } else if has("scheduled") {
        "routed"
    } else if has("dead") {
        "undelivered"
    } else {
        "unsold"
    };
    tx.execute(
        "UPDATE leads SET stage = $1, stage_since = CASE WHEN stage = $1 THEN stage_since ELSE $2 END, updated_at = $2 \
         WHERE id = $3 AND stage NOT IN ('claimed', 'confirmed', 'returned', 'converted', 'offered')",
        vec![stage.into(), now.into(), lead_id.into()],
    )
    .await?;
    Ok(())
}

/// Sets a lead's stage (and when it entered it, if it changed).
pub(crate) async fn set_stage(
    tx: &mut impl Exec,
    lead_id: &str,
    stage: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE leads SET stage = $1, stage_since = CASE WHEN stage = $1 THEN stage_since ELSE $2 END, updated_at = $2 WHERE id = $3",
        vec![stage.into(), now.into(), lead_id.into()],
    )
    .await?;
    Ok(())
}

/// The route name of closed-loop relays to source vendors (not the lead's distribution).
pub const CLOSED_LOOP_ROUTE: &str = "closed-loop";
