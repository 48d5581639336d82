//! The write path: one transaction commits a batch of submissions with their leads,
//! dedupe decisions, idempotency records and events.
//!
//! Decisions are made inside the transaction, under the database's protection:
//! SQLite's `BEGIN IMMEDIATE` gives the batch the single write lock; on PostgreSQL the
//! batch first takes transaction-scoped advisory locks on every dedupe and idempotency
//! key it touches (in sorted order, so two instances cannot deadlock), and reads after
//! the locks are granted see every earlier commit. The `dedupe_keys` primary key backs
//! this up: a second owner of a live key is impossible.
//!
//! Statements are multi-row and per batch, not per lead: the cost of a batch is a
//! handful of round trips whatever its size.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};

use super::handoff::{Handoff, Reservation};
use super::outbox::{AttemptWrite, Leased};
pub(crate) use super::tx::Arg;
use super::tx::{Exec, Row};
use super::{Dialect, Store, StoreError, param_list, routing, value_rows};
use crate::pipeline::{Candidate, Job, LeadResult, Outcome, Prepared, SubmissionResult};
use crate::route::assign::{LeadFacts, ToAssign, assign};

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

/// Writes `jobs` and `records` in the caller's transaction (which the caller commits) and
/// returns one result per job, in order.
pub(super) async fn commit_batch(
    tx: &mut impl Exec,
    jobs: &[Job],
    records: &[AttemptWrite],
    handoff: Option<&Handoff>,
    now: i64,
) -> Result<Committed, StoreError> {
    // Every key this batch may read or claim.
    let mut idem_keys: Vec<String> = Vec::new();
    let mut dedupe_keys: Vec<String> = Vec::new();
    let mut buyer_keys: Vec<String> = Vec::new();
    for job in jobs {
        if let Some(k) = request_key(job) {
            idem_keys.push(k);
        }
        if let Prepared::Parsed { candidates, .. } = &job.prepared {
            for c in candidates {
                idem_keys.extend(c.vendor_key.clone());
                dedupe_keys.extend(c.dedupe_keys.iter().cloned());
                buyer_keys.extend(c.plan.buyers().map(routing::lock_key));
            }
        }
    }
    buyer_keys.sort();
    buyer_keys.dedup();
    idem_keys.sort();
    idem_keys.dedup();
    dedupe_keys.sort();
    dedupe_keys.dedup();
    // A replay decides on its earlier leads as read below (routed before or not): two
    // replays of one submission (or a replay and a release) take turns, and the second
    // sees what the first did.
    let mut replay_keys: Vec<String> =
        jobs.iter().filter(|j| j.replay).map(|j| format!("replay:{}", j.submission.id)).collect();
    replay_keys.sort();
    replay_keys.dedup();
    // The buyers' locks come later, just before routing: every batch that routes to a
    // buyer waits on its lock, so it is held for as little of the transaction as can be.
    // (Every transaction takes buyer locks only after all of its other locks: no cycle.)
    let keys: Vec<String> =
        idem_keys.iter().chain(dedupe_keys.iter()).chain(replay_keys.iter()).cloned().collect();
    lock_keys(tx, &keys).await?;

    // What earlier commits decided about those keys.
    let mut answers: HashMap<String, (Option<String>, String)> = HashMap::new();
    for row in select_in(tx, "SELECT key, body_hash, result FROM idempotency WHERE key", &idem_keys).await? {
        answers.insert(row.get("key")?, (row.get("body_hash")?, row.get("result")?));
    }
    let mut owners: HashMap<String, crate::dedupe::Owner> = HashMap::new();
    for row in
        select_in(tx, "SELECT key_hash, lead_id, created_at FROM dedupe_keys WHERE key_hash", &dedupe_keys)
            .await?
    {
        owners.insert(
            row.get("key_hash")?,
            crate::dedupe::Owner { lead_id: row.get("lead_id")?, at: row.get("created_at")? },
        );
    }

    // A replayed submission's leads keep their ids: the new run updates each lead it had
    // (its history gets the new run's steps) instead of adding a duplicate of itself.
    let earlier = earlier_leads(tx, jobs).await?;
    let jobs: Vec<std::borrow::Cow<'_, Job>> = jobs.iter().map(|j| with_earlier_ids(j, &earlier)).collect();
    let mut w = Writes { earlier, ..Writes::default() };
    let mut results = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let job: &Job = job;
        let result = decide(job, now, &mut answers, &mut owners, &mut w)?;
        if let (Some(key), SubmissionResult::Processed { .. }) = (request_key(job), &result)
            && !answers.contains_key(&key)
        {
            let stored = serde_json::to_string(&result)
                .map_err(|source| StoreError::Json { what: "result", source })?;
            answers.insert(key.clone(), (Some(body_hash(&job.submission.body)), stored.clone()));
            w.idempotency.push(vec![
                key.into(),
                Some(body_hash(&job.submission.body)).into(),
                stored.into(),
                now.into(),
            ]);
        }
        results.push(result);
    }

    // What does not depend on routing is written before the buyers' locks are taken.
    insert_rows(
        tx,
        "INSERT INTO submissions (id, source, channel, format, content_type, meta, body, received_at, status, error, attempts, updated_at)",
        12,
        std::mem::take(&mut w.submissions),
        "",
    )
    .await?;
    for (id, status, error) in std::mem::take(&mut w.replayed) {
        tx.execute(
            "UPDATE submissions SET status = $1, error = $2, attempts = attempts + 1, updated_at = $3 WHERE id = $4",
            vec![status.into(), error.into(), now.into(), id.into()],
        )
        .await?;
    }
    // Keys decided free or expired above: take them over.
    insert_rows(
        tx,
        "INSERT INTO dedupe_keys (key_hash, lead_id, created_at)",
        3,
        std::mem::take(&mut w.dedupe),
        "ON CONFLICT (key_hash) DO UPDATE SET lead_id = excluded.lead_id, created_at = excluded.created_at",
    )
    .await?;
    insert_rows(
        tx,
        "INSERT INTO idempotency (key, body_hash, result, created_at)",
        4,
        std::mem::take(&mut w.idempotency),
        "",
    )
    .await?;

    let recorded = super::outbox::record_attempts_in(tx, records).await?;

    // Routing: accepted leads, in order, under the buyers' locks.
    lock_keys(tx, &buyer_keys).await?;
    let accepted: Vec<(usize, &Candidate, &str)> = std::mem::take(&mut w.accepted);
    w.restaged.extend(accepted.iter().map(|(row, _, _)| *row));
    let mut to_assign = Vec::with_capacity(accepted.len());
    let mut assigned_rows = Vec::with_capacity(accepted.len());
    for (row, c, source) in &accepted {
        let held = if c.lead.test {
            // A vendor's test lead is stored and flagged, never sold (pushed or offered).
            w.events.push(event(
                &c.lead_id,
                now,
                "unsold",
                serde_json::json!({ "reason": "vendor test lead: never sold" }),
            ));
            "unsold"
        } else if let Some(reason) = &c.review {
            // Template-free e-mail extraction only guessed the contacts: held for an
            // operator (listed by the admin API), not routed.
            w.events.push(event(&c.lead_id, now, "needs_review", serde_json::json!({ "reason": reason })));
            "needs_review"
        } else {
            to_assign.push(ToAssign {
                plan: &c.plan,
                lead: LeadFacts {
                    lead_id: &c.lead_id,
                    source,
                    product: c.lead.product.as_deref(),
                    score: c.score.points,
                },
            });
            assigned_rows.push(*row);
            continue;
        };
        set_stage_column(&mut w.leads, *row, held);
    }
    // Deliveries this instance's outbox will take from memory are leased to it as written.
    let mut reservation = None;
    let assigned = assign(
        tx,
        &to_assign,
        now,
        |n| {
            let h = handoff?;
            reservation = Some(h.reserve(n)?);
            Some((h.owner().to_string(), h.lease_until(now)))
        },
        &mut w.events,
    )
    .await?;
    for (row, stage) in assigned_rows.into_iter().zip(assigned.stages) {
        set_stage_column(&mut w.leads, row, stage);
    }
    let fresh = assigned.fresh;
    let created_deliveries = !fresh.is_empty();

    type Rows = Vec<(usize, Vec<Arg>)>;
    let (updates, inserts): (Rows, Rows) =
        w.leads.into_iter().enumerate().partition(|(i, _)| w.updates.contains(i));
    insert_rows(
        tx,
        "INSERT INTO leads (id, submission_id, record_index, source, status, fields, reasons, warnings, duplicate_of, vendor_lead_id, created_at, updated_at, score, grade, lifecycle, stage, stage_since)",
        17,
        inserts.into_iter().map(|(_, row)| row).collect(),
        "",
    )
    .await?;
    for (i, row) in updates {
        update_lead(tx, row, w.restaged.contains(&i)).await?;
    }
    insert_rows(tx, EVENT_INSERT, 4, compact_events(w.events), "").await?;
    // Rows the poller has to find: deliveries written unleased, and what a retry, a
    // rejection or a dead letter changed.
    let needs_poll = (created_deliveries && reservation.is_none())
        || records.iter().any(|r| !matches!(r.resolution, super::outbox::Resolution::Delivered));
    Ok(Committed { results, recorded, handed: reservation.map(|r| (r, fresh)), needs_poll })
}

