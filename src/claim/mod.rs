//! The pull pool: open offers a partner may claim, claims with leases, confirmations,
//! dispositions (from pull partners and push buyers alike), and the sweep that expires
//! leases and offers and records SLA breaches.
//!
//! Why it is shaped so: every rule of the pool (who may claim an offer now, why a claim is
//! refused, whether a return is allowed, what an expired offer falls back to) is decided
//! here, as plain functions over what the store loaded ([`eligible`], [`refusal`],
//! [`disposition::outside_window`], …), so the rules read in one place and are tested
//! without a database. [`crate::store::offers`] only loads and saves the pool's rows.
//!
//! Each operation is one write transaction, with the same boundaries as the claim: lock
//! the partner's key ([`crate::store::routing::lock_key`]; PostgreSQL only, SQLite's write
//! lock already serializes writers), load, decide, write, commit. Guarantees:
//!
//! - exactly one claimer wins an offer, whatever the number of instances: the claim is a
//!   compare-and-set on the offer row (`UPDATE … WHERE status = 'open'`), under SQLite's
//!   write lock or PostgreSQL's row lock; `claims/next` reads its candidates with
//!   `FOR UPDATE SKIP LOCKED` on PostgreSQL so concurrent claimers do not queue;
//! - partner caps are checked and counted in the claim's transaction, under the partner's
//!   lock, and given back when a lease expires;
//! - a refusal changes nothing (the transaction is rolled back).

mod disposition;
mod lease;
mod offers;
mod sweep;

use serde::Serialize;

use crate::store::StoreError;
use crate::store::commit::{event, insert_events};
pub use crate::store::dispositions::DispositionKind;
use crate::store::offers::{OfferState, OfferStatus, OfferTerms};
use crate::store::tx::Exec;
pub use disposition::{disposition, outside_window, over_cap};
pub use lease::{claim, claim_next, confirm};
pub use offers::{OfferQuery, OfferRow, offers_for};
pub use sweep::sweep_pool;

/// A won claim.
#[derive(Debug, Clone, Serialize)]
pub struct Claimed {
    pub lead_id: String,
    pub claim_id: String,
    pub fields: crate::lead::Lead,
    pub lease_expires_at: String,
}

/// What a claim attempt came to.
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    Claimed(Box<Claimed>),
    /// Another partner has it, or the offer expired (409).
    Taken(String),
    /// Not offered to this partner, or not yet (exclusive-first) (409).
    NotEligible(String),
    /// The partner's cap is reached (409).
    CapReached(String),
    NotFound,
}

/// What a confirmation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmOutcome {
    Confirmed,
    /// No live claim of this partner on the lead (expired or never claimed).
    NoLiveClaim,
}

/// A disposition as reported.
#[derive(Debug, Clone)]
pub struct Disposition {
    pub kind: DispositionKind,
    pub reason: Option<String>,
    pub value: Option<String>,
}

/// News for the source vendor (closed loop), sent through the outbox.
#[derive(Debug, Clone)]
pub struct Relay {
    /// The outbox target, `source:<name>`.
    pub target: String,
    pub payload: crate::deliver::Payload,
}

/// What recording a disposition came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispositionOutcome {
    Recorded {
        id: String,
    },
    /// The buyer never got this lead (404).
    NotYours,
    /// A rule refused it (422), e.g. the return window or cap.
    Refused(String),
}

/// Whether `partner` may claim an offer made on `terms` at `now`: it must be listed, and
/// before the offer opens to all (exclusive-first) it must be its turn.
pub fn eligible(terms: &OfferTerms, partner: &str, now: i64) -> bool {
    if !terms.partners.iter().any(|p| p == partner) {
        return false;
    }
    if now >= terms.open_at || terms.exclusive_ms <= 0 {
        return true;
    }
    let turn = usize::try_from((now - terms.created_at).max(0) / terms.exclusive_ms).unwrap_or(usize::MAX);
    terms.partners.get(turn).is_some_and(|p| p == partner)
}

