//! Extraction when no template matches: the message read the way a person reads it.
//!
//! What is read, in order of trust:
//! 1. Labels (high when the label names the field, medium when it had to be interpreted,
//!    see [`super::vocab`]): `Label: value` lines, a label alone on its line with the
//!    value on the next (`Renter email:` ⏎ `ana@…`, `<b>Label</b><br>value`, `<dt>`/`<dd>`),
//!    neighbouring HTML table cells (a label cell and a value cell, or a header row over a
//!    value row), composites (`City, State, Zip Code: …`).
//! 2. Links (medium): `mailto:` and `tel:` links, `Name [mailto:addr]` and
//!    `Name <mailto:addr>` text, the name a `mailto:` link is written as.
//! 3. Prose, the subject and headers (low): "Rhea has sent you a message", "New inquiry
//!    from Omar Haddad", any address or number in free text, a per-lead Reply-To.
//!
//! Each field keeps the most trusted value found; every field records where it came
//! from ([`super::provenance`]). A lead whose contact fields are all low-confidence is
//! marked for review instead of being accepted silently.
//!
//! What is never the lead's: the sender side (labels and lines that speak of an agent, the
//! office, support, unsubscribe or privacy links, the footer after `--`), role and relay
//! addresses (noreply, info@, `relay-8f3k2@reply.…`), the envelope's own addresses, the
//! forwarder's note above a `Forwarded message` marker and the replier's text above a
//! quoted original (which is read, unquoted). A wrong e-mail or phone is worse than a
//! missing one, so every contact value must have the right shape.
//!
//! Bounded: at most [`MAX_LINES`] lines of [`MAX_LINE_CHARS`] characters are read per
//! part, and every pattern is linear-time.

use std::collections::HashSet;

mod labelled;
mod parts;
mod theirs;
mod unlabelled;

use super::mime::Mail;
use super::provenance::{Confidence, Extracted, Extraction, Layout, Origin};
use crate::parse::{ParseError, Record};
use parts::docs;
use theirs::Theirs;

/// Most lines read per part.
pub const MAX_LINES: usize = 5_000;
/// Longer lines are cut there before matching.
pub const MAX_LINE_CHARS: usize = 2_000;
/// How far into a part a sentence is taken to name the writer.
const SENTENCE_LINES: usize = 12;

/// The record generic extraction makes of `mail`.
pub fn extract(mail: &Mail) -> Result<Record, ParseError> {
    explain(mail).map(|e| e.record())
}

/// The fields of `mail`, each with where it came from, and whether the lead needs review.
pub fn explain(mail: &Mail) -> Result<Extraction, ParseError> {
    let theirs = Theirs::of(mail);
    let docs = docs(mail);
    let mut found = Found { theirs: &theirs, cands: Vec::new(), custom: HashSet::new(), label: None };
    for doc in &docs {
        if let Some(html) = doc.html {
            for table in &html.tables {
                found.table(table, &doc.name);
            }
        }
        found.labels(doc);
    }
    for doc in &docs {
        found.links(doc);
    }
    for doc in &docs {
        found.prose(doc, doc.start, doc.footer.min(doc.end));
    }
    found.headers(mail);
    // A reply whose quoted part holds no contact: the replier is the lead (a lead
    // answering an auto-responder). Their own text, and the From, are read (low).
    let contactless = !found.cands.iter().any(|c| c.name == "email" || c.name == "phone");
    if contactless && docs.iter().any(|d| d.reply.is_some()) {
        for doc in &docs {
            if let Some(attribution) = doc.reply {
                let own_end = doc
                    .lines
                    .iter()
                    .take(attribution)
                    .position(|l| l.trim_end() == "--")
                    .unwrap_or(attribution);
                found.prose(doc, 0, own_end);
            }
        }
        found.sender_is_lead(mail);
    }
    let mut extraction = found.resolve();
    if extraction.fields.is_empty() {
        return Err(ParseError::new(
            "no template matches this message and no lead fields were found in it \
             (write a template for this vendor, then replay the submission)",
        ));
    }
    extraction.decide_review();
    Ok(extraction)
}

