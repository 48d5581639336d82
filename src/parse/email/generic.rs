//! Extraction when no template matches: labelled fields and contact links, read
//! conservatively.
//!
//! - Labelled fields: `Label: value` lines of every text part (up to the signature
//!   delimiter) and of every HTML part, and two-cell HTML table rows. The first value of
//!   a label wins (a multipart/alternative mail says everything twice). Labels are the
//!   vendor's; the normalizer's aliases map them. "City/State/Zip" values are split.
//! - Contacts that belong to the sender side are never the lead's: labels and lines that
//!   speak of an agent, the office, support, an unsubscribe link or a copyright, the
//!   footer after `--`, and every address in From/Reply-To/Sender/To/Cc (relay
//!   addresses included) or at the sender's own domain.
//! - Only when no labelled e-mail or phone was found: the first remaining `mailto:` /
//!   `tel:` link fills it, and the Reply-To or From display name fills a missing name
//!   when its address is a per-lead relay (not the vendor's own From address).
//!
//! What it cannot place stays under its label (custom). If nothing at all is found the
//! message is refused, so it is stored for an operator to write a template and replay.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde_json::Value;

use super::html::Target;
use super::labels::{before_signature, is_city_state_zip_label, labelled_lines, split_city_state_zip};
use super::mime::Mail;
use crate::lead::normalize::aliases;
use crate::parse::{ParseError, Record};

/// The built-in aliases, to know which labels name the lead's e-mail, phone and name.
static DEFAULT_ALIASES: LazyLock<aliases::Aliases> = LazyLock::new(aliases::Aliases::default);

/// Words that mark a line or label as the sender's, not the lead's.
const SENDER_SIDE: &[&str] = &[
    "agent",
    "listing",
    "broker",
    "realtor",
    "dealer",
    "office",
    "support",
    "customer service",
    "helpdesk",
    "unsubscribe",
    "preferences",
    "copyright",
    "©",
    "privacy",
    "do not reply",
    "no-reply",
    "noreply",
    "questions?",
    "call us",
    "contact us",
    "our team",
    "powered by",
    "sent by",
    "manage your",
];

/// Labels that belong to a forwarded message's header block, not to the lead.
const HEADER_LABELS: &[&str] = &["from", "to", "cc", "bcc", "sent", "date", "subject", "replyto", "reply"];

/// The record generic extraction makes of `mail`.
pub fn extract(mail: &Mail) -> Result<Record, ParseError> {
    let mut found = Found::default();
    for text in &mail.texts {
        for l in labelled_lines(before_signature(text), false) {
            found.labelled(&l.label, &l.value);
        }
    }
    for html in &mail.htmls {
        for table in &html.tables {
            for row in table {
                let [label, value] = row.as_slice() else { continue };
                let links = &value.links;
                found.cell(&label.text, &value.text, links);
            }
        }
        for l in labelled_lines(&html.text, false) {
            found.labelled(&l.label, &l.value);
        }
    }
    found.fallbacks(mail);
    if found.record.is_empty() {
        return Err(ParseError::new(
            "no template matches this message and no labelled lead fields were found in it \
             (write a template for this vendor, then replay the submission)",
        ));
    }
    Ok(found.record)
}

#[derive(Default)]
struct Found {
    record: Record,
    /// Matching keys of the labels taken (first value wins).
    seen: HashSet<String>,
    has_email: bool,
    has_phone: bool,
    has_name: bool,
}

impl Found {
    fn labelled(&mut self, label: &str, value: &str) {
        let key = aliases::key(label);
        if key.is_empty() || value.trim().is_empty() || self.seen.contains(&key) {
            return;
        }
        if HEADER_LABELS.contains(&key.as_str()) || sender_side(label) {
            return;
        }
        self.seen.insert(key.clone());
        if is_city_state_zip_label(label)
            && let Some((city, state, zip)) = split_city_state_zip(value)
        {
            self.push("city", &city);
            self.push("state", &state);
            self.push("postal_code", &zip);
            return;
        }
        let target = DEFAULT_ALIASES.resolve(label).map(|t| t.field_name());
        match target.as_deref() {
            Some("email") => self.has_email = true,
            Some("phone") | Some("phone_2") => self.has_phone = true,
            Some("full_name" | "first_name" | "last_name") => self.has_name = true,
            _ => {}
        }
        self.push(label, value);
    }

    /// A table row: the value cell's `mailto:`/`tel:` link says more than its text when
    /// the text is not itself an address or number ("click to e-mail").
    fn cell(&mut self, label: &str, text: &str, links: &[super::html::Link]) {
        let mut value = text.to_owned();
        for link in links {
            match &link.target {
                Target::Mailto(addr) if !text.contains('@') && addr.contains('@') => value = addr.clone(),
                Target::Tel(number) if digits(text) < 7 && digits(number) >= 7 => value = number.clone(),
                _ => {}
            }
        }
        self.labelled(label, &value);
    }

    fn push(&mut self, name: &str, value: &str) {
        self.record.push((name.trim().to_owned(), Value::String(value.trim().to_owned())));
    }

    fn fallbacks(&mut self, mail: &Mail) {
        let theirs: HashSet<&str> = mail.envelope_addresses().map(|a| a.address.as_str()).collect();
        let sender_domains: HashSet<&str> =
            mail.from.iter().chain(&mail.sender).map(|a| a.domain()).collect();
        let is_theirs = |addr: &str| {
            let addr = addr.trim().to_ascii_lowercase();
            let domain = addr.rsplit_once('@').map_or("", |(_, d)| d).to_owned();
            theirs.contains(addr.as_str())
                || sender_domains
                    .iter()
                    .any(|d| !d.is_empty() && (domain == *d || domain.ends_with(&format!(".{d}"))))
        };
        for html in &mail.htmls {
            let lines: Vec<&str> = html.lines().collect();
            for link in &html.links {
                let line = lines.get(link.line).copied().unwrap_or("");
                if sender_side(line) {
                    continue;
                }
                match &link.target {
                    Target::Mailto(addr) if !self.has_email && addr.contains('@') && !is_theirs(addr) => {
                        self.has_email = true;
                        self.push("email", addr);
                    }
                    Target::Tel(number) if !self.has_phone && digits(number) >= 7 => {
                        self.has_phone = true;
                        self.push("phone", number);
                    }
                    _ => {}
                }
            }
        }
        if !self.has_name {
            let from_addresses: HashSet<&str> = mail.from.iter().map(|a| a.address.as_str()).collect();
            let relay = mail
                .reply_to
                .iter()
                .find(|a| a.name.is_some() && !from_addresses.contains(a.address.as_str()));
            if let Some(name) = relay.and_then(|a| a.name.clone()).filter(|n| !n.trim().is_empty()) {
                self.has_name = true;
                self.push("full_name", &name);
            }
        }
    }
}

fn sender_side(text: &str) -> bool {
    let lower = text.to_lowercase();
    SENDER_SIDE.iter().any(|w| lower.contains(w))
}

fn digits(s: &str) -> usize {
    s.chars().filter(char::is_ascii_digit).count()
}
