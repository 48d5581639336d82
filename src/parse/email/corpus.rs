//! The look-alike vendor corpus: `.eml` messages, each beside a `.toml` file of the lead
//! fields a person reads in it (normalized, as `leadgate parse` prints them). Every
//! message is read without a template; the score is the share of expected fields that
//! come out right, and every e-mail or phone that comes out different from the expected
//! one (or where none is expected) is counted as wrong, since a wrong contact is worse
//! than a missing one. `leadgate parsers test` and the test suite run it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::lead::normalize::{NormalizeOptions, normalize};
use crate::parse::template::testing::{Diff, flatten};
use crate::parse::{Format, ParseContext};

/// The fields whose wrong value is never acceptable.
pub const CONTACT_VALUES: &[&str] = &["email", "phone", "phone_2"];

/// The share of expected fields that must be right.
pub const TARGET_SHARE: f64 = 0.9;

/// One message's result.
#[derive(Debug, Clone)]
pub struct MessageReport {
    pub file: PathBuf,
    /// Expected fields.
    pub expected: usize,
    /// Expected fields that came out equal.
    pub right: usize,
    pub diffs: Vec<Diff>,
    /// Contact values taken that are not the lead's (`email: "x" (expected "y")`).
    pub wrong: Vec<String>,
    /// Why the lead would be held for review.
    pub review: Option<String>,
    /// Why the message gave no lead at all.
    pub error: Option<String>,
}

/// The whole corpus.
#[derive(Debug, Clone, Default)]
pub struct CorpusReport {
    pub messages: Vec<MessageReport>,
}

impl CorpusReport {
    pub fn expected(&self) -> usize {
        self.messages.iter().map(|m| m.expected).sum()
    }

    pub fn right(&self) -> usize {
        self.messages.iter().map(|m| m.right).sum()
    }

    pub fn wrong(&self) -> usize {
        self.messages.iter().map(|m| m.wrong.len()).sum()
    }

    /// Right fields over expected fields (1.0 for an empty corpus).
    pub fn share(&self) -> f64 {
        match self.expected() {
            0 => 1.0,
            n => self.right() as f64 / n as f64,
        }
    }

    /// At least [`TARGET_SHARE`] right and no wrong contact.
    pub fn passed(&self) -> bool {
        self.share() >= TARGET_SHARE && self.wrong() == 0
    }
}

impl fmt::Display for CorpusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.messages {
            let name = m
                .file
                .file_name()
                .map_or_else(|| m.file.display().to_string(), |n| n.to_string_lossy().into_owned());
            let mark = if m.right == m.expected && m.wrong.is_empty() { "ok    " } else { "MISSED" };
            write!(f, "{mark}  {name} ({}/{} fields)", m.right, m.expected)?;
            if let Some(r) = &m.review {
                write!(f, " [needs review: {r}]")?;
            }
            if let Some(e) = &m.error {
                write!(f, "\n    {e}")?;
            }
            for w in &m.wrong {
                write!(f, "\n    WRONG {w}")?;
            }
            for d in &m.diffs {
                write!(f, "\n    {d}")?;
            }
            writeln!(f)?;
        }
        write!(
            f,
            "corpus: {} messages, {}/{} expected fields right ({:.1} %, target {:.0} %), {} wrong e-mails/phones",
            self.messages.len(),
            self.right(),
            self.expected(),
            self.share() * 100.0,
            TARGET_SHARE * 100.0,
            self.wrong()
        )
    }
}

/// Runs every `*.eml` of `dir` (sorted by name) that has a `.toml` beside it.
pub fn run(dir: &Path) -> Result<CorpusReport, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml") && p.with_extension("toml").is_file())
        .collect();
    files.sort();
    let cx = ParseContext::default();
    let mut report = CorpusReport::default();
    for file in files {
        report.messages.push(one(&cx, &file)?);
    }
    Ok(report)
}

fn one(cx: &ParseContext, file: &Path) -> Result<MessageReport, String> {
    let expect_path = file.with_extension("toml");
    let text =
        std::fs::read_to_string(&expect_path).map_err(|e| format!("{}: {e}", expect_path.display()))?;
    let expect: BTreeMap<String, String> =
        toml::from_str(&text).map_err(|e| format!("{}: {}", expect_path.display(), e.message()))?;
    let mut report = MessageReport {
        file: file.to_path_buf(),
        expected: expect.len(),
        right: 0,
        diffs: Vec::new(),
        wrong: Vec::new(),
        review: None,
        error: None,
    };
    let raw = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let out = match crate::parse::parse(Format::Email, &raw, cx) {
        Ok(out) => out,
        Err(e) => {
            report.error = Some(format!("no lead: {e}"));
            report.diffs =
                expect.into_iter().map(|(field, expected)| Diff::Missing { field, expected }).collect();
            return Ok(report);
        }
    };
    let mut got = BTreeMap::new();
    if let Some(record) = out.records.first() {
        report.review = crate::parse::review(record).map(str::to_owned);
        let lead = normalize(&crate::parse::without_review(record), &NormalizeOptions::default()).lead;
        flatten("", &serde_json::to_value(&lead).unwrap_or(Value::Null), &mut got);
    }
    for name in CONTACT_VALUES {
        if let Some(g) = got.get(*name)
            && expect.get(*name) != Some(g)
        {
            let expected = expect.get(*name).map_or_else(|| "none".to_owned(), |e| format!("{e:?}"));
            report.wrong.push(format!("{name}: {g:?} (expected {expected})"));
        }
    }
    for (field, expected) in expect {
        match got.get(&field) {
            Some(g) if *g == expected => report.right += 1,
            Some(g) => report.diffs.push(Diff::Changed { field, expected, got: g.clone() }),
            None => report.diffs.push(Diff::Missing { field, expected }),
        }
    }
    Ok(report)
}
