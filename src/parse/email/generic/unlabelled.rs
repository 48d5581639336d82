//! Unlabelled evidence: `mailto:`/`tel:` links, prose, the subject and headers, and the
//! sender of a reply whose quoted part holds no contact.

use super::super::html::Target;
use super::super::labels::split_label;
use super::super::mime::Mail;
use super::super::shapes::{
    as_email, as_name, as_phone, digits, emails, is_platform_address, is_toll_free, name_beside_address,
    name_in_introduction, name_in_sentence, name_in_subject, phones, prose_phones,
};
use super::super::vocab::{Meaning, sender_side, understand};
use super::labelled::plausible_label;
use super::parts::Doc;
use super::theirs::registrable;
use super::{Confidence, Found, Origin, SENTENCE_LINES};

impl Found<'_> {
    /// `mailto:` and `tel:` links (HTML), and `[mailto:…]`, `<mailto:…>`, `tel:` in text.
    pub(super) fn links(&mut self, doc: &Doc<'_>) {
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
    pub(super) fn prose(&mut self, doc: &Doc<'_>, from: usize, to: usize) {
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

    pub(super) fn headers(&mut self, mail: &Mail) {
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
    pub(super) fn sender_is_lead(&mut self, mail: &Mail) {
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
