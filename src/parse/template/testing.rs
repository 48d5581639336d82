//! `leadgate parsers test`: runs each template's sample messages through live-mail
//! matching, parsing and normalization, and compares every lead field with the
//! expectation, field by field.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::Templates;
use crate::lead::normalize::{NormalizeOptions, normalize};
use crate::parse::email::EmailContext;
use crate::parse::{Format, ParseContext};

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    /// Expected, got something else.
    Changed { field: String, expected: String, got: String },
    /// Expected, not there.
    Missing { field: String, expected: String },
    /// There, not expected.
    Unexpected { field: String, got: String },
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diff::Changed { field, expected, got } => {
                write!(f, "~ {field}: expected {expected:?}, got {got:?}")
            }
            Diff::Missing { field, expected } => write!(f, "- {field}: expected {expected:?}, missing"),
            Diff::Unexpected { field, got } => write!(f, "+ {field}: {got:?} (not expected)"),
        }
    }
}

/// The result of one sample.
#[derive(Debug, Clone)]
pub struct Report {
    pub template: String,
    pub file: String,
    /// Why the sample could not be compared at all (unreadable, wrong template, parse error).
    pub error: Option<String>,
    pub diffs: Vec<Diff>,
    /// Fields compared and equal.
    pub matched: usize,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.diffs.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passed() {
            return write!(f, "ok      {} {} ({} fields)", self.template, self.file, self.matched);
        }
        write!(f, "FAILED  {} {}", self.template, self.file)?;
        if let Some(e) = &self.error {
            write!(f, "\n    {e}")?;
        }
        for d in &self.diffs {
            write!(f, "\n    {d}")?;
        }
        Ok(())
    }
}

/// Runs every test of every template in `templates` (matching among all of them).
pub fn run(templates: &Arc<Templates>) -> Vec<Report> {
    let cx = ParseContext {
        email: EmailContext { templates: templates.clone(), template: None, ..EmailContext::default() },
        ..ParseContext::default()
    };
    let mut reports = Vec::new();
    for t in templates.iter() {
        for test in &t.tests {
            let mut report = Report {
                template: t.name.clone(),
                file: test.file.display().to_string(),
                error: None,
                diffs: Vec::new(),
                matched: 0,
            };
            match run_one(&cx, &t.name, &test.file, &test.expect) {
                Ok((diffs, matched)) => {
                    report.diffs = diffs;
                    report.matched = matched;
                }
                Err(e) => report.error = Some(e),
            }
            reports.push(report);
        }
    }
    reports
}

fn run_one(
    cx: &ParseContext,
    template: &str,
    file: &std::path::Path,
    expect: &[(String, String)],
) -> Result<(Vec<Diff>, usize), String> {
    let raw = std::fs::read(file).map_err(|e| format!("cannot read the sample: {e}"))?;
    let chosen = crate::parse::email::template_name(&raw, &cx.email);
    if chosen.as_deref() != Some(template) {
        return Err(format!(
            "live mail matching picks {}, not this template",
            chosen.map_or_else(|| "no template".to_owned(), |c| format!("template {c}"))
        ));
    }
    let out = crate::parse::parse(Format::Email, &raw, cx).map_err(|e| format!("parse error: {e}"))?;
    let [record] = out.records.as_slice() else {
        return Err(format!("expected one lead, got {}", out.records.len()));
    };
    let lead = normalize(record, &NormalizeOptions::default()).lead;
    let mut got = BTreeMap::new();
    flatten("", &serde_json::to_value(&lead).unwrap_or(Value::Null), &mut got);
    let mut diffs = Vec::new();
    let mut matched = 0;
    for (field, expected) in expect {
        match got.remove(field) {
            Some(g) if &g == expected => matched += 1,
            Some(g) => diffs.push(Diff::Changed { field: field.clone(), expected: expected.clone(), got: g }),
            None => diffs.push(Diff::Missing { field: field.clone(), expected: expected.clone() }),
        }
    }
    diffs.extend(got.into_iter().map(|(field, got)| Diff::Unexpected { field, got }));
    Ok((diffs, matched))
}

/// `{"custom": {"a": 1}}` → `custom.a = "1"`; strings as they are.
pub(crate) fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&name, v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}
