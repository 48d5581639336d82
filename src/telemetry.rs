//! Logging setup and PII masking.
//!
//! Lead data never reaches the logs in clear: e-mail, phone and names go through the
//! [`Masked`] wrappers, which keep just enough to recognise a lead when debugging.

use std::fmt;

use tracing_subscriber::EnvFilter;

use crate::pipeline::SubmissionResult;

/// Installs the global subscriber: pretty for a terminal, JSON for log shippers.
/// `RUST_LOG` overrides the level (default `info`).
pub fn init(json: bool) {
    // libunftp logs every FTP command at INFO with its whole session attached; the FTP
    // channel logs what matters (logins, refusals, files) itself.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,libunftp=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if json { builder.json().try_init() } else { builder.try_init() };
    if result.is_err() {
        // Already installed (tests start several gateways in one process).
    }
}

/// A value shown masked in logs.
pub enum Masked<'a> {
    Email(&'a str),
    Phone(&'a str),
    Name(&'a str),
}

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Masked::Email(e) => match e.split_once('@') {
                Some((local, domain)) => {
                    write!(f, "{}***@{domain}", local.chars().next().map(String::from).unwrap_or_default())
                }
                None => f.write_str("***"),
            },
            Masked::Phone(p) => {
                let chars: Vec<char> = p.chars().collect();
                let keep = chars.len().saturating_sub(2);
                let tail: String = chars[keep..].iter().collect();
                write!(f, "***{tail}")
            }
            Masked::Name(n) => {
                write!(f, "{}***", n.chars().next().map(String::from).unwrap_or_default())
            }
        }
    }
}

/// The process's Prometheus recorder (installed on first use; one per process).
pub fn metrics() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
            Ok(h) => {
                describe();
                Some(h)
            }
            Err(e) => {
                tracing::warn!(error.message = %e, "Metrics recorder not installed; /metrics will be empty.");
                None
            }
        })
        .as_ref()
}

/// Metric names (one place, so logs, docs and dashboards agree).
pub mod metric {
    pub const LEADS: &str = "leadgate_leads_total";
    pub const SUBMISSIONS_UNPARSEABLE: &str = "leadgate_submissions_unparseable_total";
    pub const DELIVERY_ATTEMPTS: &str = "leadgate_delivery_attempts_total";
    pub const CLAIMS: &str = "leadgate_claims_total";
    pub const SLA_BREACHES: &str = "leadgate_sla_breaches_total";
    pub const DISPOSITIONS: &str = "leadgate_dispositions_total";
    pub const COMMIT_BATCH: &str = "leadgate_commit_batch_submissions";
    pub const COMMIT_SECONDS: &str = "leadgate_commit_seconds";
    pub const HTTP_INTAKE_PHASE: &str = "leadgate_http_intake_phase_seconds";
    pub const WAL_SYNC_SECONDS: &str = "leadgate_wal_sync_seconds";
    pub const WAL_SYNC_BATCHES: &str = "leadgate_wal_sync_batches";
    pub const MAILBOX_LAST_FETCH: &str = "leadgate_mailbox_last_fetch_timestamp_seconds";
    pub const MAILBOX_ERRORS: &str = "leadgate_mailbox_errors_total";
    pub const MAILBOX_UP: &str = "leadgate_mailbox_up";
}

fn describe() {
    metrics::describe_histogram!(
        metric::HTTP_INTAKE_PHASE,
        "Time a POST /v1/leads spends in each phase: auth (key and headers), body (reading it), \
         prepare (parse, normalize, validate, score, plan), commit (waiting for the group commit), \
         answer (rendering the response)."
    );
    metrics::describe_histogram!(
        metric::WAL_SYNC_SECONDS,
        "SQLite with synchronous = full: how long each sync of the WAL took (answers wait for it)."
    );
    metrics::describe_histogram!(
        metric::WAL_SYNC_BATCHES,
        "SQLite with synchronous = full: how many group commits one WAL sync made durable."
    );
    metrics::describe_counter!(metric::LEADS, "Leads committed, by source and outcome.");
    metrics::describe_counter!(metric::SUBMISSIONS_UNPARSEABLE, "Submissions stored unparsed, by source.");
    metrics::describe_counter!(metric::DELIVERY_ATTEMPTS, "Delivery attempts, by buyer and outcome.");
    metrics::describe_counter!(metric::CLAIMS, "Claims and their ends, by partner and event.");
    metrics::describe_counter!(metric::SLA_BREACHES, "SLA breaches, by kind and route.");
    metrics::describe_counter!(metric::DISPOSITIONS, "Dispositions reported, by buyer and status.");
    metrics::describe_gauge!(
        metric::MAILBOX_LAST_FETCH,
        "When each IMAP consumer last fetched successfully."
    );
    metrics::describe_counter!(metric::MAILBOX_ERRORS, "IMAP consumer errors, by mailbox.");
    metrics::describe_gauge!(metric::MAILBOX_UP, "1 while an IMAP consumer is connected (idle or polling).");
}

/// A group commit: how many submissions shared it and how long it took.
pub fn batch_committed(submissions: usize, took: std::time::Duration) {
    metrics::histogram!(metric::COMMIT_BATCH).record(submissions as f64);
    metrics::histogram!(metric::COMMIT_SECONDS).record(took.as_secs_f64());
    tracing::debug!(submissions, took_us = took.as_micros() as u64, "Batch committed.");
}

