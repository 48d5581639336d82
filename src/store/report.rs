//! The rows reports are computed from: every lead received in a period and what became
//! of it (deliveries, claims, dispositions, SLA breaches).

use sqlx::Row;

use super::{Store, StoreError};

/// Facts about the leads received in a period.
#[derive(Debug, Clone, Default)]
pub struct ReportRows {
    /// (lead id, source, status)
    pub leads: Vec<(String, String, String)>,
    /// (lead id, buyer, status, delivered-or-last-update at)
    pub deliveries: Vec<(String, String, String, i64)>,
    /// (lead id, partner, status, offered at, claimed at)
    pub claims: Vec<(String, String, String, i64, i64)>,
    /// (lead id, buyer, kind, at)
    pub dispositions: Vec<(String, String, String, i64)>,
    /// (lead id, buyer)
    pub breaches: Vec<(String, String)>,
}

const COHORT: &str = "SELECT id FROM leads WHERE created_at >= $1 AND created_at < $2";

impl Store {
    /// Everything about leads received in `[from, to)` (unix ms).
    pub async fn report_rows(&self, from: i64, to: i64) -> Result<ReportRows, StoreError> {
        let mut out = ReportRows::default();
        for r in
            sqlx::query("SELECT id, source, status FROM leads WHERE created_at >= $1 AND created_at < $2")
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?
        {
            out.leads.push((r.try_get("id")?, r.try_get("source")?, r.try_get("status")?));
        }
        let sql = format!(
            "SELECT lead_id, buyer, status, updated_at FROM deliveries WHERE route <> $3 AND lead_id IN ({COHORT})"
        );
        for r in sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(from)
            .bind(to)
            .bind(super::outbox::CLOSED_LOOP_ROUTE)
            .fetch_all(&self.pool)
            .await?
        {
            out.deliveries.push((
                r.try_get("lead_id")?,
                r.try_get("buyer")?,
                r.try_get("status")?,
                r.try_get("updated_at")?,
            ));
        }
        let sql = format!(
            "SELECT lead_id, partner, status, offered_at, claimed_at FROM claims WHERE lead_id IN ({COHORT})"
        );
        for r in sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from).bind(to).fetch_all(&self.pool).await? {
            out.claims.push((
                r.try_get("lead_id")?,
                r.try_get("partner")?,
                r.try_get("status")?,
                r.try_get("offered_at")?,
                r.try_get("claimed_at")?,
            ));
        }
        let sql = format!("SELECT lead_id, buyer, kind, at FROM dispositions WHERE lead_id IN ({COHORT})");
        for r in sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from).bind(to).fetch_all(&self.pool).await? {
            out.dispositions.push((
                r.try_get("lead_id")?,
                r.try_get("buyer")?,
                r.try_get("kind")?,
                r.try_get("at")?,
            ));
        }
        let sql = format!("SELECT lead_id, buyer FROM sla_breaches WHERE lead_id IN ({COHORT})");
        for r in sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from).bind(to).fetch_all(&self.pool).await? {
            out.breaches.push((r.try_get("lead_id")?, r.try_get("buyer")?));
        }
        Ok(out)
    }
}