/// What a batch commit produced.
pub(super) struct Committed {
    pub results: Vec<SubmissionResult>,
    /// Per attempt record: written (false: the lease was lost).
    pub recorded: Vec<bool>,
    /// New deliveries leased to this instance's outbox, to hand over now that they are durable.
    pub handed: Option<(Reservation, Vec<Leased>)>,
    /// Wake the outbox's poller.
    pub needs_poll: bool,
}

/// Index of `stage` in a lead row (set after routing).
const LEAD_STAGE_COLUMN: usize = 15;

fn set_stage_column(leads: &mut [Vec<Arg>], row: usize, stage: &str) {
    if let Some(slot) = leads.get_mut(row).and_then(|r| r.get_mut(LEAD_STAGE_COLUMN)) {
        *slot = stage.into();
    }
}

/// A lead an earlier run of a replayed submission made.
#[derive(Debug, Clone)]
struct Earlier {
    id: String,
    status: String,
    stage: String,
}

impl Earlier {
    /// This earlier lead is the one a job releases (`release`), and it is still held.
    fn released_by(&self, release: Option<&str>) -> bool {
        release == Some(self.id.as_str()) && self.stage == super::review::NEEDS_REVIEW
    }
}

/// The leads earlier runs made of the replayed submissions in `jobs`, by (submission,
/// record index).
async fn earlier_leads(
    tx: &mut impl Exec,
    jobs: &[Job],
) -> Result<HashMap<(String, i64), Earlier>, StoreError> {
    let ids: Vec<String> = jobs.iter().filter(|j| j.replay).map(|j| j.submission.id.clone()).collect();
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for row in select_in(
        tx,
        "SELECT submission_id, record_index, id, status, stage FROM leads WHERE submission_id",
        &ids,
    )
    .await?
    {
        out.insert(
            (row.get("submission_id")?, row.get("record_index")?),
            Earlier { id: row.get("id")?, status: row.get("status")?, stage: row.get("stage")? },
        );
    }
    Ok(out)
}

