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

/// One log line per committed submission (outcomes only, no lead data).
pub fn submission_committed(result: &SubmissionResult) {
    match result {
        SubmissionResult::Processed { submission_id, results, .. } => {
            for r in results {
                tracing::info!(submission_id = %submission_id, lead_id = %r.lead_id, outcome = r.outcome.as_str(), reasons = r.reasons.len(), "Lead committed.");
            }
        }
        SubmissionResult::Unparseable { submission_id, error, .. } => {
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
    resolution: &crate::store::outbox::Resolution,
    error: Option<&str>,
) {
    use crate::store::outbox::Resolution;
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
