//! Applying a compiled template to a message.

use serde_json::Value;

use super::{AttachmentRule, FieldRule, Split, Take, Template, Where, glob};
use crate::parse::email::html::Target;
use crate::parse::email::labels::{labelled_lines, same_label, split_city_state_zip};
use crate::parse::email::mime::Mail;
use crate::parse::email::needs_template;
use crate::parse::{ParseContext, ParseError, ParseOutput, Record};

impl Template {
    /// The records this template finds in `mail`: one per record of each matching
    /// attachment (with the body fields added to each), or one from the body fields.
    pub fn extract(&self, mail: &Mail, cx: &ParseContext) -> Result<ParseOutput, ParseError> {
        let mut body = Record::new();
        for rule in &self.fields {
            let found = self.field(rule, mail, &mut body);
            if !found && rule.required {
                return Err(needs_template(format!(
                    "template {}: required field {} was not found (has the vendor changed its layout?)",
                    self.name, rule.name
                )));
            }
        }
        if self.attachments.is_empty() {
            if body.is_empty() {
                return Err(needs_template(format!(
                    "template {}: no field was found in the message",
                    self.name
                )));
            }
            return Ok(ParseOutput { records: vec![body], batch: false });
        }
        let mut records = Vec::new();
        for rule in &self.attachments {
            let mut any = false;
            for a in
                mail.attachments.iter().filter(|a| attachment_matches(rule, &a.filename, &a.content_type))
            {
                any = true;
                let out = crate::parse::parse(rule.format, &a.body, cx).map_err(|e| {
                    let name = a.filename.as_deref().unwrap_or(&a.content_type);
                    ParseError { message: format!("attachment {name}: {}", e.message), ..e }
                })?;
                for mut record in out.records {
                    record.extend(body.iter().cloned());
                    records.push(record);
                }
            }
            if !any && rule.required {
                let skipped =
                    mail.skipped.iter().map(|(n, size)| format!("{n} ({size} bytes)")).collect::<Vec<_>>();
                let hint = if skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipped as too large: {}", skipped.join(", "))
                };
                return Err(needs_template(format!(
                    "template {}: no attachment matches {}{hint}",
                    self.name,
                    describe(rule)
                )));
            }
        }
        if records.is_empty() && !body.is_empty() {
            records.push(body);
        }
        let batch = records.len() > 1;
        Ok(ParseOutput { records, batch })
    }

    /// Finds one field's value(s) and pushes the resulting fields; false if none found.
    fn field(&self, rule: &FieldRule, mail: &Mail, out: &mut Record) -> bool {
        let mut values: Vec<String> = Vec::new();
        let mut extra: Vec<(String, String)> = Vec::new();
        if let Some(v) = &rule.value {
            values.push(v.clone());
        }
        if !rule.labels.is_empty() {
            values.extend(labelled(rule, mail));
        }
        if let Some(re) = &rule.regex {
            for text in sources(&rule.source, mail) {
                for caps in re.captures_iter(&text) {
                    let whole = caps.name("value").or_else(|| caps.get(1)).or_else(|| caps.get(0));
                    if let Some(m) = whole {
                        values.push(m.as_str().trim().to_owned());
                    }
                    for name in re.capture_names().flatten().filter(|n| *n != "value") {
                        if let Some(m) = caps.name(name) {
                            extra.push((name.to_owned(), m.as_str().trim().to_owned()));
                        }
                    }
                }
            }
        }
        values.retain(|v| !v.trim().is_empty());
        let value = match rule.take {
            Take::First => values.first().cloned(),
            Take::Last => values.last().cloned(),
            Take::All => (!values.is_empty()).then(|| values.join(", ")),
        };
        let found = value.is_some() || !extra.is_empty();
        if let Some(value) = value {
            post(rule, &value, out);
        }
        for (name, value) in extra {
            out.push((name, Value::String(value)));
        }
        found
    }
}

