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

use super::html::{Cell, Html, Target};
use super::labels::{split_city_state_zip, split_label};
use super::mime::Mail;
use super::provenance::{Confidence, Extracted, Extraction, Layout, Origin};
use super::shapes::{
    as_email, as_name, as_phone, digits, emails, is_platform_address, is_toll_free, name_beside_address,
    name_in_introduction, name_in_sentence, name_in_subject, phones, prose_phones,
};
use super::vocab::{Meaning, footer, is_alias, sender_side, understand};
use crate::parse::{ParseError, Record};

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

/// Addresses of the sender side: the envelope's, and the vendor's domain when the
/// vendor sends from a role address.
#[derive(Default)]
struct Theirs {
    addresses: HashSet<String>,
    domains: HashSet<String>,
    /// A Reply-To that looks like the lead's own (a form tool's), with its name.
    reply_to_lead: Option<(String, Option<String>)>,
    /// A relay Reply-To's display name ("Ana Ruiz via RentHub" style relays).
    relay_name: Option<String>,
}

impl Theirs {
    fn of(mail: &Mail) -> Theirs {
        let mut t = Theirs::default();
        for a in mail.from.iter().chain(&mail.sender).chain(&mail.to).chain(&mail.cc) {
            t.addresses.insert(a.address.clone());
        }
        for a in mail.from.iter().chain(&mail.sender) {
            if is_platform_address(&a.address) && !a.domain().is_empty() {
                t.domains.insert(registrable(a.domain()).to_owned());
            }
        }
        let from_names: HashSet<String> =
            mail.from.iter().filter_map(|a| a.name.as_deref()).map(str::to_lowercase).collect();
        for a in &mail.reply_to {
            let same_domain = mail.from.iter().any(|f| registrable(f.domain()) == registrable(a.domain()));
            if is_platform_address(&a.address) || same_domain || t.addresses.contains(&a.address) {
                t.addresses.insert(a.address.clone());
                if let Some(n) = a.name.as_deref().filter(|n| !from_names.contains(&n.to_lowercase())) {
                    t.relay_name = Some(n.to_owned());
                }
            } else if t.reply_to_lead.is_none() {
                t.reply_to_lead = Some((a.address.clone(), a.name.clone()));
            }
        }
        t
    }

    /// Whether `addr` may be the lead's.
    fn allows(&self, addr: &str) -> bool {
        let addr = addr.to_ascii_lowercase();
        let domain = addr.rsplit_once('@').map_or("", |(_, d)| d);
        !is_platform_address(&addr)
            && !self.addresses.contains(&addr)
            && !self.domains.contains(registrable(domain))
    }
}

/// `mail.vendor.example` → `vendor.example` (the last two labels).
fn registrable(domain: &str) -> &str {
    let mut dots = domain.rmatch_indices('.');
    match (dots.next(), dots.next()) {
        (Some(_), Some((at, _))) => domain.get(at + 1..).unwrap_or(domain),
        _ => domain,
    }
}

/// One readable part: its lines and the range that is the vendor's message.
struct Doc<'m> {
    name: String,
    lines: Vec<String>,
    start: usize,
    end: usize,
    /// Where the vendor's footer begins (unlabelled contacts are not read past it).
    footer: usize,
    /// A reply's attribution line ("On … wrote:"): the replier's own text is above it.
    reply: Option<usize>,
    html: Option<&'m Html>,
}

impl Doc<'_> {
    fn range(&self) -> impl Iterator<Item = (usize, &str)> {
        self.lines.iter().enumerate().take(self.end).skip(self.start).map(|(i, l)| (i, l.as_str()))
    }

    /// The next non-blank line after `i` within the range (at most one blank between).
    fn next_value(&self, i: usize) -> Option<(usize, &str)> {
        let mut j = i + 1;
        let mut blanks = 0;
        while j < self.end {
            let l = self.lines.get(j)?.trim();
            if !l.is_empty() {
                return Some((j, l));
            }
            blanks += 1;
            if blanks > 1 {
                return None;
            }
            j += 1;
        }
        None
    }
}

