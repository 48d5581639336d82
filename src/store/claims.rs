//! The pull pool in the store: offers, claims with leases, confirmations, dispositions,
//! and the sweep that expires leases and offers and records SLA breaches.
//!
//! A claim is a compare-and-set on the offer row (`UPDATE … WHERE status = 'open'`): in
//! SQLite under the single write lock, in PostgreSQL under the row lock, so exactly one
//! claimer wins whatever the number of instances. `claims/next` reads candidates with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL so concurrent claimers do not queue on the same
//! rows. Partner caps are checked and counted in the claim's transaction, under the
//! partner's lock.

use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};

use super::commit::{Stage, begin_write, event, insert_events, insert_rows, lock_keys};
use super::outbox::{CLOSED_LOOP_ROUTE, set_stage, stored_lead};
use super::{Dialect, Store, StoreError, routing};
use crate::route::{Buyer, ClaimOrder, Routing};

/// An offer a partner may see.
#[derive(Debug, Clone, Serialize)]
pub struct OfferRow {
    pub lead_id: String,
    pub route: String,
    pub source: String,
    pub product: Option<String>,
    pub score: i64,
    pub grade: Option<String>,
    #[serde(skip)]
    pub created_at_ms: i64,
    pub offered_at: String,
    pub expires_at: String,
    /// The canonical fields (the API masks them per the partner's preview).
    #[serde(skip)]
    pub fields: crate::lead::Lead,
}

/// How to list offers.
#[derive(Debug, Clone, Default)]
pub struct OfferQuery {
    /// Highest score first instead of newest first.
    pub by_score: bool,
    pub limit: i64,
    pub offset: i64,
    pub product: Option<String>,
    pub min_score: Option<i64>,
    pub state: Option<String>,
}

/// A won claim.
#[derive(Debug, Clone, Serialize)]
pub struct Claimed {
    pub lead_id: String,
    pub claim_id: String,
    pub fields: crate::lead::Lead,
    pub lease_expires_at: String,
}

/// What a claim attempt came to.
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    Claimed(Box<Claimed>),
    /// Another partner has it, or the offer expired (409).
    Taken(String),
    /// Not offered to this partner, or not yet (exclusive-first) (409).
    NotEligible(String),
    /// The partner's cap is reached (409).
    CapReached(String),
    NotFound,
}

/// What a confirmation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmOutcome {
    Confirmed,
    /// No live claim of this partner on the lead (expired or never claimed).
    NoLiveClaim,
}

/// A disposition as reported.
#[derive(Debug, Clone)]
pub struct Disposition {
    pub kind: DispositionKind,
    pub reason: Option<String>,
    pub value: Option<String>,
}

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

/// News for the source vendor (closed loop), sent through the outbox.
#[derive(Debug, Clone)]
pub struct Relay {
    /// The outbox target, `source:<name>`.
    pub target: String,
    pub payload: crate::deliver::Payload,
}

/// What recording a disposition came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispositionOutcome {
    Recorded {
        id: String,
    },
    /// The buyer never got this lead (404).
    NotYours,
    /// A rule refused it (422), e.g. the return window or cap.
    Refused(String),
}

/// Whether `partner` may claim an offer at `now`.
fn eligible(
    partners: &[String],
    exclusive_ms: i64,
    created_at: i64,
    open_at: i64,
    partner: &str,
    now: i64,
) -> bool {
    if !partners.iter().any(|p| p == partner) {
        return false;
    }
    if now >= open_at || exclusive_ms <= 0 {
        return true;
    }
    let turn = usize::try_from((now - created_at).max(0) / exclusive_ms).unwrap_or(usize::MAX);
    partners.get(turn).is_some_and(|p| p == partner)
}

fn like_pattern(partner: &str) -> String {
    format!("%\"{partner}\"%")
}

fn partners_of(json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::Json { what: "partners", source })
}

