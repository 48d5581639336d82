//! Lookups for the admin API, replay and tests.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};
use crate::clock::rfc3339;
use crate::submission::StoredSubmission;

/// A lead as stored, with its history.
#[derive(Debug, Clone, Serialize)]
pub struct LeadRecord {
    pub id: String,
    pub status: String,
    pub source: String,
    pub submission_id: String,
    pub record_index: i64,
    pub fields: serde_json::Value,
    pub reasons: serde_json::Value,
    pub warnings: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    pub score: Option<i64>,
    pub grade: Option<String>,
    /// Lifecycle state from scoring thresholds (e.g. `qualified`).
    pub lifecycle: Option<String>,
    /// Distribution: `new`, `routed`, `delivered`, `unsold`, `undelivered`, `offered`,
    /// `claimed`, `confirmed`, `returned`, `converted`, or `needs_review` (held: its
    /// contacts were only guessed from an e-mail without a template).
    pub stage: String,
    /// When the lead entered its stage.
    pub stage_since: Option<String>,
    #[serde(skip)]
    pub stage_since_ms: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub events: Vec<EventRecord>,
    pub deliveries: Vec<super::outbox::DeliveryRecord>,
}

/// One step in a lead's history.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub at: String,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// The events of one stored `steps` row ([`super::commit::compact_events`]), in order.
fn expand_steps(detail: serde_json::Value) -> Result<Vec<EventRecord>, StoreError> {
    let serde_json::Value::Array(steps) = detail else {
        return Err(StoreError::Commit("a stored steps event is not a list".into()));
    };
    Ok(steps
        .into_iter()
        .map(|mut step| EventRecord {
            at: rfc3339(step["at"].as_i64().unwrap_or(0)),
            kind: step["kind"].as_str().unwrap_or("unknown").to_string(),
            detail: step.get_mut("detail").map(serde_json::Value::take).unwrap_or_default(),
        })
        .collect())
}

/// Which submissions to list.
#[derive(Debug, Clone, Default)]
pub struct SubmissionFilter {
    pub status: Option<String>,
    pub source: Option<String>,
    pub limit: i64,
}

fn parse_json(text: &str, what: &'static str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Json { what, source })
}

impl Store {
    /// A lead with its events and deliveries, read from one snapshot (so the stage and
    /// the deliveries always agree).
    pub async fn lead(&self, id: &str) -> Result<Option<LeadRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.dialect == super::Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let Some(row) = sqlx::query(
            "SELECT id, status, source, submission_id, record_index, fields, reasons, warnings, duplicate_of, created_at, updated_at, score, grade, lifecycle, stage, stage_since FROM leads WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let mut events = Vec::new();
        for r in sqlx::query("SELECT at, kind, detail FROM lead_events WHERE lead_id = $1 ORDER BY id")
            .bind(id.to_string())
            .fetch_all(&mut *tx)
            .await?
        {
            let kind: String = r.try_get("kind")?;
            let detail = match r.try_get::<Option<String>, _>("detail")? {
                Some(d) => parse_json(&d, "event")?,
                None => serde_json::Value::Null,
            };
            if kind == super::commit::STEPS_KIND {
                events.extend(expand_steps(detail)?);
            } else {
                events.push(EventRecord { at: rfc3339(r.try_get("at")?), kind, detail });
            }
        }
        Ok(Some(LeadRecord {
            id: row.try_get("id")?,
            status: row.try_get("status")?,
            source: row.try_get("source")?,
            submission_id: row.try_get("submission_id")?,
            record_index: row.try_get("record_index")?,
            fields: parse_json(&row.try_get::<String, _>("fields")?, "fields")?,
            reasons: parse_json(&row.try_get::<String, _>("reasons")?, "reasons")?,
            warnings: parse_json(&row.try_get::<String, _>("warnings")?, "warnings")?,
            duplicate_of: row.try_get("duplicate_of")?,
            created_at: rfc3339(row.try_get("created_at")?),
            updated_at: rfc3339(row.try_get("updated_at")?),
            score: row.try_get("score")?,
            grade: row.try_get("grade")?,
            lifecycle: row.try_get("lifecycle")?,
            stage: row.try_get("stage")?,
            stage_since: row.try_get::<Option<i64>, _>("stage_since")?.map(rfc3339),
            stage_since_ms: row.try_get("stage_since")?,
            events,
            deliveries: super::outbox::deliveries_of(&mut tx, id).await?,
        }))
    }