/// Applies the split/pattern rules and pushes the fields.
fn post(rule: &FieldRule, value: &str, out: &mut Record) {
    let push = |out: &mut Record, name: &str, v: &str| {
        out.push((name.to_owned(), Value::String(v.trim().to_owned())))
    };
    if rule.split == Some(Split::CityStateZip)
        && let Some((city, state, zip)) = split_city_state_zip(value)
    {
        push(out, "city", &city);
        push(out, "state", &state);
        push(out, "postal_code", &zip);
        return;
    }
    if let Some(p) = &rule.pattern
        && let Some(caps) = p.captures(value)
    {
        for name in p.capture_names().flatten() {
            if let Some(m) = caps.name(name) {
                push(out, name, m.as_str());
            }
        }
        return;
    }
    push(out, &rule.name, value);
}

/// Values of the rule's labels: text lines, then table rows, then HTML text lines.
fn labelled(rule: &FieldRule, mail: &Mail) -> Vec<String> {
    let wanted = |label: &str| rule.labels.iter().any(|l| same_label(label, l));
    let mut values = Vec::new();
    let (texts, htmls) = match rule.source {
        Where::Text => (true, false),
        Where::Html => (false, true),
        Where::Body => (true, true),
        Where::Subject | Where::Header(_) => {
            for text in sources(&rule.source, mail) {
                values.extend(
                    labelled_lines(&text, rule.multiline)
                        .into_iter()
                        .filter(|l| wanted(&l.label))
                        .map(|l| l.value),
                );
            }
            return values;
        }
    };
    if texts {
        for text in &mail.texts {
            values.extend(
                labelled_lines(text, rule.multiline)
                    .into_iter()
                    .filter(|l| wanted(&l.label))
                    .map(|l| l.value),
            );
        }
    }
    if htmls {
        for html in &mail.htmls {
            for row in html.tables.iter().flatten() {
                let [label, cell] = row.as_slice() else { continue };
                if !wanted(&label.text) {
                    continue;
                }
                let mut value = cell.text.clone();
                for link in &cell.links {
                    match &link.target {
                        Target::Mailto(a) if !value.contains('@') && a.contains('@') => value = a.clone(),
                        Target::Tel(n) if digit_count(&value) < 7 && digit_count(n) >= 7 => value = n.clone(),
                        _ => {}
                    }
                }
                values.push(value);
            }
            if values.is_empty() {
                values.extend(
                    labelled_lines(&html.text, rule.multiline)
                        .into_iter()
                        .filter(|l| wanted(&l.label))
                        .map(|l| l.value),
                );
            }
        }
    }
    values
}

fn digit_count(s: &str) -> usize {
    s.chars().filter(char::is_ascii_digit).count()
}

/// The texts a rule reads.
fn sources(source: &Where, mail: &Mail) -> Vec<String> {
    match source {
        Where::Body => mail.texts.iter().cloned().chain(mail.htmls.iter().map(|h| h.text.clone())).collect(),
        Where::Text => mail.texts.clone(),
        Where::Html => mail.htmls.iter().map(|h| h.text.clone()).collect(),
        Where::Subject => vec![mail.subject.clone()],
        Where::Header(name) => mail
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect(),
    }
}

fn attachment_matches(rule: &AttachmentRule, filename: &Option<String>, content_type: &str) -> bool {
    let name_ok = match (&rule.filename, filename) {
        (None, _) => true,
        (Some(g), Some(f)) => glob(g, f),
        (Some(_), None) => false,
    };
    let type_ok = rule.content_type.as_deref().is_none_or(|g| glob(g, content_type));
    name_ok && type_ok
}

fn describe(rule: &AttachmentRule) -> String {
    match (&rule.filename, &rule.content_type) {
        (Some(f), Some(t)) => format!("{f} ({t})"),
        (Some(f), None) => f.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => "(any)".to_owned(),
    }
}