/// A candidate value for one field.
#[derive(Debug, Clone)]
struct Cand {
    name: String,
    value: String,
    origin: Origin,
    confidence: Confidence,
    evidence: String,
    label: Option<(String, Layout)>,
}

struct Found<'t> {
    theirs: &'t Theirs,
    cands: Vec<Cand>,
    /// Custom labels taken (first value wins).
    custom: HashSet<String>,
    /// The label being read (and whether its value is on the next line), for provenance.
    label: Option<(String, Layout)>,
}

fn conf(direct: bool) -> Confidence {
    if direct { Confidence::High } else { Confidence::Medium }
}

impl Found<'_> {
    fn push(&mut self, name: &str, value: &str, origin: Origin, confidence: Confidence, evidence: String) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        let label = match origin {
            Origin::Label | Origin::TableCell => self.label.clone(),
            _ => None,
        };
        self.cands.push(Cand {
            name: name.to_owned(),
            value: value.to_owned(),
            origin,
            confidence,
            evidence,
            label,
        });
    }

    /// The best value per field (most trusted, then first found); a second phone of at
    /// least medium confidence becomes `phone_2`.
    fn resolve(self) -> Extraction {
        let mut order: Vec<&str> = Vec::new();
        for c in &self.cands {
            if !order.contains(&c.name.as_str()) {
                order.push(&c.name);
            }
        }
        let mut fields = Vec::new();
        for name in order {
            let all: Vec<&Cand> = self.cands.iter().filter(|c| c.name == name).collect();
            let Some(mut best) =
                all.iter().copied().reduce(|a, b| if b.confidence > a.confidence { b } else { a })
            else {
                continue;
            };
            // Several labelled phones (`Work:`, `Mobile:`): the first written is `phone`.
            if name == "phone"
                && let Some(first) = all.iter().copied().find(|c| {
                    matches!(c.origin, Origin::Label | Origin::TableCell)
                        && c.confidence >= Confidence::Medium
                })
                && matches!(best.origin, Origin::Label | Origin::TableCell)
            {
                best = first;
            }
            let same = |c: &Cand| key_of(name, &c.value) == key_of(name, &best.value);
            let mut confidence = best.confidence;
            if confidence == Confidence::Low && all.iter().any(|c| same(c) && c.origin != best.origin) {
                confidence = confidence.raised();
            }
            fields.push(Extracted {
                name: name.to_owned(),
                value: best.value.clone(),
                origin: best.origin,
                confidence,
                evidence: best.evidence.clone(),
                label: best.label.as_ref().map(|(l, _)| l.clone()),
                layout: best.label.as_ref().map(|(_, l)| *l),
            });
            if name == "phone" {
                let second = all.iter().find(|c| {
                    c.confidence >= Confidence::Medium
                        && matches!(c.origin, Origin::Label | Origin::TableCell)
                        && !same(c)
                        && best.origin != Origin::FreeText
                });
                if let Some(c) = second {
                    fields.push(Extracted {
                        name: "phone_2".to_owned(),
                        value: c.value.clone(),
                        origin: c.origin,
                        confidence: c.confidence,
                        evidence: c.evidence.clone(),
                        label: c.label.as_ref().map(|(l, _)| l.clone()),
                        layout: c.label.as_ref().map(|(_, l)| *l),
                    });
                }
            }
        }
        Extraction { fields, review: None, template: None }
    }
}

/// What two values of a field are compared by (digits of a phone, a lower-cased address).
fn key_of(name: &str, value: &str) -> String {
    match name {
        "phone" => {
            let d: String = value.chars().filter(char::is_ascii_digit).collect();
            d.strip_prefix('1').filter(|_| d.len() == 11).unwrap_or(&d).to_owned()
        }
        _ => value.to_lowercase(),
    }
}
