//! What the write path loads and saves, in the caller's transaction: locks on keys,
//! stored answers, dedupe key owners, a replay's earlier leads; submissions, leads,
//! dedupe keys, answers and events. The decisions are the pipeline's
//! ([`crate::pipeline::commit`]); this module only knows the tables.
//!
//! Exactness is the database's: SQLite's `BEGIN IMMEDIATE` gives a batch the single write
//! lock; on PostgreSQL a batch first takes transaction-scoped advisory locks on every key
//! it touches ([`lock_keys`], in sorted order, so two instances cannot deadlock), and reads
//! after the locks are granted see every earlier commit. The `dedupe_keys` primary key
//! backs this up: a second owner of a live key is impossible.
//!
//! Statements are multi-row and per batch, not per lead: the cost of a batch is a
//! handful of round trips whatever its size.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};

pub(crate) use super::tx::Arg;
use super::tx::{Exec, Row};
use super::{Dialect, Store, StoreError, param_list, value_rows};

/// Rows per multi-row statement, largest first.
const CHUNK_ROWS: [usize; 5] = [256, 64, 16, 4, 1];

/// Most bound parameters per statement (SQLite allows 32766, PostgreSQL 65535).
const MAX_PARAMS: usize = 30_000;

/// Runs `INSERT … VALUES (…), (…) <suffix>` in chunks that stay under the parameter limit.
pub(crate) async fn insert_rows(
    tx: &mut impl Exec,
    head: &str,
    cols: usize,
    rows: Vec<Vec<Arg>>,
    suffix: &str,
) -> Result<(), StoreError> {
    let max_rows = (MAX_PARAMS / cols).max(1);
    let positional = tx.positional();
    let mut rows = rows.into_iter().peekable();
    let mut left = rows.len();
    while rows.peek().is_some() {
        // A few statement shapes (rows per statement), so prepared statements are reused
        // whatever the batch size.
        let size = CHUNK_ROWS.iter().copied().find(|&n| n <= left && n <= max_rows).unwrap_or(1);
        left -= size;
        let mut args = Vec::with_capacity(size * cols);
        for row in rows.by_ref().take(size) {
            args.extend(row);
        }
        let sql = format!("{head} VALUES {} {suffix}", value_rows(size, cols, positional));
        tx.execute(&sql, args).await?;
    }
    Ok(())
}

/// `SELECT <cols> FROM <table> WHERE <key_col> IN (…)` for many keys, chunked.
async fn select_in(tx: &mut impl Exec, select: &str, keys: &[String]) -> Result<Vec<Row>, StoreError> {
    let mut out = Vec::new();
    let positional = tx.positional();
    for chunk in keys.chunks(MAX_PARAMS) {
        let sql = format!("{select} IN ({})", param_list(chunk.len(), positional));
        out.extend(tx.fetch(&sql, chunk.iter().map(|k| Arg::Text(k.clone())).collect()).await?);
    }
    Ok(out)
}

/// Opens the write transaction the engine needs for check-then-insert to be exact.
pub(crate) async fn begin_write(store: &Store) -> Result<Transaction<'static, Any>, StoreError> {
    Ok(match store.dialect {
        Dialect::Sqlite => store.pool.begin_with("BEGIN IMMEDIATE").await?,
        Dialect::Postgres => store.pool.begin().await?,
    })
}

/// [`begin_write`] on a connection the caller keeps (the group-commit writer keeps one,
/// so its page cache stays warm across commits).
pub(crate) async fn begin_write_on<'c>(
    dialect: Dialect,
    conn: &'c mut sqlx::AnyConnection,
) -> Result<Transaction<'c, Any>, StoreError> {
    use sqlx::Connection as _;
    Ok(match dialect {
        Dialect::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        Dialect::Postgres => conn.begin().await?,
    })
}

/// Serializes writers that touch the same keys (PostgreSQL only; SQLite's write lock
/// already serializes every writer).
pub(crate) async fn lock_keys(tx: &mut impl Exec, keys: &[String]) -> Result<(), StoreError> {
    if tx.dialect() != Dialect::Postgres || keys.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<i64> = keys.iter().map(|k| lock_id(k)).collect();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(5000) {
        let values: Vec<String> = chunk.iter().map(|i| format!("({i})")).collect();
        // The ids are integers computed here, never input: inlining them is safe.
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(x) AS l FROM (VALUES {}) AS v(x) ORDER BY x) AS s",
            values.join(", ")
        );
        tx.execute(&sql, Vec::new()).await?;
    }
    Ok(())
}

fn lock_id(key: &str) -> i64 {
    let d = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

/// One event of a lead's history (`lead_events`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewEvent {
    pub lead_id: String,
    pub at: i64,
    /// One of the code's names (`received`, `routed`, …).
    pub kind: &'static str,
    /// JSON.
    pub detail: String,
}