/// A sync of the SQLite WAL that made `batches` group commits durable.
pub fn wal_synced(batches: usize, took: std::time::Duration) {
    metrics::histogram!(metric::WAL_SYNC_BATCHES).record(batches as f64);
    metrics::histogram!(metric::WAL_SYNC_SECONDS).record(took.as_secs_f64());
}

/// Where one `POST /v1/leads` spent its time, phase by phase (see [`metric::HTTP_INTAKE_PHASE`]).
pub fn http_intake_phases(phases: &[(&'static str, std::time::Duration)]) {
    for (phase, took) in phases {
        metrics::histogram!(metric::HTTP_INTAKE_PHASE, "phase" => *phase).record(took.as_secs_f64());
    }
}

/// An IMAP consumer's state, as metrics (the admin API has the same from the store).
pub fn mailbox_state(mailbox: &str, state: &str, fetched: bool, error: bool, now_ms: i64) {
    let up = if matches!(state, "idle" | "polling") { 1.0 } else { 0.0 };
    metrics::gauge!(metric::MAILBOX_UP, "mailbox" => mailbox.to_string()).set(up);
    if fetched {
        metrics::gauge!(metric::MAILBOX_LAST_FETCH, "mailbox" => mailbox.to_string())
            .set(now_ms as f64 / 1000.0);
    }
    if error {
        metrics::counter!(metric::MAILBOX_ERRORS, "mailbox" => mailbox.to_string()).increment(1);
    }
}

/// A claim event (claimed, confirmed, expired).
pub fn claim_event(partner: &str, lead_id: &str, event: &'static str) {
    metrics::counter!(metric::CLAIMS, "partner" => partner.to_string(), "event" => event).increment(1);
    tracing::info!(lead_id, partner, event, "Claim event.");
}

/// An SLA breach.
pub fn sla_breached(lead_id: &str, buyer: &str, kind: &str, route: &str) {
    metrics::counter!(metric::SLA_BREACHES, "kind" => kind.to_string(), "route" => route.to_string())
        .increment(1);
    tracing::warn!(lead_id, buyer, kind, route, "SLA breached.");
}

/// A disposition reported by a buyer.
pub fn disposition(lead_id: &str, buyer: &str, status: &str) {
    metrics::counter!(metric::DISPOSITIONS, "buyer" => buyer.to_string(), "status" => status.to_string())
        .increment(1);
    tracing::info!(lead_id, buyer, status, "Disposition recorded.");
}

/// One log line per committed submission (outcomes only, no lead data).
pub fn submission_committed(result: &SubmissionResult) {
    match result {
        SubmissionResult::Processed { submission_id, results, .. } => {
            for r in results {
                metrics::counter!(metric::LEADS, "outcome" => r.outcome.as_str()).increment(1);
                tracing::info!(submission_id = %submission_id, lead_id = %r.lead_id, outcome = r.outcome.as_str(), reasons = r.reasons.len(), "Lead committed.");
            }
        }
        SubmissionResult::Unparseable { submission_id, error, .. } => {
            metrics::counter!(metric::SUBMISSIONS_UNPARSEABLE).increment(1);
            tracing::info!(submission_id = %submission_id, error.message = %error, "Submission stored unparsed; it can be replayed.");
        }
        SubmissionResult::IdempotencyConflict { submission_id } => {
            tracing::info!(submission_id = %submission_id, "Idempotency-Key reused with a different body.");
        }
    }
}

/// One log line per delivery attempt (ids and outcome only).
pub fn delivery_attempted(
    delivery_id: &str,
    lead_id: &str,
    buyer: &str,
    attempt: i64,
    resolution: &crate::deliver::attempt::Resolution,
    error: Option<&str>,
) {
    use crate::deliver::attempt::Resolution;
    let outcome = match resolution {
        Resolution::Delivered => "delivered",
        Resolution::Retry { .. } => "retry",
        Resolution::Rejected { .. } => "rejected",
        Resolution::Gone { .. } => "gone",
        Resolution::Dead => "dead",
    };
    metrics::counter!(metric::DELIVERY_ATTEMPTS, "buyer" => buyer.to_string(), "outcome" => outcome)
        .increment(1);
    match resolution {
        Resolution::Delivered => {
            tracing::info!(delivery_id, lead_id, buyer, attempt, "Lead delivered.");
        }
        Resolution::Retry { .. } => {
            tracing::info!(
                delivery_id,
                lead_id,
                buyer,
                attempt,
                error = error.unwrap_or_default(),
                "Delivery failed; retry scheduled."
            );
        }
        Resolution::Rejected { .. } => {
            tracing::info!(
                delivery_id,
                lead_id,
                buyer,
                attempt,
                reason = error.unwrap_or_default(),
                "Buyer rejected the lead."
            );
        }
        Resolution::Gone { .. } => {
            tracing::error!(
                delivery_id,
                lead_id,
                buyer,
                attempt,
                "Buyer endpoint is gone (410): the buyer is disabled until an operator re-enables it."
            );
        }
        Resolution::Dead => {
            tracing::error!(
                delivery_id,
                lead_id,
                buyer,
                attempt,
                error = error.unwrap_or_default(),
                "Delivery dead-lettered after its last attempt; `leadgate redeliver` re-queues it."
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Masked;

    #[test]
    fn pii_is_masked() {
        assert_eq!(Masked::Email("mj.oneil@example.com").to_string(), "m***@example.com");
        assert_eq!(Masked::Phone("+14155550142").to_string(), "***42");
        assert_eq!(Masked::Name("María").to_string(), "M***");
        assert_eq!(Masked::Email("nonsense").to_string(), "***");
    }
}
