//! The commit stage: a batch of prepared submissions (and the outbox's attempt results)
//! becomes one transaction.
//!
//! Under the keys' locks, with what earlier commits decided loaded from the store (stored
//! answers, dedupe key owners, a replay's earlier leads), this decides each submission: a
//! vendor's retry gets its first answer, a lead is rejected, a duplicate of the key's live
//! owner, or accepted; accepted leads are routed ([`crate::route::assign`]). The store
//! writes what was decided ([`crate::store::commit`]); the caller commits and only then
//! answers the vendors.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{Candidate, Job, LeadResult, Outcome, Prepared, SubmissionResult};
use crate::deliver::attempt::{self, AttemptWrite, Leased, Resolution};
use crate::deliver::handoff::{Handoff, Reservation};
use crate::route::assign::{LeadFacts, ToAssign, assign};
use crate::store::StoreError;
use crate::store::commit::{
    self as rows, EarlierLead, KeyClaim, NewAnswer, NewEvent, NewLead, NewSubmission, Stage,
    SubmissionStatus, event, lock_keys,
};
use crate::store::review::NEEDS_REVIEW;
use crate::store::tx::Exec;

/// This earlier lead is the one a job releases (`release`), and it is still held.
fn released_by(e: &EarlierLead, release: Option<&str>) -> bool {
    release == Some(e.id.as_str()) && e.stage == Stage::NeedsReview
}

/// Writes `jobs` and `records` in the caller's transaction (which the caller commits) and
/// returns one result per job, in order.
pub(crate) async fn commit_batch(
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
                buyer_keys.extend(c.plan.buyers().map(crate::store::routing::lock_key));
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
    let mut answers = rows::load_answers(tx, &idem_keys).await?;
    let mut owners = rows::load_owners(tx, &dedupe_keys).await?;

    // A replayed submission's leads keep their ids: the new run updates each lead it had
    // (its history gets the new run's steps) instead of adding a duplicate of itself.
    let replayed: Vec<String> = jobs.iter().filter(|j| j.replay).map(|j| j.submission.id.clone()).collect();
    let earlier = rows::load_earlier(tx, &replayed).await?;
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
            w.idempotency.push(NewAnswer {
                key,
                body_hash: Some(body_hash(&job.submission.body)),
                result: stored,
                at: now,
            });
        }
        results.push(result);
    }

    // What does not depend on routing is written before the buyers' locks are taken.
    rows::insert_submissions(tx, std::mem::take(&mut w.submissions)).await?;
    for (id, status, error) in std::mem::take(&mut w.replayed) {
        rows::mark_replayed(tx, id, status, error, now).await?;
    }
    // Keys decided free or expired above: take them over.
    rows::take_dedupe_keys(tx, std::mem::take(&mut w.dedupe)).await?;
    rows::insert_answers(tx, std::mem::take(&mut w.idempotency)).await?;

    let recorded = attempt::record_attempts(tx, records).await?;

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
            Stage::Unsold
        } else if let Some(reason) = &c.review {
            // Template-free e-mail extraction only guessed the contacts: held for an
            // operator (listed by the admin API), not routed.
            w.events.push(event(&c.lead_id, now, "needs_review", serde_json::json!({ "reason": reason })));
            Stage::NeedsReview
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
        set_stage(&mut w.leads, *row, held);
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
        set_stage(&mut w.leads, row, stage);
    }
    let fresh = assigned.fresh;
    let created_deliveries = !fresh.is_empty();

    type Rows = Vec<(usize, NewLead)>;
    let (updates, inserts): (Rows, Rows) =
        w.leads.into_iter().enumerate().partition(|(i, _)| w.updates.contains(i));
    rows::insert_leads(tx, inserts.into_iter().map(|(_, row)| row).collect()).await?;
    for (i, row) in updates {
        rows::update_lead(tx, row, w.restaged.contains(&i)).await?;
    }
    rows::insert_steps(tx, w.events).await?;
    // Rows the poller has to find: deliveries written unleased, and what a retry, a
    // rejection or a dead letter changed.
    let needs_poll = (created_deliveries && reservation.is_none())
        || records.iter().any(|r| !matches!(r.resolution, Resolution::Delivered));
    Ok(Committed { results, recorded, handed: reservation.map(|r| (r, fresh)), needs_poll })
}

/// What a batch commit produced.
pub(crate) struct Committed {
    pub results: Vec<SubmissionResult>,
    /// Per attempt record: written (false: the lease was lost).
    pub recorded: Vec<bool>,
    /// New deliveries leased to this instance's outbox, to hand over now that they are durable.
    pub handed: Option<(Reservation, Vec<Leased>)>,
    /// Wake the outbox's poller.
    pub needs_poll: bool,
}

fn set_stage(leads: &mut [NewLead], row: usize, stage: Stage) {
    if let Some(lead) = leads.get_mut(row) {
        lead.stage = stage;
    }
}