/// A lead's event at `at`.
pub(crate) fn event(lead_id: &str, at: i64, kind: &'static str, detail: serde_json::Value) -> NewEvent {
    NewEvent { lead_id: lead_id.to_string(), at, kind, detail: detail.to_string() }
}

const EVENT_INSERT: &str = "INSERT INTO lead_events (lead_id, at, kind, detail)";

/// The kind of a stored row that holds several events of one lead (see [`compact_events`]).
pub(crate) const STEPS_KIND: &str = "steps";

/// Intake writes a lead's first steps together (received, normalized, the outcome, scored,
/// routed or offered or unsold): one `lead_events` row holds them all, in order, and the
/// lead's history shows them one by one ([`super::reads`]). Fewer rows and index entries
/// per lead on the write path, the same history on the read path. A lead with one event
/// in the batch keeps a plain row.
pub(crate) fn compact_events(events: Vec<NewEvent>) -> Vec<NewEvent> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<NewEvent>> = HashMap::new();
    for e in events {
        let group = groups.entry(e.lead_id.clone()).or_default();
        if group.is_empty() {
            order.push(e.lead_id.clone());
        }
        group.push(e);
    }
    let mut out = Vec::with_capacity(order.len());
    for lead in order {
        let Some(mut group) = groups.remove(&lead) else { continue };
        if group.len() == 1 {
            out.extend(group.pop());
            continue;
        }
        let first_at = group.first().map_or(0, |e| e.at);
        let mut steps = String::with_capacity(group.iter().map(|e| e.detail.len() + 48).sum());
        steps.push('[');
        for (i, e) in group.iter().enumerate() {
            if i > 0 {
                steps.push(',');
            }
            // `detail` is JSON already; `kind` is one of the code's names.
            steps.push_str(&format!(
                "{{\"at\":{},\"kind\":{},\"detail\":{}}}",
                e.at,
                serde_json::Value::from(e.kind),
                e.detail
            ));
        }
        steps.push(']');
        out.push(NewEvent { lead_id: lead, at: first_at, kind: STEPS_KIND, detail: steps });
    }
    out
}

/// Events, one row each.
pub(crate) async fn insert_events(tx: &mut impl Exec, events: Vec<NewEvent>) -> Result<(), StoreError> {
    let rows = events
        .into_iter()
        .map(|e| vec![e.lead_id.into(), e.at.into(), e.kind.into(), Arg::Text(e.detail)])
        .collect();
    insert_rows(tx, EVENT_INSERT, 4, rows, "").await
}

/// Events, a lead's steps of one commit in one row ([`compact_events`]).
pub(crate) async fn insert_steps(tx: &mut impl Exec, events: Vec<NewEvent>) -> Result<(), StoreError> {
    insert_events(tx, compact_events(events)).await
}

/// A lead an earlier run of a replayed submission made.
#[derive(Debug, Clone)]
pub(crate) struct EarlierLead {
    pub id: String,
    pub status: String,
    pub stage: Stage,
}

/// The leads earlier runs made of `submissions`, by (submission, record index).
pub(crate) async fn load_earlier(
    tx: &mut impl Exec,
    submissions: &[String],
) -> Result<HashMap<(String, i64), EarlierLead>, StoreError> {
    let mut out = HashMap::new();
    if submissions.is_empty() {
        return Ok(out);
    }
    for row in select_in(
        tx,
        "SELECT submission_id, record_index, id, status, stage FROM leads WHERE submission_id",
        submissions,
    )
    .await?
    {
        out.insert(
            (row.get("submission_id")?, row.get("record_index")?),
            EarlierLead {
                id: row.get("id")?,
                status: row.get("status")?,
                stage: Stage::parse(&row.get::<String>("stage")?)?,
            },
        );
    }
    Ok(out)
}

/// Stored answers by idempotency key: (the request body's hash, if a request key; the answer).
pub(crate) async fn load_answers(
    tx: &mut impl Exec,
    keys: &[String],
) -> Result<HashMap<String, (Option<String>, String)>, StoreError> {
    let mut answers = HashMap::new();
    for row in select_in(tx, "SELECT key, body_hash, result FROM idempotency WHERE key", keys).await? {
        answers.insert(row.get("key")?, (row.get("body_hash")?, row.get("result")?));
    }
    Ok(answers)
}