fn docs(mail: &Mail) -> Vec<Doc<'_>> {
    let mut out = Vec::new();
    for (n, text) in mail.texts.iter().enumerate() {
        if is_stub(text) {
            continue;
        }
        out.push(doc(format!("text part {}", n + 1), text, None));
    }
    for (n, html) in mail.htmls.iter().enumerate() {
        out.push(doc(format!("html part {}", n + 1), &html.text, Some(html)));
    }
    out
}

fn doc<'m>(name: String, text: &str, html: Option<&'m Html>) -> Doc<'m> {
    let lines: Vec<String> = text
        .lines()
        .take(MAX_LINES)
        .map(|l| {
            let l: String = l.chars().take(MAX_LINE_CHARS).collect();
            plain(unquote(&l))
        })
        .collect();
    let (start, end, reply) = readable(&lines);
    // A footer marker in the second half of the message starts the footer.
    let middle = start + (end.saturating_sub(start)) / 2;
    let footer_at = (middle..end).find(|&i| lines.get(i).is_some_and(|l| footer(l))).unwrap_or(end);
    Doc { name, lines, start, end, footer: footer_at, reply, html }
}

/// A text part that only points at the HTML one ("view this message in a browser").
fn is_stub(text: &str) -> bool {
    let lower = text.to_lowercase();
    let pointer = [
        "view this message in a browser",
        "view this email in your browser",
        "view it in your browser",
        "html version",
        "does not support html",
        "view in browser",
        "open this message in a browser",
        "enable html",
    ]
    .iter()
    .any(|p| lower.contains(p));
    let words = text.split_whitespace().count();
    (pointer && words < 80) || text.trim().is_empty()
}

/// A line without markdown emphasis or a list bullet in front (`**Email:** x`,
/// `• Phone: …`, `- Name: …`), so its label reads as one.
fn plain(line: &str) -> String {
    let t = line.trim_start();
    let bare = t.trim_start_matches(['*', '_', '•', '·', '#']).trim_start();
    let bare = match bare.strip_prefix("- ").or_else(|| bare.strip_prefix("– ")) {
        Some(rest) => rest,
        None => bare,
    };
    if bare.len() == t.len() && !bare.contains("**") {
        return line.to_owned();
    }
    bare.replace("**", "").replace("__", "")
}

/// `> > text` → `text`.
fn unquote(line: &str) -> &str {
    let mut l = line;
    loop {
        let t = l.trim_start();
        match t.strip_prefix('>') {
            Some(rest) => l = rest.strip_prefix(' ').unwrap_or(rest),
            None => return l,
        }
    }
}

