//! Where each field of a template-free extraction came from, and how sure the extractor
//! is: what `leadgate parse --explain` prints and what decides whether a lead is held for
//! review.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::parse::{REVIEW, Record};

/// The kind of evidence a value was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A `Label: value` line, or a label alone on its line with the value on the next.
    Label,
    /// Neighbouring HTML table cells (label cell → value cell, or a header row).
    TableCell,
    /// A `mailto:` or `tel:` link, or `Name [mailto:addr]` text.
    Link,
    /// Unlabelled prose: "Rhea has sent you a message … call me at 512 555 0142".
    FreeText,
    /// The subject line.
    Subject,
    /// A message header (a per-lead Reply-To, a "Name via Vendor" display name).
    Header,
    /// A vendor template's rule.
    Template,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Label => "label",
            Origin::TableCell => "table cell",
            Origin::Link => "link",
            Origin::FreeText => "free text",
            Origin::Subject => "subject",
            Origin::Header => "header",
            Origin::Template => "template",
        }
    }
}

/// How sure the extractor is of a value. Ordered: `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Guessed from prose or a header: plausible, not stated as the lead's.
    Low,
    /// Stated, but by a label the extractor had to interpret (`Contact:`, `Work:`) or a
    /// link next to the lead's name.
    Medium,
    /// Under a label that names the field, with a value of the right shape.
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }

    /// One step up (two independent origins agree).
    pub fn raised(self) -> Confidence {
        match self {
            Confidence::Low => Confidence::Medium,
            Confidence::Medium | Confidence::High => Confidence::High,
        }
    }
}

/// One extracted field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extracted {
    /// The record name: a canonical field (`email`, `full_name`, `city` …) or the
    /// vendor's label for what goes to `custom`.
    pub name: String,
    pub value: String,
    pub origin: Origin,
    pub confidence: Confidence,
    /// What was read: the label as written, the link, the sentence (shortened).
    pub evidence: String,
    /// The label as the vendor wrote it, when the value sat under one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How the label and its value were laid out (when there was a label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
}

/// How a label and its value sit in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `Label: value` on one line, or label and value cells of a table.
    Inline,
    /// The label alone on its line, the value on the next.
    NextLine,
    /// `Label  value`: no colon, a wide gap.
    Spaced,
}

/// Every field of one message, in the order they were found, and whether the lead
/// should be held for an operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Extraction {
    pub fields: Vec<Extracted>,
    /// Why the lead is held for review (`None`: accept it as usual).
    pub review: Option<String>,
    /// The template that read the message, when one did.
    pub template: Option<String>,
}

/// The contact fields: the ones whose confidence decides review.
pub const CONTACT_FIELDS: &[&str] = &["email", "phone", "phone_2", "full_name", "first_name", "last_name"];

impl Extraction {
    /// The record the pipeline normalizes, with the review marker when held.
    pub fn record(&self) -> Record {
        let mut record: Record =
            self.fields.iter().map(|f| (f.name.clone(), Value::String(f.value.clone()))).collect();
        if let Some(reason) = &self.review {
            record.push((REVIEW.to_owned(), Value::String(reason.clone())));
        }
        record
    }

    /// Sets [`Extraction::review`] from the contact fields' confidence.
    pub fn decide_review(&mut self) {
        let contacts: Vec<&Extracted> =
            self.fields.iter().filter(|f| CONTACT_FIELDS.contains(&f.name.as_str())).collect();
        self.review = if contacts.is_empty() {
            Some("no name, e-mail or phone was found".to_owned())
        } else if contacts.iter().all(|f| f.confidence == Confidence::Low) {
            let names: Vec<&str> = contacts.iter().map(|f| f.name.as_str()).collect();
            Some(format!("every contact field was guessed (low confidence: {})", names.join(", ")))
        } else {
            None
        };
    }
}

impl fmt::Display for Extraction {
    /// A table, one field a line: name, value, origin and evidence, confidence.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.template {
            Some(t) => writeln!(f, "read with template {t}")?,
            None => writeln!(f, "read without a template (generic extraction)")?,
        }
        let width = self.fields.iter().map(|x| x.name.chars().count()).max().unwrap_or(5).clamp(5, 28);
        for x in &self.fields {
            let value: String = x.value.chars().take(48).collect();
            let ellipsis = if x.value.chars().count() > 48 { "…" } else { "" };
            let evidence: String = x.evidence.chars().take(90).collect();
            writeln!(
                f,
                "{:<width$}  {:<6}  {:?}{ellipsis}  ← {}: {}",
                x.name,
                x.confidence.as_str(),
                value,
                x.origin.as_str(),
                evidence,
            )?;
        }
        match &self.review {
            Some(r) => writeln!(f, "needs review: {r}"),
            None => writeln!(f, "review: not needed"),
        }
    }
}