/// `job` with each candidate that an earlier run already made a lead of given that lead's id.
fn with_earlier_ids<'j>(
    job: &'j Job,
    earlier: &HashMap<(String, i64), Earlier>,
) -> std::borrow::Cow<'j, Job> {
    if !job.replay || earlier.is_empty() {
        return std::borrow::Cow::Borrowed(job);
    }
    let mut job = job.clone();
    let release = job.release.clone();
    if let Prepared::Parsed { candidates, .. } = &mut job.prepared {
        for (i, c) in candidates.iter_mut().enumerate() {
            if let Some(e) = earlier.get(&(job.submission.id.clone(), i as i64)) {
                c.lead_id = e.id.clone();
                if e.released_by(release.as_deref()) {
                    // The operator vouches for the guessed contacts.
                    c.review = None;
                }
            }
        }
    }
    std::borrow::Cow::Owned(job)
}

/// Rewrites a replayed lead's row with the new run's result; its stage only when the new
/// run routed it.
async fn update_lead(tx: &mut impl Exec, row: Vec<Arg>, restaged: bool) -> Result<(), StoreError> {
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

/// Rows to write, gathered while deciding.
#[derive(Default)]
struct Writes<'j> {
    /// Leads earlier runs of replayed submissions made.
    earlier: HashMap<(String, i64), Earlier>,
    submissions: Vec<Vec<Arg>>,
    /// Accepted leads to route: (index in `leads`, candidate, source).
    accepted: Vec<(usize, &'j Candidate, &'j str)>,
    replayed: Vec<(String, String, Option<String>)>,
    leads: Vec<Vec<Arg>>,
    /// Indexes in `leads` of rows that update a replayed lead rather than insert one.
    updates: std::collections::HashSet<usize>,
    /// Indexes in `leads` whose stage routing set.
    restaged: std::collections::HashSet<usize>,
    events: Vec<Vec<Arg>>,
    dedupe: Vec<Vec<Arg>>,
    idempotency: Vec<Vec<Arg>>,
}