    pub async fn submission(&self, id: &str) -> Result<Option<StoredSubmission>, StoreError> {
        let row = sqlx::query(
            "SELECT id, source, channel, format, content_type, meta, body, received_at, status, error, attempts FROM submissions WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| submission_from_row(&r, true)).transpose()
    }

    /// Newest first. Bodies are not loaded (use [`Store::submission`] for one).
    pub async fn submissions(&self, filter: &SubmissionFilter) -> Result<Vec<StoredSubmission>, StoreError> {
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        for (column, value) in [("status", &filter.status), ("source", &filter.source)] {
            match value {
                // Spelled as the `submissions_failed` partial index's condition, so SQLite
                // sees the index applies (a bound parameter would not show it).
                Some(v) if column == "status" && v == super::commit::SubmissionStatus::Failed.as_str() => {
                    conditions.push("status = 'failed'".to_string());
                }
                Some(v) => {
                    args.push(v.clone());
                    conditions.push(format!("{column} = ${}", args.len()));
                }
                None => {}
            }
        }
        let where_clause =
            if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let sql = format!(
            "SELECT id, source, channel, format, content_type, meta, NULL AS body, received_at, status, error, attempts, length(body) AS body_bytes \
             FROM submissions {where_clause} ORDER BY received_at DESC, id DESC LIMIT {}",
            filter.limit.clamp(1, 10_000)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = q.bind(a);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let mut s = submission_from_row(r, false)?;
                s.body_bytes = usize::try_from(r.try_get::<i64, _>("body_bytes")?).unwrap_or(0);
                Ok(s)
            })
            .collect()
    }

    /// Ids of the leads a submission produced, in record order.
    pub async fn leads_of_submission(&self, submission_id: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT id FROM leads WHERE submission_id = $1 ORDER BY created_at, record_index")
                .bind(submission_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}

fn submission_from_row(r: &sqlx::any::AnyRow, with_body: bool) -> Result<StoredSubmission, StoreError> {
    let body: Vec<u8> = if with_body { r.try_get("body")? } else { Vec::new() };
    Ok(StoredSubmission {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        channel: r.try_get("channel")?,
        format: r.try_get("format")?,
        content_type: r.try_get("content_type")?,
        meta: parse_json(&r.try_get::<String, _>("meta")?, "meta")?,
        body_bytes: body.len(),
        body,
        received_at: rfc3339(r.try_get("received_at")?),
        received_at_ms: r.try_get("received_at")?,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
        attempts: r.try_get("attempts")?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::commit::{STEPS_KIND, compact_events, event};

    #[test]
    fn a_leads_intake_events_are_stored_as_one_row_and_read_back_one_by_one() {
        let rows = vec![
            event("a", 1, "received", serde_json::json!({"channel": "http"})),
            event("b", 5, "retried", serde_json::json!({})),
            event("a", 2, "accepted", serde_json::json!({})),
            event("a", 3, "routed", serde_json::json!({"buyers": ["x"]})),
        ];
        let stored = compact_events(rows);
        assert_eq!(stored.len(), 2, "one row for a, a plain row for b");
        let row = &stored[0];
        assert_eq!((row.lead_id.as_str(), row.at, row.kind), ("a", 1, STEPS_KIND));
        let events = super::expand_steps(serde_json::from_str(&row.detail).unwrap()).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["received", "accepted", "routed"]);
        assert_eq!(events[2].detail["buyers"][0], "x");
        assert_eq!(events[0].at, crate::clock::rfc3339(1));
        assert_eq!(stored[1].kind, "retried");
    }
}
