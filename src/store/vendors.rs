//! Meta Lead Ads fetches in the store: enqueue from a notification, lease the due ones,
//! record each attempt's result under the lease.
//!
//! Same discipline as the outbox: leasing is one short transaction (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), the Graph API call happens with
//! no transaction open, and a result is written only while the lease is still ours.

use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};

use super::commit::begin_write;
use super::{Store, StoreError};
use crate::clock::rfc3339;
use crate::submission::new_id;

/// A lead to fetch, as a notification announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMetaFetch {
    pub source: String,
    pub leadgen_id: String,
    pub page_id: Option<String>,
    pub form_id: Option<String>,
    pub ad_id: Option<String>,
    pub adgroup_id: Option<String>,
    pub notification_id: String,
}

/// A fetch leased by this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaFetch {
    pub id: String,
    pub source: String,
    pub leadgen_id: String,
    pub page_id: Option<String>,
    pub form_id: Option<String>,
    pub ad_id: Option<String>,
    pub adgroup_id: Option<String>,
    pub notification_id: String,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// A fetch as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MetaFetchRecord {
    pub id: String,
    pub source: String,
    pub leadgen_id: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub notification_id: String,
    pub submission_id: Option<String>,
    pub created_at: String,
}

const COLUMNS: &str =
    "id, source, leadgen_id, page_id, form_id, ad_id, adgroup_id, notification_id, attempts";

fn leased(r: &sqlx::any::AnyRow) -> Result<MetaFetch, StoreError> {
    Ok(MetaFetch {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        leadgen_id: r.try_get("leadgen_id")?,
        page_id: r.try_get("page_id")?,
        form_id: r.try_get("form_id")?,
        ad_id: r.try_get("ad_id")?,
        adgroup_id: r.try_get("adgroup_id")?,
        notification_id: r.try_get("notification_id")?,
        attempts: r.try_get("attempts")?,
    })
}

impl Store {
    /// Records the fetches a notification announces. Leads already known for their source
    /// are left alone; the new ones are returned leased to `owner` until `lease_until`, so
    /// the caller can make the first attempt at once without a worker taking it too.
    pub async fn meta_enqueue(
        &self,
        rows: &[NewMetaFetch],
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<MetaFetch>, StoreError> {
        let mut out = Vec::new();
        let mut tx = begin_write(self).await?;
        for f in rows {
            let row = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO meta_fetches (id, source, leadgen_id, page_id, form_id, ad_id, adgroup_id, notification_id, \
                 status, attempts, next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $10, $11, $9, $9) \
                 ON CONFLICT (source, leadgen_id) DO NOTHING RETURNING {COLUMNS}"
            )))
            .bind(new_id())
            .bind(f.source.clone())
            .bind(f.leadgen_id.clone())
            .bind(f.page_id.clone())
            .bind(f.form_id.clone())
            .bind(f.ad_id.clone())
            .bind(f.adgroup_id.clone())
            .bind(f.notification_id.clone())
            .bind(now)
            .bind(owner.to_string())
            .bind(lease_until)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = row {
                out.push(leased(&r)?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Leases up to `limit` due fetches for `lease_ms`.
    pub async fn meta_lease_due(
        &self,
        owner: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<MetaFetch>, StoreError> {
        let rows = self.lease_rows("meta_fetches", "pending", COLUMNS, owner, now, lease_ms, limit).await?;
        rows.iter().map(leased).collect()
    }

    /// When the next pending fetch can be leased (a leased one: when its lease ends), if any.
    pub async fn meta_next_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at \
             THEN lease_until ELSE next_attempt_at END) AS next_due FROM meta_fetches WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("next_due")?)
    }

    /// Gives a lease back without recording an attempt (an attempt abandoned at shutdown):
    /// the fetch is due again at once, for whichever instance looks first.
    pub async fn meta_release(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE meta_fetches SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The lead was fetched and committed as `submission_id`. False when the lease was lost.
    pub async fn meta_fetched(
        &self,
        id: &str,
        owner: &str,
        submission_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE meta_fetches SET status = 'fetched', attempts = attempts + 1, submission_id = $1, \
             last_error = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $2 \
             WHERE id = $3 AND lease_owner = $4",
        )
        .bind(submission_id.to_string())
        .bind(now)
        .bind(id.to_string())
        .bind(owner.to_string())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The attempt failed: try again at `retry_at`, or give up (`None`: dead).
    pub async fn meta_failed(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (status, at) = match retry_at {
            Some(at) => ("pending", at),
            None => ("dead", now),
        };
        let r = sqlx::query(
            "UPDATE meta_fetches SET status = $1, attempts = attempts + 1, next_attempt_at = $2, last_error = $3, \
             lease_owner = NULL, lease_until = NULL, updated_at = $4 WHERE id = $5 AND lease_owner = $6",
        )
        .bind(status)
        .bind(at)
        .bind(error.to_string())
        .bind(now)
        .bind(id.to_string())
        .bind(owner.to_string())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A dead fetch goes back to pending, due now, with a fresh schedule. False when the
    /// fetch is not dead (or does not exist).
    pub async fn meta_requeue(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE meta_fetches SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'dead'",
        )
        .bind(now)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Fetches, newest first, optionally of one source and/or status.
    pub async fn meta_fetches(
        &self,
        source: Option<&str>,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MetaFetchRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        for (column, value) in [("source", source), ("status", status)] {
            if let Some(v) = value {
                args.push(v.to_string());
                conditions.push(format!("{column} = ${}", args.len()));
            }
        }
        let where_clause =
            if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let sql = format!(
            "SELECT id, source, leadgen_id, status, attempts, next_attempt_at, last_error, notification_id, \
             submission_id, created_at FROM meta_fetches {where_clause} ORDER BY created_at DESC, id DESC LIMIT {}",
            limit.clamp(1, 10_000)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for a in args {
            q = q.bind(a);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                let next: i64 = r.try_get("next_attempt_at")?;
                Ok(MetaFetchRecord {
                    id: r.try_get("id")?,
                    source: r.try_get("source")?,
                    leadgen_id: r.try_get("leadgen_id")?,
                    next_attempt_at: (status == "pending").then(|| rfc3339(next)),
                    status,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                    notification_id: r.try_get("notification_id")?,
                    submission_id: r.try_get("submission_id")?,
                    created_at: rfc3339(r.try_get("created_at")?),
                })
            })
            .collect()
    }
}
