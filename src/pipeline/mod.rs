//! The one code path every submission takes, whatever its channel:
//! parse → normalize → validate → dedupe keys (here, pure and parallel, in the caller's
//! task) → commit ([`commit`]: idempotency, the dedupe decision and routing under the
//! keys' locks, in one transaction group-committed with other requests by the
//! [`writer`]).

pub(crate) mod commit;
mod durable;
pub mod writer;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Source};
use crate::lead::normalize::normalize;
use crate::lead::validate::validate;
use crate::lead::{Lead, Problem};
use crate::parse::{self, ParseError};
use crate::route::{Plan, Routing};
use crate::score::Score;
use crate::submission::{Submission, new_id};

/// A lead ready to be committed.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub lead_id: String,
    pub lead: Lead,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Hashed dedupe keys and the window they are checked against.
    pub dedupe_keys: Vec<String>,
    pub window_ms: i64,
    /// `vid:<source>:<vendor_lead_id>`: a retry with this key gets the same answer.
    pub vendor_key: Option<String>,
    pub score: Score,
    /// Where the lead goes if it is accepted (empty for rejected leads and for leads held
    /// for review).
    pub plan: Plan,
    /// Why the lead is held for an operator instead of being routed: the parser only
    /// guessed its contact fields (template-free e-mail extraction, `parse::REVIEW`).
    pub review: Option<String>,
    /// The lead, its errors and warnings as stored (JSON), rendered here in the request's
    /// task, on any core, rather than in the writer, which is the bound of the write path.
    /// `None` if rendering failed: the commit renders again and reports the error.
    pub stored: Option<StoredForm>,
}

/// A candidate's columns that are JSON.
#[derive(Debug, Clone)]
pub struct StoredForm {
    pub fields: String,
    pub reasons: String,
    pub warnings: String,
}

impl StoredForm {
    fn of(lead: &Lead, errors: &[Problem], warnings: &[Problem]) -> Option<Self> {
        Some(StoredForm {
            fields: serde_json::to_string(lead).ok()?,
            reasons: serde_json::to_string(errors).ok()?,
            warnings: serde_json::to_string(warnings).ok()?,
        })
    }
}

/// What parsing made of a submission.
#[derive(Debug, Clone)]
pub enum Prepared {
    Failed(ParseError),
    Parsed { batch: bool, candidates: Vec<Candidate> },
}

/// A submission on its way to the store.
#[derive(Debug, Clone)]
pub struct Job {
    pub submission: Submission,
    /// The submission is already stored (replay): update it instead of inserting it.
    pub replay: bool,
    /// A replay an operator asked for to release this lead from `needs_review`: the lead is
    /// routed as it stands (once: a lead no longer held is left as it is).
    pub release: Option<String>,
    pub prepared: Prepared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Accepted,
    Duplicate,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected => "rejected",
        }
    }
}

/// The answer for one lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadResult {
    pub outcome: Outcome,
    pub lead_id: String,
    pub reasons: Vec<Problem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Problem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
}

/// The answer for one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SubmissionResult {
    /// The payload could not be parsed; it is stored with the error for replay.
    Unparseable {
        submission_id: String,
        error: String,
        line: Option<u64>,
        column: Option<u64>,
    },
    Processed {
        submission_id: String,
        batch: bool,
        results: Vec<LeadResult>,
    },
    /// The `Idempotency-Key` was used before with a different body.
    IdempotencyConflict {
        submission_id: String,
    },
}

impl SubmissionResult {
    pub fn submission_id(&self) -> &str {
        match self {
            SubmissionResult::Unparseable { submission_id, .. }
            | SubmissionResult::Processed { submission_id, .. }
            | SubmissionResult::IdempotencyConflict { submission_id } => submission_id,
        }
    }
}

/// Parses, normalizes and validates `submission` for `source`. Pure: no I/O, no panics
/// escape (a parser panic becomes a parse error, so the submission is still stored).
pub fn prepare(submission: &Submission, source: &Source, routing: &Routing) -> Prepared {
    prepare_releasing(submission, source, routing, None)
}

