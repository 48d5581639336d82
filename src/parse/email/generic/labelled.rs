//! Labelled values: `Label: value` lines, labels alone on their line, `Label  value`,
//! pipes, composites, table cells and header rows, contact blocks under a heading.

use std::collections::HashSet;

use super::super::html::{Cell, Target};
use super::super::labels::{split_city_state_zip, split_label};
use super::super::shapes::{
    as_email, as_name, as_phone, digits, emails, is_toll_free, name_beside_address, phones,
};
use super::super::vocab::{Meaning, is_alias, sender_side, understand};
use super::parts::Doc;
use super::{Confidence, Found, Layout, Origin, conf};

impl Found<'_> {
    /// A labelled value. Returns whether it was taken (a contact value of the wrong shape
    /// is not, so a caller can try the label another way).
    pub(super) fn labelled(
        &mut self,
        label: &str,
        value: &str,
        origin: Origin,
        part: &str,
        layout: Layout,
    ) -> bool {
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
    pub(super) fn table(&mut self, rows: &[Vec<Cell>], part: &str) {
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
    pub(super) fn labels(&mut self, doc: &Doc<'_>) {
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
            // `email = pablo@…`: form mailers that print name = value.
            if let Some((label, value)) = line.split_once(" = ").map(|(l, v)| (l.trim(), v.trim()))
                && !line.contains(':')
                && understand(label).direct
                && !matches!(understand(label).meaning, Meaning::Custom | Meaning::Skip)
                && self.labelled(label, value, Origin::Label, &doc.name, Layout::Inline)
            {
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
pub(super) fn plausible_label(label: &str) -> bool {
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
