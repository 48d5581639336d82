//! `leadgate parsers suggest FILE.eml`: a starting template (the TOML format of
//! [`crate::parse::template`]) from one sample message.
//!
//! The message is read by generic extraction; every field that sat under a label becomes
//! a `label` rule (a label alone on its line becomes a `regex` rule for the next line, a
//! composite label a `split` rule), the vendor is matched by its From domain, and the
//! first labelled e-mail (else phone) is `required`, so a layout change is refused and
//! kept for replay instead of giving an empty lead. Fields read from links, prose or
//! headers are listed as comments for the operator to decide on.

use std::collections::HashSet;

use super::provenance::{Extracted, Layout, Origin};
use super::{generic, mime};
use crate::parse::ParseError;

/// The suggested template's text, for a template named `name` (the From domain's first
/// label when `None`).
pub fn suggest(raw: &[u8], name: Option<&str>, limits: &mime::MimeLimits) -> Result<String, ParseError> {
    let mail = mime::read(raw, limits)?;
    let extraction = generic::explain(&mail)?;
    let domain = mail.from.first().map(|a| a.domain().to_owned()).filter(|d| !d.is_empty());
    let name = name.map(str::to_owned).unwrap_or_else(|| {
        let stem = domain.as_deref().and_then(|d| d.split('.').next()).unwrap_or("vendor");
        let clean: String = stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect();
        if clean.is_empty() { "vendor".to_owned() } else { clean }
    });

    let mut out: Vec<String> = Vec::new();
    out.push("# Suggested by `leadgate parsers suggest` from one sample: check every rule, then".to_owned());
    out.push(format!("# save as <config>/parsers/{name}.toml and run `leadgate parsers test`."));
    out.push(format!("description = {}", quote(&format!("{name}: suggested from a sample"))));
    out.push("\n[match]".to_owned());
    match &domain {
        Some(d) => {
            out.push(format!("from = [{}]", quote(&format!("*@{d}"))));
        }
        None => {
            let words: Vec<&str> = mail.subject.split_whitespace().take(3).collect();
            out.push(format!("subject = {}", quote(&format!("^{}", regex::escape(&words.join(" "))))));
        }
    }
    out.push("\n[fields]".to_owned());
    let mut done: HashSet<String> = HashSet::new();
    let mut required_given = false;
    let mut notes = Vec::new();
    for f in &extraction.fields {
        let Some(label) =
            f.label.as_deref().filter(|_| matches!(f.origin, Origin::Label | Origin::TableCell))
        else {
            notes.push(f);
            continue;
        };
        if !done.insert(label.to_lowercase()) {
            continue;
        }
        let siblings: Vec<&Extracted> =
            extraction.fields.iter().filter(|g| g.label.as_deref() == Some(label)).collect();
        let composite =
            siblings.len() > 1 && siblings.iter().any(|g| g.name == "city" || g.name == "postal_code");
        let field = if composite { "city_state_zip".to_owned() } else { field_name(&f.name) };
        let required = !required_given && matches!(f.name.as_str(), "email" | "phone");
        required_given |= required;
        let mut rule = match f.layout {
            Some(Layout::NextLine) => format!("regex = {}", quote(&next_line_regex(label))),
            Some(Layout::Spaced) => format!("regex = {}", quote(&spaced_regex(label))),
            Some(Layout::Inline) | None => format!("label = {}", quote(label)),
        };
        if composite {
            rule.push_str(", split = \"city_state_zip\"");
        }
        if required {
            rule.push_str(", required = true");
        }
        out.push(format!("{field} = {{ {rule} }}"));
    }
    for f in notes {
        out.push(format!(
            "# {} = {:?} was read from {} ({}): add a rule if this vendor always writes it so",
            f.name,
            f.value,
            f.origin.as_str(),
            f.evidence
        ));
    }
    out.push("\n# [[tests]]".to_owned());
    out.push(format!("# file = \"samples/{name}.eml\"   # copy the sample there"));
    out.push("# expect = { email = \"…\", phone = \"…\" }".to_owned());
    Ok(out.join("\n") + "\n")
}

/// A record field name for the template: canonical names as they are, vendor labels in
/// snake case (they land under `custom`).
fn field_name(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') && !name.is_empty() {
        return name.to_owned();
    }
    let mut out = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    if out.is_empty() { "field".to_owned() } else { out }
}

/// A regex for "the label alone on its line, the value on the next (non-blank) one".
fn next_line_regex(label: &str) -> String {
    format!(
        r"(?mi)^[ \t]*{}[ \t]*:?[ \t]*\r?\n(?:[ \t]*\r?\n)?[ \t]*(?P<value>[^\r\n]+)",
        regex::escape(label)
    )
}

/// A regex for "the label, a wide gap (spaces, tabs, no-break spaces), the value".
fn spaced_regex(label: &str) -> String {
    format!(r"(?mi)^[ \t]*{}[ \t\x{{a0}}]{{2,}}(?P<value>[^\r\n]+)", regex::escape(label))
}

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
