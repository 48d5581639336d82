//! Dedupe: which earlier lead, if any, a new lead repeats.
//!
//! A policy is a list of key sets (`[["email"], ["phone"]]`): a lead is a duplicate when
//! *any* set matches a live key, and a set matches only when *all* its fields are equal
//! (`["email", "product"]`). Keys are SHA-256 hashes of the normalized values (e-mail
//! lower-cased, phone in E.164), so the store never holds them in clear. A key lives for
//! the policy's window; the check-and-insert itself happens in the store, atomically.

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