impl Store {
    /// Open offers `partner` may claim now, per `q`.
    pub async fn offers_for(
        &self,
        partner: &str,
        now: i64,
        q: &OfferQuery,
    ) -> Result<Vec<OfferRow>, StoreError> {
        let mut sql = String::from(
            "SELECT o.lead_id, o.route, o.source, o.product, o.score, o.partners, o.exclusive_ms, o.open_at, \
             o.expires_at, o.created_at, l.fields, l.grade FROM offers o JOIN leads l ON l.id = o.lead_id \
             WHERE o.status = 'open' AND o.expires_at > $1 AND o.partners LIKE $2",
        );
        let mut args: Vec<String> = Vec::new();
        if let Some(p) = &q.product {
            args.push(p.clone());
            sql.push_str(&format!(" AND o.product = ${}", args.len() + 2));
        }
        if let Some(min) = q.min_score {
            sql.push_str(&format!(" AND o.score >= {min}"));
        }
        sql.push_str(if q.by_score {
            " ORDER BY o.score DESC, o.created_at DESC, o.lead_id"
        } else {
            " ORDER BY o.created_at DESC, o.lead_id"
        });
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(like_pattern(partner));
        for a in args {
            query = query.bind(a);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out = Vec::new();
        let mut skipped = 0;
        for r in rows {
            let partners = partners_of(&r.try_get::<String, _>(5)?)?;
            if !eligible(&partners, r.try_get(6)?, r.try_get(9)?, r.try_get(7)?, partner, now) {
                continue;
            }
            let fields: crate::lead::Lead = serde_json::from_str(&r.try_get::<String, _>(10)?)
                .map_err(|source| StoreError::Json { what: "fields", source })?;
            if let Some(state) = &q.state
                && fields.state.as_deref() != Some(state.as_str())
            {
                continue;
            }
            if skipped < q.offset {
                skipped += 1;
                continue;
            }
            let created: i64 = r.try_get(9)?;
            out.push(OfferRow {
                lead_id: r.try_get(0)?,
                route: r.try_get(1)?,
                source: r.try_get(2)?,
                product: r.try_get(3)?,
                score: r.try_get(4)?,
                grade: r.try_get(11)?,
                created_at_ms: created,
                offered_at: crate::clock::rfc3339(created),
                expires_at: crate::clock::rfc3339(r.try_get(8)?),
                fields,
            });
            if out.len() as i64 >= q.limit.clamp(1, 500) {
                break;
            }
        }
        Ok(out)
    }

    /// Claims `lead_id` for `partner` (exactly one claimer wins).
    pub async fn claim(
        &self,
        lead_id: &str,
        partner: &Buyer,
        lease_ms: i64,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tx = begin_write(self).await?;
        lock_keys(&mut tx, &[routing::lock_key(&partner.name)]).await?;
        let row = sqlx::query(
            "SELECT partners, exclusive_ms, open_at, created_at, status, expires_at, claimed_by FROM offers WHERE lead_id = $1",
        )
        .bind(lead_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(ClaimOutcome::NotFound);
        };
        let partners = partners_of(&row.try_get::<String, _>(0)?)?;
        let status: String = row.try_get(4)?;
        let expires_at: i64 = row.try_get(5)?;
        if !partners.iter().any(|p| p == &partner.name) {
            tx.rollback().await?;
            return Ok(ClaimOutcome::NotFound);
        }
        if status != "open" || expires_at <= now {
            tx.rollback().await?;
            let claimed_by: Option<String> = row.try_get(6)?;
            let why = if status == "open" || status == "expired" {
                "the offer expired"
            } else if claimed_by.as_deref() == Some(partner.name.as_str()) {
                "you already claimed this lead"
            } else {
                "another partner claimed it"
            };
            return Ok(ClaimOutcome::Taken(why.into()));
        }
        if !eligible(&partners, row.try_get(1)?, row.try_get(3)?, row.try_get(2)?, &partner.name, now) {
            tx.rollback().await?;
            return Ok(ClaimOutcome::NotEligible(
                "another partner has this offer exclusively for now".into(),
            ));
        }
        let result = self.take_claim(&mut tx, lead_id, partner, lease_ms, now).await?;
        match &result {
            ClaimOutcome::Claimed(_) => tx.commit().await?,
            _ => tx.rollback().await?,
        }
        Ok(result)
    }

    /// Claims the best offer `partner` may claim now (its claim order), if any.
    pub async fn claim_next(
        &self,
        partner: &Buyer,
        order: ClaimOrder,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<Claimed>, StoreError> {
        let mut tx = begin_write(self).await?;
        lock_keys(&mut tx, &[routing::lock_key(&partner.name)]).await?;
        let order_by = match order {
            ClaimOrder::Fifo => "created_at ASC, lead_id",
            ClaimOrder::Score => "score DESC, created_at ASC, lead_id",
        };
        let skip = if self.dialect == Dialect::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "SELECT lead_id, partners, exclusive_ms, open_at, created_at FROM offers \
             WHERE status = 'open' AND expires_at > $1 AND partners LIKE $2 ORDER BY {order_by} LIMIT 200 {skip}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(like_pattern(&partner.name))
            .fetch_all(&mut *tx)
            .await?;
        for r in rows {
            let partners = partners_of(&r.try_get::<String, _>(1)?)?;
            if !eligible(&partners, r.try_get(2)?, r.try_get(4)?, r.try_get(3)?, &partner.name, now) {
                continue;
            }
            let lead_id: String = r.try_get(0)?;
            return match self.take_claim(&mut tx, &lead_id, partner, lease_ms, now).await? {
                ClaimOutcome::Claimed(c) => {
                    tx.commit().await?;
                    Ok(Some(*c))
                }
                _ => {
                    tx.rollback().await?;
                    Ok(None)
                }
            };
        }
        tx.rollback().await?;
        Ok(None)
    }

    /// Caps, compare-and-set, counters, claim row, event; in the caller's transaction.
    async fn take_claim(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
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
        let won = sqlx::query(
            "UPDATE offers SET status = 'claimed', claim_id = $1, claimed_by = $2, lease_until = $3, updated_at = $4 \
             WHERE lead_id = $5 AND status = 'open' AND expires_at > $4 RETURNING created_at",
        )
        .bind(claim_id.clone())
        .bind(partner.name.clone())
        .bind(lease_until)
        .bind(now)
        .bind(lead_id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
        let Some(won) = won else {
            return Ok(ClaimOutcome::Taken("another partner claimed it".into()));
        };
        let offered_at: i64 = won.try_get(0)?;
        routing::take_counters(tx, &partner.name, &caps).await?;
        sqlx::query(
            "INSERT INTO claims (id, lead_id, partner, status, offered_at, claimed_at, lease_until, cap_periods) \
             VALUES ($1, $2, $3, 'leased', $4, $5, $6, $7)",
        )
        .bind(claim_id.clone())
        .bind(lead_id.to_string())
        .bind(partner.name.clone())
        .bind(offered_at)
        .bind(now)
        .bind(lease_until)
        .bind(serde_json::to_string(&caps).map_err(|source| StoreError::Json { what: "caps", source })?)
        .execute(&mut **tx)
        .await?;
        let ev = event(
            lead_id,
            now,
            "claimed",
            serde_json::json!({ "partner": partner.name, "claim_id": claim_id, "lease_until": crate::clock::rfc3339(lease_until) }),
        );
        insert_events(tx, vec![ev]).await?;
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
        &self,
        lead_id: &str,
        partner: &str,
        now: i64,
    ) -> Result<ConfirmOutcome, StoreError> {
        let mut tx = begin_write(self).await?;
        let row = sqlx::query(
            "UPDATE offers SET status = 'confirmed', lease_until = NULL, updated_at = $1 \
             WHERE lead_id = $2 AND status = 'claimed' AND claimed_by = $3 AND lease_until > $1 RETURNING claim_id",
        )
        .bind(now)
        .bind(lead_id.to_string())
        .bind(partner.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(ConfirmOutcome::NoLiveClaim);
        };
        let claim_id: String = row.try_get(0)?;
        sqlx::query("UPDATE claims SET status = 'confirmed', confirmed_at = $1 WHERE id = $2")
            .bind(now)
            .bind(claim_id.clone())
            .execute(&mut *tx)
            .await?;
        let ev = event(
            lead_id,
            now,
            "claim_confirmed",
            serde_json::json!({ "partner": partner, "claim_id": claim_id }),
        );
        insert_events(&mut tx, vec![ev]).await?;
        set_stage(&mut tx, lead_id, Stage::Confirmed, now).await?;
        tx.commit().await?;
        crate::telemetry::claim_event(partner, lead_id, "confirmed");
        Ok(ConfirmOutcome::Confirmed)
    }

    /// Records a disposition by `buyer` (a partner's claim or a push delivery).
    /// `relay` queues the news to the source vendor (closed loop), if configured.
    pub async fn disposition(
        &self,
        lead_id: &str,
        buyer: &Buyer,
        delivery_id: Option<&str>,
        d: &Disposition,
        relay: Option<Relay>,
        now: i64,
    ) -> Result<DispositionOutcome, StoreError> {
        let mut tx = begin_write(self).await?;
        lock_keys(&mut tx, &[routing::lock_key(&buyer.name)]).await?;
        // When did the buyer get the lead?
        let got_at: Option<i64> = match delivery_id {
            Some(id) => sqlx::query(
                "SELECT updated_at FROM deliveries WHERE id = $1 AND lead_id = $2 AND buyer = $3 AND status = 'delivered'",
            )
            .bind(id.to_string())
            .bind(lead_id.to_string())
            .bind(buyer.name.clone())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?,
            None => sqlx::query(
                "SELECT claimed_at FROM claims WHERE lead_id = $1 AND partner = $2 AND status IN ('leased', 'confirmed') \
                 ORDER BY claimed_at DESC LIMIT 1",
            )
            .bind(lead_id.to_string())
            .bind(buyer.name.clone())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?,
        };
        let Some(got_at) = got_at else {
            tx.rollback().await?;
            return Ok(DispositionOutcome::NotYours);
        };
        if d.kind == DispositionKind::Returned {
            let window = i64::try_from(buyer.returns.window.as_millis()).unwrap_or(i64::MAX / 4);
            if now > got_at.saturating_add(window) {
                tx.rollback().await?;
                return Ok(DispositionOutcome::Refused(format!(
                    "the return window of {} has passed",
                    humanize(buyer.returns.window)
                )));
            }
            if let Some(cap) = buyer.returns.cap {
                let since = month_start(buyer.caps.timezone(), now);
                let used: i64 = sqlx::query(
                    "SELECT COUNT(*) FROM dispositions WHERE buyer = $1 AND kind = 'returned' AND at >= $2",
                )
                .bind(buyer.name.clone())
                .bind(since)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
                if used >= i64::from(cap) {
                    tx.rollback().await?;
                    return Ok(DispositionOutcome::Refused(format!(
                        "the return cap of {cap} per month is reached"
                    )));
                }
            }
        }
        let id = crate::submission::new_id();
        sqlx::query(
            "INSERT INTO dispositions (id, lead_id, buyer, delivery_id, kind, reason, value, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.clone())
        .bind(lead_id.to_string())
        .bind(buyer.name.clone())
        .bind(delivery_id.map(str::to_string))
        .bind(d.kind.as_str())
        .bind(d.reason.clone())
        .bind(d.value.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let ev = event(
            lead_id,
            now,
            "disposition",
            serde_json::json!({ "buyer": buyer.name, "status": d.kind, "reason": d.reason, "value": d.value, "delivery_id": delivery_id }),
        );
        insert_events(&mut tx, vec![ev]).await?;
        match d.kind {
            DispositionKind::Returned => set_stage(&mut tx, lead_id, Stage::Returned, now).await?,
            DispositionKind::Converted => set_stage(&mut tx, lead_id, Stage::Converted, now).await?,
            _ => {}
        }
        if let Some(relay) = relay {
            let payload = serde_json::to_string(&relay.payload)
                .map_err(|source| StoreError::Json { what: "payload", source })?;
            let row: Vec<super::commit::Arg> = vec![
                crate::submission::new_id().into(),
                lead_id.into(),
                relay.target.into(),
                CLOSED_LOOP_ROUTE.into(),
                payload.into(),
                "scheduled".into(),
                0i64.into(),
                now.into(),
                "[]".into(),
                None::<String>.into(),
                now.into(),
                now.into(),
                super::commit::Arg::OptText(None),
                super::commit::Arg::OptInt(None),
            ];
            insert_rows(&mut tx, routing::DELIVERY_INSERT, routing::DELIVERY_COLUMNS, vec![row], "").await?;
            if self.dialect == Dialect::Postgres {
                sqlx::query("SELECT pg_notify('leadgate_outbox', '')").execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        crate::telemetry::disposition(lead_id, &buyer.name, d.kind.as_str());
        Ok(DispositionOutcome::Recorded { id })
    }

    /// Expires leases and offers, runs expired offers' fallbacks and records SLA
    /// breaches. Returns how many rows changed.
    pub async fn sweep_pool(&self, routing: &Routing, now: i64) -> Result<usize, StoreError> {
        let mut changed = 0;
        // Leases that ran out: the lead goes back to the pool.
        let expired = sqlx::query(
            "SELECT lead_id, claim_id, claimed_by FROM offers WHERE status = 'claimed' AND lease_until <= $1 LIMIT 500",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for r in expired {
            let (lead_id, claim_id, partner): (String, String, String) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            let mut tx = begin_write(self).await?;
            lock_keys(&mut tx, &[routing::lock_key(&partner)]).await?;
            let reopened = sqlx::query(
                "UPDATE offers SET status = 'open', claim_id = NULL, claimed_by = NULL, lease_until = NULL, updated_at = $1 \
                 WHERE lead_id = $2 AND claim_id = $3 AND status = 'claimed'",
            )
            .bind(now)
            .bind(lead_id.clone())
            .bind(claim_id.clone())
            .execute(&mut *tx)
            .await?;
            if reopened.rows_affected() == 0 {
                tx.rollback().await?;
                continue;
            }
            let caps: Option<String> = sqlx::query(
                "UPDATE claims SET status = 'expired', ended_at = $1 WHERE id = $2 RETURNING cap_periods",
            )
            .bind(now)
            .bind(claim_id.clone())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
            let caps: Vec<crate::route::caps::Counter> =
                caps.and_then(|c| serde_json::from_str(&c).ok()).unwrap_or_default();
            routing::release_counters(&mut tx, &partner, &caps).await?;
            let ev = event(
                &lead_id,
                now,
                "claim_expired",
                serde_json::json!({ "partner": partner, "claim_id": claim_id }),
            );
            insert_events(&mut tx, vec![ev]).await?;
            set_stage(&mut tx, &lead_id, Stage::Offered, now).await?;
            tx.commit().await?;
            crate::telemetry::claim_event(&partner, &lead_id, "expired");
            changed += 1;
        }

        // Offers nobody claimed in time: the route's fallback.
        let stale = sqlx::query("SELECT lead_id, route, partners FROM offers WHERE status = 'open' AND expires_at <= $1 LIMIT 500")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        for r in stale {
            let (lead_id, route): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let partners = partners_of(&r.try_get::<String, _>(2)?)?;
            changed += usize::from(self.expire_offer(routing, &lead_id, &route, &partners, now).await?);
        }

        changed += self.record_sla_breaches(routing, now).await?;
        Ok(changed)
    }

    async fn expire_offer(
        &self,
        routing: &Routing,
        lead_id: &str,
        route: &str,
        partners: &[String],
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = begin_write(self).await?;
        let Some(lead) = stored_lead(&mut tx, lead_id).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let plan = routing.plan_after(route, &lead.view(lead_id), now, partners);
        let mut keys: Vec<String> = plan.buyers().map(routing::lock_key).collect();
        keys.sort();
        keys.dedup();
        lock_keys(&mut tx, &keys).await?;
        let done = sqlx::query(
            "UPDATE offers SET status = 'expired', updated_at = $1 WHERE lead_id = $2 AND status = 'open'",
        )
        .bind(now)
        .bind(lead_id.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut events = vec![event(lead_id, now, "offer_expired", serde_json::json!({ "route": route }))];
        let stage =
            crate::route::assign::assign_one(&mut tx, &plan, lead.facts(lead_id), now, &mut events).await?;
        insert_events(&mut tx, events).await?;
        set_stage(&mut tx, lead_id, stage, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// `sla_breach` events for offers not claimed, and leads not dispositioned, in time.
    async fn record_sla_breaches(&self, routing: &Routing, now: i64) -> Result<usize, StoreError> {
        let mut found = 0;
        for route in &routing.routes {
            if let Some(within) = route.sla.claim_within {
                let cutoff = now - i64::try_from(within.as_millis()).unwrap_or(i64::MAX / 4);
                let rows = sqlx::query(
                    "SELECT lead_id FROM offers WHERE route = $1 AND status = 'open' AND sla_breached = 0 AND created_at <= $2 LIMIT 500",
                )
                .bind(route.name.clone())
                .bind(cutoff)
                .fetch_all(&self.pool)
                .await?;
                for r in rows {
                    let lead_id: String = r.try_get(0)?;
                    found += self
                        .breach(&lead_id, &format!("route:{}", route.name), "claim", &route.name, now)
                        .await?;
                }
            }
            if let Some(within) = route.sla.disposition_within {
                let cutoff = now - i64::try_from(within.as_millis()).unwrap_or(i64::MAX / 4);
                let rows = sqlx::query(
                    "SELECT lead_id, buyer FROM deliveries d WHERE route = $1 AND status = 'delivered' AND updated_at <= $2 \
                     AND NOT EXISTS (SELECT 1 FROM dispositions x WHERE x.lead_id = d.lead_id AND x.buyer = d.buyer) \
                     AND NOT EXISTS (SELECT 1 FROM sla_breaches s WHERE s.lead_id = d.lead_id AND s.buyer = d.buyer AND s.kind = 'disposition') \
                     UNION SELECT c.lead_id, c.partner FROM claims c JOIN offers o ON o.lead_id = c.lead_id \
                     WHERE o.route = $1 AND c.status = 'confirmed' AND c.confirmed_at <= $2 \
                     AND NOT EXISTS (SELECT 1 FROM dispositions x WHERE x.lead_id = c.lead_id AND x.buyer = c.partner) \
                     AND NOT EXISTS (SELECT 1 FROM sla_breaches s WHERE s.lead_id = c.lead_id AND s.buyer = c.partner AND s.kind = 'disposition') \
                     LIMIT 500",
                )
                .bind(route.name.clone())
                .bind(cutoff)
                .fetch_all(&self.pool)
                .await?;
                for r in rows {
                    let (lead_id, buyer): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    found += self.breach(&lead_id, &buyer, "disposition", &route.name, now).await?;
                }
            }
        }
        Ok(found)
    }

    async fn breach(
        &self,
        lead_id: &str,
        buyer: &str,
        kind: &str,
        route: &str,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut tx = begin_write(self).await?;
        let inserted = sqlx::query(
            "INSERT INTO sla_breaches (lead_id, buyer, kind, at) VALUES ($1, $2, $3, $4) ON CONFLICT (lead_id, buyer, kind) DO NOTHING",
        )
        .bind(lead_id.to_string())
        .bind(buyer.to_string())
        .bind(kind.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        if kind == "claim" {
            sqlx::query("UPDATE offers SET sla_breached = 1 WHERE lead_id = $1")
                .bind(lead_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let ev = event(
            lead_id,
            now,
            "sla_breach",
            serde_json::json!({ "kind": kind, "route": route, "buyer": buyer }),
        );
        insert_events(&mut tx, vec![ev]).await?;
        tx.commit().await?;
        crate::telemetry::sla_breached(lead_id, buyer, kind, route);
        Ok(1)
    }
}

/// The first instant of the calendar month containing `now` in `tz`.
fn month_start(tz: chrono_tz::Tz, now: i64) -> i64 {
    use chrono::{Datelike, TimeZone};
    let Some(utc) = chrono::DateTime::from_timestamp_millis(now) else { return now };
    let local = utc.with_timezone(&tz);
    let Some(first) = local.date_naive().with_day(1).and_then(|d| d.and_hms_opt(0, 0, 0)) else { return now };
    tz.from_local_datetime(&first).earliest().map_or(now, |t| t.timestamp_millis())
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) {
        format!("{} days", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{} hours", s / 3600)
    } else {
        format!("{} minutes", s / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_first_hands_over_in_turn_then_opens() {
        let p = vec!["a".to_string(), "b".to_string()];
        // Created at 0, 10 ms each, open at 20.
        assert!(eligible(&p, 10, 0, 20, "a", 5));
        assert!(!eligible(&p, 10, 0, 20, "b", 5));
        assert!(eligible(&p, 10, 0, 20, "b", 15));
        assert!(!eligible(&p, 10, 0, 20, "a", 15));
        assert!(eligible(&p, 10, 0, 20, "a", 25));
        assert!(!eligible(&p, 10, 0, 20, "c", 25));
        assert!(eligible(&p, 0, 0, 0, "b", 0));
    }

    #[test]
    fn month_start_is_local() {
        // 2026-11-01T03:00Z is still October in Chicago.
        let t = 1_793_502_000_000;
        let start = month_start(chrono_tz::America::Chicago, t);
        assert_eq!(crate::clock::rfc3339(start), "2026-10-01T05:00:00Z");
    }
}
