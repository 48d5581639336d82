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

/// One `lead_events` row.
pub(crate) fn event(lead_id: &str, at: i64, kind: &str, detail: serde_json::Value) -> Vec<Arg> {
    vec![lead_id.into(), at.into(), kind.into(), Arg::Text(detail.to_string())]
}

pub(crate) const EVENT_INSERT: &str = "INSERT INTO lead_events (lead_id, at, kind, detail)";

/// The kind of a stored row that holds several events of one lead (see [`compact_events`]).
pub(crate) const STEPS_KIND: &str = "steps";

/// Intake writes a lead's first steps together (received, normalized, the outcome, scored,
/// routed or offered or unsold): one `lead_events` row holds them all, in order, and the
/// lead's history shows them one by one ([`super::reads`]). Fewer rows and index entries
/// per lead on the write path, the same history on the read path. A lead with one event
/// in the batch keeps a plain row.
pub(crate) fn compact_events(rows: Vec<Vec<Arg>>) -> Vec<Vec<Arg>> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<Vec<Arg>>> = HashMap::new();
    for row in rows {
        let Some(Arg::Text(lead)) = row.first() else { continue };
        let lead = lead.clone();
        let group = groups.entry(lead.clone()).or_default();
        if group.is_empty() {
            order.push(lead);
        }
        group.push(row);
    }
    let mut out = Vec::with_capacity(order.len());
    for lead in order {
        let Some(mut group) = groups.remove(&lead) else { continue };
        if group.len() == 1 {
            out.extend(group.pop());
            continue;
        }
        let mut first_at = None;
        let mut steps = String::from("[");
        for (i, row) in group.iter().enumerate() {
            let [_, Arg::Int(at), Arg::Text(kind), Arg::Text(detail)] = row.as_slice() else { continue };
            first_at.get_or_insert(*at);
            if i > 0 {
                steps.push(',');
            }
            // `detail` is serialized JSON already; `kind` is one of the code's names.
            steps.push_str(&format!(
                "{{\"at\":{at},\"kind\":{},\"detail\":{detail}}}",
                serde_json::Value::from(kind.as_str())
            ));
        }
        steps.push(']');
        out.push(vec![lead.into(), first_at.unwrap_or(0).into(), STEPS_KIND.into(), Arg::Text(steps)]);
    }
    out
}

/// A lead an earlier run of a replayed submission made.
#[derive(Debug, Clone)]
pub(crate) struct EarlierLead {
    pub id: String,
    pub status: String,
    pub stage: String,
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
            EarlierLead { id: row.get("id")?, status: row.get("status")?, stage: row.get("stage")? },
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

/// Columns of a `submissions` row, in [`insert_submissions`]' order.
pub(crate) const SUBMISSION_COLUMNS: usize = 12;

/// New submissions: (id, source, channel, format, content_type, meta, body, received_at,
/// status, error, attempts, updated_at).
pub(crate) async fn insert_submissions(tx: &mut impl Exec, rows: Vec<Vec<Arg>>) -> Result<(), StoreError> {
    insert_rows(
        tx,
        "INSERT INTO submissions (id, source, channel, format, content_type, meta, body, received_at, status, error, attempts, updated_at)",
        SUBMISSION_COLUMNS,
        rows,
        "",
    )
    .await
}

/// A replayed submission's new status (and one attempt more).
pub(crate) async fn mark_replayed(
    tx: &mut impl Exec,
    id: String,
    status: String,
    error: Option<String>,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE submissions SET status = $1, error = $2, attempts = attempts + 1, updated_at = $3 WHERE id = $4",
        vec![status.into(), error.into(), now.into(), id.into()],
    )
    .await?;
    Ok(())
}

/// Takes dedupe keys over: (key_hash, lead_id, created_at), free or expired ones included.
pub(crate) async fn take_dedupe_keys(tx: &mut impl Exec, rows: Vec<Vec<Arg>>) -> Result<(), StoreError> {
    insert_rows(
        tx,
        "INSERT INTO dedupe_keys (key_hash, lead_id, created_at)",
        3,
        rows,
        "ON CONFLICT (key_hash) DO UPDATE SET lead_id = excluded.lead_id, created_at = excluded.created_at",
    )
    .await
}

/// Stored answers: (key, body_hash, result, created_at).
pub(crate) async fn insert_answers(tx: &mut impl Exec, rows: Vec<Vec<Arg>>) -> Result<(), StoreError> {
    insert_rows(tx, "INSERT INTO idempotency (key, body_hash, result, created_at)", 4, rows, "").await
}

/// Columns of a `leads` row, in [`insert_leads`]' order.
pub(crate) const LEAD_COLUMNS: usize = 17;

/// Index of `stage` in a lead row.
pub(crate) const LEAD_STAGE_COLUMN: usize = 15;

/// New leads: (id, submission_id, record_index, source, status, fields, reasons, warnings,
/// duplicate_of, vendor_lead_id, created_at, updated_at, score, grade, lifecycle, stage,
/// stage_since).
pub(crate) async fn insert_leads(tx: &mut impl Exec, rows: Vec<Vec<Arg>>) -> Result<(), StoreError> {
    insert_rows(
        tx,
        "INSERT INTO leads (id, submission_id, record_index, source, status, fields, reasons, warnings, duplicate_of, vendor_lead_id, created_at, updated_at, score, grade, lifecycle, stage, stage_since)",
        LEAD_COLUMNS,
        rows,
        "",
    )
    .await
}

/// Events, a lead's steps of one commit in one row ([`compact_events`]).
pub(crate) async fn insert_events(tx: &mut impl Exec, rows: Vec<Vec<Arg>>) -> Result<(), StoreError> {
    insert_rows(tx, EVENT_INSERT, 4, compact_events(rows), "").await
}

/// Rewrites a replayed lead's row with the new run's result; its stage only when the new
/// run routed it.
pub(crate) async fn update_lead(tx: &mut impl Exec, row: Vec<Arg>, restaged: bool) -> Result<(), StoreError> {
    let mut cols = row.into_iter();
    let mut next = || cols.next().unwrap_or(Arg::OptText(None));
    let id = next();
    let (_submission, _index, _source) = (next(), next(), next());
    let (status, fields, reasons, warnings, duplicate_of, vendor_lead_id) =
        (next(), next(), next(), next(), next(), next());
    let (_created, updated_at, score, grade, lifecycle, stage, stage_since) =
        (next(), next(), next(), next(), next(), next(), next());
    let sql = if restaged {
        "UPDATE leads SET status = $1, fields = $2, reasons = $3, warnings = $4, duplicate_of = $5, vendor_lead_id = $6, \
         updated_at = $7, score = $8, grade = $9, lifecycle = $10, stage = $11, stage_since = $12 WHERE id = $13"
    } else {
        "UPDATE leads SET status = $1, fields = $2, reasons = $3, warnings = $4, duplicate_of = $5, vendor_lead_id = $6, \
         updated_at = $7, score = $8, grade = $9, lifecycle = $10 WHERE id = $11"
    };
    let mut args = vec![
        status,
        fields,
        reasons,
        warnings,
        duplicate_of,
        vendor_lead_id,
        updated_at,
        score,
        grade,
        lifecycle,
    ];
    if restaged {
        args.extend([stage, stage_since]);
    }
    args.push(id);
    tx.execute(sql, args).await?;
    Ok(())
}