/// `job` with each candidate that an earlier run already made a lead of given that lead's id.
fn with_earlier_ids<'j>(
    job: &'j Job,
    earlier: &HashMap<(String, i64), EarlierLead>,
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
                if released_by(e, release.as_deref()) {
                    // The operator vouches for the guessed contacts.
                    c.review = None;
                }
            }
        }
    }
    std::borrow::Cow::Owned(job)
}

/// Rows to write, gathered while deciding.
#[derive(Default)]
struct Writes<'j> {
    /// Leads earlier runs of replayed submissions made.
    earlier: HashMap<(String, i64), EarlierLead>,
    submissions: Vec<NewSubmission>,
    /// Accepted leads to route: (index in `leads`, candidate, source).
    accepted: Vec<(usize, &'j Candidate, &'j str)>,
    replayed: Vec<(String, SubmissionStatus, Option<String>)>,
    leads: Vec<NewLead>,
    /// Indexes in `leads` of rows that update a replayed lead rather than insert one.
    updates: std::collections::HashSet<usize>,
    /// Indexes in `leads` whose stage routing set.
    restaged: std::collections::HashSet<usize>,
    events: Vec<NewEvent>,
    dedupe: Vec<KeyClaim>,
    idempotency: Vec<NewAnswer>,
}

fn request_key(job: &Job) -> Option<String> {
    let k = job.submission.idempotency_key.as_deref()?;
    (!job.replay).then(|| request_key_of(&job.submission.source, k))
}

/// Where the answer to `source`'s request with this `Idempotency-Key` is kept.
fn request_key_of(source: &str, idempotency_key: &str) -> String {
    format!("req:{source}:{idempotency_key}")
}

/// The answer already committed for a submission sent by `source` with this
/// `Idempotency-Key`, if any (a file chunk sent again is answered without a commit).
pub async fn committed_answer(
    store: &crate::store::Store,
    source: &str,
    idempotency_key: &str,
) -> Result<Option<SubmissionResult>, StoreError> {
    let Some(text) = store.stored_answer(&request_key_of(source, idempotency_key)).await? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|source| StoreError::Json { what: "idempotency", source })
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
        Prepared::Failed(e) => (SubmissionStatus::Failed, Some(e.to_string())),
        Prepared::Parsed { .. } => (SubmissionStatus::Processed, None),
    };
    if job.replay {
        w.replayed.push((s.id.clone(), status, error.clone()));
    } else {
        w.submissions.push(NewSubmission {
            id: s.id.clone(),
            source: s.source.clone(),
            channel: s.channel,
            format: s.format.name(),
            content_type: s.content_type.clone(),
            meta: s.meta.to_string(),
            body: s.body.clone(),
            received_at: s.received_at,
            status,
            error,
            now,
        });
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
                    w.dedupe.push(KeyClaim { key_hash: k.clone(), lead_id: c.lead_id.clone(), at: now });
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

    let (fields, reasons, warnings) = match &c.stored {
        Some(f) => (f.fields.clone(), f.reasons.clone(), f.warnings.clone()),
        None => (json(&c.lead, "lead")?, json(&c.errors, "reasons")?, json(&c.warnings, "warnings")?),
    };
    // Event details that embed the reasons or warnings reuse their JSON.
    let normalized = format!("{{\"warnings\":{warnings}}}");
    let rejected = (outcome == Outcome::Rejected).then(|| format!("{{\"reasons\":{reasons}}}"));
    w.leads.push(NewLead {
        id: c.lead_id.clone(),
        submission_id: s.id.clone(),
        record_index: index as i64,
        source: s.source.clone(),
        status: outcome.as_str(),
        fields,
        reasons,
        warnings,
        duplicate_of: duplicate_of.clone(),
        vendor_lead_id: c.lead.vendor_lead_id.clone(),
        score: c.score.points,
        grade: c.score.grade.clone(),
        lifecycle: c.score.lifecycle.clone(),
        stage: Stage::New,
        now,
    });
    let row = w.leads.len() - 1;
    let released = earlier.as_ref().is_some_and(|e| released_by(e, job.release.as_deref()));
    // A lead held for review was accepted but never routed: a replay that no longer holds
    // it (a template now reads it, or the operator released it) routes it.
    let accepted_before = earlier
        .as_ref()
        .is_some_and(|e| e.status == Outcome::Accepted.as_str() && e.stage != Stage::NeedsReview);
    if released {
        w.events.push(event(&c.lead_id, now, "released", serde_json::json!({ "from": NEEDS_REVIEW })));
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
    w.events.push(NewEvent { lead_id: c.lead_id.clone(), at: now, kind: "normalized", detail: normalized });
    let detail = match outcome {
        Outcome::Rejected => rejected.unwrap_or_else(|| "{}".to_string()),
        Outcome::Duplicate => serde_json::json!({ "duplicate_of": duplicate_of }).to_string(),
        Outcome::Accepted => "{}".to_string(),
    };
    w.events.push(NewEvent { lead_id: c.lead_id.clone(), at: now, kind: outcome.as_str(), detail });
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
        w.idempotency.push(NewAnswer { key: key.clone(), body_hash: None, result: stored, at: now });
    }
    Ok(result)
}