/// The current owners of dedupe keys.
pub(crate) async fn load_owners(
    tx: &mut impl Exec,
    keys: &[String],
) -> Result<HashMap<String, crate::dedupe::Owner>, StoreError> {
    let mut owners = HashMap::new();
    for row in
        select_in(tx, "SELECT key_hash, lead_id, created_at FROM dedupe_keys WHERE key_hash", keys).await?
    {
        owners.insert(
            row.get("key_hash")?,
            crate::dedupe::Owner { lead_id: row.get("lead_id")?, at: row.get("created_at")? },
        );
    }
    Ok(owners)
}

/// A submission as received, stored before anything else is decided about it.
#[derive(Debug, Clone)]
pub(crate) struct NewSubmission {
    pub id: String,
    pub source: String,
    pub channel: &'static str,
    pub format: &'static str,
    pub content_type: Option<String>,
    /// JSON.
    pub meta: String,
    pub body: Vec<u8>,
    pub received_at: i64,
    pub status: SubmissionStatus,
    pub error: Option<String>,
    pub now: i64,
}

/// What became of a submission as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionStatus {
    /// Parsed; each lead has its own outcome.
    Processed,
    /// Could not be parsed at all (the raw body is kept for a replay).
    Failed,
}

impl SubmissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionStatus::Processed => "processed",
            SubmissionStatus::Failed => "failed",
        }
    }
}

/// New submissions, one attempt each.
pub(crate) async fn insert_submissions(
    tx: &mut impl Exec,
    rows: Vec<NewSubmission>,
) -> Result<(), StoreError> {
    let rows = rows
        .into_iter()
        .map(|s| {
            vec![
                s.id.into(),
                s.source.into(),
                s.channel.into(),
                s.format.into(),
                s.content_type.into(),
                s.meta.into(),
                Arg::Blob(s.body),
                s.received_at.into(),
                s.status.as_str().into(),
                s.error.into(),
                1i64.into(),
                s.now.into(),
            ]
        })
        .collect();
    insert_rows(
        tx,
        "INSERT INTO submissions (id, source, channel, format, content_type, meta, body, received_at, status, error, attempts, updated_at)",
        12,
        rows,
        "",
    )
    .await
}

/// A replayed submission's new status (and one attempt more).
pub(crate) async fn mark_replayed(
    tx: &mut impl Exec,
    id: String,
    status: SubmissionStatus,
    error: Option<String>,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE submissions SET status = $1, error = $2, attempts = attempts + 1, updated_at = $3 WHERE id = $4",
        vec![status.as_str().into(), error.into(), now.into(), id.into()],
    )
    .await?;
    Ok(())
}

/// A dedupe key taken by a lead at `at`.
#[derive(Debug, Clone)]
pub(crate) struct KeyClaim {
    pub key_hash: String,
    pub lead_id: String,
    pub at: i64,
}

/// Takes dedupe keys over, free or expired ones included.
pub(crate) async fn take_dedupe_keys(tx: &mut impl Exec, rows: Vec<KeyClaim>) -> Result<(), StoreError> {
    let rows = rows.into_iter().map(|k| vec![k.key_hash.into(), k.lead_id.into(), k.at.into()]).collect();
    insert_rows(
        tx,
        "INSERT INTO dedupe_keys (key_hash, lead_id, created_at)",
        3,
        rows,
        "ON CONFLICT (key_hash) DO UPDATE SET lead_id = excluded.lead_id, created_at = excluded.created_at",
    )
    .await
}

/// An answer kept under an idempotency key, so a retry gets the same answer.
#[derive(Debug, Clone)]
pub(crate) struct NewAnswer {
    pub key: String,
    /// The request body's hash (request keys: the same key with another body is a conflict).
    pub body_hash: Option<String>,
    /// JSON.
    pub result: String,
    pub at: i64,
}

/// Stores answers.
pub(crate) async fn insert_answers(tx: &mut impl Exec, rows: Vec<NewAnswer>) -> Result<(), StoreError> {
    let rows = rows
        .into_iter()
        .map(|a| vec![a.key.into(), a.body_hash.into(), a.result.into(), a.at.into()])
        .collect();
    insert_rows(tx, "INSERT INTO idempotency (key, body_hash, result, created_at)", 4, rows, "").await
}

/// A lead as one run of the pipeline left it.
#[derive(Debug, Clone)]
pub(crate) struct NewLead {
    pub id: String,
    pub submission_id: String,
    pub record_index: i64,
    pub source: String,
    /// `accepted`, `duplicate` or `rejected`.
    pub status: &'static str,
    /// JSON: the canonical fields, the reasons and warnings.
    pub fields: String,
    pub reasons: String,
    pub warnings: String,
    pub duplicate_of: Option<String>,
    pub vendor_lead_id: Option<String>,
    pub score: i64,
    pub grade: Option<String>,
    pub lifecycle: Option<String>,
    pub stage: Stage,
    pub now: i64,
}

