//! Dedupe: which earlier lead, if any, a new lead repeats.
//!
//! A policy is a list of key sets (`[["email"], ["phone"]]`): a lead is a duplicate when
//! *any* set matches a live key, and a set matches only when *all* its fields are equal
//! (`["email", "product"]`). Keys are SHA-256 hashes of the normalized values (e-mail
//! lower-cased, phone in E.164), so the store never holds them in clear. A key lives for
//! the policy's window. [`decide`] is the decision, pure; the store loads the keys' owners
//! under lock, calls it, and saves what it says in the same transaction, so the
//! check-and-insert is atomic.

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::lead::Lead;
use crate::lead::validate::{is_field_name, is_usable};

/// Where duplicates are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Across all sources: a lead is sold once, whoever sent it.
    #[default]
    Global,
    /// Only among leads of the same source.
    Source,
}

/// A compiled dedupe policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub sets: Vec<Vec<String>>,
    pub window: Duration,
    pub scope: Scope,
}

impl Policy {
    pub fn new(sets: Vec<Vec<String>>, window: Duration, scope: Scope) -> Result<Policy, String> {
        for set in &sets {
            if set.is_empty() {
                return Err("a key set must name at least one field".into());
            }
            for f in set {
                if !is_field_name(f) {
                    return Err(format!("unknown field {f:?} in dedupe keys"));
                }
            }
        }
        Ok(Policy { sets, window, scope })
    }

    /// The hashed keys of `lead` from source `source`, one per set whose fields are all present.
    pub fn keys(&self, lead: &Lead, source: &str) -> Vec<String> {
        let scope = match self.scope {
            Scope::Global => "global".to_string(),
            Scope::Source => format!("source:{source}"),
        };
        let mut keys: Vec<String> = self
            .sets
            .iter()
            .filter_map(|set| {
                let mut h = Sha256::new();
                h.update(scope.as_bytes());
                for field in set {
                    if !is_usable(lead, field) {
                        return None;
                    }
                    let value = lead.get(field)?;
                    h.update(b"\x1f");
                    h.update(field.as_bytes());
                    h.update(b"=");
                    h.update(value.trim().to_lowercase().as_bytes());
                }
                Some(hex::encode(h.finalize()))
            })
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// Who owns a dedupe key: the lead that took it, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub lead_id: String,
    pub at: i64,
}

/// What dedupe says about a lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No live key belongs to another lead: the lead takes (or renews) all its keys.
    Original,
    /// A live key belongs to this earlier lead.
    DuplicateOf(String),
}

/// Decides a lead with `keys` against the keys' current `owners`. A key is live when it was
/// taken after `now - window_ms`; a key `lead_id` itself owns (a replay of the same lead)
/// never makes it a duplicate. Pure: the caller holds the locks and writes the result.
pub fn decide(
    lead_id: &str,
    keys: &[String],
    owners: &std::collections::HashMap<String, Owner>,
    now: i64,
    window_ms: i64,
) -> Decision {
    let cutoff = now.saturating_sub(window_ms);
    keys.iter()
        .find_map(|k| owners.get(k).filter(|o| o.at > cutoff && o.lead_id != lead_id))
        .map_or(Decision::Original, |o| Decision::DuplicateOf(o.lead_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::new(
            vec![vec!["email".into()], vec!["phone".into()]],
            Duration::from_secs(86_400),
            Scope::Global,
        )
        .unwrap()
    }

    #[test]
    fn any_set_gives_a_key_and_missing_fields_give_none() {
        let lead = Lead { email: Some("a@b.co".into()), ..Lead::default() };
        assert_eq!(policy().keys(&lead, "s").len(), 1);
        let both = Lead { phone: Some("+14155550142".into()), ..lead.clone() };
        assert_eq!(policy().keys(&both, "s").len(), 2);
        let raw_phone = Lead { phone: Some("12".into()), ..Lead::default() };
        assert!(policy().keys(&raw_phone, "s").is_empty());
    }

    #[test]
    fn scope_source_separates_sources() {
        let mut p = policy();
        let lead = Lead { email: Some("a@b.co".into()), ..Lead::default() };
        assert_eq!(p.keys(&lead, "x"), p.keys(&lead, "y"));
        p.scope = Scope::Source;
        assert_ne!(p.keys(&lead, "x"), p.keys(&lead, "y"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(Policy::new(vec![vec!["mail".into()]], Duration::ZERO, Scope::Global).is_err());
    }
}

#[cfg(test)]
mod decide_tests {
    use std::collections::HashMap;

    use super::{Decision, Owner, decide};

    fn owners(list: &[(&str, &str, i64)]) -> HashMap<String, Owner> {
        list.iter().map(|(k, id, at)| (k.to_string(), Owner { lead_id: id.to_string(), at: *at })).collect()
    }

    #[test]
    fn a_live_key_of_another_lead_makes_a_duplicate_an_expired_or_own_key_does_not() {
        let keys = vec!["e".to_string(), "p".to_string()];
        assert_eq!(decide("new", &keys, &owners(&[]), 100, 50), Decision::Original);
        assert_eq!(
            decide("new", &keys, &owners(&[("p", "old", 90)]), 100, 50),
            Decision::DuplicateOf("old".into())
        );
        assert_eq!(
            decide("new", &keys, &owners(&[("p", "old", 40)]), 100, 50),
            Decision::Original,
            "expired"
        );
        assert_eq!(
            decide("old", &keys, &owners(&[("e", "old", 90)]), 100, 50),
            Decision::Original,
            "own key"
        );
        assert_eq!(
            decide("new", &keys, &owners(&[("e", "a", 90), ("p", "b", 95)]), 100, 50),
            Decision::DuplicateOf("a".into()),
            "the first key set that matches names the original"
        );
    }
}