/// [`prepare`], with the record at `release` planned for routing even if it carries a
/// review marker (an operator released it; the commit decides whether it still may be).
fn prepare_releasing(
    submission: &Submission,
    source: &Source,
    routing: &Routing,
    release: Option<usize>,
) -> Prepared {
    // Only the parser settings cross the unwind boundary (a source also holds clients).
    let cx = &source.parse;
    let parsed = std::panic::catch_unwind(|| parse::parse(submission.format, &submission.body, cx))
        .unwrap_or_else(|_| Err(ParseError::new("internal parser error (the payload is kept for replay)")));
    let output = match parsed {
        Ok(o) => o,
        Err(e) => return Prepared::Failed(e),
    };
    let candidates = output
        .records
        .iter()
        .enumerate()
        .map(|(i, record)| candidate(record, submission, source, routing, release == Some(i)))
        .collect();
    Prepared::Parsed { batch: output.batch, candidates }
}

fn candidate(
    record: &parse::Record,
    submission: &Submission,
    source: &Source,
    routing: &Routing,
    released: bool,
) -> Candidate {
    // Review marker (generic e-mail extraction): taken out before normalizing.
    let review = parse::review(record).map(str::to_owned);
    let unmarked;
    let record = match review {
        Some(_) => {
            unmarked = parse::without_review(record);
            &unmarked
        }
        None => record,
    };
    // A row the parser could not read (a file's bad JSON line) is rejected with the
    // parser's message; it keeps its place and gets a lead id like every other row.
    let (n, row_error) = match parse::row_error(record) {
        Some(message) => (Default::default(), Some(Problem::new("row", "unreadable", message))),
        None => (normalize(record, source.normalize_for(submission.format)), None),
    };
    let mut errors: Vec<Problem> = n.errors;
    match row_error {
        Some(p) => errors.push(p),
        None => validate(&n.lead, &source.rules, &mut errors),
    }
    // A vendor's test lead is kept, but neither sold nor allowed to make a real lead a duplicate.
    let sellable = errors.is_empty() && !n.lead.test;
    let dedupe_keys = if sellable { source.dedupe.keys(&n.lead, &source.name) } else { Vec::new() };
    let vendor_key = n
        .lead
        .vendor_lead_id
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| format!("vid:{}:{v}", source.name));
    let lead_id = new_id();
    tracing::debug!(
        lead_id = %lead_id,
        source = %source.name,
        email = %n.lead.email.as_deref().map(crate::telemetry::Masked::Email).map(|m| m.to_string()).unwrap_or_default(),
        phone = %n.lead.phone.as_deref().map(crate::telemetry::Masked::Phone).map(|m| m.to_string()).unwrap_or_default(),
        name = %n.lead.last_name.as_deref().map(crate::telemetry::Masked::Name).map(|m| m.to_string()).unwrap_or_default(),
        errors = errors.len(),
        "Lead normalized."
    );
    // A lead held for review is not routed (its plan stays empty) until an operator looks.
    let routable = sellable && (review.is_none() || released);
    let (score, plan) =
        routing.score_and_plan(&n.lead, &lead_id, &source.name, submission.received_at, routable);
    Candidate {
        stored: StoredForm::of(&n.lead, &errors, &n.warnings),
        lead_id,
        lead: n.lead,
        errors,
        warnings: n.warnings,
        dedupe_keys,
        window_ms: i64::try_from(source.dedupe.window.as_millis()).unwrap_or(i64::MAX),
        vendor_key,
        score,
        plan,
        review,
    }
}

/// Prepares a job for `submission` with the current config.
pub fn job(config: &Config, submission: Submission, replay: bool) -> Job {
    let prepared = match config.source(&submission.source) {
        Some(source) => prepare(&submission, source, &config.routing),
        None => {
            Prepared::Failed(ParseError::new(format!("source {:?} is not in the config", submission.source)))
        }
    };
    Job { submission, replay, release: None, prepared }
}

/// A replay of `submission` that releases its lead `lead_id` (record `record_index`) from
/// review: that record is planned for routing despite its review marker.
pub fn release_job(config: &Config, submission: Submission, lead_id: &str, record_index: usize) -> Job {
    let prepared = match config.source(&submission.source) {
        Some(source) => prepare_releasing(&submission, source, &config.routing, Some(record_index)),
        None => {
            Prepared::Failed(ParseError::new(format!("source {:?} is not in the config", submission.source)))
        }
    };
    Job { submission, replay: true, release: Some(lead_id.to_owned()), prepared }
}
