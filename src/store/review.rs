//! Leads by distribution stage, for the admin API: above all the `needs_review` ones
//! that template-free e-mail extraction held because it only guessed their contacts.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};
use crate::clock::rfc3339;

/// The stage of a lead held for an operator's review.
pub const NEEDS_REVIEW: &str = "needs_review";

/// One lead in a stage listing (its history is at `GET /v1/leads/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct StagedLead {
    pub id: String,
    pub source: String,
    pub submission_id: String,
    pub status: String,
    pub stage: String,
    pub fields: serde_json::Value,
    /// Why it is held (the `needs_review` event's reason), when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
    pub created_at: String,
}

impl Store {
    /// Leads in `stage` (optionally of one source), newest first, at most `limit`.
    pub async fn leads_in_stage(
        &self,
        stage: &str,
        source: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StagedLead>, StoreError> {
        let source_clause = if source.is_some() { " AND l.source = $2" } else { "" };
        let sql = format!(
            "SELECT l.id, l.source, l.submission_id, l.status, l.stage, l.fields, l.created_at, \
             (SELECT e.detail FROM lead_events e WHERE e.lead_id = l.id AND e.kind IN ('{NEEDS_REVIEW}', '{STEPS}') ORDER BY e.id DESC LIMIT 1) AS review_detail \
             FROM leads l WHERE l.stage = $1{source_clause} ORDER BY l.created_at DESC, l.id DESC LIMIT {}",
            limit.clamp(1, 10_000),
            STEPS = super::commit::STEPS_KIND,
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(stage.to_owned());
        if let Some(s) = source {
            q = q.bind(s.to_owned());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let fields: String = r.try_get("fields")?;
                let detail: Option<String> = r.try_get("review_detail")?;
                let review_reason = detail
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                    .and_then(|d| review_detail(&d).and_then(|v| v.as_str()).map(str::to_owned));
                Ok(StagedLead {
                    id: r.try_get("id")?,
                    source: r.try_get("source")?,
                    submission_id: r.try_get("submission_id")?,
                    status: r.try_get("status")?,
                    stage: r.try_get("stage")?,
                    fields: serde_json::from_str(&fields)
                        .map_err(|source| StoreError::Json { what: "fields", source })?,
                    review_reason,
                    created_at: rfc3339(r.try_get("created_at")?),
                })
            })
            .collect()
    }
}

impl Store {
    /// A lead's submission, record index and stage (what releasing it from review needs).
    pub async fn lead_stage(&self, id: &str) -> Result<Option<(String, i64, String)>, StoreError> {
        let row = sqlx::query("SELECT submission_id, record_index, stage FROM leads WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("submission_id")?, r.try_get("record_index")?, r.try_get("stage")?)))
            .transpose()
    }
}

/// The reason in a `needs_review` event's detail, or in the `needs_review` step of an
/// intake row that holds several events (see `commit::compact_events`).
fn review_detail(detail: &serde_json::Value) -> Option<&serde_json::Value> {
    match detail.as_array() {
        Some(steps) => {
            steps.iter().rev().find(|s| s["kind"] == NEEDS_REVIEW).and_then(|s| s["detail"].get("reason"))
        }
        None => detail.get("reason"),
    }
}