/// Why `partner` may not claim `offer` at `now`, if it may not. An offer not made to the
/// partner is answered like an unknown lead.
pub fn refusal(offer: &OfferState, partner: &str, now: i64) -> Option<ClaimOutcome> {
    if !offer.terms.partners.iter().any(|p| p == partner) {
        return Some(ClaimOutcome::NotFound);
    }
    if offer.status != OfferStatus::Open || offer.expires_at <= now {
        let why = if matches!(offer.status, OfferStatus::Open | OfferStatus::Expired) {
            "the offer expired"
        } else if offer.claimed_by.as_deref() == Some(partner) {
            "you already claimed this lead"
        } else {
            "another partner claimed it"
        };
        return Some(ClaimOutcome::Taken(why.into()));
    }
    if !eligible(&offer.terms, partner, now) {
        return Some(ClaimOutcome::NotEligible("another partner has this offer exclusively for now".into()));
    }
    None
}

/// A duration in milliseconds (saturating far beyond any configured value).
fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Writes one `lead_events` row in the caller's transaction.
async fn record_event(
    tx: &mut impl Exec,
    lead_id: &str,
    now: i64,
    kind: &'static str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    insert_events(tx, vec![event(lead_id, now, kind, detail)]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(partners: &[&str], exclusive_ms: i64, created_at: i64, open_at: i64) -> OfferTerms {
        OfferTerms {
            partners: partners.iter().map(|p| p.to_string()).collect(),
            exclusive_ms,
            open_at,
            created_at,
        }
    }

    #[test]
    fn exclusive_first_hands_over_in_turn_then_opens() {
        // Created at 0, 10 ms each, open at 20.
        let t = terms(&["a", "b"], 10, 0, 20);
        assert!(eligible(&t, "a", 5));
        assert!(!eligible(&t, "b", 5));
        assert!(eligible(&t, "b", 15));
        assert!(!eligible(&t, "a", 15));
        assert!(eligible(&t, "a", 25));
        assert!(!eligible(&t, "c", 25));
        assert!(eligible(&terms(&["a", "b"], 0, 0, 0), "b", 0));
    }

    fn offer(status: OfferStatus, claimed_by: Option<&str>) -> OfferState {
        OfferState {
            terms: terms(&["a", "b"], 10, 0, 20),
            status,
            expires_at: 100,
            claimed_by: claimed_by.map(str::to_string),
        }
    }

    fn why(o: Option<ClaimOutcome>) -> String {
        match o {
            None => "claimable".into(),
            Some(ClaimOutcome::NotFound) => "not found".into(),
            Some(ClaimOutcome::Taken(w)) => format!("taken: {w}"),
            Some(ClaimOutcome::NotEligible(w)) => format!("not eligible: {w}"),
            Some(ClaimOutcome::CapReached(w)) => format!("cap: {w}"),
            Some(ClaimOutcome::Claimed(_)) => "claimed".into(),
        }
    }

    #[test]
    fn a_claim_is_refused_for_the_first_reason_that_applies() {
        let open = offer(OfferStatus::Open, None);
        assert_eq!(why(refusal(&open, "c", 5)), "not found");
        assert_eq!(why(refusal(&open, "a", 5)), "claimable");
        assert_eq!(
            why(refusal(&open, "b", 5)),
            "not eligible: another partner has this offer exclusively for now"
        );
        assert_eq!(why(refusal(&open, "b", 100)), "taken: the offer expired");
        assert_eq!(why(refusal(&offer(OfferStatus::Expired, None), "a", 5)), "taken: the offer expired");
        let claimed = offer(OfferStatus::Claimed, Some("a"));
        assert_eq!(why(refusal(&claimed, "a", 5)), "taken: you already claimed this lead");
        assert_eq!(why(refusal(&claimed, "b", 25)), "taken: another partner claimed it");
        // Not offered to it at all: unknown, whatever the offer's state.
        assert_eq!(why(refusal(&claimed, "c", 25)), "not found");
    }
}