fn request_key(job: &Job) -> Option<String> {
    let k = job.submission.idempotency_key.as_deref()?;
    (!job.replay).then(|| format!("req:{}:{k}", job.submission.source))
}

fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn json<T: serde::Serialize>(v: &T, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|source| StoreError::Json { what, source })
}

fn decide<'j>(
    job: &'j Job,
    now: i64,
    answers: &mut HashMap<String, (Option<String>, String)>,
    owners: &mut HashMap<String, crate::dedupe::Owner>,
    w: &mut Writes<'j>,
) -> Result<SubmissionResult, StoreError> {
    let s = &job.submission;
    let (status, error) = match &job.prepared {
        Prepared::Failed(e) => ("failed", Some(e.to_string())),
        Prepared::Parsed { .. } => ("processed", None),
    };
    if job.replay {
        w.replayed.push((s.id.clone(), status.to_string(), error.clone()));
    } else {
        w.submissions.push(vec![
            s.id.clone().into(),
            s.source.clone().into(),
            s.channel.into(),
            s.format.name().into(),
            s.content_type.clone().into(),
            s.meta.to_string().into(),
            Arg::Blob(s.body.clone()),
            s.received_at.into(),
            status.into(),
            error.into(),
            1i64.into(),
            now.into(),
        ]);
    }

    if let Some(key) = request_key(job)
        && let Some((hash, stored)) = answers.get(&key)
    {
        if hash.as_deref() == Some(body_hash(&s.body).as_str()) {
            return serde_json::from_str(stored)
                .map_err(|source| StoreError::Json { what: "idempotency", source });
        }
        return Ok(SubmissionResult::IdempotencyConflict { submission_id: s.id.clone() });
    }

    let (batch, candidates) = match &job.prepared {
        Prepared::Failed(e) => {
            return Ok(SubmissionResult::Unparseable {
                submission_id: s.id.clone(),
                error: e.message.clone(),
                line: e.line,
                column: e.column,
            });
        }
        Prepared::Parsed { batch, candidates } => (*batch, candidates),
    };
    let mut results = Vec::with_capacity(candidates.len());
    for (index, c) in candidates.iter().enumerate() {
        results.push(decide_lead(job, index, c, now, answers, owners, w)?);
    }
    Ok(SubmissionResult::Processed { submission_id: s.id.clone(), batch, results })
}

