//! Normalization: vendor records → canonical [`Lead`](crate::lead::Lead).
//! TEMPORARY STUB in main until the helper-normalize branch lands (same API).

use std::collections::BTreeMap;

use crate::lead::{Lead, Problem};
use crate::parse::Record;

#[derive(Debug, Clone, Default)]
pub struct Aliases;

impl Aliases {
    pub fn with_overrides(_m: &BTreeMap<String, String>) -> Result<Aliases, String> {
        Ok(Aliases)
    }
}

#[derive(Debug, Clone)]
pub struct NormalizeOptions {
    pub default_region: String,
    pub aliases: Aliases,
    pub lowercase_email_local: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self {
            default_region: "US".into(),
            aliases: Aliases,
            lowercase_email_local: true,
        }
    }
}

pub struct Normalized {
    pub lead: Lead,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

pub fn normalize(record: &Record, _opts: &NormalizeOptions) -> Normalized {
    let mut lead = Lead::default();
    for (k, v) in record {
        lead.custom.insert(k.clone(), v.clone());
    }
    Normalized {
        lead,
        errors: vec![],
        warnings: vec![],
    }
}