/// The lines that are the vendor's message: after a forwarding marker or a reply's
/// attribution line (the forwarder's or replier's own text is above it), up to the
/// signature delimiter.
fn readable(lines: &[String]) -> (usize, usize, Option<usize>) {
    let mut start = 0;
    let mut reply = None;
    for (i, l) in lines.iter().enumerate() {
        let lower = l.trim().to_lowercase();
        let forwarded = (lower.contains("forwarded message") && lower.starts_with('-'))
            || lower.starts_with("begin forwarded message")
            || (lower.contains("original message") && lower.starts_with('-'));
        let attribution = lower.starts_with("on ") && lower.ends_with("wrote:");
        if forwarded || attribution {
            start = i + 1;
            if attribution && !forwarded {
                reply = Some(i);
            }
            break;
        }
    }
    let end = lines
        .iter()
        .enumerate()
        .skip(start)
        .find(|(_, l)| {
            let t = l.trim_end();
            t == "--" || t == "-- " || t == "__"
        })
        .map_or(lines.len(), |(i, _)| i);
    (start, end, reply)
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

    /// A labelled value. Returns whether it was taken (a contact value of the wrong shape
    /// is not, so a caller can try the label another way).
    fn labelled(&mut self, label: &str, value: &str, origin: Origin, part: &str, layout: Layout) -> bool {
        self.label = Some((label.trim().trim_end_matches([':', '*']).trim().to_owned(), layout));
        // Only a label with its value on the same line may keep an odd value as custom.
        let strict = layout != Layout::Inline;
        let taken = self.labelled_value(label, value, origin, part, strict);
        self.label = None;
        taken
    }

    fn labelled_value(&mut self, label: &str, value: &str, origin: Origin, part: &str, strict: bool) -> bool {
        let u = understand(label);
        let value = value.trim();
        if value.is_empty() {
            return false;
        }
        let label = label.trim().trim_end_matches([':', '*']).trim();
        let evidence = format!("{label:?} ({part})");
        let c = conf(u.direct);
        let taken = match &u.meaning {
            Meaning::Skip => return true,
            Meaning::Email => match as_email(value).or_else(|| emails(value).into_iter().next()) {
                Some(e) if self.theirs.allows(&e) => {
                    self.push("email", &e, origin, c, evidence.clone());
                    true
                }
                Some(_) => return true,
                None => false,
            },
            Meaning::Phone => match as_phone(value) {
                Some(p) => {
                    self.push("phone", &p, origin, c, evidence.clone());
                    true
                }
                None => false,
            },
            Meaning::Name | Meaning::FirstName | Meaning::LastName => {
                let field = match u.meaning {
                    Meaning::FirstName => "first_name",
                    Meaning::LastName => "last_name",
                    _ => "full_name",
                };
                match as_name(value) {
                    Some(n) => {
                        self.push(field, &n, origin, c, evidence.clone());
                        true
                    }
                    None if !emails(value).is_empty() => {
                        self.contact(value, origin, Confidence::Medium, &evidence)
                    }
                    None => false,
                }
            }
            Meaning::Contact => self.contact(value, origin, Confidence::Medium, &evidence),
            Meaning::Composite(parts) => {
                self.composite(parts, value, origin, &evidence);
                true
            }
            Meaning::Field(name) => {
                self.push(name, value, origin, Confidence::High, evidence.clone());
                true
            }
            Meaning::Custom => {
                // "View listing: https://…", "Reply on Roomly: https://…": navigation, not a field.
                if strict || value.starts_with("http://") || value.starts_with("https://") {
                    return false;
                }
                if self.custom.insert(crate::lead::normalize::aliases::key(label)) {
                    self.push(label, value, origin, Confidence::Medium, evidence.clone());
                }
                true
            }
        };
        if !taken
            && !strict
            && u.meaning.is_contact()
            && !is_alias(label)
            && self.custom.insert(crate::lead::normalize::aliases::key(label))
        {
            // "Home: 3 bedrooms": the label's word misled; keep the value as the vendor wrote it.
            self.push(label, value, origin, Confidence::Medium, evidence);
            return true;
        }
        taken
    }

    /// A person given by name, address and/or number. A platform address in it makes the
    /// whole value the platform's (a forwarded `From: RentHub <noreply@…>`).
    fn contact(&mut self, value: &str, origin: Origin, c: Confidence, evidence: &str) -> bool {
        let addrs = emails(value);
        if addrs.iter().any(|a| !self.theirs.allows(a)) {
            return true;
        }
        let mut any = false;
        if let Some(a) = addrs.first() {
            self.push("email", a, origin, c, evidence.to_owned());
            if let Some(n) =
                name_beside_address(value, a).filter(|n| understand(n).meaning == Meaning::Custom)
            {
                self.push("full_name", &n, origin, c, evidence.to_owned());
            }
            any = true;
        }
        let rest = addrs.iter().fold(value.to_owned(), |v, a| v.to_lowercase().replace(a.as_str(), " "));
        if let Some(p) = phones(&rest).into_iter().next() {
            self.push("phone", &p, origin, c, evidence.to_owned());
            any = true;
        }
        if !any {
            if let Some(n) = as_name(value) {
                self.push("full_name", &n, origin, c, evidence.to_owned());
                any = true;
            } else if let Some(p) = as_phone(value) {
                self.push("phone", &p, origin, c, evidence.to_owned());
                any = true;
            }
        }
        any
    }

    fn composite(&mut self, parts: &[&'static str], value: &str, origin: Origin, evidence: &str) {
        let pieces: Vec<&str> = value.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
        if pieces.len() == parts.len() {
            for (name, v) in parts.iter().zip(pieces) {
                self.push(name, v, origin, Confidence::High, evidence.to_owned());
            }
            return;
        }
        if parts.len() == 3
            && let Some((city, state, zip)) = split_city_state_zip(value)
        {
            self.push("city", &city, origin, Confidence::High, evidence.to_owned());
            self.push("state", &state, origin, Confidence::High, evidence.to_owned());
            self.push("postal_code", &zip, origin, Confidence::High, evidence.to_owned());
            return;
        }
        let label = evidence.split(" (").next().unwrap_or(evidence).trim_matches('"');
        self.push(label, value, origin, Confidence::Medium, evidence.to_owned());
    }

    /// Label and value cells of a table: two-cell rows, and header rows over value rows.
    fn table(&mut self, rows: &[Vec<Cell>], part: &str) {
        let mut header_used = HashSet::new();
        for (r, row) in rows.iter().enumerate() {
            let known = row.iter().filter(|c| is_header_label(&c.text)).count();
            let labels_only = row.iter().all(|c| label_like(&c.text));
            if row.len() >= 3
                && known >= 2
                && labels_only
                && let Some(values) =
                    rows.get(r + 1).filter(|v| v.len() == row.len() && !v.iter().all(|c| label_like(&c.text)))
            {
                for (label, cell) in row.iter().zip(values) {
                    let value = cell_value(cell);
                    self.labelled(&label.text, &value, Origin::TableCell, part, Layout::Inline);
                }
                header_used.insert(r + 1);
                continue;
            }
            if header_used.contains(&r) {
                continue;
            }
            let [label, cell] = row.as_slice() else { continue };
            if label.text.trim().is_empty() || sender_side(&label.text) || !plausible_label(&label.text) {
                continue;
            }
            let value = cell_value(cell);
            self.labelled(&label.text, &value, Origin::TableCell, part, Layout::Inline);
        }
    }

    /// `Label: value` lines and labels alone on their line.
    fn labels(&mut self, doc: &Doc<'_>) {
        let mut skip_to = 0;
        for (i, line) in doc.range() {
            if i < skip_to || line.trim().is_empty() || sender_side(line) {
                continue;
            }
            // `Name: … | Email: … | Phone: …`: several labelled fields on one line.
            let segments: Vec<&str> = line.split(" | ").collect();
            if segments.len() >= 2
                && segments
                    .iter()
                    .all(|seg| split_label(seg).is_some_and(|(l, v)| plausible_label(l) && !v.is_empty()))
            {
                for seg in segments {
                    if let Some((label, value)) = split_label(seg) {
                        self.labelled(label, value, Origin::Label, &doc.name, Layout::Inline);
                    }
                }
                continue;
            }
            if let Some((label, value)) = split_label(line).filter(|(l, _)| plausible_label(l)) {
                if !value.is_empty() {
                    let mut value = value.to_owned();
                    // A text part's message goes on until a blank line or the next label.
                    if doc.html.is_none() && understand(label).meaning == Meaning::Field("comments") {
                        let mut j = i + 1;
                        while let Some(next) = doc.lines.get(j).filter(|_| j < doc.end) {
                            if next.trim().is_empty()
                                || split_label(next).is_some_and(|(l, _)| plausible_label(l))
                            {
                                break;
                            }
                            value.push(' ');
                            value.push_str(next.trim());
                            j += 1;
                        }
                        skip_to = j;
                    }
                    self.labelled(label, &value, Origin::Label, &doc.name, Layout::Inline);
                    continue;
                }
                if let Some((j, next)) = doc.next_value(i)
                    && !is_label_line(next)
                    && self.labelled(label, next, Origin::Label, &doc.name, Layout::NextLine)
                {
                    skip_to = j + 1;
                }
                continue;
            }
            // `Email  zoe@…`: a known label, then the value after a wide gap (HTML spans
            // or cells on one line, `&nbsp;` padding).
            if let Some((label, value)) = split_spaced(line)
                && self.labelled(label, value, Origin::Label, &doc.name, Layout::Spaced)
            {
                continue;
            }
            // A label alone, without a colon (`<b>Email</b><br>…`, `<dt>`): only known labels.
            let bare = line.trim();
            if bare.split_whitespace().count() <= 4
                && bare.chars().count() <= 32
                && !bare.contains(['@', ',', '.', '!', '?'])
                && digits(bare) == 0
                && {
                    let u = understand(bare);
                    u.direct || u.meaning == Meaning::Contact
                }
                && let Some((j, next)) = doc.next_value(i)
                && !is_label_line(next)
                && self.labelled(bare, next, Origin::Label, &doc.name, Layout::NextLine)
            {
                skip_to = j + 1;
                if understand(bare).meaning == Meaning::Contact {
                    skip_to = self.contact_block(doc, bare, j);
                }
            }
        }
    }

    /// The lines under a contact heading after its name ("Contact information" ⏎ name ⏎
    /// address ⏎ number): each an address or a number, read as the contact's. Returns the
    /// line after the block.
    fn contact_block(&mut self, doc: &Doc<'_>, heading: &str, mut at: usize) -> usize {
        for _ in 0..3 {
            let Some((j, line)) = doc.next_value(at) else { break };
            let evidence = format!("under {heading:?} ({})", doc.name);
            let label = Some((heading.to_owned(), Layout::NextLine));
            let (name, value) = if let Some(e) = as_email(line).filter(|e| self.theirs.allows(e)) {
                ("email", e)
            } else if let Some(p) = as_phone(line).filter(|p| !is_toll_free(p)) {
                ("phone", p)
            } else {
                break;
            };
            self.label = label;
            self.push(name, &value, Origin::Label, Confidence::Medium, evidence);
            self.label = None;
            at = j;
        }
        at + 1
    }

    /// `mailto:` and `tel:` links (HTML), and `[mailto:…]`, `<mailto:…>`, `tel:` in text.
    fn links(&mut self, doc: &Doc<'_>) {
        if let Some(html) = doc.html {
            for link in &html.links {
                if link.line < doc.start || link.line >= doc.footer {
                    continue;
                }
                let line = doc.lines.get(link.line).map_or("", String::as_str);
                if sender_side(line) || sender_side(&link.text) {
                    continue;
                }
                match &link.target {
                    Target::Mailto(addr) => {
                        let Some(addr) = as_email(addr) else { continue };
                        if !self.theirs.allows(&addr) {
                            continue;
                        }
                        let evidence = format!("mailto: link {:?} ({})", link.text, doc.name);
                        self.push("email", &addr, Origin::Link, Confidence::Medium, evidence.clone());
                        let name = proper_name(&link.text)
                            .or_else(|| name_beside_address(line, &addr).filter(|n| is_proper(n)));
                        if let Some(n) = name {
                            self.push("full_name", &n, Origin::Link, Confidence::Medium, evidence);
                        }
                    }
                    Target::Tel(number) => {
                        if digits(number) >= 7 && digits(number) <= 15 && !is_toll_free(number) {
                            let evidence = format!("tel: link {:?} ({})", link.text, doc.name);
                            self.push("phone", number, Origin::Link, Confidence::Medium, evidence);
                        }
                    }
                    Target::Other(_) => {}
                }
            }
            return;
        }
        for (_, line) in doc.range().take_while(|(i, _)| *i < doc.footer) {
            let lower = line.to_lowercase();
            if sender_side(line) {
                continue;
            }
            if lower.contains("mailto:") {
                for addr in emails(line) {
                    if !lower.contains(&format!("mailto:{addr}")) || !self.theirs.allows(&addr) {
                        continue;
                    }
                    let evidence = format!("{:?} ({})", shorten(line), doc.name);
                    self.push("email", &addr, Origin::Link, Confidence::Medium, evidence.clone());
                    if let Some(n) = name_beside_address(line, &addr).filter(|n| is_proper(n)) {
                        self.push("full_name", &n, Origin::Link, Confidence::Medium, evidence);
                    }
                }
            }
            if let Some(at) = lower.find("tel:") {
                let after = line.get(at + 4..).unwrap_or("");
                if let Some(p) = phones(after).into_iter().next().filter(|p| !is_toll_free(p)) {
                    self.push(
                        "phone",
                        &p,
                        Origin::Link,
                        Confidence::Medium,
                        format!("{:?} ({})", shorten(line), doc.name),
                    );
                }
            }
        }
    }

    /// Unlabelled prose: addresses, numbers, and the writer named in an opening sentence.
    fn prose(&mut self, doc: &Doc<'_>, from: usize, to: usize) {
        let mut sentences = 0;
        for line in doc.lines.iter().take(to).skip(from).map(String::as_str) {
            if line.trim().is_empty() || sender_side(line) {
                continue;
            }
            sentences += 1;
            // Prose, and values under any label but a skipped one ("Message: … call me at …").
            let skipped = split_label(line)
                .is_some_and(|(l, _)| plausible_label(l) && understand(l).meaning == Meaning::Skip);
            if !skipped {
                let evidence = format!("{:?} ({})", shorten(line), doc.name);
                for addr in emails(line) {
                    if self.theirs.allows(&addr) {
                        self.push("email", &addr, Origin::FreeText, Confidence::Low, evidence.clone());
                    }
                }
                for p in prose_phones(line) {
                    if !is_toll_free(&p) {
                        self.push("phone", &p, Origin::FreeText, Confidence::Low, evidence.clone());
                    }
                }
            }
            if sentences <= SENTENCE_LINES
                && let Some(n) = name_in_sentence(line)
                    .or_else(|| name_in_introduction(line))
                    .or_else(|| name_in_subject(line))
            {
                self.push(
                    "full_name",
                    &n,
                    Origin::FreeText,
                    Confidence::Low,
                    format!("{:?} ({})", shorten(line), doc.name),
                );
            }
            if sentences <= SENTENCE_LINES
                && let Some(n) = self.name_over_contacts(doc, line)
            {
                self.push(
                    "full_name",
                    &n,
                    Origin::FreeText,
                    Confidence::Low,
                    format!("{:?} ({})", shorten(line), doc.name),
                );
            }
        }
    }

    fn headers(&mut self, mail: &Mail) {
        let subject = mail.subject.trim();
        if let Some(n) = name_in_subject(subject) {
            self.push("full_name", &n, Origin::Subject, Confidence::Low, format!("{:?}", shorten(subject)));
        }
        if let Some((addr, name)) = &self.theirs.reply_to_lead {
            let evidence = "Reply-To".to_owned();
            self.push("email", addr, Origin::Header, Confidence::Low, evidence.clone());
            if let Some(n) = name.as_deref().and_then(proper_name) {
                self.push("full_name", &n, Origin::Header, Confidence::Low, evidence);
            }
        }
        if let Some(n) = self.theirs.relay_name.as_deref().and_then(via_name) {
            self.push(
                "full_name",
                &n,
                Origin::Header,
                Confidence::Medium,
                "Reply-To display name".to_owned(),
            );
        }
        for a in &mail.from {
            if let Some(n) =
                a.name.as_deref().filter(|n| n.to_lowercase().contains(" via ")).and_then(via_name)
            {
                self.push(
                    "full_name",
                    &n,
                    Origin::Header,
                    Confidence::Medium,
                    "From display name".to_owned(),
                );
            }
        }
    }

    /// A line that is only a personal name, right above the lead's address or number
    /// (`<h2>Nadia Petrova</h2>` over `tel:`/`mailto:` links): the name of that contact.
    fn name_over_contacts(&self, doc: &Doc<'_>, line: &str) -> Option<String> {
        const HEADING_WORDS: &[&str] = &[
            "new",
            "lead",
            "leads",
            "request",
            "inquiry",
            "enquiry",
            "message",
            "quote",
            "customer",
            "information",
            "details",
            "contact",
            "booking",
            "job",
            "your",
            "you",
            "have",
            "from",
            "the",
            "a",
            "an",
            "for",
            "info",
            "hello",
            "hi",
            "dear",
            "thanks",
            "thank",
            "team",
            "buyer",
            "renter",
            "client",
            "prospect",
            "summary",
            "notification",
            "alert",
            "update",
            "reply",
            "view",
            "listing",
            "property",
            "service",
            "project",
        ];
        let name = proper_name(line.trim())?;
        let words: Vec<String> = name.split_whitespace().map(str::to_lowercase).collect();
        if !(2..=3).contains(&words.len()) || words.iter().any(|w| HEADING_WORDS.contains(&w.as_str())) {
            return None;
        }
        let at = doc.lines.iter().position(|l| l.as_str() == line)?;
        let below = doc.lines.iter().skip(at + 1).take(3).any(|l| {
            emails(l).iter().any(|e| self.theirs.allows(e)) || as_phone(l).is_some() || !phones(l).is_empty()
        });
        below.then_some(name)
    }

    /// The From of a reply as the lead's: its address and display name (low).
    fn sender_is_lead(&mut self, mail: &Mail) {
        let Some(from) = mail.from.first().filter(|a| !is_platform_address(&a.address)) else { return };
        let to_same_domain = mail.to.iter().any(|t| registrable(t.domain()) == registrable(from.domain()));
        if to_same_domain {
            return;
        }
        self.push("email", &from.address, Origin::Header, Confidence::Low, "From of a reply".to_owned());
        if let Some(n) = from.name.as_deref().and_then(proper_name) {
            self.push("full_name", &n, Origin::Header, Confidence::Low, "From of a reply".to_owned());
        }
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

/// A value cell: its `mailto:`/`tel:` link says more than text like "click to e-mail".
fn cell_value(cell: &Cell) -> String {
    let mut value = cell.text.clone();
    for link in &cell.links {
        match &link.target {
            Target::Mailto(addr) if !cell.text.contains('@') && addr.contains('@') => value = addr.clone(),
            Target::Tel(number) if digits(&cell.text) < 7 && digits(number) >= 7 => value = number.clone(),
            _ => {}
        }
    }
    value
}

/// A label as vendors write them: no sentence punctuation (a comma only in composites
/// like `City, State, Zip`).
fn plausible_label(label: &str) -> bool {
    let label = label.trim().trim_end_matches(':');
    if label.contains(['!', '?', ';', '"']) || label.chars().count() > 40 {
        return false;
    }
    !label.contains(',') || matches!(understand(label).meaning, Meaning::Composite(_))
}

/// `Label  value` (two or more spaces, or a tab): the label must name a field outright.
fn split_spaced(line: &str) -> Option<(&str, &str)> {
    let t = line.trim();
    let at = t.find("  ").or_else(|| t.find('\t'))?;
    let (label, value) = (t.get(..at)?.trim(), t.get(at..)?.trim());
    let u = understand(label);
    let known = u.direct && !matches!(u.meaning, Meaning::Custom | Meaning::Skip);
    (known && !value.is_empty() && label.split_whitespace().count() <= 4).then_some((label, value))
}

/// Text that could be a label: short, no digits, no address.
fn label_like(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty() && digits(t) == 0 && !t.contains('@') && t.split_whitespace().count() <= 4
}

/// A header cell: a label the vocabulary knows.
fn is_header_label(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && digits(t) == 0
        && !t.contains('@')
        && t.split_whitespace().count() <= 4
        && !matches!(understand(t).meaning, Meaning::Custom | Meaning::Skip)
}

/// A line that is itself a label (so it is not the previous label's value).
fn is_label_line(line: &str) -> bool {
    let t = line.trim();
    if let Some((l, v)) = split_label(t)
        && plausible_label(l)
        && (v.is_empty() || !matches!(understand(l).meaning, Meaning::Custom))
    {
        return true;
    }
    t.split_whitespace().count() <= 3
        && digits(t) == 0
        && !t.contains('@')
        && matches!(understand(t).meaning, Meaning::Email | Meaning::Phone | Meaning::Composite(_))
}

/// A capitalised personal name (link text, a display name): "Ana Ruiz", "María de la Cruz".
fn proper_name(text: &str) -> Option<String> {
    as_name(text).filter(|n| is_proper(n))
}

fn is_proper(name: &str) -> bool {
    const PARTICLES: &[&str] =
        &["de", "la", "del", "da", "do", "dos", "van", "von", "der", "den", "bin", "al", "di", "le"];
    const NOT: &[&str] =
        &["email", "e-mail", "reply", "write", "call", "contact", "click", "here", "send", "message"];
    let words: Vec<&str> = name.split_whitespace().collect();
    !words.is_empty()
        && words.len() <= 4
        && words.iter().all(|w| w.chars().next().is_some_and(char::is_uppercase) || PARTICLES.contains(w))
        && !words.iter().any(|w| NOT.contains(&w.to_lowercase().as_str()))
}

/// "Ana Ruiz via RentHub" → "Ana Ruiz"; a plain name as it is.
fn via_name(display: &str) -> Option<String> {
    let lower = display.to_lowercase();
    let name = match lower.find(" via ") {
        Some(at) => display.get(..at).unwrap_or(display),
        None => display,
    };
    proper_name(name.trim())
}

fn shorten(line: &str) -> String {
    let t = line.trim();
    if t.chars().count() <= 60 {
        t.to_owned()
    } else {
        let mut s: String = t.chars().take(57).collect();
        s.push('…');
        s
    }
}