/// Where a lead is in its distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Not routed (rejected, duplicate, or before routing).
    New,
    /// Held for an operator (contacts only guessed); routed once released.
    NeedsReview,
    /// Deliveries scheduled.
    Routed,
    /// In the pull pool.
    Offered,
    /// Nobody took it.
    Unsold,
    Delivered,
    /// Every delivery dead-lettered.
    Undelivered,
    Claimed,
    Confirmed,
    Returned,
    Converted,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::NeedsReview => "needs_review",
            Stage::Routed => "routed",
            Stage::Offered => "offered",
            Stage::Unsold => "unsold",
            Stage::Delivered => "delivered",
            Stage::Undelivered => "undelivered",
            Stage::Claimed => "claimed",
            Stage::Confirmed => "confirmed",
            Stage::Returned => "returned",
            Stage::Converted => "converted",
        }
    }

    /// The stage a stored string names.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        const ALL: [Stage; 11] = [
            Stage::New,
            Stage::NeedsReview,
            Stage::Routed,
            Stage::Offered,
            Stage::Unsold,
            Stage::Delivered,
            Stage::Undelivered,
            Stage::Claimed,
            Stage::Confirmed,
            Stage::Returned,
            Stage::Converted,
        ];
        ALL.into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::Commit(format!("unknown lead stage {s:?}")))
    }
}

impl NewLead {
    fn row(self) -> Vec<Arg> {
        vec![
            self.id.into(),
            self.submission_id.into(),
            self.record_index.into(),
            self.source.into(),
            self.status.into(),
            self.fields.into(),
            self.reasons.into(),
            self.warnings.into(),
            self.duplicate_of.into(),
            self.vendor_lead_id.into(),
            self.now.into(),
            self.now.into(),
            self.score.into(),
            self.grade.into(),
            self.lifecycle.into(),
            self.stage.as_str().into(),
            self.now.into(),
        ]
    }
}

/// New leads.
pub(crate) async fn insert_leads(tx: &mut impl Exec, rows: Vec<NewLead>) -> Result<(), StoreError> {
    insert_rows(
        tx,
        "INSERT INTO leads (id, submission_id, record_index, source, status, fields, reasons, warnings, duplicate_of, vendor_lead_id, created_at, updated_at, score, grade, lifecycle, stage, stage_since)",
        17,
        rows.into_iter().map(NewLead::row).collect(),
        "",
    )
    .await
}

/// Rewrites a replayed lead's row with the new run's result; its stage only when the new
/// run routed it.
pub(crate) async fn update_lead(tx: &mut impl Exec, lead: NewLead, restaged: bool) -> Result<(), StoreError> {
    let sql = if restaged {
        "UPDATE leads SET status = $1, fields = $2, reasons = $3, warnings = $4, duplicate_of = $5, vendor_lead_id = $6, \
         updated_at = $7, score = $8, grade = $9, lifecycle = $10, stage = $11, stage_since = $12 WHERE id = $13"
    } else {
        "UPDATE leads SET status = $1, fields = $2, reasons = $3, warnings = $4, duplicate_of = $5, vendor_lead_id = $6, \
         updated_at = $7, score = $8, grade = $9, lifecycle = $10 WHERE id = $11"
    };
    let mut args: Vec<Arg> = vec![
        lead.status.into(),
        lead.fields.into(),
        lead.reasons.into(),
        lead.warnings.into(),
        lead.duplicate_of.into(),
        lead.vendor_lead_id.into(),
        lead.now.into(),
        lead.score.into(),
        lead.grade.into(),
        lead.lifecycle.into(),
    ];
    if restaged {
        args.extend([lead.stage.as_str().into(), lead.now.into()]);
    }
    args.push(lead.id.into());
    tx.execute(sql, args).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::DeliveryStatus;

    #[test]
    fn stored_status_names_read_back_as_the_same_enum() {
        for st in
            [Stage::New, Stage::NeedsReview, Stage::Routed, Stage::Offered, Stage::Unsold, Stage::Delivered]
        {
            assert_eq!(Stage::parse(st.as_str()).unwrap(), st);
        }
        for st in [Stage::Undelivered, Stage::Claimed, Stage::Confirmed, Stage::Returned, Stage::Converted] {
            assert_eq!(Stage::parse(st.as_str()).unwrap(), st);
        }
        assert!(Stage::parse("sold").is_err());
        for st in [
            DeliveryStatus::Scheduled,
            DeliveryStatus::Delivered,
            DeliveryStatus::Dead,
            DeliveryStatus::Rejected,
        ] {
            assert_eq!(DeliveryStatus::parse(st.as_str()).unwrap(), st);
        }
        assert_eq!(Stage::NeedsReview.as_str(), crate::store::review::NEEDS_REVIEW);
    }
}