fn decide_lead<'j>(
    job: &'j Job,
    index: usize,
    c: &'j Candidate,
    now: i64,
    answers: &mut HashMap<String, (Option<String>, String)>,
    owners: &mut HashMap<String, crate::dedupe::Owner>,
    w: &mut Writes<'j>,
) -> Result<LeadResult, StoreError> {
    let s = &job.submission;
    let earlier = if job.replay { w.earlier.get(&(s.id.clone(), index as i64)).cloned() } else { None };
    let first: Option<LeadResult> = match c.vendor_key.as_ref().and_then(|key| answers.get(key)) {
        Some((_, stored)) => Some(
            serde_json::from_str(stored)
                .map_err(|source| StoreError::Json { what: "idempotency", source })?,
        ),
        None => None,
    };
    // The vendor id's answer is this very lead's (a replay of it): not a retry.
    let own_answer = first.as_ref().is_some_and(|f| f.lead_id == c.lead_id);
    // A vendor retry: the same answer as the first time, no new lead.
    if let Some(first) = first.filter(|_| !own_answer) {
        w.events.push(event(
            &first.lead_id,
            now,
            "retried",
            serde_json::json!({ "submission_id": s.id, "channel": s.channel }),
        ));
        return Ok(first);
    }

    let (outcome, duplicate_of) = if !c.errors.is_empty() {
        (Outcome::Rejected, None)
    } else {
        match crate::dedupe::decide(&c.lead_id, &c.dedupe_keys, owners, now, c.window_ms) {
            crate::dedupe::Decision::DuplicateOf(id) => (Outcome::Duplicate, Some(id)),
            crate::dedupe::Decision::Original => {
                for k in &c.dedupe_keys {
                    owners.insert(k.clone(), crate::dedupe::Owner { lead_id: c.lead_id.clone(), at: now });
                    w.dedupe.push(vec![k.clone().into(), c.lead_id.clone().into(), now.into()]);
                }
                (Outcome::Accepted, None)
            }
        }
    };
    let result = LeadResult {
        outcome,
        lead_id: c.lead_id.clone(),
        reasons: c.errors.clone(),
        warnings: c.warnings.clone(),
        duplicate_of: duplicate_of.clone(),
    };

    w.leads.push(vec![
        c.lead_id.clone().into(),
        s.id.clone().into(),
        (index as i64).into(),
        s.source.clone().into(),
        outcome.as_str().into(),
        json(&c.lead, "lead")?.into(),
        json(&c.errors, "reasons")?.into(),
        json(&c.warnings, "warnings")?.into(),
        duplicate_of.clone().into(),
        c.lead.vendor_lead_id.clone().into(),
        now.into(),
        now.into(),
        c.score.points.into(),
        c.score.grade.clone().into(),
        c.score.lifecycle.clone().into(),
        "new".into(),
        now.into(),
    ]);
    let row = w.leads.len() - 1;
    let released = earlier.as_ref().is_some_and(|e| e.released_by(job.release.as_deref()));
    // A lead held for review was accepted but never routed: a replay that no longer holds
    // it (a template now reads it, or the operator released it) routes it.
    let accepted_before = earlier
        .as_ref()
        .is_some_and(|e| e.status == Outcome::Accepted.as_str() && e.stage != super::review::NEEDS_REVIEW);
    if released {
        w.events.push(event(
            &c.lead_id,
            now,
            "released",
            serde_json::json!({ "from": super::review::NEEDS_REVIEW }),
        ));
    }
    if earlier.is_some() {
        w.updates.insert(row);
    }
    // A lead accepted before keeps its routing (its deliveries or offer): a replay never
    // sells a lead twice.
    if outcome == Outcome::Accepted && !accepted_before {
        w.accepted.push((row, c, job.submission.source.as_str()));
    }
    w.events.push(event(
        &c.lead_id,
        s.received_at,
        "received",
        serde_json::json!({ "submission_id": s.id, "channel": s.channel, "replay": job.replay }),
    ));
    w.events.push(event(&c.lead_id, now, "normalized", serde_json::json!({ "warnings": c.warnings })));
    let detail = match outcome {
        Outcome::Rejected => serde_json::json!({ "reasons": c.errors }),
        Outcome::Duplicate => serde_json::json!({ "duplicate_of": duplicate_of }),
        Outcome::Accepted => serde_json::json!({}),
    };
    w.events.push(event(&c.lead_id, now, outcome.as_str(), detail));
    if outcome == Outcome::Accepted {
        w.events.push(event(
            &c.lead_id,
            now,
            "scored",
            serde_json::json!({ "points": c.score.points, "grade": c.score.grade, "lifecycle": c.score.lifecycle }),
        ));
    }

    if let Some(e) = &earlier {
        w.events.push(event(
            &c.lead_id,
            now,
            "replayed",
            serde_json::json!({
                "submission_id": s.id, "before": e.status, "now": outcome.as_str(),
                "routing": if accepted_before { "kept: the lead was accepted before" } else if outcome == Outcome::Accepted { "routed now" } else { "none" },
            }),
        ));
    }
    // A rejected lead does not claim the vendor id: a corrected resend is processed anew.
    if outcome != Outcome::Rejected
        && !own_answer
        && let Some(key) = &c.vendor_key
    {
        let stored = json(&result, "result")?;
        answers.insert(key.clone(), (None, stored.clone()));
        w.idempotency.push(vec![key.clone().into(), Arg::OptText(None), stored.into(), now.into()]);
    }
    Ok(result)
}
